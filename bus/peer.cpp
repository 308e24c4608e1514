#include "bus/peer.h"

#include <algorithm>

namespace busgate::bus {

const InstalledMatch* Peer::match(std::uint64_t cookie) const {
    const auto found = std::lower_bound(match_cookies.begin(), match_cookies.end(), cookie);
    return found != match_cookies.end() && *found == cookie ? &matches[found - match_cookies.begin()] : nullptr;
}

void Peer::add_match(InstalledMatch installed) {
    match_cookies.push_back(installed.cookie);
    matches.push_back(std::move(installed));
}

void Peer::remove_match(std::size_t index) {
    const auto offset = static_cast<std::ptrdiff_t>(index);
    match_cookies.erase(match_cookies.begin() + offset);
    matches.erase(matches.begin() + offset);
}

void Peer::clear_matches() {
    // Swapped out, not cleared: a connection that leaves the bus gives its storage back.
    std::vector<InstalledMatch>().swap(matches);
    std::vector<std::uint64_t>().swap(match_cookies);
}

Peer& PeerRegistry::add(std::unique_ptr<Peer> peer) {
    Peer& added = *peer;
    by_socket_[peer->connection->fd()] = std::move(peer);
    return added;
}

void PeerRegistry::remove(Peer& peer) {
    const int fd = peer.connection->fd();
    if (peer.registered()) {
        by_id_.erase(peer.id);
    }
    if (peer.uid) {
        if (const auto count = registered_per_uid_.find(*peer.uid); --count->second == 0) {
            registered_per_uid_.erase(count);
        }
    }
    holding_fds_.erase(fd);
    if (peer.eavesdrops()) {
        --eavesdroppers_;
    }
    if (peer.monitor) {
        std::erase(monitors_, fd);
    }
    by_socket_.erase(fd);
}

Peer* PeerRegistry::at_socket(int fd) {
    const auto found = by_socket_.find(fd);
    return found == by_socket_.end() ? nullptr : found->second.get();
}

Peer* PeerRegistry::find(core::ConnectionId id) const {
    const auto found = by_id_.find(id);
    return found == by_id_.end() ? nullptr : found->second;
}

void PeerRegistry::registered(Peer& peer) {
    by_id_[peer.id] = &peer;
    ++registered_per_uid_[peer.uid.value()];
}

std::size_t PeerRegistry::connections_of(std::uint32_t uid) const {
    const auto found = registered_per_uid_.find(uid);
    return found == registered_per_uid_.end() ? 0 : found->second;
}

void PeerRegistry::holding_fds_changed(Peer& peer) {
    if (peer.connection->pending_fds_since() != 0) {
        holding_fds_.insert(peer.connection->fd());
    } else {
        holding_fds_.erase(peer.connection->fd());
    }
}

void PeerRegistry::unregistered(Peer& peer) {
    by_id_.erase(peer.id);
    if (peer.eavesdrops()) {
        --eavesdroppers_;
    }
    peer.eavesdrop_rules = 0;
    peer.clear_matches();
    peer.id = 0;
}

void PeerRegistry::became_monitor(Peer& peer, std::vector<MatchRule> rules) {
    for (MatchRule& rule : rules) {
        rule.eavesdrop = true;  // monitors always eavesdrop
    }
    peer.monitor_rules = std::move(rules);
    peer.monitor = true;
    monitors_.push_back(peer.connection->fd());
}

void PeerRegistry::eavesdrop_rule_added(Peer& peer) {
    if (peer.eavesdrop_rules++ == 0) {
        ++eavesdroppers_;
    }
}

void PeerRegistry::eavesdrop_rule_removed(Peer& peer) {
    if (--peer.eavesdrop_rules == 0) {
        --eavesdroppers_;
    }
}

}  // namespace busgate::bus
