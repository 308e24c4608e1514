#include "launch/descriptor_budget.h"

#include <cstddef>
#include <cstdio>

#include "bus/bus_daemon.h"
#include "busgate/policy/configuration.h"
#include "transport/fd_limit.h"

namespace busgate::launch {

void budget_descriptors(bus::DaemonOptions& options, const policy::Limits& configured) {
    const transport::DescriptorLimit limit = transport::raise_descriptor_limit();
    if (!limit.problem.empty()) {
        std::fprintf(stderr, "busgate: %s\n", limit.problem.c_str());
    }
    if (limit.soft == 0) {
        return;
    }
    const policy::Limits defaults;
    transport::ConnectionBudget connections{
        .max_completed_connections = options.max_completed_connections,
        .max_incomplete_connections = options.max_incomplete_connections,
        .completed_configured = configured.max_completed_connections != defaults.max_completed_connections,
        .incomplete_configured = configured.max_incomplete_connections != defaults.max_incomplete_connections,
    };
    for (const std::string& warning : transport::fit_connection_limits(limit.soft, connections)) {
        std::fprintf(stderr, "busgate: %s\n", warning.c_str());
    }
    if (connections.max_completed_connections != options.max_completed_connections ||
        connections.max_incomplete_connections != options.max_incomplete_connections) {
        std::fprintf(stderr,
                     "busgate: the file descriptor limit %llu (hard limit %llu) allows %llu connections: "
                     "max_completed_connections lowered to %llu, max_incomplete_connections to %llu\n",
                     static_cast<unsigned long long>(limit.soft), static_cast<unsigned long long>(limit.hard),
                     static_cast<unsigned long long>(transport::connections_allowed(limit.soft)),
                     static_cast<unsigned long long>(connections.max_completed_connections),
                     static_cast<unsigned long long>(connections.max_incomplete_connections));
    }
    options.max_completed_connections = static_cast<std::size_t>(connections.max_completed_connections);
    options.max_incomplete_connections = static_cast<std::size_t>(connections.max_incomplete_connections);
}

}  // namespace busgate::launch
