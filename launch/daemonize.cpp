#include "launch/daemonize.h"

#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "busgate/util/users.h"

namespace busgate::launch {

void prepare_process() {
    // Large messages (up to 16 MiB) come from the heap and freed memory stays for the next one: with
    // glibc's defaults each 1 MiB message buffer was a fresh mmap, and page faults took a quarter of the
    // bus's time in make bench's 1 MiB workload.
    ::mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
    ::mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    for (int fd = 0; fd < 3; ++fd) {
        if (::fcntl(fd, F_GETFD) < 0) {
            ::open("/dev/null", O_RDWR);
        }
    }
}

void print_to(const std::string& descriptor, const std::string& text) {
    const int fd = descriptor.empty() ? STDOUT_FILENO : parse_descriptor(descriptor);
    const std::string line = text + "\n";
    (void)!::write(fd, line.data(), line.size());
    if (fd != STDOUT_FILENO && fd != STDERR_FILENO) {
        ::close(fd);  // the reader sees end-of-file, as with dbus-daemon
    }
}

Daemonizer::Detached Daemonizer::detach(const std::string& address) {
    if (!fork_) {
        return {};
    }
    int ready_pipe[2] = {-1, -1};
    if (::pipe2(ready_pipe, O_CLOEXEC) != 0) {
        return {.serve = false, .exit_status = 1, .error = "cannot create a pipe"};
    }
    util::UniqueFd wait_end(ready_pipe[0]);
    ready_ = util::UniqueFd(ready_pipe[1]);
    const pid_t child = ::fork();
    if (child < 0) {
        return {
            .serve = false, .exit_status = 1, .error = std::string("fork failed: ") + std::strerror(errno)};
    }
    if (child > 0) {
        ready_.reset();
        char ready = 0;
        if (::read(wait_end.get(), &ready, 1) != 1) {
            return {.serve = false, .exit_status = 1};
        }
        if (command_line_.print_address) {
            print_to(command_line_.print_address_fd, address);
        }
        if (command_line_.print_pid) {
            print_to(command_line_.print_pid_fd, std::to_string(child));
        }
        std::_Exit(0);
    }
    wait_end.reset();
    // The parent prints the address and pid; a reader waiting for end-of-file on those descriptors
    // (dbus-launch, libdbus's X11 autolaunch) must not wait for the daemon to exit.
    for (const std::string* descriptor : {&command_line_.print_address_fd, &command_line_.print_pid_fd}) {
        if (const int fd = descriptor->empty() ? -1 : parse_descriptor(*descriptor); fd > STDERR_FILENO) {
            ::close(fd);
        }
    }
    ::setsid();
    if (!keep_umask_) {
        ::umask(022);
    }
    (void)!::chdir("/");
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, STDIN_FILENO);
    if (!std::getenv("DBUS_DEBUG_OUTPUT")) {
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
    }
    ::close(null);
    return {};
}

void Daemonizer::ready(const std::string& address) {
    if (fork_) {
        (void)!::write(ready_.get(), "1", 1);
        ready_.reset();
        return;
    }
    if (command_line_.print_address) {
        print_to(command_line_.print_address_fd, address);
    }
    if (command_line_.print_pid) {
        print_to(command_line_.print_pid_fd, std::to_string(::getpid()));
    }
}

std::optional<std::string> write_pid_file(const std::string& path) {
    std::ofstream pidfile(path, std::ios::trunc);
    // The write is buffered: a full disk (ENOSPC) only shows at the flush.
    if (!(pidfile << ::getpid() << '\n') || !pidfile.flush()) {
        return "Failed to write pid file \"" + path + "\": " + std::strerror(errno);
    }
    return std::nullopt;
}

std::optional<std::string> switch_user(const std::string& user) {
    const auto account = util::user_by_name(user);
    if (!account) {
        return "Could not get UID and GID for username \"" + user + "\"";
    }
    if (::getuid() == account->uid) {
        return std::nullopt;
    }
    if (::initgroups(account->name.c_str(), account->gid) != 0 || ::setgid(account->gid) != 0 ||
        ::setuid(account->uid) != 0) {
        return "Failed to drop privileges to user \"" + user + "\": " + std::strerror(errno);
    }
    return std::nullopt;
}

}  // namespace busgate::launch
