// Peer: one client of the bus as bus/ sees it: its transport connection, its core id once Hello made it a
// bus connection, its unique name, the endpoint it came through, its match rules, its policy and whether
// it became a monitor.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
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
    std::unique_ptr<transport::Connection> connection;  // its socket: bytes in and out
    core::ConnectionId id = 0;                          // 0 until Hello
    // The uid its Hello counted it under, until it leaves: a monitor still counts, as in dbus-daemon.
    std::optional<std::uint32_t> uid;
    core::EndpointId endpoint = core::default_endpoint;  // the socket it came through
    std::string unique_name;
    std::string listener_address;         // the address of the listener it came through (web interface)
    // In the order added, so by increasing cookie; changed only through the three calls below, which keep
    // `match_cookies` beside it: a delivery's lookup by cookie searches 8-byte keys, not whole rules.
    std::vector<InstalledMatch> matches;
    std::vector<std::uint64_t> match_cookies;
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
    bool dirty = false;               // its socket is on the daemon's list to flush
    std::size_t eavesdrop_rules = 0;  // installed rules with eavesdrop='true'
    bool eavesdrops() const { return eavesdrop_rules > 0; }
    bool registered() const { return id != 0; }
    const InstalledMatch* match(std::uint64_t cookie) const;
    void add_match(InstalledMatch installed);  // with a cookie above every installed one
    void remove_match(std::size_t index);
    void clear_matches();
};

// Every client of the bus: by socket while it is connected, by core id once Hello made it a bus connection
// (a monitor is none), and which of them are monitors and how many eavesdrop. The bookkeeping of who is
// what lives here and nowhere else.
class PeerRegistry {
  public:
    using ById = boost::unordered_flat_map<core::ConnectionId, Peer*>;

    Peer& add(std::unique_ptr<Peer> peer);
    // Forgets `peer` everywhere and destroys it.
    void remove(Peer& peer);
    Peer* at_socket(int fd);
    // A connection past Hello (not a monitor), or null.
    Peer* find(core::ConnectionId id) const;
    // Hello gave `peer` its id (and its uid).
    void registered(Peer& peer);
    // BecomeMonitor, first step: `peer` is no bus connection any more (no id, no rules).
    void unregistered(Peer& peer);
    // Then, once what its leaving caused is delivered: it hears copies of what `rules` match.
    void became_monitor(Peer& peer, std::vector<MatchRule> rules);
    // `peer`'s first eavesdrop='true' rule came, or its last went (rules counted on the peer).
    void eavesdrop_rule_added(Peer& peer);
    void eavesdrop_rule_removed(Peer& peer);
    // `peer`'s socket started or stopped holding file descriptors whose message has not arrived yet.
    void holding_fds_changed(Peer& peer);

    std::size_t size() const { return by_socket_.size(); }
    const ById& by_id() const { return by_id_; }
    std::span<const int> monitors() const { return monitors_; }
    bool has_monitors() const { return !monitors_.empty(); }
    bool has_eavesdroppers() const { return eavesdroppers_ > 0; }
    // Registered connections of `uid` (max_connections_per_user), without a walk over every peer.
    std::size_t connections_of(std::uint32_t uid) const;
    // The sockets holding file descriptors for a message still to come (their pending_fd_timeout runs).
    const boost::unordered_flat_set<int>& holding_fds() const { return holding_fds_; }
    // Every peer, connected or not yet past Hello. `visit` must not add or remove peers.
    template <typename Visit>
    void for_each(Visit&& visit) const {
        for (const auto& [fd, peer] : by_socket_) {
            visit(*peer);
        }
    }
    // The sockets of the peers `select` picks, for work that may remove peers as it goes.
    template <typename Select>
    std::vector<int> sockets_where(Select&& select) const {
        std::vector<int> sockets;
        for (const auto& [fd, peer] : by_socket_) {
            if (select(*peer)) {
                sockets.push_back(fd);
            }
        }
        return sockets;
    }

  private:
    boost::unordered_flat_map<int, std::unique_ptr<Peer>> by_socket_;
    ById by_id_;
    std::vector<int> monitors_;      // sockets of monitors, in the order they became one
    std::size_t eavesdroppers_ = 0;  // peers with eavesdrop rules
    boost::unordered_flat_map<std::uint32_t, std::size_t> registered_per_uid_;
    boost::unordered_flat_set<int> holding_fds_;
};

}  // namespace busgate::bus
