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
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/match_rule.h"
#include "bus/observer.h"
#include "bus/service_spawner.h"
#include "bus/unique_name.h"
#include "busgate/core/bus.h"
#include "busgate/marshal/writer.h"
#include "busgate/policy/policy.h"
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
    // The XML policy (checked here before the core is asked) alone decides who may own and talk, as in
    // dbus-daemon: no coarse entries reach the core's bus policy, which would otherwise refuse every
    // unprivileged user a name or a peer of another uid.
    core::BusConfig core{.enforce_bus_policy = false, .broadcasts_reach_sender = true};
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
    // The <policy> rules; without them (tests of routing alone) nothing is checked.
    std::optional<policy::PolicyRules> policy;
    // ReloadConfig: reloads the configuration (and calls apply_policy); returns an error text on failure,
    // leaving what is in force untouched.
    std::function<std::optional<std::string>()> reload;
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

    // Replaces the XML policy at once: every connection's rules are recomputed from its credentials.
    void apply_policy(const policy::PolicyRules& rules);
    // Makes the configuration's endpoints what is listening (start, reload); the first problem, if any.
    std::optional<std::string> configure_endpoints(const std::vector<policy::EndpointConfig>& endpoints);
    // Rereads the service directories (reload, inotify) and signals ActivatableServicesChanged.
    void reload_services(const std::vector<policy::ServiceDir>& directories);

    // An observer (the web interface): the work it posts runs on this thread, and while it is watching
    // it gets a copy of what is routed. The read-only view it may ask for is below. In bus_view.cpp.
    void attach_observer(std::shared_ptr<BusObserver> observer);
    BusSnapshot snapshot();
    PolicyCheckResult check_policy(const PolicyCheckRequest& request);
    // Counted by the bus, read by /metrics; activation.cpp reports starts and failures here.
    BusCounters& counters() { return counters_; }

  private:
    friend class Driver;
    friend class Activation;
    friend class Endpoints;

    struct InstalledMatch {
        std::uint64_t cookie;
        MatchRule rule;
        bool in_core;  // the core holds its mask (it can match broadcasts)
    };
    struct Peer {
        std::unique_ptr<transport::Connection> client;
        core::ConnectionId id = 0;                           // 0 until Hello
        core::EndpointId endpoint = core::default_endpoint;  // the socket it came through
        std::string unique_name;
        std::string listener_address;  // the address of the listener it came through (web interface)
        // Until Hello succeeds, as dbus-daemon counts it: held to auth_timeout and
        // max_incomplete_connections.
        bool incomplete = true;
        std::uint64_t auth_deadline = 0;
        std::vector<InstalledMatch> matches;
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
        std::size_t eavesdrop_rules = 0;  // installed rules with eavesdrop='true'
        bool eavesdrops() const { return eavesdrop_rules > 0; }
        bool registered() const { return id != 0; }
        const InstalledMatch* match(std::uint64_t cookie) const;
    };
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
    // The XML policy for one message from `sender` to `recipient` (null: the driver); on denial the
    // sender gets dbus-daemon's AccessDenied error when it waits for a reply.
    bool policy_allows(Peer* sender, Peer* recipient, const transport::IncomingMessage& message);
    const policy::PeerNames& names_of(Peer& peer);
    void assign_policy(Peer& peer);
    // Monitors: a copy of `bytes` (a message as routed, SENDER stamped) to every monitor whose rules
    // match. `sender` is empty for the driver; `recipient` is the addressed connection's unique name.
    // A message with `fds` reaches only monitors that negotiated fd passing, each with duplicates.
    void capture(std::span<const std::uint8_t> bytes, std::string_view sender, std::string_view recipient,
                 std::span<const util::UniqueFd> fds = {});
    // Eavesdroppers: copies of a unicast message to connections whose eavesdrop='true' rules match it.
    void eavesdrop(Peer& sender, std::span<const std::uint8_t> bytes, Peer* recipient,
                   std::span<const util::UniqueFd> fds = {});
    // Turns `peer` into a monitor (after the BecomeMonitor reply went out).
    void become_monitor(Peer& peer, std::vector<MatchRule> rules);
    // Writes a message straight to `peer`'s socket, bypassing the core: from the bus, or (`from_bus` false)
    // with no sender at all, as the answers of the socket's other end to calls addressed to nobody.
    void send_directly(Peer& peer, const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                       bool from_bus = true);
    policy::MessageInfo policy_view(const marshal::MessageHeader& header) const;

    void accept(const transport::Listener& listener);
    void on_client_event(int fd, std::uint32_t events);
    void handle_message(Peer& peer, transport::IncomingMessage message);
    // `capture_here`: monitors see the message from route() (after any activation request it caused).
    void route(Peer& peer, transport::IncomingMessage& message, bool capture_here);
    void disconnect(Peer& peer, std::string_view reason);
    void deliver();
    void deliver_to(core::ConnectionId id);
    void flush(Peer& peer);
    void arm_timer();
    void on_timer();
    // Counts `peer` as complete once Hello made it a bus connection.
    void settle(Peer& peer);
    // Makes room for one more incomplete connection by dropping the oldest, as dbus-daemon does.
    void drop_oldest_incomplete();
    // Out of fds (EMFILE, ENFILE): stop watching the listeners until a connection closes or a moment passes.
    void pause_accepting();
    void resume_accepting();

    // Sends a message the bus built (driver replies, errors, signals) through the core; a well-known
    // destination may be an activatable name. False if the core refused it.
    bool send_from_bus(const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                       std::vector<util::UniqueFd> fds = {});
    // An error from the bus to the sender of `item`, a message that will not be delivered: sent in `holder`'s
    // place (the connection the core queued it on) when a reply is owed, so the core's reply tracking ends.
    void refuse_queued(core::ConnectionId holder, const core::QueueItem& item, std::string_view error_name,
                       std::string_view text);
    // A container endpoint's method rules for a call from `peer`; false after answering AccessDenied.
    bool endpoint_allows_call(Peer& peer, const transport::IncomingMessage& message,
                              core::ConnectionId target);
    // The names `id` owns, as endpoint rules see them.
    std::vector<std::string> names_owned_by(core::ConnectionId id) const;
    // The policy of a message that waited for an activation, checked again now that its recipient exists.
    bool allowed_after_activation(Peer& recipient, const core::QueueItem& item);
    void send_error(Peer& peer, const transport::IncomingMessage& to, std::string_view name,
                    std::string_view text);
    std::uint32_t next_serial();
    // A message the bus routed: counted, timed (when the web interface is on) and shown to its monitors.
    void count_routed(marshal::MessageType type, std::span<const std::uint8_t> bytes);

    Peer* find_peer(core::ConnectionId id);

    transport::EventLoop& loop_;
    DaemonOptions options_;
    std::string guid_;
    std::vector<transport::Listener> listeners_;
    core::Bus bus_;
    core::ConnectionId driver_id_ = 0;
    std::unique_ptr<class Driver> driver_;
    std::unique_ptr<class Activation> activation_;
    std::unique_ptr<class Endpoints> endpoints_;
    // Messages queued on an activator: their policy is checked again when the service takes them.
    boost::unordered_flat_set<const core::MessagePayload*> awaiting_activation_;
    boost::unordered_flat_map<int, std::unique_ptr<Peer>> peers_;  // by socket fd
    boost::unordered_flat_map<core::ConnectionId, Peer*> registered_;
    std::vector<int> dirty_;                    // peers with output to flush
    std::vector<core::ConnectionId> readable_;  // scratch for deliver()
    bool delivering_ = false;
    Names names_{*this};
    std::optional<policy::Policy> policy_;
    std::vector<int> monitors_;      // fds of monitor peers
    std::size_t eavesdroppers_ = 0;  // peers with eavesdrop rules
    std::uint32_t serial_ = 0;
    std::size_t incomplete_ = 0;
    BusCounters counters_;
    std::shared_ptr<BusObserver> observer_;  // null unless the web interface is on
    std::uint64_t accept_resume_at_ = 0;     // nonzero while accepting is paused
};

// `message` as the bus routes it: SENDER stamped, unknown header fields dropped, body unchanged.
std::vector<std::uint8_t> stamped_message(const transport::IncomingMessage& message, std::string_view sender);

}  // namespace busgate::bus
