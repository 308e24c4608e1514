// Peer: one client of the bus as bus/ sees it: its transport connection, its core id once Hello made it a
// bus connection, its unique name, the endpoint it came through, its match rules, its policy and whether
// it became a monitor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bus/match_rule.h"
#include "busgate/core/types.h"
#include "busgate/policy/policy.h"
#include "transport/connection.h"

namespace busgate::bus {

struct InstalledMatch {
    std::uint64_t cookie;
    MatchRule rule;
    bool in_core;  // the core holds its mask (it can match broadcasts)
};
struct Peer {
    std::unique_ptr<transport::Connection> client;
    core::ConnectionId id = 0;                           // 0 until Hello
    core::EndpointId endpoint = core::default_endpoint;  // the socket it came through
    std::string unique_name;
    std::string listener_address;  // the address of the listener it came through (web interface)
    // Until Hello succeeds, as dbus-daemon counts it: held to auth_timeout and
    // max_incomplete_connections.
    bool incomplete = true;
    std::uint64_t auth_deadline = 0;
    std::vector<InstalledMatch> matches;
    std::uint64_t next_match_cookie = 1;
    policy::ClientPolicy policy;  // the rules for this connection's credentials, set at Hello
    policy::PeerNames names;      // its unique and well-known names, as the policy sees them
    bool names_stale = true;
    // BecomeMonitor: no longer a core connection; receives copies of what matches these rules.
    bool monitor = false;
    std::vector<MatchRule> monitor_rules;
    // Its socket's output is full: what the core queued for it waits there (and further senders are
    // refused by the core's queue limit) until the socket drains.
    bool stalled = false;
    std::size_t eavesdrop_rules = 0;  // installed rules with eavesdrop='true'
    bool eavesdrops() const { return eavesdrop_rules > 0; }
    bool registered() const { return id != 0; }
    const InstalledMatch* match(std::uint64_t cookie) const;
};

}  // namespace busgate::bus
