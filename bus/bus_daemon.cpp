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
#include "bus/errors.h"
#include "bus/routed_message.h"
#include "busgate/marshal/names.h"
#include "busgate/marshal/protocol.h"
#include "busgate/marshal/reader.h"
#include "busgate/marshal/rewrite.h"
#include "busgate/policy/coarse.h"
#include "busgate/util/clock.h"
#include "busgate/util/users.h"

namespace busgate::bus {
namespace {

using marshal::bus_name;

// <policy at_console="true">: as dbus-daemon on Linux, a user is at the console while pam_console's
// /var/run/console/USER exists (on systems without pam_console, never).
bool at_console(const std::string& directory, std::uint32_t uid) {
    const auto user = util::user_by_uid(uid);
    return user && ::access((directory + "/" + user->name).c_str(), F_OK) == 0;
}

// The core's share of the XML policy (nothing to check without one, so then the core allows everything too).
std::vector<core::PolicyEntry> core_policy_of(const std::optional<policy::PolicyRules>& rules) {
    if (rules) {
        return policy::compile_coarse(*rules).entries;
    }
    return {{std::string(core::any_name), {{core::Grantee::world, 0, core::Access::own}}}};
}

}  // namespace

BusDaemon::BusDaemon(transport::EventLoop& loop, DaemonOptions options)
    : loop_(loop),
      options_(std::move(options)),
      guid_(options_.guid.value_or(transport::make_guid())),
      acceptor_(loop_,
                {.sasl = {.guid = guid_,
                          .mechanisms = options_.auth_mechanisms,
                          .server_uid = options_.bus_uid,
                          .keyring_directory = options_.keyring_directory},
                 .limits = options_.client,
                 .max_incomplete_connections = options_.max_incomplete_connections,
                 .auth_timeout_ns = options_.auth_timeout_ns},
                acceptor_handlers()),
      bus_(options_.core) {
    if (options_.policy) {
        policy_.emplace(*options_.policy);
        ++policy_generation_;
    }
    driver_ = std::make_unique<Driver>(*this);
    core::HelloParams driver;
    driver.credentials.uid = options_.bus_uid;
    driver.credentials.pid = ::getpid();
    driver.flags = core::hello_flag::bus_driver;
    driver.description = std::string(bus_name);
    driver_id_ = bus_.hello(std::move(driver)).value();
    core::HelloParams holder;
    holder.credentials.uid = options_.bus_uid;
    holder.credentials.pid = ::getpid();
    holder.flags = core::hello_flag::policy_holder;
    holder.name = std::string(bus_name);
    holder.policy = core_policy_of(options_.policy);
    holder.description = "policy holder";
    policy_holder_id_ = bus_.hello(std::move(holder)).value();
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
        // Before each wait: write out what was queued. A flush can disconnect its peer (a write error) or
        // let a stalled one take what waited in the core, and delivering that makes other sockets dirty:
        // go on until nothing is left unwritten that could be written now.
        read_fresh();
        while (!dirty_.empty()) {
            // Swapped, not moved out: both lists keep their capacity, so a wake-up allocates nothing.
            std::swap(flushing_, dirty_);
            for (const int fd : flushing_) {
                if (Peer* peer = peers_.at_socket(fd)) {
                    peer->dirty = false;
                    flush(*peer);
                }
            }
            flushing_.clear();
            deliver();
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
                acceptor_.add(std::move(listener));
            }
        }
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
    for (const transport::Listener& listener : acceptor_.listeners()) {
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
    acceptor_.close();
}

void BusDaemon::accepted(const transport::Listener& listener,
                         std::unique_ptr<transport::Connection> connection) {
    auto peer = std::make_unique<Peer>();
    peer->endpoint = listener.endpoint;
    peer->connection = std::move(connection);
    peer->listener_address = listener.connectable;
    ++counters_.connections_accepted;
    const int fd = peer->connection->fd();
    // Every event ends in one delivery of what it caused (deliver() is never called from inside itself).
    loop_.add(fd, EPOLLIN, [this, fd](std::uint32_t events) {
        on_client_event(fd, events);
        deliver();
    });
    peers_.add(std::move(peer));
    // A client writes its AUTH as soon as connect() returns, so it is most often there already: reading
    // it before the next wait, not after, saves that wait (one wake-up of the bus per connection).
    fresh_.push_back(fd);
    arm_timer();
}

void BusDaemon::read_fresh() {
    if (fresh_.empty()) {
        return;
    }
    std::swap(reading_, fresh_);
    for (const int fd : reading_) {
        // Gone already, or the fd is another connection's by now: either way nothing is lost, as a read
        // that finds nothing is a no-op and epoll still reports what comes later.
        if (peers_.at_socket(fd) != nullptr) {
            on_client_event(fd, EPOLLIN);
            deliver();
        }
    }
    reading_.clear();
}

transport::Acceptor::Handlers BusDaemon::acceptor_handlers() {
    return {
        .admit =
            [this](const transport::Listener& listener) {
                // A container endpoint may be full; the bus's own listeners take everyone.
                return listener.endpoint == core::default_endpoint || endpoints_->admit(listener.endpoint);
            },
        .accepted =
            [this](const transport::Listener& listener, std::unique_ptr<transport::Connection> connection) {
                accepted(listener, std::move(connection));
            },
        // Only connections that never said Hello are dropped here: nothing in the core to deliver.
        .drop =
            [this](int fd, std::string_view reason) {
                if (Peer* peer = peers_.at_socket(fd)) {
                    disconnect(*peer, reason);
                }
            },
        .deadline_changed = [this] { arm_timer(); },
    };
}

void BusDaemon::on_client_event(int fd, std::uint32_t events) {
    Peer* found = peers_.at_socket(fd);
    if (found == nullptr) {
        return;
    }
    Peer& peer = *found;
    if (events & EPOLLOUT) {
        flush(peer);
        if (peers_.at_socket(fd) == nullptr) {
            return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }
    const bool was_authenticated = peer.connection->authenticated();
    const bool had_pending_fds = peer.connection->pending_fds_since() != 0;
    // The list is the daemon's, taken and given back, so that its capacity is reused from one read to
    // the next (nothing below reads another socket).
    std::vector<transport::IncomingMessage> messages = std::move(incoming_);
    messages.clear();
    std::string reason;
    const bool alive = peer.connection->read(messages, reason);
    if (!was_authenticated && peer.connection->authenticated()) {
        if (peer.connection->authentication().anonymous && !options_.allow_anonymous) {
            disconnect(peer, "anonymous authentication is not allowed");
            return;
        }
        if (policy_ && !peer.connection->authentication().anonymous) {
            const std::uint32_t uid = peer.connection->authentication().authorized_uid.value_or(~0u);
            const auto& groups = peer.connection->credentials().groups;
            if (!policy_->allows_connection(uid, std::span<const std::uint32_t>(groups.data(), groups.size()),
                                            uid == options_.bus_uid)) {
                disconnect(peer, "the policy does not let this user connect");
                return;
            }
        }
    }
    if (peer.connection->has_output()) {
        mark_dirty(peer);
    }
    for (transport::IncomingMessage& message : messages) {
        handle_message(peer, std::move(message));
        if (peers_.at_socket(fd) == nullptr) {
            return;  // the message got its sender disconnected
        }
        settle(peer);
        // Each message's deliveries are queued on their sockets before the next message is read, as
        // dbus-daemon dispatches: a read of 400 broadcasts to 1,000 subscribers must not fill the core's
        // queues with 400,000 entries before the first is written (monitors, too, see each message's
        // consequences before the next message). The writes still go out once per wake-up.
        deliver();
        if (peers_.at_socket(fd) == nullptr) {
            return;  // delivering cut the sender off (its own output queue)
        }
    }
    messages.clear();
    incoming_ = std::move(messages);
    const bool holds_pending_fds = peer.connection->pending_fds_since() != 0;
    if (holds_pending_fds != had_pending_fds) {
        peers_.holding_fds_changed(peer);
    }
    if (options_.reply_timeout_ns || (!had_pending_fds && holds_pending_fds)) {
        arm_timer();
    }
    if (!alive) {
        // What it sent before the bad part is delivered while it is still there to be its sender, as
        // dbus-daemon dispatches the messages it read before the one that made it close the connection.
        deliver();
        if (Peer* still = peers_.at_socket(fd)) {
            disconnect(*still, reason);
        }
    }
}

bool BusDaemon::Names::is_primary_owner(std::string_view unique_name,
                                        std::string_view well_known_name) const {
    const auto owner = daemon_.bus_.name_owner(daemon_.driver_id_, well_known_name);
    return owner.ok() && *owner == id_of_unique_name(unique_name);
}

bool BusDaemon::install_match(Peer& peer, const MatchRule& rule) {
    const std::uint64_t cookie = peer.next_match_cookie++;
    CoreMatch core_match = to_core_match(rule, cookie, driver_id_);
    if (core_match.matches_broadcasts && !bus_.add_match(peer.id, std::move(core_match.match))) {
        return false;
    }
    if (rule.eavesdrop) {
        peers_.eavesdrop_rule_added(peer);
    }
    peer.add_match({cookie, rule, core_match.matches_broadcasts});
    return true;
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
         // Only a policy with at_console rules asks: the look-up reads the user database at every Hello.
         .at_console =
             (!options_.policy->at_console_rules.empty() || !options_.policy->not_at_console_rules.empty()) &&
             at_console(options_.console_directory, connection->credentials().uid)});
    peer.names_stale = true;
}

std::optional<std::string> BusDaemon::apply_policy(const policy::PolicyRules& rules) {
    if (auto uploaded = bus_.set_policy(policy_holder_id_, policy::compile_coarse(rules).entries);
        !uploaded) {
        return "the bus refused the compiled policy: " + std::string(core::describe(uploaded.error()));
    }
    policy_.emplace(rules);
    ++policy_generation_;
    options_.policy = rules;  // what the web interface shows
    for (auto& [id, peer] : peers_.by_id()) {
        assign_policy(*peer);
    }
    return std::nullopt;
}

void BusDaemon::disconnect(Peer& peer, std::string_view reason) {
    const int fd = peer.connection->fd();
    // A client that hangs up is the normal end; anything else is the bus cutting it off, which an
    // operator must be able to find out about.
    if (reason != transport::peer_hung_up) {
        const transport::PeerCredentials& credentials = peer.connection->credentials();
        std::fprintf(stderr, "busgate: Disconnecting %s (uid=%ld pid=%d): %.*s\n",
                     peer.unique_name.empty() ? "an unregistered connection" : peer.unique_name.c_str(),
                     credentials.uid ? static_cast<long>(*credentials.uid) : -1L,
                     static_cast<int>(credentials.pid), static_cast<int>(reason.size()), reason.data());
    }
    if (peer.endpoint != core::default_endpoint) {
        endpoints_->left(peer.endpoint);
    }
    if (peer.registered()) {
        const core::ConnectionId id = peer.id;
        endpoints_->creator_left(id);
        if (peers_.at_socket(fd) == nullptr) {
            return;  // it was a member of an endpoint it created, and went with it
        }
        (void)bus_.bye(id);
    }
    loop_.remove(fd);
    // Best effort: errors queued for a misbehaving client (e.g. before Hello) still go out.
    (void)peer.connection->flush();
    peers_.remove(peer);
    acceptor_.closed(fd);  // no longer incomplete, and an fd is free again
}

void BusDaemon::disconnect_endpoint_members(core::EndpointId id, std::string_view reason) {
    const std::vector<int> members =
        peers_.sockets_where([id](const Peer& peer) { return peer.endpoint == id; });
    for (const int fd : members) {
        if (Peer* peer = peers_.at_socket(fd)) {
            disconnect(*peer, reason);
        }
    }
}

void BusDaemon::settle(Peer& peer) {
    if (peer.registered()) {
        acceptor_.completed(peer.connection->fd());
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
    if (const auto accepting = acceptor_.next_deadline()) {
        earlier(*accepting);
    }
    for (const int fd : peers_.holding_fds()) {
        const transport::Connection& connection = *peers_.at_socket(fd)->connection;
        earlier(connection.pending_fds_since() + connection.limits().pending_fd_timeout_ns);
    }
    loop_.set_timer(deadline, [this] { on_timer(); });
}

void BusDaemon::on_timer() {
    const std::uint64_t now = util::monotonic_ns();
    bus_.expire(now);
    activation_->expire(now);
    acceptor_.expire(now);  // resumes a pause that is over, drops who took too long to authenticate
    std::vector<int> late;
    for (const int fd : peers_.holding_fds()) {
        const transport::Connection& connection = *peers_.at_socket(fd)->connection;
        if (connection.pending_fds_since() + connection.limits().pending_fd_timeout_ns <= now) {
            late.push_back(fd);
        }
    }
    for (const int fd : late) {
        if (Peer* peer = peers_.at_socket(fd)) {
            disconnect(*peer, "file descriptors pending too long for their message");
            deliver();  // one disconnection's signals and errors before the next one's, as dbus-daemon
        }
    }
    deliver();
    arm_timer();
}

}  // namespace busgate::bus
