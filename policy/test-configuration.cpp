// The configuration loader against dbus-tests' three corpora, dbus-daemon's own error texts, and every
// element and attribute of the busconfig language.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "busgate/policy/configuration.h"

using namespace busgate::policy;
namespace fs = std::filesystem;

namespace {

const fs::path test_data = BUSGATE_DBUS_TEST_DATA;

std::vector<fs::path> conf_files(const fs::path& directory) {
    std::vector<fs::path> files;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(directory, error)) {
        if (entry.is_regular_file() && entry.path().extension() == ".conf") {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

// A user database that knows a few fixed accounts, so tests do not depend on the machine's.
UserDatabase fake_users() {
    static const std::map<std::string, std::uint32_t, std::less<>> users = {
        {"root", 0},     {"0", 0},       {"bin", 2},    {"2", 2},
        {"alice", 1000}, {"1000", 1000}, {"bob", 1001}, {"1001", 1001},
    };
    static const std::map<std::string, std::uint32_t, std::less<>> groups = {
        {"root", 0}, {"0", 0}, {"bin", 2}, {"2", 2}, {"staff", 50}, {"50", 50}, {"wheel", 10}, {"10", 10},
    };
    auto lookup = [](const auto& table) {
        return [&table](std::string_view name) -> std::optional<std::uint32_t> {
            auto found = table.find(name);
            if (found == table.end()) {
                return std::nullopt;
            }
            return found->second;
        };
    };
    return UserDatabase{lookup(users), lookup(groups)};
}

LoadOptions test_options() {
    LoadOptions options;
    options.users = fake_users();
    options.getenv = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
    options.home_directory = "/home/test";
    return options;
}

Configuration parse(std::string_view body, LoadOptions options = test_options()) {
    std::string text = "<busconfig><listen>unix:path=/tmp/x</listen>" + std::string(body) + "</busconfig>";
    return parse_configuration(text, "/virtual/test.conf", options);
}

std::string parse_error(std::string_view body) {
    try {
        parse(body);
    } catch (const ConfigError& error) {
        return error.problem();
    }
    return "(accepted)";
}

// A scratch directory removed at the end of the test.
class TempDir {
  public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "busgate-policy-XXXXXX").string();
        path_ = ::mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code error;
        fs::remove_all(path_, error);
    }
    fs::path write(const std::string& name, const std::string& text) const {
        fs::create_directories((path_ / name).parent_path());
        std::ofstream(path_ / name) << text;
        return path_ / name;
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

}  // namespace

// ------------------------------------------------------------------------------------------ corpora

TEST(DbusTestsCorpus, EveryValidConfigFileLoads) {
    std::size_t loaded = 0;
    for (const char* directory : {"valid-config-files", "valid-config-files-system"}) {
        for (const auto& file : conf_files(test_data / directory)) {
            SCOPED_TRACE(file.string());
            EXPECT_NO_THROW({
                try {
                    load_configuration(file.string());
                } catch (const ConfigError& error) {
                    ADD_FAILURE() << error.describe();
                    throw;
                }
            });
            ++loaded;
        }
    }
    EXPECT_GE(loaded, 30u) << "dbus-tests data missing under " << test_data;
}

// The exact texts dbus-daemon 1.14.10 prints for each file ("Failed to start message bus: ..."), recorded
// by running it on the corpus; busgate adds the file and line in front.
TEST(DbusTestsCorpus, EveryInvalidConfigFileIsRejectedWithFileAndLine) {
    const fs::path dir = test_data / "invalid-config-files";
    const std::map<std::string, std::string> dbus_daemon_says = {
        {"apparmor-bad-attribute.conf",
         "Attribute \"enforcement_style\" is invalid on <apparmor> element in this context"},
        {"apparmor-bad-mode.conf",
         "Mode attribute on <apparmor> must have value \"required\", \"enabled\" or \"disabled\", not "
         "\"plaintive\""},
        {"bad-attribute-2.conf", "Attribute \"carefully\" is invalid on <listen> element in this context"},
        {"bad-attribute.conf", "Attribute \"wildebeest\" is invalid on <limit> element in this context"},
        {"bad-element.conf", "Element <bees> not allowed inside <busconfig> in configuration file"},
        {"bad-limit.conf",
         "<limit name=\"max_names_per_connection\"> element has invalid value (could not parse as integer)"},
        {"badselinux-1.conf", "selinux_root_relative attribute must have value \"yes\" or \"no\""},
        {"badselinux-2.conf", "if_selinux_enabled attribute must have value \"yes\" or \"no\""},
        {"circular-1.conf", "Circular inclusion of file '" + (dir / "circular-1.conf").string() + "'"},
        {"circular-2.conf", "Circular inclusion of file '" + (dir / "circular-3.conf").string() + "'"},
        {"circular-3.conf", "Circular inclusion of file '" + (dir / "circular-2.conf").string() + "'"},
        {"double-attribute.conf", "duplicate attribute"},
        {"impossible-send.conf",
         "Rule with send_broadcast=\"true\" and send_destination=\"com.example.Bees\" cannot match anything"},
        {"limit-no-name.conf", "<limit> element must have a \"name\" attribute"},
        {"ludicrous-limit.conf", "<limit name=\"max_names_per_connection\"> value is too large"},
        {"negative-limit.conf", "<limit name=\"max_names_per_connection\"> must be a positive number"},
        {"non-numeric-limit.conf",
         "<limit name=\"max_names_per_connection\"> element has invalid value (could not parse as integer)"},
        {"not-well-formed.conf", "mismatched tag"},
        {"policy-bad-at-console.conf",
         "Unknown value \"somewhere in the vicinity\" for at_console in message bus configuration file"},
        {"policy-bad-attribute.conf", "Attribute \"hat\" is invalid on <policy> element in this context"},
        {"policy-bad-context.conf",
         "context attribute on <policy> must have the value \"default\" or \"mandatory\", not \"apropos of "
         "nothing\""},
        {"policy-bad-rule-attribute.conf",
         "Attribute \"species\" is invalid on <allow> element in this context"},
        {"policy-contradiction.conf",
         "<policy> element must have exactly one of (context|user|group|at_console) attributes"},
        {"policy-member-no-path.conf",
         "On element <deny>, if you specify a member you must specify an interface or a path. Keep in mind "
         "that not all messages have an interface field."},
        {"policy-mixed.conf",
         "Invalid combination of attributes on element <allow>: own, own_prefix, user, group and the "
         "message-related attributes cannot be combined"},
        {"policy-no-attributes.conf",
         "<policy> element must have exactly one of (context|user|group|at_console) attributes"},
        {"policy-no-rule-attribute.conf", "Element <allow> must have one or more attributes"},
        {"send-and-receive.conf",
         "Invalid combination of attributes on element <allow>: send and receive attributes cannot be "
         "combined"},
        {"truncated-file.conf", "unclosed token"},
        {"unknown-limit.conf", "There is no limit called \"max_bees\""},
    };
    // Where dbus-daemon's expat reports the three XML errors (line, column).
    const std::map<std::string, std::pair<int, int>> xml_positions = {{"double-attribute.conf", {3, 35}},
                                                                      {"not-well-formed.conf", {4, 19}},
                                                                      {"truncated-file.conf", {9, 2}}};

    const auto files = conf_files(dir);
    ASSERT_GE(files.size(), 30u) << "dbus-tests data missing under " << test_data;
    for (const auto& file : files) {
        SCOPED_TRACE(file.string());
        try {
            load_configuration(file.string());
            ADD_FAILURE() << "accepted";
        } catch (const ConfigError& error) {
            const std::string name = file.filename().string();
            EXPECT_GT(error.line(), 0);
            EXPECT_TRUE(fs::exists(error.file())) << error.file();
            if (!name.starts_with("circular")) {
                EXPECT_EQ(error.file(), file.string());
            }
            ASSERT_TRUE(dbus_daemon_says.count(name)) << "no expectation for " << name;
            EXPECT_EQ(error.problem(), dbus_daemon_says.at(name));
            if (auto position = xml_positions.find(name); position != xml_positions.end()) {
                EXPECT_EQ(error.line(), position->second.first);
                EXPECT_EQ(error.column(), position->second.second);
            }
            EXPECT_EQ(error.describe(),
                      error.file() + ":" + std::to_string(error.line()) + ": " + error.problem());
        }
    }
}

TEST(DbusTestsCorpus, EquivalentConfigFilesAreEqual) {
    std::size_t groups = 0;
    for (const auto& entry : fs::directory_iterator(test_data / "equiv-config-files")) {
        if (!entry.is_directory()) {
            continue;
        }
        const auto files = conf_files(entry.path());
        ASSERT_GE(files.size(), 2u) << entry.path();
        const Configuration first = load_configuration(files.front().string());
        for (const auto& file : files) {
            SCOPED_TRACE(file.string());
            EXPECT_EQ(load_configuration(file.string()), first);
        }
        ++groups;
    }
    EXPECT_GE(groups, 2u);
}

TEST(DbusTestsCorpus, DifferentConfigFilesAreNotEqual) {
    // The equality the equivalence test relies on must be able to fail.
    const auto a = load_configuration((test_data / "valid-config-files/basic.conf").string());
    const auto b = load_configuration((test_data / "valid-config-files/many-rules.conf").string());
    EXPECT_NE(a, b);
    auto c = a;
    c.policy.default_rules.back().allow = !c.policy.default_rules.back().allow;
    EXPECT_NE(a, c);
}

// What dbus-daemon itself says about a configuration file while loading it: the lines it logs as
// "dbus[PID]: TEXT" before it listens (warnings such as an unknown user in some package's system.d file).
// It listens on a private socket, and is stopped once it printed its address, or when it gives up.
std::optional<std::vector<std::string>> dbus_daemon_complaints(const std::string& config) {
    const char* daemon = "/usr/bin/dbus-daemon";
    if (::access(daemon, X_OK) != 0) {
        return std::nullopt;
    }
    char pattern[] = "/tmp/busgate-dbus-daemon.XXXXXX";
    if (::mkdtemp(pattern) == nullptr) {
        return std::nullopt;
    }
    const std::string directory = pattern;
    const std::string address = "--address=unix:path=" + directory + "/socket";
    const std::string config_option = "--config-file=" + config;
    int output[2];
    if (::pipe(output) != 0) {
        return std::nullopt;
    }
    const pid_t child = ::fork();
    if (child == 0) {
        ::dup2(output[1], STDOUT_FILENO);
        ::dup2(output[1], STDERR_FILENO);
        ::close(output[0]);
        ::close(output[1]);
        ::execl(daemon, daemon, config_option.c_str(), address.c_str(), "--nofork", "--nopidfile",
                "--nosyslog", "--print-address=1", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(output[1]);
    std::string text;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (text.find("\nunix:") == std::string::npos && text.rfind("unix:", 0) == std::string::npos &&
           std::chrono::steady_clock::now() < give_up) {
        pollfd readable{output[0], POLLIN, 0};
        if (::poll(&readable, 1, 1000) <= 0) {
            continue;
        }
        char buffer[4096];
        const ssize_t got = ::read(output[0], buffer, sizeof(buffer));
        if (got <= 0) {
            break;  // it exited (as a user that cannot switch to <user>, after loading the files)
        }
        text.append(buffer, static_cast<std::size_t>(got));
    }
    ::kill(child, SIGTERM);
    ::waitpid(child, nullptr, 0);
    ::close(output[0]);
    fs::remove_all(directory);
    std::vector<std::string> complaints;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string line = text.substr(start, end - start);
        start = end + 1;
        // "dbus[PID]: TEXT" from the configuration loader; "dbus-daemon[PID]: [system] ..." is about the
        // process (its fd limit in a container), not the files.
        if (line.rfind("dbus[", 0) == 0) {
            if (const std::size_t colon = line.find("]: "); colon != std::string::npos) {
                complaints.push_back(line.substr(colon + 3));
            }
        }
    }
    std::sort(complaints.begin(), complaints.end());
    return complaints;
}

// The machine's own files: whatever packages are installed (some ship a system.d file naming an account that
// does not exist here, such as iio-sensor-proxy's geoclue), busgate's warnings are dbus-daemon's.
TEST(SystemConfiguration, ThisMachinesSystemAndSessionConfigsLoad) {
    for (const char* path : {"/usr/share/dbus-1/system.conf", "/usr/share/dbus-1/session.conf"}) {
        if (!fs::exists(path)) {
            GTEST_SKIP() << path << " not installed";
        }
        SCOPED_TRACE(path);
        Configuration config;
        ASSERT_NO_THROW(config = load_configuration(path));
        EXPECT_FALSE(config.listen.empty());
        EXPECT_FALSE(config.servicedirs.empty());
        EXPECT_FALSE(config.policy.default_rules.empty());
        std::vector<std::string> warnings;
        for (const ConfigWarning& warning : config.warnings) {
            warnings.push_back(warning.message);
        }
        std::sort(warnings.begin(), warnings.end());
        const auto expected = dbus_daemon_complaints(path);
        ASSERT_TRUE(expected) << "/usr/bin/dbus-daemon cannot be run (package dbus-daemon)";
        EXPECT_EQ(warnings, *expected);
    }
    const auto system = load_configuration("/usr/share/dbus-1/system.conf");
    EXPECT_EQ(system.type, "system");
    EXPECT_EQ(system.user, "messagebus");
    EXPECT_TRUE(system.fork);
    EXPECT_TRUE(system.syslog);
    EXPECT_EQ(system.auth, std::vector<std::string>{"EXTERNAL"});
    // system.d/ files were read: each adds rules for its own service.
    EXPECT_GT(system.files.size(), 1u);
    EXPECT_FALSE(system.policy.user_rules.empty());
    const auto session = load_configuration("/usr/share/dbus-1/session.conf");
    EXPECT_EQ(session.type, "session");
    EXPECT_EQ(session.limits.max_names_per_connection, 50000);
}

// ------------------------------------------------------------------------------------------ elements

TEST(ConfigurationElements, ScalarElementsLastOneWins) {
    const auto config = parse(
        "<type>system</type><type>session</type><user>a</user><user>messagebus</user>"
        "<pidfile>/run/a</pidfile><pidfile>/run/b</pidfile><fork/><keep_umask/><syslog/><allow_anonymous/>");
    EXPECT_EQ(config.type, "session");
    EXPECT_EQ(config.user, "messagebus");
    EXPECT_EQ(config.pidfile, "/run/b");
    EXPECT_TRUE(config.fork);
    EXPECT_TRUE(config.keep_umask);
    EXPECT_TRUE(config.syslog);
    EXPECT_TRUE(config.allow_anonymous);
}

TEST(ConfigurationElements, FlagsDefaultToOff) {
    const auto config = parse("");
    EXPECT_FALSE(config.type);
    EXPECT_FALSE(config.user);
    EXPECT_FALSE(config.fork);
    EXPECT_FALSE(config.keep_umask);
    EXPECT_FALSE(config.syslog);
    EXPECT_FALSE(config.allow_anonymous);
    EXPECT_EQ(config.apparmor, AppArmorMode::enabled);
    EXPECT_TRUE(config.auth.empty());
}

TEST(ConfigurationElements, ListenAndAuthKeepOrderAndText) {
    const auto config =
        parse("<listen>tcp:host=localhost,port=0</listen><auth>EXTERNAL</auth><auth>ANONYMOUS</auth>");
    EXPECT_EQ(config.listen, (std::vector<std::string>{"unix:path=/tmp/x", "tcp:host=localhost,port=0"}));
    EXPECT_EQ(config.auth, (std::vector<std::string>{"EXTERNAL", "ANONYMOUS"}));
    // Like dbus-daemon, text is taken verbatim (the address parser then rejects the blanks).
    EXPECT_EQ(parse("<listen> unix:path=/a </listen>").listen.back(), " unix:path=/a ");
}

TEST(ConfigurationElements, EntitiesAreExpanded) {
    const auto config = load_configuration((test_data / "valid-config-files/entities.conf").string());
    EXPECT_EQ(config.listen.front(), "unix:path=/foo/<bar>");
    // basic.d/ (included first) adds /usr/share/foo; the file's own servicedir follows.
    ASSERT_EQ(config.servicedirs.size(), 2u);
    EXPECT_EQ(config.servicedirs[1].path, "/usr/&share/foo");
    EXPECT_EQ(config.policy.default_rules.size(), 2u);
}

TEST(ConfigurationElements, EveryLimitIsKnownAndSet) {
    std::string body;
    int value = 1;
    for (auto name : limit_names()) {
        body += "<limit name=\"" + std::string(name) + "\">" + std::to_string(value++) + "</limit>";
    }
    const auto config = parse(body);
    const Limits& l = config.limits;
    EXPECT_EQ(l.max_incoming_bytes, 1);
    EXPECT_EQ(l.max_incoming_unix_fds, 2);
    EXPECT_EQ(l.max_outgoing_bytes, 3);
    EXPECT_EQ(l.max_outgoing_unix_fds, 4);
    EXPECT_EQ(l.max_message_size, 5);
    EXPECT_EQ(l.max_message_unix_fds, 6);
    EXPECT_EQ(l.service_start_timeout, 7);
    EXPECT_EQ(l.auth_timeout, 8);
    EXPECT_EQ(l.pending_fd_timeout, 9);
    EXPECT_EQ(l.max_completed_connections, 10);
    EXPECT_EQ(l.max_incomplete_connections, 11);
    EXPECT_EQ(l.max_connections_per_user, 12);
    EXPECT_EQ(l.max_pending_service_starts, 13);
    EXPECT_EQ(l.max_names_per_connection, 14);
    EXPECT_EQ(l.max_match_rules_per_connection, 15);
    EXPECT_EQ(l.max_replies_per_connection, 16);
    EXPECT_EQ(l.reply_timeout, 17);
    EXPECT_EQ(l.max_containers, 18);
}

TEST(ConfigurationElements, LimitDefaultsAreDbusDaemons) {
    // The values system.conf documents as "hard-coded in dbus-daemon".
    const Limits l = parse("").limits;
    EXPECT_EQ(l.max_incoming_bytes, 133169152);
    EXPECT_EQ(l.max_incoming_unix_fds, 64);
    EXPECT_EQ(l.max_outgoing_bytes, 133169152);
    EXPECT_EQ(l.max_outgoing_unix_fds, 64);
    EXPECT_EQ(l.max_message_size, 33554432);
    EXPECT_EQ(l.max_message_unix_fds, 16);
    EXPECT_EQ(l.service_start_timeout, 25000);
    EXPECT_EQ(l.auth_timeout, 5000);
    EXPECT_EQ(l.pending_fd_timeout, 150000);
    EXPECT_EQ(l.max_completed_connections, 2048);
    EXPECT_EQ(l.max_incomplete_connections, 64);
    EXPECT_EQ(l.max_connections_per_user, 256);
    EXPECT_EQ(l.max_pending_service_starts, 512);
    EXPECT_EQ(l.max_names_per_connection, 512);
    EXPECT_EQ(l.max_match_rules_per_connection, 512);
    EXPECT_EQ(l.max_replies_per_connection, 128);
    EXPECT_EQ(l.reply_timeout, -1);
}

TEST(ConfigurationElements, SessionConfRaisesLimits) {
    const auto config = load_configuration((test_data / "valid-config-files/session.conf").string());
    EXPECT_EQ(config.limits.max_incoming_bytes, 1000000000);
    EXPECT_EQ(config.limits.max_message_unix_fds, 16);  // session.conf leaves it alone
    EXPECT_EQ(config.limits.auth_timeout, 240000);
    EXPECT_EQ(config.limits.max_replies_per_connection, 50000);
}

TEST(ConfigurationElements, LimitValuesParseLikeStrtol) {
    EXPECT_EQ(
        parse("<limit name=\"max_names_per_connection\"> 0x10 </limit>").limits.max_names_per_connection, 16);
    EXPECT_EQ(parse("<limit name=\"max_names_per_connection\">12abc</limit>").limits.max_names_per_connection,
              12);
    EXPECT_EQ(parse("<limit name=\"max_incoming_bytes\">3123123123</limit>").limits.max_incoming_bytes,
              3123123123);
    EXPECT_EQ(parse_error("<limit name=\"reply_timeout\">3123123123</limit>"),
              "<limit name=\"reply_timeout\"> value is too large");
    EXPECT_EQ(parse_error("<limit name=\"max_incoming_bytes\">-5</limit>"),
              "<limit name=\"max_incoming_bytes\"> must be a positive number");
    EXPECT_EQ(parse_error("<limit name=\"bogus\">x</limit>"),
              "<limit name=\"bogus\"> element has invalid value (could not parse as integer)");
    EXPECT_EQ(parse_error("<limit name=\"max_names_per_connection\"/>"),
              "XML element <limit> was expected to have content inside it");
}

TEST(ConfigurationElements, ServicedirsResolveAgainstTheFileAndDropDuplicates) {
    const auto config = parse(
        "<servicedir>rel/dir</servicedir><servicedir>/abs</servicedir><servicedir>/abs</servicedir>"
        "<servicehelper>helper</servicehelper>");
    ASSERT_EQ(config.servicedirs.size(), 2u);
    EXPECT_EQ(config.servicedirs[0].path, "/virtual/rel/dir");
    EXPECT_EQ(config.servicedirs[1].path, "/abs");
    EXPECT_EQ(config.servicehelper, "/virtual/helper");
}

TEST(ConfigurationElements, StandardSessionServicedirsFollowXdgDefaults) {
    auto config = parse("<standard_session_servicedirs/>");
    std::vector<std::string> paths;
    for (const auto& dir : config.servicedirs) {
        paths.push_back(dir.path);
    }
    EXPECT_EQ(paths,
              (std::vector<std::string>{"/home/test/.local/share/dbus-1/services",
                                        "/usr/local/share/dbus-1/services", "/usr/share/dbus-1/services"}));
}

TEST(ConfigurationElements, StandardSessionServicedirsFollowXdgVariables) {
    LoadOptions options = test_options();
    options.getenv = [](std::string_view name) -> std::optional<std::string> {
        if (name == "XDG_RUNTIME_DIR") {
            return "/run/user/1000";
        }
        if (name == "XDG_DATA_HOME") {
            return "/data/home";
        }
        if (name == "XDG_DATA_DIRS") {
            return "/opt/share:/usr/share/:";
        }
        return std::nullopt;
    };
    auto config = parse("<standard_session_servicedirs/>", options);
    ASSERT_EQ(config.servicedirs.size(), 4u);
    EXPECT_EQ(config.servicedirs[0], (ServiceDir{"/run/user/1000/dbus-1/services", true, false}));
    EXPECT_EQ(config.servicedirs[1].path, "/data/home/dbus-1/services");
    EXPECT_EQ(config.servicedirs[2].path, "/opt/share/dbus-1/services");
    EXPECT_EQ(config.servicedirs[3].path, "/usr/share/dbus-1/services");
}

TEST(ConfigurationElements, StandardSystemServicedirsInDbusOrder) {
    auto config = parse("<standard_system_servicedirs/>");
    std::vector<std::string> paths;
    for (const auto& dir : config.servicedirs) {
        paths.push_back(dir.path);
    }
    EXPECT_EQ(paths,
              (std::vector<std::string>{"/usr/local/share/dbus-1/system-services",
                                        "/usr/share/dbus-1/system-services", "/lib/dbus-1/system-services"}));
}

TEST(ConfigurationElements, SelinuxAssociationsLastWins) {
    const auto config = parse(
        "<selinux><associate own=\"a.b\" context=\"x_t\"/><associate own=\"a.b\" context=\"y_t\"/>"
        "<associate own=\"c.d\" context=\"z_t\"/></selinux>");
    EXPECT_EQ(config.selinux_contexts, (std::map<std::string, std::string>{{"a.b", "y_t"}, {"c.d", "z_t"}}));
    EXPECT_EQ(
        parse_error("<selinux><associate own=\"a.b\"/></selinux>"),
        "Element <associate> must have attributes own=\"<servicename>\" and context=\"<selinux context>\"");
}

TEST(ConfigurationElements, AppArmorModes) {
    EXPECT_EQ(parse("<apparmor mode=\"disabled\"/>").apparmor, AppArmorMode::disabled);
    EXPECT_EQ(parse("<apparmor mode=\"required\"/>").apparmor, AppArmorMode::required);
    EXPECT_EQ(parse("<apparmor/>").apparmor, AppArmorMode::enabled);
}

TEST(ConfigurationElements, MisplacedElementsAndTextAreRejected) {
    EXPECT_EQ(parse_error("hello"),
              "No text content expected inside XML element busconfig in configuration file");
    EXPECT_EQ(parse_error("<fork>x</fork>"),
              "No text content expected inside XML element fork in configuration file");
    EXPECT_EQ(parse_error("<listen>x<bees/></listen>"), "Element <bees> is not allowed in this context");
    EXPECT_EQ(parse_error("<policy context=\"default\"><policy context=\"default\"/></policy>"),
              "Element <policy> not allowed inside <policy> in configuration file");
    EXPECT_EQ(parse_error("<policy context=\"default\"><allow own=\"a\"><deny own=\"c\"/></allow></policy>"),
              "Element <deny> is not allowed in this context");
    EXPECT_EQ(parse_error("<associate own=\"a\" context=\"b\"/>"),
              "Element <associate> not allowed inside <busconfig> in configuration file");
    EXPECT_EQ(parse_error("<user/>"), "XML element <user> was expected to have content inside it");
    EXPECT_EQ(parse_error("<fork a=\"1\"/>"), "Attribute \"a\" is invalid on <fork> element in this context");
    try {
        parse_configuration("<foo/>", "/virtual/x.conf", test_options());
        FAIL();
    } catch (const ConfigError& error) {
        EXPECT_EQ(error.problem(), "Unknown element <foo> at root of configuration file");
    }
    try {
        parse_configuration("<busconfig/>", "/virtual/x.conf", test_options());
        FAIL();
    } catch (const ConfigError& error) {
        EXPECT_EQ(error.problem(), "Configuration file needs one or more <listen> elements giving addresses");
    }
}

// ------------------------------------------------------------------------------------------ rules

TEST(ConfigurationRules, AttributesAreNormalisedAsDbusDaemonDoes) {
    const auto config = parse(
        "<policy context=\"default\">"
        "<allow send_destination=\"*\" send_interface=\"*\" send_type=\"*\"/>"
        "<deny send_destination=\"org.a\" send_interface=\"org.a.I\" send_member=\"M\" "
        "send_type=\"method_call\""
        " send_path=\"/p\" log=\"true\" max_fds=\"0x10\" min_fds=\" 1\"/>"
        "<allow receive_sender=\"org.b\" receive_error=\"org.b.E\" receive_type=\"error\" "
        "eavesdrop=\"true\"/>"
        "<allow eavesdrop=\"true\"/>"
        "<deny own=\"*\"/><allow own_prefix=\"org.c\"/>"
        "<allow user=\"*\"/><deny user=\"bob\"/><allow group=\"staff\"/>"
        "<allow send_destination_prefix=\"org.d\" send_broadcast=\"false\" send_requested_reply=\"false\"/>"
        "</policy>");
    const auto& rules = config.policy.default_rules;
    ASSERT_EQ(rules.size(), 10u);
    EXPECT_EQ(rules[0].kind, RuleKind::send);
    EXPECT_FALSE(rules[0].name);
    EXPECT_FALSE(rules[0].interface);
    EXPECT_EQ(rules[0].message_type, RuleMessageType::any);
    EXPECT_TRUE(rules[0].requested_reply);  // allow default
    EXPECT_FALSE(rules[1].allow);
    EXPECT_FALSE(rules[1].requested_reply);  // deny default
    EXPECT_EQ(rules[1].name, "org.a");
    EXPECT_EQ(rules[1].member, "M");
    EXPECT_EQ(rules[1].path, "/p");
    EXPECT_EQ(rules[1].message_type, RuleMessageType::method_call);
    EXPECT_TRUE(rules[1].log);
    EXPECT_EQ(rules[1].max_fds, 16u);
    EXPECT_EQ(rules[1].min_fds, 1u);
    EXPECT_EQ(rules[2].kind, RuleKind::receive);
    EXPECT_EQ(rules[2].name, "org.b");
    EXPECT_EQ(rules[2].error, "org.b.E");
    EXPECT_TRUE(rules[2].eavesdrop);
    EXPECT_EQ(rules[3].kind, RuleKind::receive);  // eavesdrop alone is a receive rule
    EXPECT_EQ(rules[4].kind, RuleKind::own);
    EXPECT_FALSE(rules[4].name);
    EXPECT_TRUE(rules[5].name_is_prefix);
    EXPECT_EQ(rules[6].kind, RuleKind::user);
    EXPECT_FALSE(rules[6].id);
    EXPECT_EQ(rules[7].id, 1001u);
    EXPECT_EQ(rules[8].kind, RuleKind::group);
    EXPECT_EQ(rules[8].id, 50u);
    EXPECT_TRUE(rules[9].name_is_prefix);
    EXPECT_EQ(rules[9].broadcast, Tristate::no);
    EXPECT_FALSE(rules[9].requested_reply);
    EXPECT_EQ(rules[1].where.line, 1);
}

TEST(ConfigurationRules, PolicyContextsGoToTheirLists) {
    const auto config = parse(
        "<policy context=\"mandatory\"><deny own=\"a.b\"/></policy>"
        "<policy user=\"alice\"><allow own=\"a.b\"/></policy>"
        "<policy user=\"1000\"><allow own=\"a.c\"/></policy>"
        "<policy group=\"staff\"><allow own=\"a.d\"/></policy>"
        "<policy at_console=\"true\"><allow own=\"a.e\"/></policy>"
        "<policy at_console=\"false\"><allow own=\"a.f\"/></policy>"
        "<policy user=\"nobody-here\"><allow own=\"a.g\"/></policy>"
        "<policy group=\"no-group\"><allow own=\"a.h\"/></policy>");
    EXPECT_EQ(config.policy.mandatory_rules.size(), 1u);
    ASSERT_EQ(config.policy.user_rules.at(1000).size(), 2u);
    EXPECT_EQ(config.policy.user_rules.at(1000)[1].name, "a.c");
    EXPECT_EQ(config.policy.group_rules.at(50).size(), 1u);
    EXPECT_EQ(config.policy.at_console_rules.size(), 1u);
    EXPECT_EQ(config.policy.not_at_console_rules.size(), 1u);
    EXPECT_EQ(config.policy.user_rules.size(), 1u);
    ASSERT_EQ(config.warnings.size(), 2u);
    EXPECT_EQ(config.warnings[0].message,
              "Unknown username \"nobody-here\" in message bus configuration file");
    EXPECT_EQ(config.warnings[1].message, "Unknown group \"no-group\" in message bus configuration file");
}

TEST(ConfigurationRules, UnknownUserInRuleDropsTheRuleWithAWarning) {
    const auto config =
        parse("<policy context=\"default\"><deny user=\"ghost\"/><allow user=\"*\"/></policy>");
    EXPECT_EQ(config.policy.default_rules.size(), 1u);
    ASSERT_EQ(config.warnings.size(), 1u);
    EXPECT_EQ(config.warnings[0].message, "Unknown username \"ghost\" on element <deny>");
}

TEST(ConfigurationRules, InvalidCombinationsAreRejectedWithDbusDaemonsWords) {
    const std::pair<const char*, const char*> cases[] = {
        {"<allow send_destination=\"a.b\" send_destination_prefix=\"a\"/>",
         "Invalid combination of attributes on element <allow>: send_destination cannot be combined with "
         "send_destination_prefix"},
        {"<allow send_type=\"bees\"/>", "Bad message type \"bees\""},
        {"<allow receive_type=\"bees\"/>", "Bad message type \"bees\""},
        {"<allow send_type=\"*\" eavesdrop=\"maybe\"/>",
         "Bad value \"eavesdrop\" for maybe attribute, must be true or false"},
        {"<allow eavesdrop=\"maybe\"/>",
         "Bad value \"eavesdrop\" for maybe attribute, must be true or false"},
        {"<allow send_type=\"*\" send_requested_reply=\"maybe\"/>",
         "Bad value \"send_requested_reply\" for maybe attribute, must be true or false"},
        {"<allow send_type=\"*\" send_broadcast=\"maybe\"/>",
         "Bad value \"maybe\" for send_broadcast attribute, must be true or false"},
        {"<allow send_type=\"*\" max_fds=\"abc\"/>",
         "Bad value \"abc\" for max_fds attribute, must be an integer in range 0 to 33554432 inclusive"},
        {"<allow send_type=\"*\" max_fds=\"-1\"/>",
         "Bad value \"-1\" for max_fds attribute, must be an integer in range 0 to 33554432 inclusive"},
        {"<allow send_type=\"*\" max_fds=\"99999999\"/>",
         "Bad value \"99999999\" for max_fds attribute, must be an integer in range 0 to 33554432 inclusive"},
        {"<allow max_fds=\"1\"/>", "Element <allow> must have one or more attributes"},
        {"<allow log=\"true\"/>", "Element <allow> must have one or more attributes"},
        {"<allow send_error=\"a.b\" send_member=\"x\" send_path=\"/\"/>",
         "Invalid combination of attributes on element <allow>: send_error cannot be combined with "
         "send_member "
         "or send_interface"},
        {"<allow receive_error=\"a.b\" receive_interface=\"x\"/>",
         "Invalid combination of attributes on element <allow>: receive_error cannot be combined with "
         "receive_member or receive_interface"},
        {"<allow receive_member=\"x\"/>",
         "On element <allow>, if you specify a member you must specify an interface or a path. Keep in mind "
         "that not all messages have an interface field."},
        {"<allow own=\"a\" own_prefix=\"b\"/>",
         "Invalid combination of attributes on element <allow>: own, own_prefix, user, group and the "
         "message-related attributes cannot be combined"},
        {"<allow eavesdrop=\"true\" own=\"b\"/>",
         "Invalid combination of attributes on element <allow>: own, own_prefix, user, group and the "
         "message-related attributes cannot be combined"},
        {"<allow send_destination=\"a.b\" send_broadcast=\"true\"/>",
         "Rule with send_broadcast=\"true\" and send_destination=\"a.b\" cannot match anything"},
    };
    for (const auto& [rule, message] : cases) {
        SCOPED_TRACE(rule);
        EXPECT_EQ(parse_error("<policy context=\"default\">" + std::string(rule) + "</policy>"), message);
    }
    // Accepted by dbus-daemon too.
    EXPECT_EQ(
        parse_error(
            "<policy context=\"default\"><allow send_destination=\"*\" send_broadcast=\"true\"/></policy>"),
        "(accepted)");
    EXPECT_EQ(parse_error("<policy context=\"default\"><allow log=\"true\" own=\"a.b\"/></policy>"),
              "(accepted)");
    EXPECT_EQ(parse_error("<policy at_console=\"true\"><allow user=\"root\"/></policy>"), "(accepted)");
    EXPECT_EQ(parse_error("<policy user=\"root\"><allow user=\"root\"/></policy>"),
              "<allow> rule cannot be per-user because it has bus-global semantics");
    EXPECT_EQ(parse_error("<policy group=\"root\"><deny group=\"root\"/></policy>"),
              "<deny> rule cannot be per-group because it has bus-global semantics");
}

// ------------------------------------------------------------------------------------------ includes

TEST(ConfigurationIncludes, RelativeIncludesResolveAgainstTheIncludingFile) {
    TempDir dir;
    dir.write("sub/inner.conf",
              "<busconfig><listen>unix:path=/inner</listen><include>deeper/x.conf</include></busconfig>");
    dir.write("sub/deeper/x.conf", "<busconfig><type>session</type></busconfig>");
    auto top = dir.write("top.conf", "<busconfig><include>sub/inner.conf</include></busconfig>");
    const auto config = load_configuration(top.string(), test_options());
    EXPECT_EQ(config.listen, std::vector<std::string>{"unix:path=/inner"});
    EXPECT_EQ(config.type, "session");
    EXPECT_EQ(config.files.size(), 3u);
}

TEST(ConfigurationIncludes, MissingIncludeFailsUnlessIgnored) {
    TempDir dir;
    auto ignored = dir.write(
        "a.conf",
        "<busconfig><listen>x:</listen><include ignore_missing=\"yes\">nope.conf</include></busconfig>");
    EXPECT_NO_THROW(load_configuration(ignored.string(), test_options()));
    auto fatal =
        dir.write("b.conf", "<busconfig><listen>x:</listen>\n<include>nope.conf</include></busconfig>");
    try {
        load_configuration(fatal.string(), test_options());
        FAIL();
    } catch (const ConfigError& error) {
        EXPECT_EQ(error.problem(), "Failed to open \"" + (dir.path() / "nope.conf").string() +
                                       "\": No such file or directory");
        EXPECT_EQ(error.line(), 2);
        EXPECT_EQ(error.file(), fatal.string());
    }
    // ignore_missing does not forgive a broken file.
    dir.write("broken.conf", "<busconfig><bees/></busconfig>");
    auto broken = dir.write(
        "c.conf",
        "<busconfig><listen>x:</listen><include ignore_missing=\"yes\">broken.conf</include></busconfig>");
    try {
        load_configuration(broken.string(), test_options());
        FAIL();
    } catch (const ConfigError& error) {
        EXPECT_EQ(error.file(), (dir.path() / "broken.conf").string());
        EXPECT_EQ(error.problem(), "Element <bees> not allowed inside <busconfig> in configuration file");
    }
}

TEST(ConfigurationIncludes, CyclesAreDetectedThroughDifferentSpellings) {
    TempDir dir;
    dir.write("a.conf", "<busconfig><include>./sub/../b.conf</include></busconfig>");
    dir.write("b.conf", "<busconfig><include>a.conf</include></busconfig>");
    fs::create_directories(dir.path() / "sub");
    auto top = dir.write("top.conf", "<busconfig><listen>x:</listen><include>a.conf</include></busconfig>");
    try {
        load_configuration(top.string(), test_options());
        FAIL();
    } catch (const ConfigError& error) {
        // Named as spelled by the including file (b.conf, reached as ./sub/../b.conf), as dbus-daemon does.
        EXPECT_EQ(error.problem(),
                  "Circular inclusion of file '" + (dir.path() / "./sub/../a.conf").string() + "'");
    }
    // Including the same file twice, not nested, is fine.
    dir.write("leaf.conf", "<busconfig><auth>EXTERNAL</auth></busconfig>");
    auto twice = dir.write(
        "twice.conf",
        "<busconfig><listen>x:</listen><include>leaf.conf</include><include>leaf.conf</include></busconfig>");
    EXPECT_EQ(load_configuration(twice.string(), test_options()).auth.size(), 2u);
}

TEST(ConfigurationIncludes, IncludedirReadsSortedConfFilesAndSkipsBrokenOnes) {
    TempDir dir;
    dir.write("d/20-b.conf",
              "<busconfig><policy context=\"default\"><allow own=\"b.b\"/></policy></busconfig>");
    dir.write("d/10-a.conf",
              "<busconfig><policy context=\"default\"><allow own=\"a.a\"/></policy></busconfig>");
    dir.write("d/30-c.conf",
              "<busconfig><bees/><policy context=\"default\"><allow own=\"c.c\"/></policy></busconfig>");
    dir.write("d/README", "<busconfig><policy context=\"default\"><allow own=\"x.x\"/></policy></busconfig>");
    dir.write("d/40-d.conf.disabled", "not xml");
    auto top = dir.write("top.conf",
                         "<busconfig><listen>x:</listen><includedir>d</includedir><includedir>missing.d</"
                         "includedir></busconfig>");
    const auto config = load_configuration(top.string(), test_options());
    ASSERT_EQ(config.policy.default_rules.size(), 2u);
    EXPECT_EQ(config.policy.default_rules[0].name, "a.a");
    EXPECT_EQ(config.policy.default_rules[1].name, "b.b");
    ASSERT_EQ(config.warnings.size(), 1u);
    EXPECT_NE(config.warnings[0].message.find("30-c.conf"), std::string::npos);
    EXPECT_EQ(config.included_dirs, std::vector<std::string>{(dir.path() / "d").string()});
}

TEST(ConfigurationIncludes, IncludedFilesInheritAndReturnLimitsInDocumentOrder) {
    TempDir dir;
    dir.write("inc.conf",
              "<busconfig><limit name=\"max_names_per_connection\">7</limit><user>inner</user></busconfig>");
    auto top = dir.write("top.conf",
                         "<busconfig><listen>x:</listen><limit name=\"max_names_per_connection\">3</limit>"
                         "<limit name=\"auth_timeout\">9</limit><user>outer</user><include>inc.conf</include>"
                         "<apparmor mode=\"disabled\"/></busconfig>");
    const auto config = load_configuration(top.string(), test_options());
    EXPECT_EQ(config.limits.max_names_per_connection, 7);
    EXPECT_EQ(config.limits.auth_timeout, 9);
    EXPECT_EQ(config.user, "inner");
    auto later =
        dir.write("later.conf",
                  "<busconfig><listen>x:</listen><apparmor mode=\"disabled\"/><include>inc.conf</include>"
                  "<user>outer</user></busconfig>");
    const auto config2 = load_configuration(later.string(), test_options());
    EXPECT_EQ(config2.user, "outer");
    EXPECT_EQ(config2.apparmor, AppArmorMode::disabled);
}

TEST(ConfigurationIncludes, SelinuxOnlyIncludesAreSkippedWithoutSelinux) {
    const auto config = parse(
        "<include if_selinux_enabled=\"yes\" selinux_root_relative=\"yes\">contexts/dbus_contexts</include>");
    EXPECT_EQ(config.files.size(), 1u);
}

// ------------------------------------------------------------------------------------------ reload

TEST(ConfigurationReload, BrokenFileLeavesThePreviousConfigurationInForce) {
    TempDir dir;
    auto path = dir.write("bus.conf", "<busconfig><listen>unix:path=/a</listen></busconfig>");
    Configuration current = load_configuration(path.string(), test_options());
    const Configuration before = current;
    dir.write("bus.conf", "<busconfig><listen>unix:path=/b</listen>\n<policy/></busconfig>");
    auto error = reload_configuration(current, path.string(), test_options());
    ASSERT_TRUE(error);
    EXPECT_EQ(error->line(), 2);
    EXPECT_EQ(current, before);
    EXPECT_EQ(current.listen.front(), "unix:path=/a");
    dir.write("bus.conf", "<busconfig><listen>unix:path=/c</listen></busconfig>");
    EXPECT_FALSE(reload_configuration(current, path.string(), test_options()));
    EXPECT_EQ(current.listen.front(), "unix:path=/c");
}

TEST(ConfigurationEndpoints, EndpointElementsAreBusgatesOwn) {
    const auto config = parse(
        "<endpoint name=\"box\" type=\"flatpak\" path=\"sockets/box\" max_connections=\"4\">\n"
        "  <see name=\"org.example.Visible\"/><talk name=\"org.example.*\"/><own name=\"org.example.Box\"/>\n"
        "  <call rule=\"org.example.Limited=org.example.Iface.Get@/obj\"/><broadcast "
        "rule=\"org.example.Limited\"/>\n"
        "</endpoint>");
    ASSERT_EQ(config.endpoints.size(), 1u);
    const EndpointConfig& endpoint = config.endpoints[0];
    EXPECT_EQ(endpoint.name, "box");
    EXPECT_EQ(endpoint.type, "flatpak");
    EXPECT_EQ(endpoint.path, "/virtual/sockets/box");  // relative to the file, as other paths
    EXPECT_EQ(endpoint.max_connections, 4);
    EXPECT_EQ(endpoint.see, std::vector<std::string>{"org.example.Visible"});
    EXPECT_EQ(endpoint.talk, std::vector<std::string>{"org.example.*"});
    EXPECT_EQ(endpoint.own, std::vector<std::string>{"org.example.Box"});
    EXPECT_EQ(endpoint.calls, std::vector<std::string>{"org.example.Limited=org.example.Iface.Get@/obj"});
    EXPECT_EQ(endpoint.broadcasts, std::vector<std::string>{"org.example.Limited"});
    EXPECT_EQ(endpoint.where.line, 1);
}

TEST(ConfigurationEndpoints, MisplacedOrIncompleteEndpointElementsAreErrors) {
    EXPECT_EQ(parse_error("<endpoint/>"), "<endpoint> element must have a \"name\" attribute");
    EXPECT_EQ(parse_error("<see name=\"a.b\"/>"),
              "Element <see> not allowed inside <busconfig> in configuration file");
    EXPECT_EQ(parse_error("<endpoint name=\"x\"><allow own=\"a.b\"/></endpoint>"),
              "Element <allow> not allowed inside <endpoint> in configuration file");
    EXPECT_EQ(parse_error("<endpoint name=\"x\"><call name=\"a.b\"/></endpoint>"),
              "Attribute \"name\" is invalid on <call> element in this context");
    EXPECT_EQ(parse_error("<endpoint name=\"x\" max_connections=\"0\"/>"),
              "<endpoint max_connections=\"0\"> must be a positive number");
    // A later endpoint of the same name replaces the earlier.
    const auto config = parse("<endpoint name=\"x\" type=\"a\"/><endpoint name=\"x\" type=\"b\"/>");
    ASSERT_EQ(config.endpoints.size(), 1u);
    EXPECT_EQ(config.endpoints[0].type, "b");
}
