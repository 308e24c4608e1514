// The spawner as activation uses it: the program runs with exactly the given environment, its exit comes
// through the exit descriptor on the event loop, and a program that cannot be executed fails the spawn
// itself with exec's errno (activation turns ENOENT into dbus-daemon's "Failed to execute program NAME:
// No such file or directory").
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "busgate/util/clock.h"
#include "launch/spawner.h"
#include "transport/event_loop.h"
#include "transport/fd_limit.h"

using namespace busgate;
using namespace busgate::launch;

namespace {

using Exit = bus::ServiceSpawner::Exit;

// Spawns `arguments` and waits on an event loop, as the bus does, until the exit descriptor says how the
// program ended.
std::optional<Exit> run(const std::vector<std::string>& arguments,
                        const std::vector<std::string>& environment = {}) {
    Spawner spawner;
    bus::ServiceSpawner::Started started;
    if (const auto failure = spawner.spawn(arguments, environment, started)) {
        ADD_FAILURE() << "spawn failed: " << std::strerror(failure->error);
        return std::nullopt;
    }
    EXPECT_GT(started.pid, 0);
    if (!started.exit_fd) {
        ADD_FAILURE() << "no pidfd";
        return std::nullopt;
    }
    transport::EventLoop loop;
    std::optional<Exit> exit;
    loop.add(started.exit_fd.get(), EPOLLIN, [&](std::uint32_t) {
        exit = spawner.reap(started.exit_fd);
        if (exit) {
            loop.quit();
        }
    });
    loop.set_timer(util::monotonic_ns() + 10'000'000'000, [&] { loop.quit(); });
    loop.run();
    loop.remove(started.exit_fd.get());
    return exit;
}

TEST(Spawner, ExitStatusesComeThroughTheExitDescriptor) {
    const auto success = run({"/bin/true"});
    ASSERT_TRUE(success);
    EXPECT_FALSE(success->signaled);
    EXPECT_EQ(success->status, 0);

    const auto three = run({"/bin/sh", "-c", "exit 3"});
    ASSERT_TRUE(three);
    EXPECT_FALSE(three->signaled);
    EXPECT_EQ(three->status, 3);

    const auto killed = run({"/bin/sh", "-c", "kill -KILL $$"});
    ASSERT_TRUE(killed);
    EXPECT_TRUE(killed->signaled);
    EXPECT_EQ(killed->status, SIGKILL);
}

TEST(Spawner, ReapIsNothingWhileTheProgramRuns) {
    Spawner spawner;
    bus::ServiceSpawner::Started started;
    ASSERT_FALSE(spawner.spawn({"/bin/sleep", "30"}, {}, started));
    ASSERT_TRUE(started.exit_fd);
    EXPECT_FALSE(spawner.reap(started.exit_fd));
    spawner.terminate(started.pid);
    transport::EventLoop loop;
    std::optional<Exit> exit;
    loop.add(started.exit_fd.get(), EPOLLIN, [&](std::uint32_t) {
        if ((exit = spawner.reap(started.exit_fd))) {
            loop.quit();
        }
    });
    loop.set_timer(util::monotonic_ns() + 10'000'000'000, [&] { loop.quit(); });
    loop.run();
    ASSERT_TRUE(exit);
    EXPECT_TRUE(exit->signaled);
    EXPECT_EQ(exit->status, SIGTERM);
}

TEST(Spawner, AMissingProgramFailsTheSpawnWithExecsError) {
    Spawner spawner;
    bus::ServiceSpawner::Started started;
    const auto failure = spawner.spawn({"/nonexistent/busgate-no-such-program"}, {}, started);
    ASSERT_TRUE(failure);
    EXPECT_EQ(failure->stage, bus::ServiceSpawner::Failure::Stage::exec);
    EXPECT_EQ(failure->error, ENOENT);
    EXPECT_STREQ(std::strerror(failure->error), "No such file or directory");
    EXPECT_EQ(started.pid, 0);

    const auto not_executable = spawner.spawn({"/etc/passwd"}, {}, started);
    ASSERT_TRUE(not_executable);
    EXPECT_EQ(not_executable->stage, bus::ServiceSpawner::Failure::Stage::exec);
    EXPECT_EQ(not_executable->error, EACCES);
}

TEST(Spawner, TheProgramGetsExactlyTheGivenEnvironment) {
    ::setenv("BUSGATE_TEST_PARENT_ONLY", "1", 1);
    const auto exit = run({"/bin/sh", "-c",
                           "test \"$BUSGATE_TEST\" = 'a b' && test -z \"${BUSGATE_TEST_PARENT_ONLY+set}\" && "
                           "test -z \"${HOME+set}\""},
                          {"BUSGATE_TEST=a b"});
    ::unsetenv("BUSGATE_TEST_PARENT_ONLY");
    ASSERT_TRUE(exit);
    EXPECT_EQ(exit->status, 0);
}

TEST(Spawner, StdinIsDevNullAndCloseOnExecDescriptorsAreGone) {
    const int kept = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(kept, 0);
    const auto exit = run({"/bin/sh", "-c",
                           "test \"$(readlink /proc/self/fd/0)\" = /dev/null && test ! -e /proc/$$/fd/" +
                               std::to_string(kept)});
    ::close(kept);
    ASSERT_TRUE(exit);
    EXPECT_EQ(exit->status, 0);
}

TEST(Spawner, TheBussSignalMaskAndIgnoredSignalsDoNotReachTheProgram) {
    // The bus blocks SIGTERM, SIGINT and SIGHUP for its signalfd and ignores SIGPIPE; both would be
    // inherited across exec.
    sigset_t blocked, before;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    ASSERT_EQ(::sigprocmask(SIG_BLOCK, &blocked, &before), 0);
    const auto old_handler = std::signal(SIGHUP, SIG_IGN);
    const auto terminated = run({"/bin/sh", "-c", "kill -TERM $$; exit 0"});
    const auto hung_up = run({"/bin/sh", "-c", "kill -HUP $$; exit 0"});
    std::signal(SIGHUP, old_handler);
    ::sigprocmask(SIG_SETMASK, &before, nullptr);
    ASSERT_TRUE(terminated);
    EXPECT_TRUE(terminated->signaled);
    EXPECT_EQ(terminated->status, SIGTERM);
    ASSERT_TRUE(hung_up);
    EXPECT_TRUE(hung_up->signaled);
    EXPECT_EQ(hung_up->status, SIGHUP);
}

TEST(Spawner, TheProgramGetsTheDescriptorLimitTheBusStartedWith) {
    // The bus raises its soft limit at start; start this process low enough that there is room to.
    rlimit original{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
    if (original.rlim_max <= 512) {
        GTEST_SKIP() << "a hard descriptor limit of " << original.rlim_max << " leaves no room to raise";
    }
    const rlimit low{512, original.rlim_max};
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    const transport::DescriptorLimit limit = transport::raise_descriptor_limit();
    ASSERT_EQ(limit.soft_before, 512u);
    ASSERT_GT(limit.soft, 512u);
    const auto exit = run({"/bin/sh", "-c", "test \"$(ulimit -Sn)\" = 512"}, {});
    ::setrlimit(RLIMIT_NOFILE, &original);
    ASSERT_TRUE(exit);
    EXPECT_EQ(exit->status, 0) << "the bus raised its soft limit from 512 to " << limit.soft;
}

}  // namespace
