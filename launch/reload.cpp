#include "launch/reload.h"

#include <cstdio>

#include "bus/bus_daemon.h"
#include "bus/endpoints.h"

namespace busgate::launch {

std::optional<std::string> ConfigurationReload::run() {
    policy::Configuration candidate = configuration_;
    if (auto failure = policy::reload_configuration(candidate, config_file_)) {
        std::fprintf(stderr, "busgate: Unable to reload configuration: %s\n", failure->describe().c_str());
        return failure->describe();
    }
    // The endpoints are checked here too: the daemon would otherwise find a bad one only after the
    // policy had changed.
    for (const policy::EndpointConfig& endpoint : candidate.endpoints) {
        std::string problem;
        if (!bus::endpoint_spec_of(endpoint, problem)) {
            std::fprintf(stderr, "busgate: Unable to reload configuration: %s\n", problem.c_str());
            return problem;
        }
    }
    // The core must take the compiled policy before anything changes: a refusal keeps the old one.
    if (daemon_ != nullptr) {
        if (auto problem = daemon_->apply_policy(candidate.policy)) {
            std::fprintf(stderr, "busgate: Unable to reload configuration: %s\n", problem->c_str());
            return problem;
        }
    }
    configuration_ = std::move(candidate);
    if (daemon_ != nullptr) {
        daemon_->reload_services(configuration_.servicedirs);
        if (auto problem = daemon_->configure_endpoints(configuration_.endpoints)) {
            std::fprintf(stderr, "busgate: %s\n", problem->c_str());
            return problem;
        }
    }
    return std::nullopt;
}

}  // namespace busgate::launch
