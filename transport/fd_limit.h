// The bus's file descriptor budget. Every connection costs the bus one descriptor (its socket; the
// peer's pidfd is taken only while GetConnectionCredentials answers), so RLIMIT_NOFILE bounds how many
// clients a bus can serve. At start busgate raises its soft limit as far as it may, then sizes the
// connection limits that the configuration left at dbus-daemon's defaults to what it got, so that a bus
// with too few descriptors refuses a connection it cannot afford with LimitsExceeded instead of leaving
// the client unanswered in the listen backlog.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace busgate::transport {

// What dbus-daemon asks for when privileged; a root bus raises its hard limit to this as well.
inline constexpr std::uint64_t wanted_descriptors = 65536;

// Descriptors the bus holds besides its connections: listening sockets, epoll, signalfd, timerfds,
// inotify, the journal, the web interface, service-start children and fds queued in messages in
// flight, with room to spare.
inline constexpr std::uint64_t reserved_descriptors = 64;

// Descriptors held per connection, authenticated or not.
inline constexpr std::uint64_t descriptors_per_connection = 1;

struct DescriptorLimit {
    std::uint64_t soft_before = 0;
    std::uint64_t hard_before = 0;
    std::uint64_t soft = 0;  // what the bus may use now
    std::uint64_t hard = 0;
    std::string problem;  // set when a raise the bus tried was refused
};

// Raises RLIMIT_NOFILE: the hard limit to wanted_descriptors where it is lower and the process may
// (CAP_SYS_RESOURCE, and not above fs.nr_open), then the soft limit to the hard one. Where the hard
// limit cannot be raised, the soft limit still goes up to it (dbus-daemon keeps its soft limit then).
DescriptorLimit raise_descriptor_limit();

// In a child about to exec a service: puts back the soft limit the bus started with, since programs
// that use select() break above 1024 descriptors. Async-signal-safe (one setrlimit).
void restore_descriptor_limit_for_child();

struct ConnectionBudget {
    std::uint64_t max_completed_connections = 0;
    std::uint64_t max_incomplete_connections = 0;
    bool completed_configured = false;  // false: dbus-daemon's default, which busgate may lower
    bool incomplete_configured = false;
};

// How many connections `descriptors` allow in all: what is left after the reserve.
std::uint64_t connections_allowed(std::uint64_t descriptors);

// Lowers the limits still at their defaults until completed plus incomplete connections fit in
// `descriptors`; a configured limit stays as configured. Returns one warning per configured limit the
// descriptors cannot meet.
std::vector<std::string> fit_connection_limits(std::uint64_t descriptors, ConnectionBudget& limits);

}  // namespace busgate::transport
