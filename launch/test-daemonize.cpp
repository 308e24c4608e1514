// Daemonizing as dbus-daemon does it, seen from a caller: with --fork the address and the child's pid
// arrive only once the child is ready, their descriptors reach end-of-file while the child still runs,
// and a child that dies first makes the parent fail. Each case runs in a process of its own (the parent
// side of a fork ends its process).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "busgate/util/users.h"
#include "launch/daemonize.h"

using namespace busgate;
using namespace busgate::launch;

namespace {

class TempDirectory {
  public:
    TempDirectory()
        : path_(std::filesystem::temp_directory_path() /
                ("busgate-test-daemonize-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
        std::filesystem::create_directories(path_);
    }
    ~TempDirectory() { std::filesystem::remove_all(path_); }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

std::string contents(const std::filesystem::path& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

// Reads `fd` to end-of-file; what arrived, or "timeout" when no end-of-file came within five seconds.
std::string read_all(int fd) {
    std::string text;
    for (;;) {
        pollfd wait{.fd = fd, .events = POLLIN, .revents = 0};
        if (::poll(&wait, 1, 5000) != 1) {
            return "timeout";
        }
        char chunk[256];
        const ssize_t got = ::read(fd, chunk, sizeof(chunk));
        if (got <= 0) {
            return text;
        }
        text.append(chunk, static_cast<std::size_t>(got));
    }
}

struct Pipe {
    Pipe() { EXPECT_EQ(::pipe(fds), 0); }
    ~Pipe() {
        close_read();
        close_write();
    }
    void close_read() {
        if (fds[0] >= 0) {
            ::close(fds[0]);
            fds[0] = -1;
        }
    }
    void close_write() {
        if (fds[1] >= 0) {
            ::close(fds[1]);
            fds[1] = -1;
        }
    }
    int fds[2] = {-1, -1};
};

TEST(Daemonize, ForkPrintsTheAddressAndPidOnlyOnceTheChildIsReady) {
    const TempDirectory directory;
    const std::filesystem::path marker = directory.path() / "ready-soon";
    const std::filesystem::path pidfile = directory.path() / "bus.pid";
    Pipe address, pid, release;
    const pid_t launcher = ::fork();
    ASSERT_GE(launcher, 0);
    if (launcher == 0) {
        address.close_read();
        pid.close_read();
        release.close_write();
        CommandLine command_line;
        command_line.print_address = true;
        command_line.print_address_fd = std::to_string(address.fds[1]);
        command_line.print_pid = true;
        command_line.print_pid_fd = std::to_string(pid.fds[1]);
        Daemonizer daemonizer(command_line, true, false);
        const Daemonizer::Detached detached = daemonizer.detach("unix:path=/run/test,guid=0123");
        if (!detached.serve) {
            ::_exit(10 + detached.exit_status);  // the parent whose child died
        }
        // The child: it is not ready before it has written its pidfile and waited a little.
        if (::getsid(0) != ::getpid() || write_pid_file(pidfile.string())) {
            ::_exit(20);
        }
        ::usleep(200'000);
        std::ofstream(marker) << "x";
        daemonizer.ready("ignored in the child");
        char byte;
        (void)!::read(release.fds[0], &byte, 1);  // runs on until the test has seen everything
        ::_exit(0);
    }
    address.close_write();
    pid.close_write();
    release.close_read();
    const std::string printed_address = read_all(address.fds[0]);
    EXPECT_TRUE(std::filesystem::exists(marker)) << "the address came before the child was ready";
    const std::string printed_pid = read_all(pid.fds[0]);
    EXPECT_EQ(printed_address, "unix:path=/run/test,guid=0123\n");
    EXPECT_EQ(printed_pid, contents(pidfile)) << "the printed pid is the serving child's";
    EXPECT_NE(printed_pid, std::to_string(launcher) + "\n");
    int status = 0;
    ASSERT_EQ(::waitpid(launcher, &status, 0), launcher);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    release.close_write();  // lets the child end
}

TEST(Daemonize, AChildThatDiesBeforeItIsReadyMakesTheParentFail) {
    Pipe address;
    const pid_t launcher = ::fork();
    ASSERT_GE(launcher, 0);
    if (launcher == 0) {
        address.close_read();
        CommandLine command_line;
        command_line.print_address = true;
        command_line.print_address_fd = std::to_string(address.fds[1]);
        Daemonizer daemonizer(command_line, true, false);
        const Daemonizer::Detached detached = daemonizer.detach("unix:path=/run/test");
        if (!detached.serve) {
            ::_exit(detached.error.empty() ? 10 + detached.exit_status : 30);
        }
        ::_exit(3);  // the child: dies without ready()
    }
    address.close_write();
    EXPECT_EQ(read_all(address.fds[0]), "");
    int status = 0;
    ASSERT_EQ(::waitpid(launcher, &status, 0), launcher);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 11) << "the parent returns 1";
}

TEST(Daemonize, WithoutForkReadyPrintsAddressAndOwnPid) {
    Pipe address, pid;
    CommandLine command_line;
    command_line.print_address = true;
    command_line.print_address_fd = std::to_string(address.fds[1]);
    command_line.print_pid = true;
    command_line.print_pid_fd = std::to_string(pid.fds[1]);
    Daemonizer daemonizer(command_line, false, false);
    const Daemonizer::Detached detached = daemonizer.detach("unix:path=/run/test");
    EXPECT_TRUE(detached.serve);
    daemonizer.ready("unix:path=/run/test");
    // ready() closed the descriptors it printed to: a reader gets end-of-file.
    EXPECT_EQ(::fcntl(address.fds[1], F_GETFD), -1);
    EXPECT_EQ(::fcntl(pid.fds[1], F_GETFD), -1);
    address.fds[1] = pid.fds[1] = -1;
    EXPECT_EQ(read_all(address.fds[0]), "unix:path=/run/test\n");
    EXPECT_EQ(read_all(pid.fds[0]), std::to_string(::getpid()) + "\n");
}

TEST(Daemonize, PidFile) {
    const TempDirectory directory;
    const std::filesystem::path path = directory.path() / "bus.pid";
    std::ofstream(path) << "a much longer old content that must not remain\n";
    EXPECT_EQ(write_pid_file(path.string()), std::nullopt);
    EXPECT_EQ(contents(path), std::to_string(::getpid()) + "\n");

    const std::string missing = (directory.path() / "no-such-directory" / "bus.pid").string();
    EXPECT_EQ(write_pid_file(missing),
              "Failed to write pid file \"" + missing + "\": No such file or directory");
    // A full disk shows only when the buffered write is flushed.
    if (std::filesystem::exists("/dev/full")) {
        EXPECT_EQ(write_pid_file("/dev/full"),
                  "Failed to write pid file \"/dev/full\": No space left on device");
    }
}

TEST(Daemonize, SwitchUser) {
    EXPECT_EQ(switch_user("busgate-no-such-account"),
              "Could not get UID and GID for username \"busgate-no-such-account\"");
    const auto self = util::user_by_uid(::getuid());
    ASSERT_TRUE(self);
    EXPECT_EQ(switch_user(self->name), std::nullopt);  // already that user: nothing to do
    EXPECT_EQ(::getuid(), self->uid);

    const auto nobody = util::user_by_name("nobody");
    if (::getuid() != 0 || !nobody) {
        GTEST_SKIP() << "switching to another account needs root and a nobody account";
    }
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const bool switched = !switch_user("nobody") && ::getuid() == nobody->uid &&
                              ::geteuid() == nobody->uid && ::getgid() == nobody->gid;
        // Root's supplementary groups are gone: only nobody's own remain.
        const int groups = ::getgroups(0, nullptr);
        const auto expected = util::groups_of(*nobody);
        ::_exit(switched && expected && groups == static_cast<int>(expected->size()) ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
