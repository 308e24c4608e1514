// Ingress: what a client sent becomes a core send, through the policy gate, with errors folded once.
#include <cstddef>
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
#include "busgate/util/clock.h"

namespace busgate::bus {
namespace {

using marshal::bus_name;

}  // namespace

void BusDaemon::handle_message(Peer& peer, transport::IncomingMessage message) {
    if (message.header.type == marshal::MessageType::invalid ||
        static_cast<unsigned>(message.header.type) > static_cast<unsigned>(marshal::MessageType::signal)) {
        return;  // a type this bus does not know: dropped, as dbus-daemon drops it, past no rule
    }
    if (logs(peer)) {
        log_endpoint(peer, outgoing_log_line(message.header));
    }
    if (peer.monitor) {
        // dbus-daemon: "Monitoring connection ... is not allowed to send messages; closing it".
        disconnect(peer, "a monitor sent a message");
        return;
    }
    // A message that starts a service reaches monitors after the activation request it causes.
    const bool activates = peer.registered() && !(message.header.flags & marshal::flag::no_auto_start) &&
                           !message.header.destination.empty() && message.header.destination != bus_name &&
                           !marshal::is_unique_name(message.header.destination) &&
                           activation_->would_activate(message.header.destination);
    // dbus-daemon shows monitors only the method calls among what is addressed to the bus itself.
    const bool to_bus = message.header.destination == bus_name;
    if (peers_.has_monitors() && peer.registered() && !activates &&
        (!to_bus || message.header.type == marshal::MessageType::method_call)) {
        const std::vector<std::uint8_t> stamped = stamped_message(message, peer.unique_name);
        std::string recipient;
        if (marshal::is_unique_name(message.header.destination)) {
            recipient = message.header.destination;
        } else if (!message.header.destination.empty() && message.header.destination != bus_name) {
            if (auto owner = bus_.name_owner(peer.id, message.header.destination)) {
                recipient = unique_name_of(*owner);
            }
        }
        capture(stamped, peer.unique_name, recipient, message.fds);
    }
    if (message.header.destination.empty() && message.header.type == marshal::MessageType::method_call) {
        // Not for any connection: dbus-daemon answers it itself, as the peer at the other end of the
        // socket (Peer methods even before Hello), unseen by monitors. xdg-dbus-proxy relies on it.
        if (peer.registered() || message.header.interface == "org.freedesktop.DBus.Peer") {
            driver_->answer_as_peer(peer, message);
        } else {
            disconnect(peer, "sent a message other than Hello before Hello");
        }
        return;
    }
    if (message.header.destination == bus_name) {
        if (peer.registered() && !policy_allows(&peer, nullptr, message)) {
            return;
        }
        if (observer_ && observer_->watching() && peer.registered()) {
            count_routed(message.header.type, stamped_message(message, peer.unique_name));
        } else {
            count_routed(message.header.type, message.bytes);
        }
        if (peers_.has_eavesdroppers() && peer.registered() &&
            message.header.type == marshal::MessageType::method_call) {
            eavesdrop(peer, stamped_message(message, peer.unique_name), nullptr, message.fds);
        }
        driver_->handle(peer, message);
        return;
    }
    if (!peer.registered()) {
        // dbus-daemon closes such a connection without an answer.
        disconnect(peer, "sent a message other than Hello before Hello");
        return;
    }
    if (observer_) {
        const std::uint64_t started = util::monotonic_ns();
        route(peer, message, activates);
        const double seconds = static_cast<double>(util::monotonic_ns() - started) / 1e9;
        std::size_t bucket = 0;
        while (bucket < latency_buckets.size() && seconds > latency_buckets[bucket]) {
            ++bucket;
        }
        ++counters_.latency[bucket];
        ++counters_.latency_count;
        counters_.latency_sum += seconds;
        return;
    }
    route(peer, message, activates);
}

core::OutgoingMessage BusDaemon::translate(Peer& peer, transport::IncomingMessage& message) {
    const marshal::MessageHeader& header = message.header;
    core::OutgoingMessage outgoing;
    outgoing.cookie = header.serial;
    if (header.type == marshal::MessageType::method_call &&
        !(header.flags & marshal::flag::no_reply_expected)) {
        outgoing.flags |= core::message_flag::expect_reply;
        if (options_.reply_timeout_ns) {
            outgoing.timeout = util::monotonic_ns() + *options_.reply_timeout_ns;
        }
    }
    if (header.flags & marshal::flag::no_auto_start) {
        outgoing.flags |= core::message_flag::no_auto_start;
    }
    if (header.type == marshal::MessageType::method_return || header.type == marshal::MessageType::error) {
        outgoing.reply_cookie = header.reply_serial;
    }
    if (header.type == marshal::MessageType::signal) {
        outgoing.flags |= core::message_flag::signal;
    }
    if (header.destination.empty()) {
        outgoing.destination_id = core::broadcast_destination;
        if (bus_.matches().has_message_rules()) {  // else it reaches no one: spare the hashing
            outgoing.bloom = bloom_filter_of(message.bytes, header);
        }
    } else if (marshal::is_unique_name(header.destination)) {
        outgoing.destination_id = id_of_unique_name(header.destination);
    } else {
        outgoing.destination_name = header.destination;
    }

    // One buffer for every receiver: the stamped header, then the body as the client sent it.
    outgoing.payload = RoutedMessage::stamped(message, peer.unique_name);
    return outgoing;
}

bool BusDaemon::passes_gate(Peer& peer, const transport::IncomingMessage& message,
                            const core::OutgoingMessage& outgoing, bool capture_here) {
    if (!policy_ || outgoing.destination_id == core::broadcast_destination) {
        return true;
    }
    const marshal::MessageHeader& header = message.header;
    core::ConnectionId target = outgoing.destination_id;
    if (target == 0) {
        if (auto owner = bus_.name_owner(peer.id, header.destination)) {
            target = *owner;
        }
    }
    Peer* recipient = target != 0 ? peers_.find(target) : nullptr;
    // The endpoint's rules hold for every message it sends that is not a reply: calls and unicast signals.
    if (peer.endpoint != core::default_endpoint &&
        (header.type == marshal::MessageType::method_call || header.type == marshal::MessageType::signal) &&
        !endpoint_allows_call(peer, message, target)) {
        return false;
    }
    // Without a recipient yet (an activation), dbus-daemon checks what it can: the send rules against the
    // destination name; the rest waits for the service.
    return (recipient == nullptr && !capture_here) || policy_allows(&peer, recipient, message);
}

void BusDaemon::count_refusal(core::Error error) {
    switch (error) {
        case core::Error::permission_denied:
            ++counters_.denials[BusCounters::core_denied];
            break;
        case core::Error::queue_full:
            ++counters_.quota_hits[BusCounters::outgoing_queue];
            break;
        case core::Error::too_many_pending_replies:
            ++counters_.quota_hits[BusCounters::pending_replies];
            break;
        case core::Error::name_has_no_owner:
        case core::Error::no_such_connection:
        case core::Error::activation_disabled:
        case core::Error::fds_not_accepted:
        case core::Error::unexpected_reply:
            break;
        default:
            ++counters_.quota_hits[BusCounters::core_limit];
            break;
    }
}

void BusDaemon::route(Peer& peer, transport::IncomingMessage& message, bool capture_here) {
    const marshal::MessageHeader& header = message.header;
    if (header.destination.empty() && header.type != marshal::MessageType::signal) {
        return;  // without a destination only signals go anywhere (and only eavesdroppers see the rest)
    }
    core::OutgoingMessage outgoing = translate(peer, message);
    if (!passes_gate(peer, message, outgoing, capture_here)) {
        return;
    }
    const core::PayloadRef payload = outgoing.payload;
    const std::span<const std::uint8_t> bytes = payload->bytes;
    const bool unicast = outgoing.destination_id != core::broadcast_destination;
    const auto sent = outgoing.destination_id == 0 && outgoing.destination_name.empty()
                          ? core::Result<core::SendReceipt>(core::Error::no_such_connection)
                          : bus_.send(peer.id, std::move(outgoing));
    if (sent && activation_->is_activator(sent->destination)) {
        awaiting_activation_.insert(payload.get());
        activation_->queued(sent->destination);
    }
    if (capture_here && peers_.has_monitors()) {
        capture(bytes, peer.unique_name, {}, payload->fds);
    }
    if (!sent) {
        count_refusal(sent.error());
        const Refusal refusal = refusal_of(sent.error(), header, peer.unique_name);
        return send_error(peer, message, refusal.error, refusal.text);
    }
    count_routed(header.type, bytes);
    if (peers_.has_eavesdroppers() && unicast) {
        Peer* recipient = peers_.find(sent->destination);
        deliver();  // the eavesdroppers' earlier messages go first
        eavesdrop(peer, bytes, recipient, payload->fds);
    }
}

void BusDaemon::count_routed(marshal::MessageType type, std::span<const std::uint8_t> bytes) {
    const auto index = static_cast<std::size_t>(type) - 1;  // method_call is 1
    if (index < BusCounters::type_count) {
        ++counters_.messages[index];
        counters_.bytes[index] += bytes.size();
    }
    if (observer_ && observer_->watching()) {
        observer_->routed(bytes);
    }
}

std::vector<std::string> BusDaemon::names_owned_by(core::ConnectionId id) const {
    std::vector<std::string> names;
    bus_.names().for_each_owned(id, [&names](const core::NameEntry& entry) { names.push_back(entry.name); });
    return names;
}

bool BusDaemon::endpoint_allows_call(Peer& peer, const transport::IncomingMessage& message,
                                     core::ConnectionId target) {
    const marshal::MessageHeader& header = message.header;
    std::vector<std::string> names;
    if (target != 0) {
        names = names_owned_by(target);
    } else if (!marshal::is_unique_name(header.destination)) {
        names.emplace_back(header.destination);  // an activatable name
    }
    // Calls to a connection the endpoint cannot see fail in the core, as ServiceUnknown; this is about
    // names it sees but may only call some methods of.
    const core::Connection* self = bus_.connection(peer.id);
    const core::Connection* callee = target != 0 ? bus_.connection(target) : nullptr;
    // A connection that does not exist and one it cannot see get the same answer from the core.
    if (self == nullptr || (target != 0 && callee == nullptr) ||
        (callee != nullptr && !bus_.can_see_connection(*self, *callee)) ||
        (target == 0 && !bus_.can_see_name(*self, header.destination)) ||
        endpoints_->may_call(peer.endpoint, names, header)) {
        return true;
    }
    send_error(peer, message, BusError::access_denied,
               "Rejected send message: the endpoint of \"" + peer.unique_name + "\" does not allow calling " +
                   std::string(header.interface) + "." + std::string(header.member) + " at " +
                   std::string(header.path) + " on \"" + std::string(header.destination) + "\"");
    return false;
}

policy::MessageInfo BusDaemon::policy_view(const marshal::MessageHeader& header) const {
    const auto field = [&header](marshal::HeaderField code, std::string_view value) {
        return header.has(code) ? std::optional<std::string_view>(value) : std::nullopt;
    };
    return {.type = header.type,
            .path = field(marshal::HeaderField::path, header.path),
            .interface = field(marshal::HeaderField::interface, header.interface),
            .member = field(marshal::HeaderField::member, header.member),
            .error_name = field(marshal::HeaderField::error_name, header.error_name),
            .destination = field(marshal::HeaderField::destination, header.destination),
            .sender = field(marshal::HeaderField::sender, header.sender),
            .has_reply_serial = header.has(marshal::HeaderField::reply_serial),
            .unix_fds = header.unix_fds};
}

const policy::PeerNames& BusDaemon::names_of(Peer& peer) {
    if (peer.names_stale) {
        // dbus-daemon matches send_destination against every name the receiver owns or waits for.
        // Its own memberships, not a listing of the bus: a RequestName costs the same with 10 names
        // on the bus as with 10,000.
        std::vector<std::string> names;
        bus_.names().for_each_membership(
            peer.id, [&names](const core::NameEntry& entry) { names.push_back(entry.name); });
        names.push_back(peer.unique_name);
        peer.names = policy_->prepare_names(std::span<const std::string>(names));
        peer.names_stale = false;
    }
    return peer.names;
}

policy::PreparedMessage BusDaemon::prepare(const Peer* sender, const marshal::MessageHeader& header) const {
    policy::MessageInfo info = policy_view(header);
    if (sender != nullptr) {
        info.sender = sender->unique_name;  // a client's own header has no SENDER until the router stamps it
    }
    return policy_->prepare(info);
}

policy::RouteDecision BusDaemon::policy_gate(Peer* sender, Peer* recipient,
                                             const marshal::MessageHeader& header, const GateCheck& check) {
    return policy_gate(sender, recipient, prepare(sender, header), check);
}

policy::RouteDecision BusDaemon::policy_gate(Peer* sender, Peer* recipient,
                                             const policy::PreparedMessage& prepared, const GateCheck& check) {
    policy::Route route;
    if (sender != nullptr) {
        route.sender = &sender->policy;
        route.sender_names = &names_of(*sender);
    }
    if (recipient != nullptr) {
        route.recipient = &recipient->policy;
        route.recipient_names = &names_of(*recipient);
    }
    route.eavesdropping = check.eavesdropping;
    route.reply_expected = check.reply_expected;
    return policy_->check_route(prepared, route);
}

void BusDaemon::count_denial(const policy::RouteDecision& decision) {
    ++counters_.denials[decision.verdict == policy::Verdict::send_denied ? BusCounters::send_denied
                                                                         : BusCounters::receive_denied];
}

bool BusDaemon::policy_allows(Peer* sender, Peer* recipient, const transport::IncomingMessage& message) {
    if (!policy_) {
        return true;
    }
    const marshal::MessageHeader& header = message.header;
    // A reply the core accepts answers a pending call (the core refuses the others).
    const policy::RouteDecision decision = policy_gate(
        sender, recipient, header, {.reply_expected = header.has(marshal::HeaderField::reply_serial)});
    if (decision.verdict == policy::Verdict::allowed) {
        return true;
    }
    count_denial(decision);
    send_error(*sender, message, BusError::access_denied,
               rejection_text(decision, header, sender->unique_name));
    return false;
}

}  // namespace busgate::bus
