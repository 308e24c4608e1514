// The daemon's options from the configuration and the command line: dbus-daemon's limits translated into
// the bus's and the core's (the core enforces some of them too, so they must be the configured ones).
#pragma once

#include "busgate/policy/configuration.h"
#include "launch/command_line.h"

namespace busgate::bus {
struct DaemonOptions;
}

namespace busgate::launch {

bus::DaemonOptions daemon_options(const policy::Configuration& configuration,
                                  const CommandLine& command_line);

}  // namespace busgate::launch
