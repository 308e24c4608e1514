// --web: the HTTP interface, wired to the daemon through its read-only view and its observer interface.
#pragma once

#include <memory>
#include <string>

#include "launch/command_line.h"
#include "web/web_server.h"

namespace busgate::bus {
class BusDaemon;
}

namespace busgate::launch {

// Starts the interface --web names and attaches it to `daemon`; null with `error` if it cannot listen.
std::unique_ptr<web::WebServer> start_web_interface(const CommandLine& command_line, bus::BusDaemon& daemon,
                                                    std::string& error);

}  // namespace busgate::launch
