#include <gtest/gtest.h>

#include <initializer_list>
#include <vector>

#include "launch/command_line.h"

using namespace busgate;
using namespace busgate::launch;

namespace {

CommandLineResult parse(std::initializer_list<const char*> arguments) {
    std::vector<const char*> argv = {"busgate"};
    argv.insert(argv.end(), arguments);
    return parse_command_line(argv);
}

}  // namespace

TEST(CommandLine, AcceptsBothValueForms) {
    const auto joined =
        parse({"--config-file=/a.conf", "--address=unix:path=/x", "--print-address=5", "--print-pid=6"});
    ASSERT_EQ(joined.error, "");
    EXPECT_EQ(joined.command_line.config_file, "/a.conf");
    EXPECT_EQ(joined.command_line.address, "unix:path=/x");
    EXPECT_TRUE(joined.command_line.print_address);
    EXPECT_EQ(joined.command_line.print_address_fd, "5");
    EXPECT_EQ(joined.command_line.print_pid_fd, "6");

    const auto separate =
        parse({"--config-file", "/a.conf", "--address", "unix:path=/x", "--print-address", "5"});
    ASSERT_EQ(separate.error, "");
    EXPECT_EQ(separate.command_line.config_file, "/a.conf");
    EXPECT_EQ(separate.command_line.address, "unix:path=/x");
    EXPECT_EQ(separate.command_line.print_address_fd, "5");
}

TEST(CommandLine, BarePrintOptionsPrintToStdoutAndLeaveFollowingOptionsAlone) {
    const auto result = parse({"--session", "--print-address", "--nofork", "--print-pid", "--fork"});
    ASSERT_EQ(result.error, "");
    EXPECT_TRUE(result.command_line.print_address);
    EXPECT_EQ(result.command_line.print_address_fd, "");
    EXPECT_TRUE(result.command_line.print_pid);
    EXPECT_EQ(result.command_line.print_pid_fd, "");
    EXPECT_EQ(result.command_line.fork, CommandLine::Fork::always);  // the last of --nofork/--fork wins
    EXPECT_EQ(result.command_line.config_file, session_config_file);
}

TEST(CommandLine, ValueAfterBarePrintAddressIsADescriptorEvenIfItLooksLikeAnOption) {
    // dbus-daemon tests "previous argument was --print-address" before it tests for --print-pid.
    const auto result = parse({"--session", "--print-address", "--print-pid"});
    EXPECT_EQ(result.error, "Invalid file descriptor: \"--print-pid\"");
}

TEST(CommandLine, SessionAndSystemPickDbusDaemonsConfigFiles) {
    EXPECT_EQ(parse({"--system"}).command_line.config_file, system_config_file);
    EXPECT_EQ(parse({"--session"}).command_line.config_file, session_config_file);
    EXPECT_EQ(parse({"--session", "--system"}).error,
              "system specified but configuration file /usr/share/dbus-1/session.conf already requested");
}

TEST(CommandLine, RejectsTwoAddressesAndTwoDescriptors) {
    EXPECT_EQ(parse({"--session", "--address=a:", "--address=b:"}).error,
              "address specified but address a: already requested");
    EXPECT_EQ(parse({"--session", "--print-pid=1", "--print-pid", "2"}).error,
              "print-pid specified but printing pid to 1 already requested");
}

TEST(CommandLine, FlagsAndActions) {
    const auto result =
        parse({"--session", "--nopidfile", "--syslog-only", "--systemd-activation", "--nofork"});
    ASSERT_EQ(result.error, "");
    EXPECT_FALSE(result.command_line.write_pid_file);
    EXPECT_EQ(result.command_line.syslog, CommandLine::Syslog::only);
    EXPECT_TRUE(result.command_line.systemd_activation);
    EXPECT_EQ(result.command_line.fork, CommandLine::Fork::never);
    EXPECT_EQ(parse({"--version", "--bogus"}).command_line.action, CommandLine::Action::version);
    EXPECT_EQ(parse({"--introspect"}).command_line.action, CommandLine::Action::introspect);
    EXPECT_EQ(parse({"-h"}).command_line.action, CommandLine::Action::help);
}

TEST(CommandLine, NeedsAConfigurationFile) {
    EXPECT_EQ(parse({"--nofork"}).error, "No configuration file specified.");
    EXPECT_EQ(parse({"--session", "--bogus"}).error, "unknown option --bogus");
}

TEST(CommandLine, DescriptorsAreNonNegativeIntegers) {
    EXPECT_EQ(parse_descriptor("0"), 0);
    EXPECT_EQ(parse_descriptor("17"), 17);
    EXPECT_EQ(parse_descriptor("-1"), -1);
    EXPECT_EQ(parse_descriptor("3x"), -1);
    EXPECT_EQ(parse_descriptor(""), -1);
    EXPECT_EQ(parse({"--session", "--print-address=x"}).error, "Invalid file descriptor: \"x\"");
}

TEST(CommandLine, BarePrintOptionsLeaveBusgatesOwnOptionsAlone) {
    // dbus-daemon's lookahead skips every option it tests before "previous was --print-address"; busgate's
    // own options are tested there too, so they are never taken as a descriptor.
    const auto later_descriptor =
        parse({"--session", "--print-address", "--web=unix:path=/w", "--print-address=3"});
    ASSERT_EQ(later_descriptor.error, "");
    EXPECT_EQ(later_descriptor.command_line.print_address_fd, "3");
    EXPECT_EQ(later_descriptor.command_line.web, "unix:path=/w");

    const auto result = parse({"--session", "--print-address", "--web=unix:path=/w", "--print-pid",
                               "--web-token-file=/t", "--web-data-dir", "/d"});
    ASSERT_EQ(result.error, "");
    EXPECT_TRUE(result.command_line.print_address);
    EXPECT_EQ(result.command_line.print_address_fd, "");
    EXPECT_TRUE(result.command_line.print_pid);
    EXPECT_EQ(result.command_line.print_pid_fd, "");
    EXPECT_EQ(result.command_line.web, "unix:path=/w");
    EXPECT_EQ(result.command_line.web_token_file, "/t");
    EXPECT_EQ(result.command_line.web_data_dir, "/d");

    // A bare --web waits for its value, so a descriptor cannot follow it either.
    const auto separate =
        parse({"--session", "--print-address", "--web", "unix:path=/w", "--print-pid", "4"});
    ASSERT_EQ(separate.error, "");
    EXPECT_EQ(separate.command_line.print_address_fd, "");
    EXPECT_EQ(separate.command_line.web, "unix:path=/w");
    EXPECT_EQ(separate.command_line.print_pid_fd, "4");
}

TEST(CommandLine, BarePrintAddressStillTakesAPlainNumberOrAnUnknownWord) {
    EXPECT_EQ(parse({"--session", "--print-address", "7"}).command_line.print_address_fd, "7");
    EXPECT_EQ(parse({"--session", "--print-address", "--bogus"}).error,
              "Invalid file descriptor: \"--bogus\"");
}
