#include "transport/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace busgate::transport {
namespace {

// Written once at start, before any child exists; read by children between fork and exec.
rlimit started_with{RLIM_INFINITY, RLIM_INFINITY};
bool raised = false;

std::uint64_t as_count(rlim_t value) {
    return value == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(value);
}

// The kernel's ceiling for any process's hard limit (fs.nr_open); setrlimit above it fails with EPERM.
rlim_t kernel_ceiling() {
    std::ifstream file("/proc/sys/fs/nr_open");
    unsigned long long value = 0;
    if (file >> value && value > 0) {
        return static_cast<rlim_t>(value);
    }
    return RLIM_INFINITY;
}

}  // namespace

DescriptorLimit raise_descriptor_limit() {
    DescriptorLimit result;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        result.problem = std::string("cannot read the file descriptor limit: ") + std::strerror(errno);
        return result;
    }
    started_with = limit;
    result.soft_before = as_count(limit.rlim_cur);
    result.hard_before = as_count(limit.rlim_max);

    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted_descriptors) {
        // Only a privileged process may raise its hard limit; for others EPERM is the expected answer
        // and the soft limit still goes up to the hard one below.
        const rlim_t target = std::min<rlim_t>(wanted_descriptors, kernel_ceiling());
        if (target > limit.rlim_max) {
            const rlimit wanted{target, target};
            if (::setrlimit(RLIMIT_NOFILE, &wanted) == 0) {
                limit = wanted;
            } else if (errno != EPERM) {
                result.problem = "cannot raise the file descriptor limit to " + std::to_string(target) +
                                 ": " + std::strerror(errno);
            }
        }
    }
    if (limit.rlim_cur != limit.rlim_max) {
        const rlimit wanted{limit.rlim_max, limit.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &wanted) == 0) {
            limit = wanted;
        } else {
            result.problem = "cannot raise the soft file descriptor limit to the hard limit " +
                             std::to_string(as_count(limit.rlim_max)) + ": " + std::strerror(errno);
        }
    }
    raised = limit.rlim_cur != started_with.rlim_cur || limit.rlim_max != started_with.rlim_max;
    result.soft = as_count(limit.rlim_cur);
    result.hard = as_count(limit.rlim_max);
    return result;
}

void restore_descriptor_limit_for_child() {
    if (!raised) {
        return;
    }
    // The hard limit stays raised: lowering it is permanent, and the service may want the room.
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = std::min(started_with.rlim_cur, limit.rlim_max);
        (void)::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

std::uint64_t connections_allowed(std::uint64_t descriptors) {
    return descriptors > reserved_descriptors
               ? (descriptors - reserved_descriptors) / descriptors_per_connection
               : 0;
}

std::vector<std::string> fit_connection_limits(std::uint64_t descriptors, ConnectionBudget& limits) {
    std::vector<std::string> warnings;
    const std::uint64_t allowed = std::max<std::uint64_t>(connections_allowed(descriptors), 2);
    const auto total = [&] { return limits.max_completed_connections + limits.max_incomplete_connections; };
    if (total() <= allowed) {
        return warnings;
    }
    // Clients that have not finished authenticating get a sixteenth of the room at most (dbus-daemon's
    // defaults give them a thirty-second), so a flood of them cannot crowd out real clients.
    if (!limits.incomplete_configured) {
        limits.max_incomplete_connections =
            std::clamp<std::uint64_t>(allowed / 16, 1, limits.max_incomplete_connections);
        if (limits.completed_configured && limits.max_completed_connections < allowed) {
            limits.max_incomplete_connections =
                std::min(limits.max_incomplete_connections, allowed - limits.max_completed_connections);
        }
    }
    if (!limits.completed_configured && total() > allowed) {
        limits.max_completed_connections =
            allowed > limits.max_incomplete_connections ? allowed - limits.max_incomplete_connections : 1;
    }
    if (total() > allowed) {
        warnings.push_back(
            "max_completed_connections " + std::to_string(limits.max_completed_connections) +
            " and max_incomplete_connections " + std::to_string(limits.max_incomplete_connections) +
            " need more file descriptors than the limit of " + std::to_string(descriptors) + " allows (" +
            std::to_string(allowed) +
            " connections); further clients wait unanswered until a connection closes. Raise LimitNOFILE "
            "or lower the <limit>s.");
    }
    return warnings;
}

}  // namespace busgate::transport
