// BusDaemon: the dbus1 side of the bus. Owns the listening sockets, every client connection and
// the core Bus; translates what clients send into core commands (unique names are core ids, the
// header is stamped with SENDER once, broadcasts carry a bloom filter) and what the core queues for
// a connection back into dbus1 messages. The org.freedesktop.DBus driver (driver.cpp) is a core
// connection of its own: it answers method calls to the bus and turns the core's name and id
// notifications into NameOwnerChanged, NameAcquired and NameLost, in dbus-daemon's order.
#pragma once

#include <sys/types.h>

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/errors.h"
#include "bus/match_rule.h"
#include "bus/observer.h"
#include "bus/peer.h"
#include "bus/routed_message.h"
#include "bus/service_spawner.h"
#include "bus/unique_name.h"
#include "busgate/core/bus.h"
#include "busgate/marshal/writer.h"
#include "busgate/policy/policy.h"
#include "transport/acceptor.h"
#include "transport/address.h"
#include "transport/connection.h"
#include "transport/event_loop.h"

namespace busgate::bus {

struct DaemonOptions {
    std::vector<std::string> listen;           // addresses, as <listen> or --address gives them
    std::vector<std::string> auth_mechanisms;  // <auth>; empty allows all
    bool allow_anonymous = false;
    std::string runtime_directory;            // $XDG_RUNTIME_DIR for unix:runtime=yes
    std::filesystem::path keyring_directory;  // DBUS_COOKIE_SHA1
    uid_t bus_uid = 0;
    transport::ConnectionLimits client;
    // The XML policy, checked exactly here, decides who may own and talk, as in dbus-daemon; the core
    // enforces its compiled over-approximation (policy/coarse.h) behind it, on calls and names only:
    // signals are left to the receive rules checked here.
    core::BusConfig core{
        .enforce_bus_policy = true, .signals_need_talk = false, .broadcasts_reach_sender = true};
    std::optional<std::uint64_t> reply_timeout_ns;  // none: calls never time out (dbus-daemon's default)
    std::uint64_t auth_timeout_ns = 30'000'000'000;
    std::size_t max_incomplete_connections = 64;
    std::size_t max_completed_connections = 2048;
    // Checked at Hello by the gateway, which knows which connections are clients (the driver is not).
    std::size_t max_connections_per_user = 256;
    std::size_t max_match_rules_per_connection = 512;
    bool systemd_activation = false;  // --systemd-activation
    // Activation: the <servicedir>s, <type> (DBUS_STARTER_BUS_TYPE), the <servicehelper> that starts each
    // service (as its User=) instead of Exec=, and the limits on starts.
    std::vector<policy::ServiceDir> service_dirs;
    std::string bus_type;
    std::optional<std::string> servicehelper;
    std::uint64_t service_start_timeout_ns = 25'000'000'000;
    std::size_t max_pending_service_starts = 512;
    // How activated services are started and their directories watched (launch/ gives both to the daemon).
    std::shared_ptr<ServiceSpawner> spawner;
    std::shared_ptr<DirectoryWatcher> directory_watcher;
    // Where pam_console marks who is at the console, for <policy at_console="...">.
    std::string console_directory = "/var/run/console";
    // busgate's <endpoint>s: container endpoints made at start.
    std::vector<policy::EndpointConfig> endpoints;
    // Endpoints made at run time (org.busgate.Endpoints1), bounded by dbus-daemon 1.14's container limits:
    // in all, per creating uid, and the connections of one made by a user other than root and the bus's.
    std::size_t max_endpoints = 512;
    std::size_t max_endpoints_per_user = 16;
    std::size_t max_connections_per_user_endpoint = 8;
    // The <policy> rules; without them (tests of routing alone) nothing is checked.
    std::optional<policy::PolicyRules> policy;
    // ReloadConfig: reloads the configuration (and calls apply_policy); returns an error text on failure,
    // leaving what is in force untouched.
    std::function<std::optional<std::string>()> reload;
    std::optional<std::string> guid;  // a restart keeps the bus's GUID; none: a new one
};

class Activation;
class Driver;
struct BusState;
class Endpoints;

// How the policy gate checks one message (BusDaemon::policy_gate).
struct GateCheck {
    bool eavesdropping = false;   // the recipient is a monitor or eavesdropper, not the addressee
    bool reply_expected = false;  // a reply the core will accept as answering a pending call
};

class BusDaemon {
  public:
    BusDaemon(transport::EventLoop& loop, DaemonOptions options);
    ~BusDaemon();
    BusDaemon(const BusDaemon&) = delete;
    BusDaemon& operator=(const BusDaemon&) = delete;

    // Listens on every configured address; false with `error` if any fails.
    bool start(std::string& error);
    // The connectable addresses, ';'-separated, each with the bus GUID.
    std::string address() const;
    const std::string& guid() const { return guid_; }
    void stop();

    std::size_t connection_count() const { return peers_.size(); }

    // Replaces the XML policy at once: every connection's rules are recomputed from its credentials, and
    // the core's entries compiled from it are uploaded in one step. If the core refuses them, nothing
    // changes and the reason is returned.
    std::optional<std::string> apply_policy(const policy::PolicyRules& rules);
    // Makes the configuration's endpoints what is listening (start, reload); the first problem, if any.
    std::optional<std::string> configure_endpoints(const std::vector<policy::EndpointConfig>& endpoints);
    // Rereads the service directories (reload, inotify) and signals ActivatableServicesChanged.
    void reload_services(const std::vector<policy::ServiceDir>& directories);

    // An observer (the web interface): the work it posts runs on this thread, and while it is watching
    // it gets a copy of what is routed. The read-only view it may ask for is below. In bus_view.cpp.
    void attach_observer(std::shared_ptr<BusObserver> observer);
    BusSnapshot snapshot();
    // A restart: takes over the connections of `state`, `sockets[i]` being the socket of connection i, with
    // their ids, credentials, match rules and places in name queues, before any client came to this bus.
    // False with `error` when the state cannot be taken as it is: then this process must exit, and the old
    // one goes on (what can be checked first is, so most refusals leave this bus untouched).
    bool restore(const BusState& state, std::vector<util::UniqueFd> sockets, std::string& error);
    // AddMatch's work once the rule parsed and may be added: the core's mask, then the peer's list. False
    // when the core has no room for the mask.
    bool install_match(Peer& peer, const MatchRule& rule);
    PolicyCheckResult check_policy(const PolicyCheckRequest& request);
    // Counted by the bus, read by /metrics; activation.cpp reports starts and failures here.
    BusCounters& counters() { return counters_; }

    // The bus's own parts (driver.cpp, activation.cpp, endpoints.cpp) work through what follows.
    using Peer = bus::Peer;
    transport::EventLoop& loop() { return loop_; }
    core::Bus& core() { return bus_; }
    const core::Bus& core() const { return bus_; }
    const DaemonOptions& options() const { return options_; }
    core::ConnectionId driver_id() const { return driver_id_; }
    Driver& driver() { return *driver_; }
    Activation& activation() { return *activation_; }
    Endpoints& endpoints() { return *endpoints_; }
    // Every client, by socket and (past Hello) by core id.
    PeerRegistry& peers() { return peers_; }
    bool has_policy() const { return policy_.has_value(); }
    std::uint32_t last_serial() const { return serial_; }
    std::size_t incomplete_count() const { return acceptor_.incomplete_count(); }
    std::uint32_t next_serial();
    void assign_policy(Peer& peer);
    // Disconnects `peer`, logging `reason` unless it hung up itself. What that causes (NameOwnerChanged,
    // NoReply errors) is delivered by the caller's deliver(): every event handler ends with one.
    void disconnect(Peer& peer, std::string_view reason);
    // busgate-dbus-proxy --log: `line` about `peer`, a client of an endpoint that logs, to its creator.
    void log_endpoint(const Peer& peer, const std::string& line);
    // Whether lines about `peer` go anywhere (checked before any line is built).
    bool logs(const Peer& peer) const;
    // Disconnects every connection that came through endpoint `id`.
    void disconnect_endpoint_members(core::EndpointId id, std::string_view reason);
    // Watches the listeners (the bus's own, and an endpoint's while it listens).
    transport::Acceptor& acceptor() { return acceptor_; }
    // Egress: hands every queued item to its receiver (or drops it there) until nothing is readable.
    // Called at the end of every event, and where a handler needs what it caused to go out first (the
    // driver's signals before its reply); never from inside itself.
    void deliver();
    void arm_timer();
    // Monitors: a copy of `bytes` (a message as routed, SENDER stamped) to every monitor whose rules
    // match. `sender` is empty for the driver; `recipient` is the addressed connection's unique name.
    // A message with `fds` reaches only monitors that negotiated fd passing, each with duplicates.
    void capture(std::span<const std::uint8_t> bytes, std::string_view sender, std::string_view recipient,
                 std::span<const util::UniqueFd> fds = {});
    // Turns `peer` into a monitor (after the BecomeMonitor reply went out).
    void become_monitor(Peer& peer, std::vector<MatchRule> rules);
    // The one builder of the messages the bus sends itself: the next serial, SENDER the bus (or none,
    // `from_bus` false), the fds, and no reply expected unless it is a call.
    RoutedMessage::Ref bus_message(marshal::MessageSpec spec, const marshal::BodyWriter& body,
                                   std::vector<util::UniqueFd> fds = {}, bool from_bus = true);
    // Writes a message straight to `peer`'s socket, bypassing the core: from the bus, or (`from_bus` false)
    // with no sender at all, as the answers of the socket's other end to calls addressed to nobody.
    void send_directly(Peer& peer, const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                       bool from_bus = true);
    // Sends a message the bus built (driver replies, errors, signals) through the core; a well-known
    // destination may be an activatable name. False if the core refused it.
    bool send_from_bus(const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                       std::vector<util::UniqueFd> fds = {});
    // An error from the bus to the sender of `item`, a message that will not be delivered: sent in `holder`'s
    // place (the connection the core queued it on) when a reply is owed, so the core's reply tracking ends.
    void refuse_queued(core::ConnectionId holder, const core::QueueItem& item, std::string_view error_name,
                       std::string_view text);
    void send_error(Peer& peer, const transport::IncomingMessage& to, BusError error, std::string_view text);

  private:
    // Well-known name ownership for sender= rules, answered by the core's registry.
    class Names final : public NameOwnership {
      public:
        explicit Names(BusDaemon& daemon) : daemon_(daemon) {}
        virtual ~Names() = default;
        bool is_primary_owner(std::string_view unique_name, std::string_view well_known_name) const override;

      private:
        BusDaemon& daemon_;
    };
    // The exact dbus1 check of a broadcast the core's bloom filters selected for `peer`, and the policy's
    // receive check of everything the bus itself sends.
    bool wanted(Peer& peer, const core::QueueItem& item);
    // What a connection of a container endpoint may hear of a broadcast: signals its broadcast rules allow,
    // and the bus's NameOwnerChanged only for names (and connections) it can see.
    bool endpoint_may_hear(Peer& peer, const core::QueueItem& item);
    // The one policy gate: the XML rules for `header` from `sender` to `recipient` (either null: the
    // driver; a null recipient is also one not there yet, an activation), in dbus-daemon's order. Only
    // with a policy. Its callers decide what a denial means: an error, a message dropped, no copy.
    policy::RouteDecision policy_gate(Peer* sender, Peer* recipient, const marshal::MessageHeader& header,
                                      const GateCheck& check = {});
    policy::RouteDecision policy_gate(Peer* sender, Peer* recipient, const policy::PreparedMessage& prepared,
                                      const GateCheck& check = {});
    // The message as the policy sees it, SENDER `sender`'s unique name (the driver's own when null).
    policy::PreparedMessage prepare(const Peer* sender, const marshal::MessageHeader& header) const;
    void count_denial(const policy::RouteDecision& decision);
    // The XML policy for one message from `sender` to `recipient` (null: the driver); on denial the
    // sender gets dbus-daemon's AccessDenied error when it waits for a reply.
    bool policy_allows(Peer* sender, Peer* recipient, const transport::IncomingMessage& message);
    const policy::PeerNames& names_of(Peer& peer);
    // Eavesdroppers: copies of a unicast message to connections whose eavesdrop='true' rules match it.
    void eavesdrop(Peer& sender, std::span<const std::uint8_t> bytes, Peer* recipient,
                   std::span<const util::UniqueFd> fds = {});
    policy::MessageInfo policy_view(const marshal::MessageHeader& header) const;

    // What the acceptor asks of the bus: whether to take a connection, what it becomes, which to drop.
    transport::Acceptor::Handlers acceptor_handlers();
    void accepted(const transport::Listener& listener, std::unique_ptr<transport::Connection> connection);
    void on_client_event(int fd, std::uint32_t events);
    void read_fresh();  // the first read of each connection accepted since the last wait
    void handle_message(Peer& peer, transport::IncomingMessage message);
    // `capture_here`: monitors see the message from route() (after any activation request it caused).
    void route(Peer& peer, transport::IncomingMessage& message, bool capture_here);
    // The core message for what `peer` sent: flags, destination, bloom filter, and one payload with the
    // header stamped with SENDER (the message's fds move into it).
    core::OutgoingMessage translate(Peer& peer, transport::IncomingMessage& message);
    // The policy gate for a unicast message: endpoint rules, then the XML send (and receive) rules; false
    // after the sender got its error.
    bool passes_gate(Peer& peer, const transport::IncomingMessage& message,
                     const core::OutgoingMessage& outgoing, bool capture_here);
    void count_refusal(core::Error error);
    void deliver_to(core::ConnectionId id);
    // `peer`'s socket has output to write at the next idle step.
    void mark_dirty(Peer& peer);
    void flush(Peer& peer);
    void on_timer();
    // Counts `peer` as complete once Hello made it a bus connection (until then the acceptor holds it to
    // auth_timeout and max_incomplete_connections, as dbus-daemon counts).
    void settle(Peer& peer);

    // A container endpoint's method rules for a call from `peer`; false after answering AccessDenied.
    bool endpoint_allows_call(Peer& peer, const transport::IncomingMessage& message,
                              core::ConnectionId target);
    // The names `id` owns, as endpoint rules see them.
    std::vector<std::string> names_owned_by(core::ConnectionId id) const;
    // The policy of a message that waited for an activation, checked again now that its recipient exists.
    bool allowed_after_activation(Peer& recipient, const core::QueueItem& item);
    // A message the bus routed: counted, timed (when the web interface is on) and shown to its monitors.
    void count_routed(marshal::MessageType type, std::span<const std::uint8_t> bytes);

    transport::EventLoop& loop_;
    DaemonOptions options_;
    std::string guid_;
    transport::Acceptor acceptor_;  // the bus's listeners, and the container endpoints' while they listen
    core::Bus bus_;
    core::ConnectionId driver_id_ = 0;
    core::ConnectionId policy_holder_id_ = 0;  // uploads the compiled XML policy to the core
    std::unique_ptr<Driver> driver_;
    std::unique_ptr<Activation> activation_;
    std::unique_ptr<Endpoints> endpoints_;
    // Messages queued on an activator: their policy is checked again when the service takes them.
    boost::unordered_flat_set<const core::MessagePayload*> awaiting_activation_;
    PeerRegistry peers_;
    std::vector<int> dirty_;                            // peers with output to flush
    std::vector<int> flushing_;                         // the list the idle step is working through
    std::vector<int> fresh_;    // accepted since the last wait: read before waiting (see accepted())
    std::vector<int> reading_;  // the list the idle step reads through
    std::vector<transport::IncomingMessage> incoming_;  // what the last read framed (its capacity reused)
    std::vector<core::ConnectionId> readable_;          // scratch for deliver()
    Names names_{*this};
    std::optional<policy::Policy> policy_;
    std::uint64_t policy_generation_ = 0;  // counts policy_'s replacements: what a kept view was made with
    std::uint32_t serial_ = 0;
    BusCounters counters_;
    std::shared_ptr<BusObserver> observer_;  // null unless the web interface is on
};

}  // namespace busgate::bus
