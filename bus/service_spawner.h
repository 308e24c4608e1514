// What activation needs from the process it runs in: starting a service's program and learning how it
// ended, and hearing when a service directory changes. bus/ decides what to start and what an outcome
// means for the messages waiting; launch/ (spawner.h, directory_watcher.h) does the process and file
// system work. A daemon without them (tests of routing alone) fails every start with Spawn.ForkFailed and
// sees new service files only when it rereads its directories.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "busgate/util/unique_fd.h"

namespace busgate::bus {

class ServiceSpawner {
  public:
    struct Started {
        pid_t pid = 0;
        // Readable once the process has ended (a pidfd); invalid on a kernel without pidfds, where only
        // the start timeout ends an activation whose service never comes.
        util::UniqueFd exit_fd;
    };
    struct Failure {
        enum class Stage { pipe, fork, exec } stage;
        int error;  // errno of the failed pipe, fork or exec
    };
    struct Exit {
        bool signaled = false;  // killed by signal `status`, else exited with `status`
        int status = 0;
    };

    virtual ~ServiceSpawner() = default;

    // Runs `arguments` (the program's path first) with exactly `environment` ("NAME=value"), stdin on
    // /dev/null, the signal mask and dispositions cleared and the descriptor limit the bus started with. An
    // exec that fails is reported here, not as an exit.
    virtual std::optional<Failure> spawn(const std::vector<std::string>& arguments,
                                         const std::vector<std::string>& environment, Started& started) = 0;
    // The process behind a readable exit_fd: how it ended, reaped; nullopt while it still runs.
    virtual std::optional<Exit> reap(const util::UniqueFd& exit_fd) = 0;
    // Asks a started process to stop (a start that timed out or failed otherwise).
    virtual void terminate(pid_t pid) = 0;
};

class DirectoryWatcher {
  public:
    virtual ~DirectoryWatcher() = default;

    // Replaces what was watched: `on_change` runs (on the bus's event loop) whenever a file is written,
    // created, removed or renamed in one of `directories`, or one of them goes away. False when none of
    // them could be watched (none exists yet, or no watch could be made).
    virtual bool watch(const std::vector<std::string>& directories, std::function<void()> on_change) = 0;
    // Stops watching.
    virtual void clear() = 0;
};

}  // namespace busgate::bus
