// Egress: the one place that decides whether a queued item reaches a receiver (the exact match re-check
// bloom filters need, receive policy, endpoint visibility) and schedules the flush.
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "bus/activation.h"
#include "bus/bus_daemon.h"
#include "bus/driver.h"
#include "bus/endpoint_log.h"
#include "bus/endpoints.h"
#include "bus/errors.h"
#include "bus/routed_message.h"
#include "busgate/marshal/names.h"
#include "busgate/marshal/protocol.h"
#include "busgate/marshal/reader.h"

namespace busgate::bus {
namespace {

using marshal::bus_name;

}  // namespace

void BusDaemon::deliver() {
    // Delivering can queue more (errors, the driver's signals, what a disconnect causes), so go on until
    // nothing is readable. Nothing called from here delivers on its own: a disconnect here leaves what it
    // queued to the next round of this loop.
    for (;;) {
        readable_.clear();
        bus_.take_readable(readable_);
        if (readable_.empty()) {
            break;
        }
        // The driver first, and only when something reached it (most rounds carry calls and replies
        // only): what it hears becomes signals for the others, which this round or the next delivers.
        if (std::find(readable_.begin(), readable_.end(), driver_id_) != readable_.end()) {
            driver_->process_notifications();
        }
        for (const core::ConnectionId id : readable_) {
            if (activation_->is_activator(id)) {
                activation_->queued(id);  // its messages wait there for the service
            } else if (id != driver_id_) {
                deliver_to(id);
            }
        }
    }
}

void BusDaemon::deliver_to(core::ConnectionId id) {
    Peer* peer = peers_.find(id);
    bool wrote = false;
    for (;;) {
        // A receiver that does not read is never cut off for it (dbus-daemon refuses the senders instead):
        // what does not fit its socket's output stays in the core's queue, whose limit refuses more.
        bool held = false;
        auto item = bus_.receive_if(
            id,
            [peer](const core::QueueItem& next) {
                return peer == nullptr || next.kind != core::QueueItem::Kind::message ||
                       peer->connection->can_take(*next.payload);
            },
            held);
        if (held) {
            peer->stalled = true;
            break;
        }
        if (!item) {
            break;
        }
        if (peer == nullptr) {
            continue;
        }
        if (item->kind == core::QueueItem::Kind::message) {
            if (!awaiting_activation_.empty() && awaiting_activation_.erase(item->payload.get()) > 0 &&
                !allowed_after_activation(*peer, *item)) {
                continue;
            }
            if (!wanted(*peer, *item)) {
                continue;  // a bloom false positive
            }
            if (logs(*peer)) {
                if (const marshal::MessageHeader* header = routed(*item->payload).header()) {
                    log_endpoint(*peer, incoming_log_line(*header));
                }
            }
            if (!peer->connection->send(item->payload)) {
                // Room was checked before the item was taken and nothing here writes to this client since;
                // should that ever change, a lost message must not pass in silence.
                ++counters_.quota_hits[BusCounters::outgoing_queue];
                disconnect(*peer, "outgoing queue full after its room was checked");
                return;
            }
            wrote = true;
            continue;
        }
        const core::NotificationType type = item->notification.type;
        if (type == core::NotificationType::reply_timeout || type == core::NotificationType::reply_dead) {
            marshal::BodyWriter body;
            body.string(type == core::NotificationType::reply_dead
                            ? "Message recipient disconnected from message bus without replying"
                            : "Message did not receive a reply (timeout by message bus)");
            send_from_bus({.type = marshal::MessageType::error,
                           .error_name = name_of(BusError::no_reply),
                           .destination = peer->unique_name,
                           .reply_serial = static_cast<std::uint32_t>(item->reply_cookie)},
                          body);
        }
    }
    // Only when this added output: a socket that is full waits for EPOLLOUT, not for another flush now.
    if (wrote) {
        mark_dirty(*peer);
    }
}

void BusDaemon::mark_dirty(Peer& peer) {
    if (!peer.dirty) {
        peer.dirty = true;
        dirty_.push_back(peer.connection->fd());
    }
}

void BusDaemon::flush(Peer& peer) {
    if (!peer.connection->flush()) {
        // A peer that closed its end while the bus still wrote to it hung up; anything else is worth a log.
        const int error = errno;
        disconnect(peer, error == EPIPE || error == ECONNRESET ? transport::peer_hung_up : "write failed");
        return;
    }
    const int fd = peer.connection->fd();
    if (peer.stalled && peer.registered()) {
        // Room again: what waited in the core comes now (and is flushed next, by the caller's loop).
        peer.stalled = false;
        deliver_to(peer.id);
        if (peers_.at_socket(fd) == nullptr) {
            return;  // delivering cut it off
        }
    }
    loop_.modify(fd, peer.connection->has_output() ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

bool BusDaemon::wanted(Peer& peer, const core::QueueItem& item) {
    const bool broadcast = item.destination == core::broadcast_destination;
    const bool from_driver = item.sender == driver_id_;
    if (peer.endpoint != core::default_endpoint && broadcast && !endpoint_may_hear(peer, item)) {
        return false;
    }
    if (!broadcast && !(policy_ && from_driver)) {
        return true;  // addressed to this peer, and the policy was checked when it was sent
    }
    const RoutedMessage& message = routed(*item.payload);
    const marshal::MessageHeader* parsed = message.header();  // once per message, not per receiver
    if (parsed == nullptr) {
        return false;
    }
    const marshal::MessageHeader& header = *parsed;
    if (policy_) {
        Peer* sender = from_driver ? nullptr : peers_.find(item.sender);
        if (!from_driver && sender == nullptr) {
            return false;  // the sender left before its broadcast was delivered: its send rules are unknown
        }
        const policy::PreparedMessage* prepared = message.prepared(policy_generation_);
        if (prepared == nullptr) {
            prepared = &message.keep_prepared(policy_generation_, prepare(sender, header));
        }
        const policy::RouteDecision decision = policy_gate(sender, &peer, *prepared);
        if (decision.verdict != policy::Verdict::allowed) {
            count_denial(decision);
            // dbus-daemon shows monitors the AccessDenied error the refusal causes, even where nobody gets
            // it: a driver message the receiver may not have is refused to the bus itself; a rejected
            // broadcast to its sender, which expects no reply.
            const std::string_view refused = from_driver ? bus_name : std::string_view(sender->unique_name);
            if (peers_.has_monitors() && (broadcast ? sender != nullptr : from_driver)) {
                marshal::BodyWriter body;
                body.string(rejection_text(decision, header, refused));
                capture(bus_message({.type = marshal::MessageType::error,
                                     .error_name = name_of(BusError::access_denied),
                                     .destination = refused,
                                     .reply_serial = header.serial},
                                    body)
                            ->wire(),
                        {}, broadcast ? refused : std::string_view());
            }
            return false;
        }
        if (!broadcast) {
            return true;
        }
    }
    const MessageView view(message.wire(), header);
    // The router stamped the sender's unique name into the header: read it there rather than format it
    // again for every receiver.
    std::string formatted;
    std::string_view sender;
    if (item.sender != driver_id_) {
        if (header.has(marshal::HeaderField::sender)) {
            sender = header.sender;
        } else {
            formatted = unique_name_of(item.sender);
            sender = formatted;
        }
    }
    const MessageParties parties{.sender = sender, .addressed_recipient = {}, .names = &names_};
    for (const std::uint64_t cookie : item.matched.view()) {
        const InstalledMatch* installed = peer.match(cookie);
        if (installed != nullptr && matches(installed->rule, view, parties)) {
            return true;
        }
    }
    return false;
}

bool BusDaemon::logs(const Peer& peer) const {
    if (peer.endpoint == core::default_endpoint) {
        return false;
    }
    const auto uid = peer.uid ? peer.uid : peer.connection->credentials().uid;
    return endpoints_->log_receiver(peer.endpoint, uid.value_or(~0u)) != 0;
}

void BusDaemon::log_endpoint(const Peer& peer, const std::string& line) {
    const auto uid = peer.uid ? peer.uid : peer.connection->credentials().uid;
    const core::ConnectionId creator = endpoints_->log_receiver(peer.endpoint, uid.value_or(~0u));
    if (creator == 0) {
        return;
    }
    const Endpoints::Endpoint* endpoint = endpoints_->find(peer.endpoint);
    marshal::BodyWriter body;
    body.string(endpoint->spec.name).string(line);
    send_from_bus({.type = marshal::MessageType::signal,
                   .path = "/org/freedesktop/DBus",
                   .interface = "org.busgate.Endpoints1",
                   .member = "Log",
                   .destination = unique_name_of(creator)},
                  body);
}

bool BusDaemon::endpoint_may_hear(Peer& peer, const core::QueueItem& item) {
    const RoutedMessage& message = routed(*item.payload);
    const marshal::MessageHeader* parsed = message.header();
    if (parsed == nullptr) {
        return false;
    }
    const marshal::MessageHeader& header = *parsed;
    const core::Connection* self = bus_.connection(peer.id);
    if (self == nullptr) {
        return false;
    }
    if (item.sender == peer.id) {
        return true;  // its own broadcast, looped back as dbus1 does
    }
    if (item.sender != driver_id_) {
        return endpoints_->may_receive(peer.endpoint, names_owned_by(item.sender), header);
    }
    if (header.member != "NameOwnerChanged") {
        return true;
    }
    // Names the endpoint cannot see do not exist for it: neither do their owner changes.
    marshal::BodyReader reader(message.wire(), header);
    const auto name = reader.read_string();
    if (!name) {
        return false;
    }
    if (!marshal::is_unique_name(*name)) {
        return bus_.can_see_name(*self, *name);
    }
    if (const Endpoints::Endpoint* endpoint = endpoints_->find(peer.endpoint);
        endpoint != nullptr && endpoint->spec.sloppy_names) {
        return true;
    }
    // A caller it remembers is seen leaving too, after the core has forgotten the connection itself.
    const core::ConnectionId subject_id = id_of_unique_name(*name);
    if (self->was_called_by(subject_id)) {
        return true;
    }
    const core::Connection* subject = bus_.connection(subject_id);
    return subject != nullptr && (subject == self || bus_.can_see_connection(*self, *subject));
}

bool BusDaemon::allowed_after_activation(Peer& recipient, const core::QueueItem& item) {
    if (!policy_) {
        return true;
    }
    Peer* sender = peers_.find(item.sender);
    if (sender == nullptr) {
        return item.sender == driver_id_;
    }
    const marshal::MessageHeader* header = routed(*item.payload).header();
    if (header == nullptr) {
        return false;
    }
    const policy::RouteDecision decision = policy_gate(sender, &recipient, *header);
    if (decision.verdict == policy::Verdict::allowed) {
        return true;
    }
    refuse_queued(recipient.id, item, name_of(BusError::access_denied),
                  rejection_text(decision, *header, sender->unique_name));
    return false;
}

}  // namespace busgate::bus
