// The configuration reload keeps what is in force whenever the new file has any problem, and takes the
// new file whole when it has none.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "bus/bus_daemon.h"
#include "launch/reload.h"
#include "transport/event_loop.h"

using namespace busgate;
using namespace busgate::launch;

namespace {

class ReloadTest : public ::testing::Test {
  protected:
    void SetUp() override {
        directory_ = std::filesystem::temp_directory_path() /
                     ("busgate-test-reload-" + std::to_string(::getpid()) + "-" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(directory_);
        path_ = (directory_ / "bus.conf").string();
    }
    void TearDown() override { std::filesystem::remove_all(directory_); }

    void write(const std::string& body) {
        std::ofstream(path_, std::ios::trunc) << "<busconfig>\n" << body << "</busconfig>\n";
    }
    static std::string with_servicedir(const std::string& name) {
        return "<listen>unix:path=/tmp/busgate-test-reload</listen>\n<servicedir>/srv/" + name +
               "</servicedir>\n<policy context=\"default\"><allow own=\"org.example." + name +
               "\"/></policy>\n";
    }

    std::filesystem::path directory_;
    std::string path_;
};

TEST_F(ReloadTest, ABrokenFileLeavesTheConfigurationInForce) {
    write(with_servicedir("First"));
    policy::Configuration configuration = policy::load_configuration(path_);
    const policy::Configuration before = configuration;
    ConfigurationReload reload(configuration, path_);

    write(with_servicedir("Second") + "<policy context=\"default\">");  // not well-formed
    const auto problem = reload.run();
    ASSERT_TRUE(problem);
    EXPECT_NE(problem->find(path_), std::string::npos) << *problem;
    EXPECT_EQ(configuration, before);

    write(with_servicedir("Second") + "<limit name=\"bogus\">1</limit>\n");  // well-formed, invalid
    ASSERT_TRUE(reload.run());
    EXPECT_EQ(configuration, before);
}

TEST_F(ReloadTest, ABadEndpointLeavesTheConfigurationInForce) {
    write(with_servicedir("First"));
    policy::Configuration configuration = policy::load_configuration(path_);
    const policy::Configuration before = configuration;
    ConfigurationReload reload(configuration, path_);

    // The parser accepts any text as a rule; only the bus's endpoint rules find it wrong.
    write(with_servicedir("Second") +
          "<endpoint name=\"box\" type=\"flatpak\"><call rule=\"-not-a-name-\"/></endpoint>\n");
    const auto problem = reload.run();
    ASSERT_TRUE(problem);
    EXPECT_NE(problem->find("<endpoint name=\"box\">"), std::string::npos) << *problem;
    EXPECT_EQ(configuration, before);
}

TEST_F(ReloadTest, AGoodFileReplacesTheConfiguration) {
    write(with_servicedir("First"));
    policy::Configuration configuration = policy::load_configuration(path_);
    ConfigurationReload reload(configuration, path_);

    write(with_servicedir("Second"));
    EXPECT_EQ(reload.run(), std::nullopt);
    ASSERT_EQ(configuration.servicedirs.size(), 1u);
    EXPECT_EQ(configuration.servicedirs[0].path, "/srv/Second");
    EXPECT_EQ(configuration, policy::load_configuration(path_));
}

// With a daemon attached the new policy reaches it only from a good file.
TEST_F(ReloadTest, TheDaemonGetsTheNewPolicyOnlyFromAGoodFile) {
    const std::string denying =
        "<listen>unix:path=/tmp/busgate-test-reload</listen>\n"
        "<policy context=\"default\"><allow send_destination=\"*\"/>"
        "<deny send_interface=\"org.example.Probe\"/></policy>\n";
    const std::string allowing =
        "<listen>unix:path=/tmp/busgate-test-reload</listen>\n"
        "<policy context=\"default\"><allow send_destination=\"*\"/></policy>\n";
    write(denying);
    policy::Configuration configuration = policy::load_configuration(path_);
    ConfigurationReload reload(configuration, path_);
    transport::EventLoop loop;
    bus::DaemonOptions options;
    options.policy = configuration.policy;
    bus::BusDaemon daemon(loop, std::move(options));
    reload.attach(&daemon);
    const auto probe_allowed = [&daemon] {
        bus::PolicyCheckRequest request{.uid = 4242,
                                        .destination = "org.freedesktop.DBus",
                                        .path = "/",
                                        .interface = "org.example.Probe",
                                        .member = "Call"};
        const bus::PolicyCheckResult result = daemon.check_policy(request);
        EXPECT_EQ(result.error, "");
        return result.allowed;
    };
    ASSERT_FALSE(probe_allowed());

    write(allowing + "<policy context=\"default\">");  // not well-formed
    ASSERT_TRUE(reload.run());
    EXPECT_FALSE(probe_allowed()) << "a broken file changed the policy in force";

    write(allowing);
    ASSERT_EQ(reload.run(), std::nullopt);
    EXPECT_TRUE(probe_allowed());
}

}  // namespace
