// The configuration reload (SIGHUP and ReloadConfig), as dbus-daemon does it: the file is read and every
// part of it checked before anything changes, so a broken file leaves the configuration in force as it
// was and the caller gets the reason. Listen addresses and limits stay as they were at start; the policy,
// the service directories and the endpoints take the new values.
#pragma once

#include <optional>
#include <string>

#include "busgate/policy/configuration.h"

namespace busgate::bus {
class BusDaemon;
}

namespace busgate::launch {

class ConfigurationReload {
  public:
    // `configuration` is the one in force; it must outlive this object.
    ConfigurationReload(policy::Configuration& configuration, std::string config_file)
        : configuration_(configuration), config_file_(std::move(config_file)) {}

    // The daemon that applies a new configuration. Before there is one a reload only replaces the
    // configuration.
    void attach(bus::BusDaemon* daemon) { daemon_ = daemon; }

    // Rereads the file; the problem (also said on stderr) when the configuration in force stays.
    std::optional<std::string> run();

  private:
    policy::Configuration& configuration_;
    std::string config_file_;
    bus::BusDaemon* daemon_ = nullptr;
};

}  // namespace busgate::launch
