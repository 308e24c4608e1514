// Identifiers, flag constants and credentials shared by every module of the core. The numeric values of
// the flags are kdbus's (kdbus-semantics.md section 1.6), so a kernel backend could use them unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace busgate::core {

using ConnectionId = std::uint64_t;
using EndpointId = std::uint64_t;
using Timestamp = std::uint64_t;  // CLOCK_MONOTONIC nanoseconds, supplied by the caller

inline constexpr ConnectionId kernel_connection = 0;  // sender of notifications
inline constexpr ConnectionId broadcast_destination = ~uint64_t{0};
inline constexpr ConnectionId any_connection = ~uint64_t{0};  // wildcard in matches
// Ids from here on belong to the bus's own connections (driver, activators, policy holders).
inline constexpr ConnectionId first_internal_connection_id = std::uint64_t{1} << 62;
inline constexpr EndpointId default_endpoint = 0;

namespace hello_flag {
inline constexpr std::uint64_t accept_fds = 1 << 0;
inline constexpr std::uint64_t activator = 1 << 1;
inline constexpr std::uint64_t policy_holder = 1 << 2;
// 1 << 3 is kdbus's monitor. The dbus1 gateway has monitors of its own (BecomeMonitor, eavesdropping), which
// must see what the core never routes (the driver's answers, refused messages), so the core has none.
// The bus's own service (dbus1's org.freedesktop.DBus): every connection talks to it and hears from it,
// whatever its endpoint's policy says. Privileged, default endpoint only.
inline constexpr std::uint64_t bus_driver = 1 << 4;
}  // namespace hello_flag

namespace name_flag {
inline constexpr std::uint64_t replace_existing = 1 << 0;
inline constexpr std::uint64_t allow_replacement = 1 << 1;
inline constexpr std::uint64_t queue = 1 << 2;
inline constexpr std::uint64_t in_queue = 1 << 3;
inline constexpr std::uint64_t activator = 1 << 4;
inline constexpr std::uint64_t primary = 1 << 5;
// The flags an owner keeps between requests.
inline constexpr std::uint64_t saved = allow_replacement | queue;
}  // namespace name_flag

namespace message_flag {
inline constexpr std::uint64_t expect_reply = 1 << 0;
inline constexpr std::uint64_t no_auto_start = 1 << 1;
inline constexpr std::uint64_t signal = 1 << 2;
}  // namespace message_flag

namespace list_flag {
inline constexpr std::uint64_t unique = 1 << 0;
inline constexpr std::uint64_t names = 1 << 1;
inline constexpr std::uint64_t activators = 1 << 2;
inline constexpr std::uint64_t queued = 1 << 3;
}  // namespace list_flag

enum class NotificationType : std::uint64_t {
    name_add = 0x8000,
    name_remove = 0x8001,
    name_change = 0x8002,
    id_add = 0x8003,
    id_remove = 0x8004,
    reply_timeout = 0x8005,
    reply_dead = 0x8006,
};

// What acquiring a name did: the caller became its primary owner, waits in its queue, was turned away by
// the owner (no queueing asked, no replacement allowed), or owned it already.
enum class AcquireResult : std::uint8_t { acquired, queued, owned_elsewhere, already_owner };
// What releasing a name did: released (as owner or from the queue), the name has no owner, or the caller
// is neither its owner nor in its queue.
enum class ReleaseResult : std::uint8_t { released, unowned, not_owner };

// What the gateway learned about a peer when it connected (SO_PEERCRED, SO_PEERGROUPS, SO_PEERSEC).
struct Credentials {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::vector<std::uint32_t> groups;  // supplementary groups
    std::int32_t pid = 0;
    std::string security_label;
};

}  // namespace busgate::core
