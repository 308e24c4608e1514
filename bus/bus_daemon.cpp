#include "bus/bus_daemon.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>

#include "bus/activation.h"
#include "bus/driver.h"
#include "bus/endpoints.h"
#include "busgate/marshal/names.h"
#include "busgate/marshal/reader.h"
#include "busgate/marshal/rewrite.h"
#include "busgate/util/users.h"

namespace busgate::bus {
namespace {

constexpr std::string_view bus_name = "org.freedesktop.DBus";

core::PayloadRef payload_of(const std::vector<std::uint8_t>& bytes, std::vector<util::UniqueFd> fds = {}) {
    const auto* begin = reinterpret_cast<const std::byte*>(bytes.data());
    return core::MessagePayload::make(std::span<const std::byte>(begin, bytes.size()), std::move(fds));
}

// <policy at_console="true">: as dbus-daemon on Linux, a user is at the console while pam_console's
// /var/run/console/USER exists (on systems without pam_console, never).
bool at_console(const std::string& directory, std::uint32_t uid) {
    const auto user = util::user_by_uid(uid);
    return user && ::access((directory + "/" + user->name).c_str(), F_OK) == 0;
}

// A copy of a message for a monitor or eavesdropper, with its own duplicates of the message's fds.
core::PayloadRef copy_of(std::span<const std::uint8_t> bytes, std::span<const util::UniqueFd> fds) {
    std::vector<util::UniqueFd> duplicates;
    for (const util::UniqueFd& fd : fds) {
        duplicates.emplace_back(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    }
    return payload_of(std::vector<std::uint8_t>(bytes.begin(), bytes.end()), std::move(duplicates));
}

// dbus-daemon's complaint about a message it will not deliver: "WHY, N matched rules; type=... ".
std::string complaint(std::string_view why, std::size_t matched_rules, const marshal::MessageHeader& header,
                      std::string_view sender, bool requested_reply) {
    const auto text = [](std::string_view value) {
        return value.empty() ? std::string("(unset)") : std::string(value);
    };
    return std::string(why) + ", " + std::to_string(matched_rules) + " matched rules; type=\"" +
           std::string(message_type_name(header.type)) + "\", sender=\"" + std::string(sender) +
           "\" interface=\"" + text(header.interface) + "\" member=\"" + text(header.member) +
           "\" error name=\"" + text(header.error_name) + "\" requested_reply=\"" +
           (requested_reply ? "1" : "0") + "\" destination=\"" + text(header.destination) + "\"";
}

std::string rejection_text(const policy::RouteDecision& decision, const marshal::MessageHeader& header,
                           std::string_view sender) {
    return complaint(decision.verdict == policy::Verdict::send_denied ? "Rejected send message"
                                                                      : "Rejected receive message",
                     decision.decision.matched_rules, header, sender, decision.requested_reply);
}

}  // namespace

std::vector<std::uint8_t> stamped_message(const transport::IncomingMessage& message,
                                          std::string_view sender) {
    std::vector<std::uint8_t> stamped;
    marshal::rewrite_header_with_sender(message.bytes, message.header, sender, stamped);
    const auto body = marshal::body_of(message.bytes, message.header);
    stamped.insert(stamped.end(), body.begin(), body.end());
    return stamped;
}

BusDaemon::BusDaemon(transport::EventLoop& loop, DaemonOptions options)
    : loop_(loop), options_(std::move(options)), guid_(transport::make_guid()), bus_(options_.core) {
    if (options_.policy) {
        policy_.emplace(*options_.policy);
    }
    driver_ = std::make_unique<Driver>(*this);
    core::HelloParams driver;
    driver.credentials.uid = options_.bus_uid;
    driver.credentials.pid = ::getpid();
    driver.flags = core::hello_flag::bus_driver;
    driver.description = std::string(bus_name);
    driver_id_ = bus_.hello(std::move(driver)).value();
    // The driver hears of every owner change and every connection, and re-broadcasts them as signals.
    for (const auto type : {core::NotificationType::name_add, core::NotificationType::name_remove,
                            core::NotificationType::name_change, core::NotificationType::id_add,
                            core::NotificationType::id_remove}) {
        core::NotificationMatch match;
        match.cookie = static_cast<std::uint64_t>(type);
        match.type = type;
        (void)bus_.add_match(driver_id_, std::move(match));
    }
    endpoints_ = std::make_unique<Endpoints>(*this);
    activation_ = std::make_unique<Activation>(*this);
    (void)activation_->load(options_.service_dirs);
    loop_.set_idle([this] {
        for (const int fd : std::exchange(dirty_, {})) {
            if (const auto found = peers_.find(fd); found != peers_.end()) {
                flush(*found->second);
            }
        }
    });
}

BusDaemon::~BusDaemon() {
    stop();
    activation_.reset();
    endpoints_.reset();
}

void BusDaemon::reload_services(const std::vector<policy::ServiceDir>& directories) {
    // dbus-daemon signals every reload (ReloadConfig, SIGHUP, a change in a watched directory), whether or
    // not the names changed.
    (void)activation_->load(directories);
    send_from_bus({.type = marshal::MessageType::signal,
                   .path = "/org/freedesktop/DBus",
                   .interface = "org.freedesktop.DBus",
                   .member = "ActivatableServicesChanged"},
                  marshal::BodyWriter());
    deliver();
}

bool BusDaemon::start(std::string& error) {
    for (const std::string& address : options_.listen) {
        const transport::ParsedAddress parsed = transport::parse_address(address);
        if (!parsed.error.empty()) {
            error = "Failed to listen on \"" + address + "\": " + parsed.error;
            return false;
        }
        for (const transport::AddressEntry& entry : parsed.entries) {
            transport::ListenResult result = transport::listen_on(entry, options_.runtime_directory);
            if (!result.error.empty()) {
                error = result.error;
                return false;
            }
            for (transport::Listener& listener : result.listeners) {
                listeners_.push_back(std::move(listener));
            }
        }
    }
    for (const transport::Listener& listener : listeners_) {
        loop_.add(listener.fd.get(), EPOLLIN, [this, &listener](std::uint32_t) { accept(listener); });
    }
    if (auto problem = configure_endpoints(options_.endpoints)) {
        error = *problem;
        return false;
    }
    return true;
}

std::optional<std::string> BusDaemon::configure_endpoints(
    const std::vector<policy::EndpointConfig>& endpoints) {
    auto problem = endpoints_->configure(endpoints);
    deliver();
    return problem;
}

std::string BusDaemon::address() const {
    std::string joined;
    std::string_view previous;
    for (const transport::Listener& listener : listeners_) {
        if (listener.connectable == previous) {
            continue;  // one tcp address may have several sockets (IPv4 and IPv6)
        }
        previous = listener.connectable;
        if (!joined.empty()) {
            joined += ';';
        }
        joined += listener.connectable + ",guid=" + guid_;
    }
    return joined;
}

void BusDaemon::stop() {
    for (transport::Listener& listener : listeners_) {
        loop_.remove(listener.fd.get());
        if (!listener.unlink_path.empty()) {
            ::unlink(listener.unlink_path.c_str());
        }
        if (!listener.nonce_file.empty()) {
            ::unlink(listener.nonce_file.c_str());
            ::rmdir(std::filesystem::path(listener.nonce_file).parent_path().c_str());
        }
    }
    listeners_.clear();
}

void BusDaemon::accept(const transport::Listener& listener) {
    for (;;) {
        util::UniqueFd socket(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!socket) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                pause_accepting();  // level-triggered: watching on would spin until an fd frees up
            }
            return;
        }
        transport::PeerCredentials credentials =
            listener.is_unix ? transport::read_peer_credentials(socket.get()) : transport::PeerCredentials{};
        transport::SaslOptions sasl{.guid = guid_,
                                    .mechanisms = options_.auth_mechanisms,
                                    .unix_fd_possible = listener.is_unix,
                                    .server_uid = options_.bus_uid,
                                    .keyring_directory = options_.keyring_directory};
        if (listener.endpoint != core::default_endpoint && !endpoints_->admit(listener.endpoint)) {
            continue;  // the endpoint has all the connections it may have
        }
        if (incomplete_ >= options_.max_incomplete_connections) {
            drop_oldest_incomplete();
        }
        auto peer = std::make_unique<Peer>();
        peer->endpoint = listener.endpoint;
        peer->client = std::make_unique<transport::Connection>(
            std::move(socket), std::move(credentials), std::move(sasl), options_.client, listener.nonce);
        peer->auth_deadline = transport::EventLoop::now() + options_.auth_timeout_ns;
        peer->listener_address = listener.connectable;
        ++counters_.connections_accepted;
        const int fd = peer->client->fd();
        loop_.add(fd, EPOLLIN, [this, fd](std::uint32_t events) { on_client_event(fd, events); });
        peers_[fd] = std::move(peer);
        ++incomplete_;
        arm_timer();
    }
}

void BusDaemon::on_client_event(int fd, std::uint32_t events) {
    const auto found = peers_.find(fd);
    if (found == peers_.end()) {
        return;
    }
    Peer& peer = *found->second;
    if (events & EPOLLOUT) {
        flush(peer);
        if (peers_.find(fd) == peers_.end()) {
            return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }
    const bool was_authenticated = peer.client->authenticated();
    const bool had_pending_fds = peer.client->pending_fds_since() != 0;
    std::vector<transport::IncomingMessage> messages;
    std::string reason;
    const bool alive = peer.client->read(messages, reason);
    if (!was_authenticated && peer.client->authenticated()) {
        if (peer.client->sasl().authenticated_anonymously() && !options_.allow_anonymous) {
            disconnect(peer, "anonymous authentication is not allowed");
            return;
        }
        if (policy_ && !peer.client->sasl().authenticated_anonymously()) {
            const std::uint32_t uid = peer.client->sasl().authorized_uid().value_or(~0u);
            const auto& groups = peer.client->credentials().groups;
            if (!policy_->allows_connection(uid, std::span<const std::uint32_t>(groups.data(), groups.size()),
                                            uid == options_.bus_uid)) {
                disconnect(peer, "the policy does not let this user connect");
                return;
            }
        }
    }
    if (peer.client->has_output()) {
        dirty_.push_back(fd);
    }
    for (transport::IncomingMessage& message : messages) {
        handle_message(peer, std::move(message));
        if (peers_.find(fd) == peers_.end()) {
            return;  // the message got its sender disconnected
        }
        settle(peer);
        if (!monitors_.empty()) {
            deliver();  // monitors see each message's consequences before the next message
        }
    }
    deliver();
    if (options_.reply_timeout_ns || (!had_pending_fds && peer.client->pending_fds_since() != 0)) {
        arm_timer();
    }
    if (!alive) {
        if (const auto still = peers_.find(fd); still != peers_.end()) {
            disconnect(*still->second, reason);
        }
    }
}

void BusDaemon::handle_message(Peer& peer, transport::IncomingMessage message) {
    if (message.header.type == marshal::MessageType::invalid ||
        static_cast<unsigned>(message.header.type) > static_cast<unsigned>(marshal::MessageType::signal)) {
        return;  // a type this bus does not know: dropped, as dbus-daemon drops it, past no rule
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
    if (!monitors_.empty() && peer.registered() && !activates &&
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
        if (eavesdroppers_ > 0 && peer.registered() &&
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
        const std::uint64_t started = transport::EventLoop::now();
        route(peer, message, activates);
        const double seconds = static_cast<double>(transport::EventLoop::now() - started) / 1e9;
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

void BusDaemon::route(Peer& peer, transport::IncomingMessage& message, bool capture_here) {
    const marshal::MessageHeader& header = message.header;
    core::OutgoingMessage outgoing;
    outgoing.cookie = header.serial;
    if (header.type == marshal::MessageType::method_call &&
        !(header.flags & marshal::flag::no_reply_expected)) {
        outgoing.flags |= core::message_flag::expect_reply;
        if (options_.reply_timeout_ns) {
            outgoing.timeout = transport::EventLoop::now() + *options_.reply_timeout_ns;
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
        if (header.type != marshal::MessageType::signal) {
            return;  // without a destination only signals go anywhere (and only eavesdroppers see the rest)
        }
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
    static thread_local std::vector<std::uint8_t> stamped_header;
    marshal::rewrite_header_with_sender(message.bytes, header, peer.unique_name, stamped_header);
    const auto body = marshal::body_of(message.bytes, header);
    auto payload = std::make_shared<core::MessagePayload>();
    // reserve and append rather than resize and copy: a zero fill first would touch a large body twice.
    payload->bytes.reserve(stamped_header.size() + body.size());
    const auto* header_bytes = reinterpret_cast<const std::byte*>(stamped_header.data());
    const auto* body_bytes = reinterpret_cast<const std::byte*>(body.data());
    payload->bytes.insert(payload->bytes.end(), header_bytes, header_bytes + stamped_header.size());
    payload->bytes.insert(payload->bytes.end(), body_bytes, body_bytes + body.size());
    payload->fds = std::move(message.fds);
    const core::PayloadRef payload_bytes = payload;
    const bool outgoing_is_unicast = outgoing.destination_id != core::broadcast_destination;
    outgoing.payload = std::move(payload);

    if (policy_ && outgoing.destination_id != core::broadcast_destination) {
        core::ConnectionId target = outgoing.destination_id;
        if (target == 0) {
            if (auto owner = bus_.name_owner(peer.id, header.destination)) {
                target = *owner;
            }
        }
        Peer* recipient = target != 0 ? find_peer(target) : nullptr;
        // The endpoint's rules hold for every message it sends that is not a reply: calls and unicast
        // signals.
        if (peer.endpoint != core::default_endpoint &&
            (header.type == marshal::MessageType::method_call ||
             header.type == marshal::MessageType::signal) &&
            !endpoint_allows_call(peer, message, target)) {
            return;
        }
        // Without a recipient yet (an activation), dbus-daemon checks what it can: the send rules against
        // the destination name; the rest waits for the service.
        if ((recipient != nullptr || capture_here) && !policy_allows(&peer, recipient, message)) {
            return;
        }
    }

    const std::string_view destination = header.destination;  // message outlives this function
    const auto sent = outgoing.destination_id == 0 && outgoing.destination_name.empty()
                          ? core::Result<core::SendReceipt>(core::Error::no_such_connection)
                          : bus_.send(peer.id, std::move(outgoing));
    if (sent && activation_->is_activator(sent->destination)) {
        awaiting_activation_.insert(payload_bytes.get());
        activation_->queued(sent->destination);
    }
    if (capture_here && !monitors_.empty()) {
        const auto* data = reinterpret_cast<const std::uint8_t*>(payload_bytes->bytes.data());
        capture(std::span<const std::uint8_t>(data, payload_bytes->bytes.size()), peer.unique_name, {},
                payload_bytes->fds);
    }
    if (sent) {
        count_routed(header.type, std::span<const std::uint8_t>(
                                      reinterpret_cast<const std::uint8_t*>(payload_bytes->bytes.data()),
                                      payload_bytes->bytes.size()));
        if (eavesdroppers_ > 0 && outgoing_is_unicast) {
            Peer* recipient = find_peer(sent->destination);
            deliver();  // the eavesdroppers' earlier messages go first
            const auto* data = reinterpret_cast<const std::uint8_t*>(payload_bytes->bytes.data());
            eavesdrop(peer, std::span<const std::uint8_t>(data, payload_bytes->bytes.size()), recipient,
                      payload_bytes->fds);
        }
        return;
    }
    switch (sent.error()) {
        case core::Error::name_has_no_owner:
        case core::Error::no_such_connection:
        case core::Error::activation_disabled:
            if (header.flags & marshal::flag::no_auto_start) {
                send_error(peer, message, "org.freedesktop.DBus.Error.NameHasNoOwner",
                           "Name \"" + std::string(destination) + "\" does not exist");
            } else {
                send_error(
                    peer, message, "org.freedesktop.DBus.Error.ServiceUnknown",
                    "The name " + std::string(destination) + " was not provided by any .service files");
            }
            break;
        case core::Error::permission_denied:
            ++counters_.denials[BusCounters::core_denied];
            send_error(peer, message, "org.freedesktop.DBus.Error.AccessDenied",
                       "Rejected send message, 0 matched rules; type=\"" +
                           std::string(message_type_name(header.type)) + "\", sender=\"" + peer.unique_name +
                           "\", destination=\"" + std::string(destination) + "\"");
            break;
        case core::Error::fds_not_accepted:
            send_error(
                peer, message, "org.freedesktop.DBus.Error.NotSupported",
                "Tried to send message with Unix file descriptors to a client that doesn't support that.");
            break;
        case core::Error::queue_full:
            ++counters_.quota_hits[BusCounters::outgoing_queue];
            send_error(peer, message, "org.freedesktop.DBus.Error.LimitsExceeded",
                       complaint("Rejected: destination has a full message queue", 0, header,
                                 peer.unique_name, false));
            break;
        case core::Error::too_many_pending_replies:
            ++counters_.quota_hits[BusCounters::pending_replies];
            send_error(peer, message, "org.freedesktop.DBus.Error.LimitsExceeded",
                       "The maximum number of pending replies per connection has been reached");
            break;
        case core::Error::unexpected_reply:
            // Refused as dbus-broker refuses it; told as dbus-daemon tells a reply its policy denies.
            send_error(peer, message, "org.freedesktop.DBus.Error.AccessDenied",
                       complaint("Rejected send message", 0, header, peer.unique_name, false) +
                           " (the reply answers no call awaiting it)");
            break;
        default:
            ++counters_.quota_hits[BusCounters::core_limit];
            send_error(peer, message, "org.freedesktop.DBus.Error.LimitsExceeded",
                       std::string(core::describe(sent.error())));
            break;
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
    send_error(peer, message, "org.freedesktop.DBus.Error.AccessDenied",
               "Rejected send message: the endpoint of \"" + peer.unique_name + "\" does not allow calling " +
                   std::string(header.interface) + "." + std::string(header.member) + " at " +
                   std::string(header.path) + " on \"" + std::string(header.destination) + "\"");
    return false;
}

bool BusDaemon::allowed_after_activation(Peer& recipient, const core::QueueItem& item) {
    if (!policy_) {
        return true;
    }
    Peer* sender = find_peer(item.sender);
    if (sender == nullptr) {
        return item.sender == driver_id_;
    }
    const auto* data = reinterpret_cast<const std::uint8_t*>(item.payload->bytes.data());
    const std::span<const std::uint8_t> bytes(data, item.payload->bytes.size());
    marshal::MessageHeader header;
    if (marshal::parse_header(bytes, header) != marshal::Validity::valid) {
        return false;
    }
    const policy::PreparedMessage prepared = policy_->prepare(policy_view(header));
    policy::Route route;
    route.sender = &sender->policy;
    route.sender_names = &names_of(*sender);
    route.recipient = &recipient.policy;
    route.recipient_names = &names_of(recipient);
    const policy::RouteDecision decision = policy_->check_route(prepared, route);
    if (decision.verdict == policy::Verdict::allowed) {
        return true;
    }
    refuse_queued(recipient.id, item, "org.freedesktop.DBus.Error.AccessDenied",
                  rejection_text(decision, header, sender->unique_name));
    return false;
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

void BusDaemon::capture(std::span<const std::uint8_t> bytes, std::string_view sender,
                        std::string_view recipient, std::span<const util::UniqueFd> fds) {
    marshal::MessageHeader header;
    if (marshal::parse_header(bytes, header) != marshal::Validity::valid) {
        return;
    }
    const MessageView view(bytes, header);
    const MessageParties parties{.sender = sender, .addressed_recipient = recipient, .names = &names_};
    core::PayloadRef copy;
    for (const int fd : monitors_) {
        const auto found = peers_.find(fd);
        if (found == peers_.end()) {
            continue;
        }
        Peer& monitor = *found->second;
        if (!fds.empty() && !monitor.client->unix_fds_allowed()) {
            continue;
        }
        for (const MatchRule& rule : monitor.monitor_rules) {
            if (matches(rule, view, parties)) {
                if (!copy) {
                    copy = copy_of(bytes, fds);
                }
                monitor.client->send(copy);
                dirty_.push_back(fd);
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
    for (auto& [fd, other] : peers_) {
        Peer& listener = *other;
        // A container endpoint hears only what is addressed to it or broadcast: never eavesdrops.
        if (!listener.eavesdrops() || &listener == recipient || !listener.registered() ||
            listener.endpoint != core::default_endpoint ||
            (!fds.empty() && !listener.client->unix_fds_allowed())) {
            continue;
        }
        bool wanted_here = false;
        for (const InstalledMatch& installed : listener.matches) {
            if (installed.rule.eavesdrop && matches(installed.rule, view, parties)) {
                wanted_here = true;
                break;
            }
        }
        if (!wanted_here) {
            continue;
        }
        if (policy_) {
            policy::Route route;
            route.sender = &sender.policy;
            route.sender_names = &names_of(sender);
            route.recipient = &listener.policy;
            route.recipient_names = &names_of(listener);
            route.eavesdropping = true;
            if (policy_->check_route(policy_->prepare(policy_view(header)), route).verdict !=
                policy::Verdict::allowed) {
                continue;
            }
        }
        if (!copy) {
            copy = copy_of(bytes, fds);
        }
        listener.client->send(copy);
        dirty_.push_back(fd);
    }
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
    registered_.erase(peer.id);
    eavesdroppers_ -= peer.eavesdrops() ? 1 : 0;
    peer.eavesdrop_rules = 0;
    peer.matches.clear();
    (void)bus_.bye(peer.id);
    peer.id = 0;
    deliver();
    for (MatchRule& rule : rules) {
        rule.eavesdrop = true;  // monitors always eavesdrop
    }
    peer.monitor_rules = std::move(rules);
    peer.monitor = true;
    monitors_.push_back(peer.client->fd());
}

void BusDaemon::send_error(Peer& peer, const transport::IncomingMessage& to, std::string_view name,
                           std::string_view text) {
    // As dbus-daemon, whatever was refused is answered, even a signal or a reply that asked for no reply
    // (monitors see it; clients ignore it).
    marshal::BodyWriter body;
    body.string(text);
    marshal::MessageSpec spec{.type = marshal::MessageType::error,
                              .error_name = name,
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

const BusDaemon::InstalledMatch* BusDaemon::Peer::match(std::uint64_t cookie) const {
    for (const InstalledMatch& installed : matches) {
        if (installed.cookie == cookie) {
            return &installed;
        }
    }
    return nullptr;
}

bool BusDaemon::Names::is_primary_owner(std::string_view unique_name,
                                        std::string_view well_known_name) const {
    const auto owner = daemon_.bus_.name_owner(daemon_.driver_id_, well_known_name);
    return owner.ok() && *owner == id_of_unique_name(unique_name);
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
    const auto* data = reinterpret_cast<const std::uint8_t*>(item.payload->bytes.data());
    const std::span<const std::uint8_t> bytes(data, item.payload->bytes.size());
    marshal::MessageHeader header;
    // Validated when it arrived; this runs once per receiver of one shared message.
    if (marshal::parse_validated_header(bytes, header) != marshal::Validity::valid) {
        return false;
    }
    if (policy_) {
        Peer* sender = from_driver ? nullptr : find_peer(item.sender);
        const policy::PreparedMessage prepared = policy_->prepare(policy_view(header));
        policy::Route route;
        if (sender != nullptr) {
            route.sender = &sender->policy;
            route.sender_names = &names_of(*sender);
        }
        route.recipient = &peer.policy;
        route.recipient_names = &names_of(peer);
        if (!from_driver && sender == nullptr) {
            return false;  // the sender left before its broadcast was delivered: its send rules are unknown
        }
        const policy::RouteDecision decision = policy_->check_route(prepared, route);
        if (decision.verdict != policy::Verdict::allowed) {
            ++counters_
                  .denials[decision.verdict == policy::Verdict::send_denied ? BusCounters::send_denied
                                                                            : BusCounters::receive_denied];
            if (!broadcast && from_driver && !monitors_.empty()) {
                // A driver message the receiver may not have: dbus-daemon shows monitors the error it
                // addresses to itself.
                marshal::BodyWriter body;
                body.string(rejection_text(decision, header, bus_name));
                capture(marshal::build_message({.type = marshal::MessageType::error,
                                                .flags = marshal::flag::no_reply_expected,
                                                .serial = next_serial(),
                                                .error_name = "org.freedesktop.DBus.Error.AccessDenied",
                                                .destination = bus_name,
                                                .sender = bus_name,
                                                .reply_serial = header.serial},
                                               body),
                        {}, {});
            }
            if (broadcast && sender != nullptr && !monitors_.empty()) {
                // dbus-daemon shows monitors the error a rejected broadcast would have caused; the sender,
                // which expects no reply, gets nothing.
                marshal::BodyWriter body;
                body.string(rejection_text(decision, header, sender->unique_name));
                marshal::MessageSpec spec{.type = marshal::MessageType::error,
                                          .flags = marshal::flag::no_reply_expected,
                                          .serial = next_serial(),
                                          .error_name = "org.freedesktop.DBus.Error.AccessDenied",
                                          .destination = sender->unique_name,
                                          .sender = bus_name,
                                          .reply_serial = header.serial};
                capture(marshal::build_message(spec, body), {}, sender->unique_name);
            }
            return false;
        }
        if (!broadcast) {
            return true;
        }
    }
    const MessageView view(bytes, header);
    const std::string sender = item.sender == driver_id_ ? std::string() : unique_name_of(item.sender);
    const MessageParties parties{.sender = sender, .addressed_recipient = {}, .names = &names_};
    for (const std::uint64_t cookie : item.matched.view()) {
        const InstalledMatch* installed = peer.match(cookie);
        if (installed != nullptr && matches(installed->rule, view, parties)) {
            return true;
        }
    }
    return false;
}

bool BusDaemon::endpoint_may_hear(Peer& peer, const core::QueueItem& item) {
    const auto* data = reinterpret_cast<const std::uint8_t*>(item.payload->bytes.data());
    const std::span<const std::uint8_t> bytes(data, item.payload->bytes.size());
    marshal::MessageHeader header;
    if (marshal::parse_header(bytes, header) != marshal::Validity::valid) {
        return false;
    }
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
    marshal::BodyReader reader(bytes, header);
    const auto name = reader.read_string();
    if (!name) {
        return false;
    }
    if (!marshal::is_unique_name(*name)) {
        return bus_.can_see_name(*self, *name);
    }
    const core::Connection* subject = bus_.connection(id_of_unique_name(*name));
    return subject != nullptr && (subject == self || bus_.can_see_connection(*self, *subject));
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

void BusDaemon::assign_policy(Peer& peer) {
    const core::Connection* connection = bus_.connection(peer.id);
    if (!policy_ || connection == nullptr) {
        return;
    }
    std::vector<std::uint32_t> groups = connection->credentials().groups;
    groups.push_back(connection->credentials().gid);
    peer.policy = policy_->for_connection(
        {.uid = connection->credentials().uid,
         .groups = std::move(groups),
         .at_console = at_console(options_.console_directory, connection->credentials().uid)});
    peer.names_stale = true;
}

void BusDaemon::apply_policy(const policy::PolicyRules& rules) {
    policy_.emplace(rules);
    options_.policy = rules;  // what the web interface shows
    for (auto& [id, peer] : registered_) {
        assign_policy(*peer);
    }
}

const policy::PeerNames& BusDaemon::names_of(Peer& peer) {
    if (peer.names_stale) {
        // dbus-daemon matches send_destination against every name the receiver owns or waits for.
        std::vector<std::string> names;
        for (const core::ListEntry& entry :
             bus_.list(driver_id_, core::list_flag::names | core::list_flag::queued)) {
            if (entry.id == peer.id && !entry.name.empty()) {
                names.push_back(entry.name);
            }
        }
        names.push_back(peer.unique_name);
        peer.names = policy_->prepare_names(std::span<const std::string>(names));
        peer.names_stale = false;
    }
    return peer.names;
}

bool BusDaemon::policy_allows(Peer* sender, Peer* recipient, const transport::IncomingMessage& message) {
    if (!policy_) {
        return true;
    }
    const marshal::MessageHeader& header = message.header;
    policy::MessageInfo info = policy_view(header);
    info.sender = sender->unique_name;
    const policy::PreparedMessage prepared = policy_->prepare(info);
    policy::Route route;
    route.sender = &sender->policy;
    route.sender_names = &names_of(*sender);
    if (recipient != nullptr) {
        route.recipient = &recipient->policy;
        route.recipient_names = &names_of(*recipient);
    }
    // A reply the core accepts answers a pending call (the core refuses the others).
    route.reply_expected = header.has(marshal::HeaderField::reply_serial);
    const policy::RouteDecision decision = policy_->check_route(prepared, route);
    if (decision.verdict == policy::Verdict::allowed) {
        return true;
    }
    ++counters_.denials[decision.verdict == policy::Verdict::send_denied ? BusCounters::send_denied
                                                                         : BusCounters::receive_denied];
    send_error(*sender, message, "org.freedesktop.DBus.Error.AccessDenied",
               rejection_text(decision, header, sender->unique_name));
    return false;
}

BusDaemon::Peer* BusDaemon::find_peer(core::ConnectionId id) {
    const auto found = registered_.find(id);
    return found == registered_.end() ? nullptr : found->second;
}

void BusDaemon::deliver() {
    // Delivering can queue more (errors, the driver's signals), so go on until nothing is readable.
    // A disconnect during delivery calls back here; the running loop picks up what it queued.
    if (delivering_) {
        return;
    }
    delivering_ = true;
    for (;;) {
        driver_->process_notifications();
        readable_.clear();
        bus_.take_readable(readable_);
        if (readable_.empty()) {
            break;
        }
        for (const core::ConnectionId id : readable_) {
            if (activation_->is_activator(id)) {
                activation_->queued(id);  // its messages wait there for the service
            } else if (id != driver_id_) {
                deliver_to(id);
            }
        }
    }
    delivering_ = false;
}

void BusDaemon::deliver_to(core::ConnectionId id) {
    Peer* peer = find_peer(id);
    for (;;) {
        // A receiver that does not read is never cut off for it (dbus-daemon refuses the senders instead):
        // what does not fit its socket's output stays in the core's queue, whose limit refuses more.
        const core::QueueItem* next = bus_.peek(id);
        if (next == nullptr) {
            break;
        }
        if (peer != nullptr && next->kind == core::QueueItem::Kind::message &&
            !peer->client->can_take(*next->payload)) {
            peer->stalled = true;
            break;
        }
        auto item = bus_.receive(id);
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
            if (!peer->client->send(item->payload)) {
                // Room was checked before the item was taken and nothing here writes to this client since;
                // should that ever change, a lost message must not pass in silence.
                ++counters_.quota_hits[BusCounters::outgoing_queue];
                disconnect(*peer, "outgoing queue full after its room was checked");
                return;
            }
            continue;
        }
        const core::NotificationType type = item->notification.type;
        if (type == core::NotificationType::reply_timeout || type == core::NotificationType::reply_dead) {
            marshal::BodyWriter body;
            body.string(type == core::NotificationType::reply_dead
                            ? "Message recipient disconnected from message bus without replying"
                            : "Message did not receive a reply (timeout by message bus)");
            send_from_bus({.type = marshal::MessageType::error,
                           .error_name = "org.freedesktop.DBus.Error.NoReply",
                           .destination = peer->unique_name,
                           .reply_serial = static_cast<std::uint32_t>(item->reply_cookie)},
                          body);
        }
    }
    if (peer != nullptr && peer->client->has_output()) {
        dirty_.push_back(peer->client->fd());
    }
}

void BusDaemon::flush(Peer& peer) {
    if (!peer.client->flush()) {
        disconnect(peer, "write failed");
        return;
    }
    if (peer.stalled && peer.registered()) {
        // Room again: what waited in the core comes now (and may fill the socket again).
        peer.stalled = false;
        const int fd = peer.client->fd();
        deliver_to(peer.id);
        deliver();
        const auto still = peers_.find(fd);
        if (still == peers_.end()) {
            return;
        }
        (void)still->second->client->flush();
    }
    loop_.modify(peer.client->fd(), peer.client->has_output() ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

void BusDaemon::disconnect(Peer& peer, std::string_view /*reason*/) {
    const int fd = peer.client->fd();
    if (peer.incomplete) {
        --incomplete_;
    }
    if (peer.endpoint != core::default_endpoint) {
        endpoints_->left(peer.endpoint);
    }
    if (peer.registered()) {
        const core::ConnectionId id = peer.id;
        endpoints_->creator_left(id);
        if (peers_.find(fd) == peers_.end()) {
            return;  // it was a member of an endpoint it created, and went with it
        }
        registered_.erase(id);
        (void)bus_.bye(id);
    }
    if (peer.eavesdrops()) {
        --eavesdroppers_;
    }
    if (peer.monitor) {
        std::erase(monitors_, fd);
    }
    loop_.remove(fd);
    // Best effort: errors queued for a misbehaving client (e.g. before Hello) still go out.
    (void)peer.client->flush();
    peers_.erase(fd);
    if (accept_resume_at_ != 0) {
        resume_accepting();  // an fd is free again
    }
    deliver();
}

void BusDaemon::settle(Peer& peer) {
    if (peer.incomplete && peer.registered()) {
        peer.incomplete = false;
        --incomplete_;
    }
}

void BusDaemon::drop_oldest_incomplete() {
    Peer* oldest = nullptr;
    for (const auto& [fd, peer] : peers_) {
        if (peer->incomplete && (oldest == nullptr || peer->auth_deadline < oldest->auth_deadline)) {
            oldest = peer.get();
        }
    }
    if (oldest != nullptr) {
        disconnect(*oldest, "too many incomplete connections");
    }
}

void BusDaemon::pause_accepting() {
    for (const transport::Listener& listener : listeners_) {
        loop_.modify(listener.fd.get(), 0);
    }
    accept_resume_at_ = transport::EventLoop::now() + 100'000'000;  // 100 ms
    arm_timer();
}

void BusDaemon::resume_accepting() {
    accept_resume_at_ = 0;
    for (const transport::Listener& listener : listeners_) {
        loop_.modify(listener.fd.get(), EPOLLIN);
    }
}

void BusDaemon::arm_timer() {
    std::optional<std::uint64_t> deadline = bus_.next_deadline();
    if (const auto activation = activation_ ? activation_->next_deadline() : std::nullopt;
        activation && (!deadline || *activation < *deadline)) {
        deadline = activation;
    }
    const auto earlier = [&deadline](std::uint64_t at) {
        if (!deadline || at < *deadline) {
            deadline = at;
        }
    };
    for (const auto& [fd, peer] : peers_) {
        if (peer->incomplete) {
            earlier(peer->auth_deadline);
        }
        if (const std::uint64_t since = peer->client->pending_fds_since(); since != 0) {
            earlier(since + peer->client->limits().pending_fd_timeout_ns);
        }
    }
    if (accept_resume_at_ != 0) {
        earlier(accept_resume_at_);
    }
    loop_.set_timer(deadline, [this] { on_timer(); });
}

void BusDaemon::on_timer() {
    const std::uint64_t now = transport::EventLoop::now();
    bus_.expire(now);
    activation_->expire(now);
    if (accept_resume_at_ != 0 && accept_resume_at_ <= now) {
        resume_accepting();
    }
    std::vector<std::pair<int, std::string_view>> late;
    for (const auto& [fd, peer] : peers_) {
        if (peer->incomplete && peer->auth_deadline <= now) {
            late.emplace_back(fd, "authentication timed out");
        } else if (const std::uint64_t since = peer->client->pending_fds_since();
                   since != 0 && since + peer->client->limits().pending_fd_timeout_ns <= now) {
            late.emplace_back(fd, "file descriptors pending too long for their message");
        }
    }
    for (const auto& [fd, reason] : late) {
        if (const auto found = peers_.find(fd); found != peers_.end()) {
            disconnect(*found->second, reason);
        }
    }
    deliver();
    arm_timer();
}

}  // namespace busgate::bus
