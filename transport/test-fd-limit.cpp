#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/fd_limit.h"

using namespace busgate;
using namespace busgate::transport;

namespace {

ConnectionBudget dbus_daemon_defaults() {
    return {.max_completed_connections = 2048, .max_incomplete_connections = 64};
}

}  // namespace

TEST(FdLimit, DefaultsFitTheDescriptorsTheBusHas) {
    ConnectionBudget limits = dbus_daemon_defaults();
    EXPECT_TRUE(fit_connection_limits(1024, limits).empty());
    EXPECT_EQ(connections_allowed(1024), 1024 - reserved_descriptors);
    EXPECT_LE(limits.max_completed_connections + limits.max_incomplete_connections,
              connections_allowed(1024));
    EXPECT_EQ(limits.max_incomplete_connections, connections_allowed(1024) / 16);
    EXPECT_EQ(limits.max_completed_connections, connections_allowed(1024) - connections_allowed(1024) / 16);
}

TEST(FdLimit, EnoughDescriptorsChangeNothing) {
    ConnectionBudget limits = dbus_daemon_defaults();
    EXPECT_TRUE(fit_connection_limits(65536, limits).empty());
    EXPECT_EQ(limits.max_completed_connections, 2048u);
    EXPECT_EQ(limits.max_incomplete_connections, 64u);
}

TEST(FdLimit, AConfiguredLimitWinsAndIsWarnedAbout) {
    // session.conf's "essentially infinite" limits under a hard limit of 20000.
    ConnectionBudget limits{.max_completed_connections = 100000,
                            .max_incomplete_connections = 10000,
                            .completed_configured = true,
                            .incomplete_configured = true};
    const auto warnings = fit_connection_limits(20000, limits);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("max_completed_connections 100000"), std::string::npos) << warnings[0];
    EXPECT_NE(warnings[0].find("(19936 connections)"), std::string::npos) << warnings[0];
    EXPECT_EQ(limits.max_completed_connections, 100000u);
    EXPECT_EQ(limits.max_incomplete_connections, 10000u);
}

TEST(FdLimit, TheDefaultBesideAConfiguredLimitTakesWhatIsLeft) {
    ConnectionBudget completed_set{
        .max_completed_connections = 900, .max_incomplete_connections = 64, .completed_configured = true};
    EXPECT_TRUE(fit_connection_limits(1024, completed_set).empty());
    EXPECT_EQ(completed_set.max_completed_connections, 900u);
    EXPECT_EQ(completed_set.max_incomplete_connections, 60u);  // a sixteenth of 960, and 60 are left

    ConnectionBudget incomplete_set{
        .max_completed_connections = 2048, .max_incomplete_connections = 200, .incomplete_configured = true};
    EXPECT_TRUE(fit_connection_limits(1024, incomplete_set).empty());
    EXPECT_EQ(incomplete_set.max_incomplete_connections, 200u);
    EXPECT_EQ(incomplete_set.max_completed_connections, 760u);
}

TEST(FdLimit, TinyLimitsStillLeaveAConnection) {
    ConnectionBudget limits = dbus_daemon_defaults();
    EXPECT_TRUE(fit_connection_limits(10, limits).empty());
    EXPECT_GE(limits.max_completed_connections, 1u);
    EXPECT_GE(limits.max_incomplete_connections, 1u);
}

// In a child, so the test process keeps its own limit.
TEST(FdLimit, RaisesTheSoftLimitToTheHardOneOrFurther) {
    rlimit original{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
    if (original.rlim_max != RLIM_INFINITY && original.rlim_max < 64) {
        GTEST_SKIP() << "hard limit too low to lower the soft one";
    }
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const rlimit low{32, original.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &low) != 0) {
            ::_exit(10);
        }
        // Whether this process may raise its hard limit (CAP_SYS_RESOURCE), found by trying; lowering it
        // back needs no privilege.
        bool privileged = false;
        if (original.rlim_max != RLIM_INFINITY) {
            const rlimit probe{32, original.rlim_max + 1};
            privileged = ::setrlimit(RLIMIT_NOFILE, &probe) == 0;
            ::setrlimit(RLIMIT_NOFILE, &low);
        }
        const DescriptorLimit raised = raise_descriptor_limit();
        rlimit now{};
        ::getrlimit(RLIMIT_NOFILE, &now);
        if (raised.soft_before != 32 || raised.soft != now.rlim_cur || now.rlim_cur != now.rlim_max) {
            ::_exit(11);
        }
        // Unprivileged: the soft limit reached the hard one. Root: the hard one reached 65536 too.
        if (original.rlim_max != RLIM_INFINITY && now.rlim_max < original.rlim_max) {
            ::_exit(12);
        }
        if (privileged && original.rlim_max < wanted_descriptors && now.rlim_max < wanted_descriptors) {
            ::_exit(13);
        }
        // A service started by the bus gets the soft limit the bus started with.
        restore_descriptor_limit_for_child();
        ::getrlimit(RLIMIT_NOFILE, &now);
        ::_exit(now.rlim_cur == 32 ? 0 : 14);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}
