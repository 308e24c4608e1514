// Messages the bus sends itself: replies and errors of the driver, signals, refusals, and the answers of
// the socket's other end. One builder; every one goes through the core unless the peer is not on the bus.
#include "bus/activation.h"
#include "bus/bus_daemon.h"
#include "bus/errors.h"
#include "bus/payload.h"
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

bool BusDaemon::send_from_bus(const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                              std::vector<util::UniqueFd> fds) {
    marshal::MessageSpec stamped = spec;
    stamped.serial = next_serial();
    stamped.sender = bus_name;
    stamped.unix_fds = static_cast<std::uint32_t>(fds.size());
    if (stamped.type != marshal::MessageType::method_call) {
        stamped.flags |= marshal::flag::no_reply_expected;
    }
    const std::vector<std::uint8_t> bytes = marshal::build_message(stamped, body);
    core::OutgoingMessage outgoing;
    outgoing.cookie = stamped.serial;
    if (spec.destination.empty()) {
        outgoing.destination_id = core::broadcast_destination;
        outgoing.flags = core::message_flag::signal;
        // NameOwnerChanged at every connect and disconnect: most often nobody listens.
        if (bus_.matches().has_message_rules()) {
            marshal::MessageHeader header;
            (void)marshal::parse_validated_header(bytes, header);
            outgoing.bloom = bloom_filter_of(bytes, header);
        }
    } else {
        if (marshal::is_unique_name(spec.destination)) {
            outgoing.destination_id = id_of_unique_name(spec.destination);
        } else {
            outgoing.destination_name = spec.destination;
        }
        if (stamped.type == marshal::MessageType::signal) {
            outgoing.flags = core::message_flag::signal;
        }
    }
    const core::PayloadRef payload = payload_of(bytes, std::move(fds));
    outgoing.payload = payload;
    const auto sent = bus_.send(driver_id_, std::move(outgoing));
    if (!monitors_.empty()) {
        capture(bytes, {}, spec.destination, payload->fds);
    }
    if (sent) {
        count_routed(stamped.type, bytes);
    }
    if (sent && activation_ && activation_->is_activator(sent->destination)) {
        activation_->queued(sent->destination);
    }
    return sent.ok();
}

void BusDaemon::refuse_queued(core::ConnectionId holder, const core::QueueItem& item,
                              std::string_view error_name, std::string_view text) {
    awaiting_activation_.erase(item.payload.get());
    Peer* sender = find_peer(item.sender);
    if (sender == nullptr) {
        return;  // the driver, or a sender gone since: nobody to tell
    }
    const auto* data = reinterpret_cast<const std::uint8_t*>(item.payload->bytes.data());
    const std::span<const std::uint8_t> bytes(data, item.payload->bytes.size());
    marshal::MessageHeader header;
    if (marshal::parse_header(bytes, header) != marshal::Validity::valid ||
        (header.type != marshal::MessageType::method_call && header.type != marshal::MessageType::signal)) {
        return;
    }
    marshal::BodyWriter body;
    body.string(text);
    const marshal::MessageSpec spec{.type = marshal::MessageType::error,
                                    .error_name = error_name,
                                    .destination = sender->unique_name,
                                    .reply_serial = header.serial};
    if (!(item.flags & core::message_flag::expect_reply)) {
        send_from_bus(spec, body);  // dbus-daemon answers even what asked for no reply; clients ignore it
        return;
    }
    marshal::MessageSpec stamped = spec;
    stamped.serial = next_serial();
    stamped.sender = bus_name;
    stamped.flags = marshal::flag::no_reply_expected;
    const std::vector<std::uint8_t> error = marshal::build_message(stamped, body);
    core::OutgoingMessage outgoing;
    outgoing.cookie = stamped.serial;
    outgoing.destination_id = sender->id;
    outgoing.reply_cookie = item.cookie;
    outgoing.payload = payload_of(error);
    (void)bus_.send(holder, std::move(outgoing));
    if (!monitors_.empty()) {
        capture(error, {}, sender->unique_name);
    }
}

void BusDaemon::send_directly(Peer& peer, const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                              bool from_bus) {
    marshal::MessageSpec stamped = spec;
    stamped.serial = next_serial();
    stamped.sender = from_bus ? bus_name : std::string_view();
    stamped.flags |= marshal::flag::no_reply_expected;
    peer.client->send(payload_of(marshal::build_message(stamped, body)));
    dirty_.push_back(peer.client->fd());
}

void BusDaemon::send_error(Peer& peer, const transport::IncomingMessage& to, BusError error,
                           std::string_view text) {
    // As dbus-daemon, whatever was refused is answered, even a signal or a reply that asked for no reply
    // (monitors see it; clients ignore it).
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
    // Before Hello the peer has no core connection: write straight to its socket.
    spec.serial = next_serial();
    spec.sender = bus_name;
    spec.destination = {};
    peer.client->send(payload_of(marshal::build_message(spec, body)));
    dirty_.push_back(peer.client->fd());
}

}  // namespace busgate::bus
