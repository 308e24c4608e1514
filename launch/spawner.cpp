#include "launch/spawner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "transport/fd_limit.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace busgate::launch {

std::optional<bus::ServiceSpawner::Failure> Spawner::spawn(const std::vector<std::string>& arguments,
                                                           const std::vector<std::string>& environment,
                                                           Started& started) {
    // Everything the child needs is built before the fork: between fork and exec only async-signal-safe
    // calls are allowed.
    std::vector<char*> argv;
    argv.reserve(arguments.size() + 1);
    for (const std::string& argument : arguments) {
        argv.push_back(const_cast<char*>(argument.c_str()));
    }
    argv.push_back(nullptr);
    std::vector<char*> envp;
    envp.reserve(environment.size() + 1);
    for (const std::string& entry : environment) {
        envp.push_back(const_cast<char*>(entry.c_str()));
    }
    envp.push_back(nullptr);

    // Every descriptor of the bus is close-on-exec; the write end of this pipe too, so a successful exec
    // closes it and the read below sees end-of-file.
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) {
        return Failure{Failure::Stage::pipe, errno};
    }
    util::UniqueFd report_read(report[0]);
    util::UniqueFd report_write(report[1]);
    const pid_t pid = ::fork();
    if (pid < 0) {
        return Failure{Failure::Stage::fork, errno};
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int signal = 1; signal < NSIG; ++signal) {
            ::signal(signal, SIG_DFL);
        }
        transport::restore_descriptor_limit_for_child();
        const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0) {
            ::dup2(null, STDIN_FILENO);
        }
        ::execve(argv[0], argv.data(), envp.data());
        const int failure = errno;
        (void)!::write(report_write.get(), &failure, sizeof(failure));
        ::_exit(127);
    }
    report_write.reset();
    int failure = 0;
    ssize_t got;
    do {
        got = ::read(report_read.get(), &failure, sizeof(failure));
    } while (got < 0 && errno == EINTR);
    if (got == static_cast<ssize_t>(sizeof(failure))) {
        int status = 0;
        (void)::waitpid(pid, &status, 0);
        return Failure{Failure::Stage::exec, failure};
    }
    started.pid = pid;
    started.exit_fd = util::UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    return std::nullopt;
}

std::optional<bus::ServiceSpawner::Exit> Spawner::reap(const util::UniqueFd& exit_fd) {
    siginfo_t info{};
    if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(exit_fd.get()), &info,
                 WEXITED | WNOHANG) != 0 ||
        info.si_pid == 0) {
        return std::nullopt;
    }
    return Exit{.signaled = info.si_code != CLD_EXITED, .status = info.si_status};
}

void Spawner::terminate(pid_t pid) {
    ::kill(pid, SIGTERM);
}

}  // namespace busgate::launch
