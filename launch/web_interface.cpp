#include "launch/web_interface.h"

#include <cstdio>

#include "bus/bus_daemon.h"

namespace busgate::launch {

std::unique_ptr<web::WebServer> start_web_interface(const CommandLine& command_line, bus::BusDaemon& daemon,
                                                    std::string& error) {
    auto hub = std::make_shared<web::WebHub>();
    web::WebOptions options{.address = command_line.web,
                            .token_file = command_line.web_token_file,
                            .data_directory = command_line.web_data_dir};
    options.snapshot = [&daemon] { return daemon.snapshot(); };
    options.policy_check = [&daemon](const bus::PolicyCheckRequest& request) {
        return daemon.check_policy(request);
    };
    auto web = std::make_unique<web::WebServer>(std::move(options), hub);
    if (!web->start(error)) {
        return nullptr;
    }
    daemon.attach_observer(std::move(hub));
    std::fprintf(stderr, "busgate: web interface on %s\n", web->url().c_str());
    return web;
}

}  // namespace busgate::launch
