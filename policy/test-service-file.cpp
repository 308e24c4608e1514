// Service files: the upstream valid and invalid corpora, dbus-daemon's naming rules, and Exec= splitting.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "busgate/policy/service_file.h"

using namespace busgate::policy;
namespace fs = std::filesystem;

namespace {

const fs::path test_data = BUSGATE_DBUS_TEST_DATA;

std::vector<std::string> split(std::string_view line) {
    std::string error;
    auto arguments = split_command_line(line, error);
    EXPECT_EQ(error, "") << line;
    return arguments;
}

std::string split_error(std::string_view line) {
    std::string error;
    EXPECT_TRUE(split_command_line(line, error).empty()) << line;
    return error;
}

class TemporaryDirectory {
  public:
    TemporaryDirectory() {
        char pattern[] = "/tmp/busgate-services.XXXXXX";
        path_ = ::mkdtemp(pattern);
    }
    ~TemporaryDirectory() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }
    void write(const std::string& name, const std::string& text) const {
        std::ofstream(path_ / name) << text;
    }

  private:
    fs::path path_;
};

}  // namespace

TEST(ServiceFile, ReadsEveryKeyDbusDaemonKnows) {
    const auto parsed = parse_service_file(
        "# a comment\n\n[D-BUS Service]\nName=com.example.Thing\nExec=/usr/bin/thing --flag\nUser=nobody\n"
        "SystemdService=thing.service\nAssumedAppArmorLabel=/usr/bin/thing\nName[de]=ignored\n"
        "[Other Group]\nName=not.this\n",
        "/d/com.example.Thing.service", true);
    ASSERT_TRUE(parsed.service) << parsed.error;
    EXPECT_EQ(parsed.service->name, "com.example.Thing");
    EXPECT_EQ(parsed.service->exec, "/usr/bin/thing --flag");
    EXPECT_EQ(parsed.service->user, "nobody");
    EXPECT_EQ(parsed.service->systemd_service, "thing.service");
    EXPECT_EQ(parsed.service->assumed_apparmor_label, "/usr/bin/thing");
}

TEST(ServiceFile, RefusesWhatDbusDaemonRefuses) {
    const std::string path = "/d/x.service";
    EXPECT_NE(parse_service_file("[D-BUS Service]\nExec=/bin/true\n", path, false).error.find("no Name="),
              std::string::npos);
    EXPECT_NE(parse_service_file("[D-BUS Service]\nName=a.b\n", path, false).error.find("no Exec="),
              std::string::npos);
    EXPECT_NE(parse_service_file("[Desktop Entry]\nName=a.b\nExec=x\n", path, false).error.find("[D-BUS"),
              std::string::npos);
    EXPECT_FALSE(parse_service_file("[D-BUS Service]\nName=:1.5\nExec=x\n", path, false).service);
    EXPECT_FALSE(parse_service_file("[D-BUS Service]\nName=nodots\nExec=x\n", path, false).service);
    EXPECT_EQ(parse_service_file("Name=a.b\n", path, false).error,
              path + ":1: Key=Value outside of any group");
    EXPECT_EQ(parse_service_file("[D-BUS Service]\nthis is junk\n", path, false).error,
              path + ":2: invalid characters in key name");
    EXPECT_FALSE(parse_service_file("[D-BUS Service]\nName=a.b\nExec=\xff\n", path, false).service);
}

// bus/desktop-file.c: only \\s \\n \\t \\r and \\\\ are escapes; anything else invalidates the whole file,
// while a repeated key or group is no error and the first one counts.
TEST(ServiceFile, EscapesAndRepeatsAsDbusDaemonReadsThem) {
    const std::string path = "/d/x.service";
    const auto escaped =
        parse_service_file("[D-BUS Service]\nName=a.b\nExec=/bin/echo\\sa\\tb\\\\c\n", path, false);
    ASSERT_TRUE(escaped.service) << escaped.error;
    EXPECT_EQ(escaped.service->exec, "/bin/echo a\tb\\c");
    const auto dollar =
        parse_service_file("[D-BUS Service]\nName=a.b\nExec=/bin/echo \\$HOME\n", path, false);
    EXPECT_FALSE(dollar.service);
    EXPECT_NE(dollar.error.find(":3: invalid escape sequence"), std::string::npos) << dollar.error;
    EXPECT_FALSE(parse_service_file("[D-BUS Service]\nName=a.b\nExec=/bin/true \\\n", path, false).service);
    EXPECT_FALSE(
        parse_service_file("[D-BUS Service]\nName=a.b\nUser=\\x\nExec=/bin/true\n", path, false).service);
    // A localized key is skipped before its value is looked at.
    EXPECT_TRUE(parse_service_file("[D-BUS Service]\nName=a.b\nName[de]=\\q\nExec=x\n", path, false).service);

    const auto repeated = parse_service_file(
        "[D-BUS Service]\nName=a.first\nName=a.second\nExec=/first\nExec=/second\n[D-BUS Service]\nUser=x\n",
        path, false);
    ASSERT_TRUE(repeated.service) << repeated.error;
    EXPECT_EQ(repeated.service->name, "a.first");
    EXPECT_EQ(repeated.service->exec, "/first");
    EXPECT_FALSE(repeated.service->user);  // the second group of that name is never read
    // Spaces, and only spaces, may surround the '='; lines may end in \r\n.
    const auto spaced = parse_service_file("[D-BUS Service]\r\nName = a.b\r\nExec=  /x\r\n", path, false);
    ASSERT_TRUE(spaced.service) << spaced.error;
    EXPECT_EQ(spaced.service->name, "a.b");
    EXPECT_EQ(spaced.service->exec, "/x");
    EXPECT_FALSE(parse_service_file("[D-BUS Service]\nName\t=a.b\nExec=x\n", path, false).service);
}

TEST(ServiceFile, StrictNamingWantsTheNameInTheFileName) {
    const std::string text = "[D-BUS Service]\nName=com.example.A\nExec=/bin/true\n";
    EXPECT_TRUE(parse_service_file(text, "/d/whatever.service", false).service);
    EXPECT_FALSE(parse_service_file(text, "/d/whatever.service", true).service);
    EXPECT_TRUE(parse_service_file(text, "/d/com.example.A.service", true).service);
}

TEST(ServiceFile, UpstreamValidCorpusLoads) {
    const auto scan = scan_service_directories({{.path = test_data / "valid-service-files"}});
    EXPECT_TRUE(scan.skipped.empty()) << scan.skipped.front();
    std::vector<std::string> names;
    for (const ServiceFile& service : scan.services) {
        names.push_back(service.name);
    }
    EXPECT_NE(std::find(names.begin(), names.end(), "org.freedesktop.DBus.TestSuiteEchoService"),
              names.end());
    EXPECT_NE(std::find(names.begin(), names.end(), "org.freedesktop.DBus.TestSuiteForkingEchoService"),
              names.end());
    EXPECT_GE(names.size(), 6u);
}

TEST(ServiceFile, UpstreamSystemCorpora) {
    const auto valid = scan_service_directories({{.path = test_data / "valid-service-files-system"}});
    EXPECT_TRUE(valid.skipped.empty());
    EXPECT_EQ(valid.services.size(), 4u);
    // No Exec= and no Name= are left out, each with its reason; a missing User= only fails at start.
    const auto invalid = scan_service_directories({{.path = test_data / "invalid-service-files-system"}});
    ASSERT_EQ(invalid.skipped.size(), 2u);
    EXPECT_NE(invalid.skipped[0].find("no Exec="), std::string::npos);
    EXPECT_NE(invalid.skipped[1].find("no Name="), std::string::npos);
    ASSERT_EQ(invalid.services.size(), 1u);
    EXPECT_FALSE(invalid.services[0].user);
}

TEST(ServiceFile, FirstDirectoryWinsAndMissingDirectoriesAreFine) {
    TemporaryDirectory first;
    TemporaryDirectory second;
    first.write("a.service", "[D-BUS Service]\nName=com.example.A\nExec=/first\n");
    second.write("a.service", "[D-BUS Service]\nName=com.example.A\nExec=/second\n");
    second.write("b.service", "[D-BUS Service]\nName=com.example.B\nExec=/b\n");
    second.write("notes.txt", "not a service file");
    const auto scan = scan_service_directories(
        {{.path = "/nonexistent/dir"}, {.path = first.path()}, {.path = second.path()}});
    ASSERT_EQ(scan.services.size(), 2u);
    EXPECT_EQ(scan.services[0].exec, "/first");
    EXPECT_EQ(scan.services[1].name, "com.example.B");
    ASSERT_EQ(scan.skipped.size(), 1u);
    EXPECT_NE(scan.skipped[0].find("already provided"), std::string::npos);
}

TEST(CommandLine, SplitsLikeTheShell) {
    EXPECT_EQ(
        split("/bin/prog -test \"that\" 'we get' back --what \"we put in\""),
        (std::vector<std::string>{"/bin/prog", "-test", "that", "we get", "back", "--what", "we put in"}));
    EXPECT_EQ(split("a\\ b \"x\\\"y\" \"\\n\" 'it''s'"),
              (std::vector<std::string>{"a b", "x\"y", "\\n", "its"}));
    EXPECT_EQ(split("  prog   # a comment"), (std::vector<std::string>{"prog"}));
    EXPECT_EQ(split("pre'fix'\"ed\""), (std::vector<std::string>{"prefixed"}));
}

TEST(CommandLine, ReportsBrokenQuoting) {
    EXPECT_NE(
        split_error("prog \"this should 'fail' because of an unterminated quote").find("matching quote"),
        std::string::npos);
    EXPECT_NE(split_error("prog 'open").find("matching quote"), std::string::npos);
    EXPECT_NE(split_error("prog \\").find("just after"), std::string::npos);
    EXPECT_EQ(split_error("   "), "Text was empty (or contained only whitespace)");
}
