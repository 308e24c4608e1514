// Messages the bus sends itself: replies and errors of the driver, signals, refusals, and the answers of
// the socket's other end. One builder; every one goes through the core unless the peer is not on the bus.
#include <cstdint>

#include "bus/activation.h"
#include "bus/bus_daemon.h"
#include "bus/endpoint_log.h"
#include "bus/errors.h"
#include "bus/routed_message.h"
#include "busgate/marshal/names.h"
#include "busgate/marshal/protocol.h"

namespace busgate::bus {
namespace {

using marshal::bus_name;

}  // namespace

std::uint32_t BusDaemon::next_serial() {
    if (++serial_ == 0) {
        serial_ = 1;
    }
    return serial_;
}

RoutedMessage::Ref BusDaemon::bus_message(marshal::MessageSpec spec, const marshal::BodyWriter& body,
                                          std::vector<util::UniqueFd> fds, bool from_bus) {
    spec.serial = next_serial();
    spec.sender = from_bus ? bus_name : std::string_view();
    spec.unix_fds = static_cast<std::uint32_t>(fds.size());
    if (spec.type != marshal::MessageType::method_call) {
        spec.flags |= marshal::flag::no_reply_expected;
    }
    return RoutedMessage::built(spec, body, std::move(fds));
}

bool BusDaemon::send_from_bus(const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                              std::vector<util::UniqueFd> fds) {
    const RoutedMessage::Ref message = bus_message(spec, body, std::move(fds));
    core::OutgoingMessage outgoing;
    outgoing.cookie = last_serial();  // the one bus_message just gave it
    if (spec.destination.empty()) {
        outgoing.destination_id = core::broadcast_destination;
        outgoing.flags = core::message_flag::signal;
        // NameOwnerChanged at every connect and disconnect: most often nobody listens.
        if (bus_.matches().has_message_rules() && message->header() != nullptr) {
            outgoing.bloom = bloom_filter_of(message->wire(), *message->header());
        }
    } else {
        if (marshal::is_unique_name(spec.destination)) {
            outgoing.destination_id = id_of_unique_name(spec.destination);
        } else {
            outgoing.destination_name = spec.destination;
        }
        if (spec.type == marshal::MessageType::signal) {
            outgoing.flags = core::message_flag::signal;
        }
    }
    outgoing.payload = message;
    const auto sent = bus_.send(driver_id_, std::move(outgoing));
    if (peers_.has_monitors()) {
        capture(message->wire(), {}, spec.destination, message->fds);
    }
    if (sent) {
        count_routed(spec.type, message->wire());
    }
    if (sent && activation_ && activation_->is_activator(sent->destination)) {
        activation_->queued(sent->destination);
    }
    return sent.ok();
}

void BusDaemon::refuse_queued(core::ConnectionId holder, const core::QueueItem& item,
                              std::string_view error_name, std::string_view text) {
    awaiting_activation_.erase(item.payload.get());
    Peer* sender = peers_.find(item.sender);
    if (sender == nullptr) {
        return;  // the driver, or a sender gone since: nobody to tell
    }
    const marshal::MessageHeader* header = routed(*item.payload).header();
    if (header == nullptr ||
        (header->type != marshal::MessageType::method_call && header->type != marshal::MessageType::signal)) {
        return;
    }
    marshal::BodyWriter body;
    body.string(text);
    const marshal::MessageSpec spec{.type = marshal::MessageType::error,
                                    .error_name = error_name,
                                    .destination = sender->unique_name,
                                    .reply_serial = header->serial};
    if (!(item.flags & core::message_flag::expect_reply)) {
        send_from_bus(spec, body);  // dbus-daemon answers even what asked for no reply; clients ignore it
        return;
    }
    const RoutedMessage::Ref error = bus_message(spec, body);
    core::OutgoingMessage outgoing;
    outgoing.cookie = last_serial();  // the one bus_message just gave it
    outgoing.destination_id = sender->id;
    outgoing.reply_cookie = item.cookie;
    outgoing.payload = error;
    (void)bus_.send(holder, std::move(outgoing));
    if (peers_.has_monitors()) {
        capture(error->wire(), {}, sender->unique_name);
    }
}

void BusDaemon::send_directly(Peer& peer, const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                              bool from_bus) {
    peer.connection->send(bus_message(spec, body, {}, from_bus));
    mark_dirty(peer);
}

void BusDaemon::send_error(Peer& peer, const transport::IncomingMessage& to, BusError error,
                           std::string_view text) {
    // As dbus-daemon, whatever was refused is answered, even a signal or a reply that asked for no reply
    // (monitors see it; clients ignore it).
    if (logs(peer)) {
        if (auto verdict = verdict_log_line(name_of(error), to.header)) {
            log_endpoint(peer, *verdict);
        }
    }
    marshal::BodyWriter body;
    body.string(text);
    marshal::MessageSpec spec{.type = marshal::MessageType::error,
                              .error_name = name_of(error),
                              .destination = peer.unique_name,
                              .reply_serial = to.header.serial};
    if (peer.registered()) {
        send_from_bus(spec, body);
        return;
    }
    // Before Hello the peer has no core connection (and no name): straight to its socket.
    spec.destination = {};
    send_directly(peer, spec, body);
}

}  // namespace busgate::bus
