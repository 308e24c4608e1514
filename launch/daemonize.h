// What the process does around listening, as dbus-daemon does it: with --fork (or <fork/>) the parent
// returns only once the child serves, printing the address and the child's pid as asked, so that a caller
// can connect at once; the pidfile; the switch to <user>.
#pragma once

#include <optional>
#include <string>

#include "busgate/util/unique_fd.h"
#include "launch/command_line.h"

namespace busgate::launch {

// First thing in main: the heap tuned for the bus's large messages, and descriptors 0, 1 and 2 open (on
// /dev/null where the caller closed them), so that no socket of the bus becomes one of them.
void prepare_process();

// Writes `text` and a newline to the descriptor --print-address=FD or --print-pid=FD names (standard output
// when empty) and closes it unless it is stdout or stderr: the reader waits for end-of-file.
void print_to(const std::string& descriptor, const std::string& text);

class Daemonizer {
  public:
    struct Detached {
        bool serve = true;    // this process goes on to be the bus
        int exit_status = 0;  // otherwise main returns this
        std::string error;    // why the fork could not be made (serve is false then)
    };

    // `fork`: --fork, or <fork/> without --nofork. `keep_umask`: <keep_umask/>.
    Daemonizer(const CommandLine& command_line, bool fork, bool keep_umask)
        : command_line_(command_line), fork_(fork), keep_umask_(keep_umask) {}

    // Call once the bus listens. Without fork: nothing happens. With fork the parent waits for the child's
    // ready(), prints the address and the child's pid, and ends the process with status 0 without returning;
    // if the child ends first it returns {serve: false, exit_status: 1}. The child leaves the caller's
    // session and terminal: a new session, `/` as working directory, stdin (and stdout and stderr unless
    // DBUS_DEBUG_OUTPUT is set) on /dev/null, umask 022 unless kept.
    Detached detach(const std::string& address);
    // The bus serves: tells the waiting parent, or prints the address and pid itself.
    void ready(const std::string& address);

  private:
    const CommandLine& command_line_;
    bool fork_;
    bool keep_umask_;
    util::UniqueFd ready_;  // the child's end of the pipe the parent waits on
};

// <pidfile>: this process's pid and a newline; the reason when it cannot be written, as dbus-daemon says it.
std::optional<std::string> write_pid_file(const std::string& path);

// <user>: a bus started as root drops to this account (its groups too) once it listens. The reason when
// the account is unknown or the switch fails.
std::optional<std::string> switch_user(const std::string& user);

}  // namespace busgate::launch
