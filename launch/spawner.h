// The spawner of activated services: fork and exec, as dbus-daemon's _dbus_spawn_async_with_babysitter
// does it from the outside (the exec error comes back through a close-on-exec pipe, so a missing program
// fails the start at once), with a pidfd for each child so the bus's event loop learns of its exit.
#pragma once

#include "bus/service_spawner.h"

namespace busgate::launch {

class Spawner final : public bus::ServiceSpawner {
  public:
    std::optional<Failure> spawn(const std::vector<std::string>& arguments,
                                 const std::vector<std::string>& environment, Started& started) override;
    std::optional<Exit> reap(const util::UniqueFd& exit_fd) override;
    void terminate(pid_t pid) override;
};

}  // namespace busgate::launch
