// Monitors (BecomeMonitor) and eavesdroppers: copies of what is routed, as dbus-daemon makes them.
#include <cstdint>

#include "bus/bus_daemon.h"
#include "bus/routed_message.h"

namespace busgate::bus {

void BusDaemon::capture(std::span<const std::uint8_t> bytes, std::string_view sender,
                        std::string_view recipient, std::span<const util::UniqueFd> fds) {
    marshal::MessageHeader header;
    if (marshal::parse_header(bytes, header) != marshal::Validity::valid) {
        return;
    }
    const MessageView view(bytes, header);
    const MessageParties parties{.sender = sender, .addressed_recipient = recipient, .names = &names_};
    core::PayloadRef copy;
    for (const int fd : peers_.monitors()) {
        Peer* found = peers_.at_socket(fd);
        if (found == nullptr) {
            continue;
        }
        Peer& monitor = *found;
        if (!fds.empty() && !monitor.connection->unix_fds_allowed()) {
            continue;
        }
        for (const MatchRule& rule : monitor.monitor_rules) {
            if (matches(rule, view, parties)) {
                if (!copy) {
                    copy = RoutedMessage::copy(bytes, fds);
                }
                monitor.connection->send(copy);
                mark_dirty(monitor);
                break;
            }
        }
    }
}

void BusDaemon::eavesdrop(Peer& sender, std::span<const std::uint8_t> bytes, Peer* recipient,
                          std::span<const util::UniqueFd> fds) {
    marshal::MessageHeader header;
    if (marshal::parse_header(bytes, header) != marshal::Validity::valid) {
        return;
    }
    const MessageView view(bytes, header);
    const MessageParties parties{
        .sender = sender.unique_name,
        .addressed_recipient = recipient ? std::string_view(recipient->unique_name) : "",
        .names = &names_};
    core::PayloadRef copy;
    peers_.for_each([&](Peer& listener) {
        // A container endpoint hears only what is addressed to it or broadcast: never eavesdrops.
        if (!listener.eavesdrops() || &listener == recipient || !listener.registered() ||
            listener.endpoint != core::default_endpoint ||
            (!fds.empty() && !listener.connection->unix_fds_allowed())) {
            return;
        }
        bool wanted_here = false;
        for (const InstalledMatch& installed : listener.matches) {
            if (installed.rule.eavesdrop && matches(installed.rule, view, parties)) {
                wanted_here = true;
                break;
            }
        }
        if (!wanted_here) {
            return;
        }
        if (policy_ && policy_gate(&sender, &listener, header, {.eavesdropping = true}).verdict !=
                           policy::Verdict::allowed) {
            return;
        }
        if (!copy) {
            copy = RoutedMessage::copy(bytes, fds);
        }
        listener.connection->send(copy);
        mark_dirty(listener);
    });
}

void BusDaemon::become_monitor(Peer& peer, std::vector<MatchRule> rules) {
    deliver();  // the BecomeMonitor reply goes out first
    // dbus-daemon releases the unique name first, then the well-known names, each with NameLost to the
    // monitor; the others learn it from NameOwnerChanged.
    std::vector<std::string> lost = {peer.unique_name};
    for (std::string& name : bus_.owned_names(peer.id)) {
        lost.push_back(std::move(name));
    }
    for (const std::string& name : lost) {
        marshal::BodyWriter body;
        body.string(name);
        send_directly(peer,
                      {.type = marshal::MessageType::signal,
                       .path = "/org/freedesktop/DBus",
                       .interface = "org.freedesktop.DBus",
                       .member = "NameLost",
                       .destination = peer.unique_name},
                      body);
    }
    const core::ConnectionId id = peer.id;
    peers_.unregistered(peer);
    (void)bus_.bye(id);
    deliver();  // what its leaving causes is no copy for it: it is a monitor only from here
    peers_.became_monitor(peer, std::move(rules));
}

}  // namespace busgate::bus
