// Bus: the userspace kdbus/bus1 core behind a command API shaped like kdbus's (hello, bye, name acquire and
// release, list, send, receive, match add and remove, policy upload, endpoints). It ties together the
// modules, each the sole owner of its state: NameRegistry, MatchIndex, PolicyDatabase (the bus's and one per
// Endpoint), ReplyTracker, QuotaRegistry, and each Connection's ReceiveQueue.
// Invariants:
//  - one global sequence clock: every transaction (a message, or one notification) takes the next value,
//    every receiver's queue is ordered by it, so any two receivers of the same two items see them in the same
//    order, notifications included;
//  - connection ids are never reused;
//  - every accepted call that expects a reply ends with exactly one of: its reply, REPLY_TIMEOUT (expire),
//    REPLY_DEAD (callee gone, or the call could not be handed from an activator to the real owner);
//  - a failing command changes nothing and returns an Error; nothing here throws on the message path.
// The core knows nothing of dbus1: payloads are opaque, names and policy are kdbus's.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "busgate/core/connection.h"
#include "busgate/core/endpoint.h"
#include "busgate/core/match_index.h"
#include "busgate/core/message.h"
#include "busgate/core/name_registry.h"
#include "busgate/core/policy_database.h"
#include "busgate/core/quota.h"
#include "busgate/core/receive_queue.h"
#include "busgate/core/reply_tracker.h"
#include "busgate/core/result.h"
#include "busgate/core/types.h"

namespace busgate::core {

struct BusLimits {
    std::size_t max_connections_per_user = 1024;   // KDBUS_USER_MAX_CONN
    std::size_t max_names_per_connection = 256;    // KDBUS_CONN_MAX_NAMES (owned + queued + activated)
    std::size_t max_matches_per_connection = 256;  // KDBUS_MATCH_MAX
    std::size_t max_pending_replies_per_connection = 128;  // calls a connection may wait on at once
    std::size_t max_fds_per_message = 253;
    std::uint64_t max_message_bytes = 128 * 1024 * 1024;
    QueueLimits queue;  // per receiving connection
    QuotaLimits quota;  // per receiving user
};

struct BusConfig {
    std::uint32_t owner_uid = 0;  // connections of this uid (and root) are privileged on the default endpoint
    BusLimits limits;
    // false: the bus policy (the policy holders' entries) does not gate OWN and TALK at all. Endpoint
    // policies still apply.
    bool enforce_bus_policy = true;
    // true (kdbus): a signal, broadcast or unicast, reaches a receiver only if the receiver may TALK to its
    // sender. false: the bus policy gates method calls only and signals answer to the endpoint policy alone,
    // as dbus1 decides them by the receiver's receive rules, which a TALK grant (to the callee's names)
    // cannot express.
    bool signals_need_talk = true;
    // true: a broadcast also reaches its sender when one of the sender's own matches covers it, as dbus1
    // delivers it (kdbus never looped a broadcast back).
    bool broadcasts_reach_sender = false;
};

struct HelloParams {
    Credentials credentials;
    util::UniqueFd pidfd;
    std::uint64_t flags = 0;  // hello_flag::*; activator and policy_holder are exclusive and privileged
    EndpointId endpoint = default_endpoint;
    std::string name;                 // activators and policy holders: the name they stand for
    std::vector<PolicyEntry> policy;  // activators and policy holders: their initial rules
    std::string description;
    // A connection a restart handed over keeps its number (below the one resume_numbering() set, and
    // free), and nobody hears of it: it did not come, it stayed. Ordinary connections only.
    std::optional<ConnectionId> restored_id;
};

struct ListEntry {
    ConnectionId id = 0;
    std::uint64_t connection_flags = 0;  // hello flags
    std::string name;                    // empty: a bare record for the unique id
    std::uint64_t name_flags = 0;        // name_flag::* (primary, in_queue, activator, saved flags)
    friend bool operator==(const ListEntry&, const ListEntry&) = default;
};

struct SendReceipt {
    std::uint64_t sequence = 0;
    ConnectionId destination = 0;  // unicast: the connection the message was queued on (0 if dropped)
    std::size_t delivered = 0;     // receivers it was queued on
    std::size_t dropped = 0;       // broadcast receivers that matched but lost it to limits or quotas
};

class Bus {
  public:
    explicit Bus(BusConfig config = {});
    ~Bus();
    Bus(const Bus&) = delete;
    Bus& operator=(const Bus&) = delete;

    // ---- connections
    Result<ConnectionId> hello(HelloParams params);
    // Disconnects: releases names (queues advance, activators take back their messages), REPLY_DEAD to every
    // caller waiting on this connection, drops its queue (returning its charges), then ID_REMOVE.
    Status bye(ConnectionId id);
    const Connection* connection(ConnectionId id) const;
    // CONN_INFO: the connection if `caller` may see it (custom endpoints hide peers without visible names).
    Result<const Connection*> connection_info(ConnectionId caller, ConnectionId id) const;
    std::size_t connection_count() const { return connections_.size(); }
    // The id the next ordinary Hello gets (a restart carries it over: ids are never reused).
    ConnectionId next_connection_id() const { return next_connection_id_; }
    // A restart: ordinary ids go on from `next` (never back).
    void resume_numbering(ConnectionId next);

    // ---- names
    // flags: name_flag::{replace_existing, allow_replacement, queue}. permission_denied when neither the
    // endpoint nor (unless privileged) the bus policy grants OWN.
    Result<AcquireResult> acquire_name(ConnectionId id, std::string_view name, std::uint64_t flags);
    Result<ReleaseResult> release_name(ConnectionId id, std::string_view name);
    // A restart puts `id` back in the queue of `name`, with the flags it had: called in queue order (the
    // primary owner first), it rebuilds the queue as it was. No policy check (the name was granted before,
    // as a reload never takes one back) and nobody hears of it.
    Result<AcquireResult> restore_name(ConnectionId id, std::string_view name, std::uint64_t saved_flags);
    // list_flag::{unique, names, activators, queued}; names the caller cannot SEE are left out, and so are
    // policy holders (they stand for rules, not for a peer).
    std::vector<ListEntry> list(ConnectionId caller, std::uint64_t flags) const;
    // GetNameOwner: the primary owner; name_has_no_owner if none (or only an activator) or invisible.
    Result<ConnectionId> name_owner(ConnectionId caller, std::string_view name) const;
    // ListQueuedOwners: primary owner first, then the queue.
    Result<std::vector<ConnectionId>> queued_owners(ConnectionId caller, std::string_view name) const;
    std::vector<std::string> owned_names(ConnectionId id) const;  // primary-owned, sorted

    // ---- messages
    Result<SendReceipt> send(ConnectionId sender, OutgoingMessage message);
    // The oldest item of the connection's queue, if any; its quota charge is returned.
    std::optional<QueueItem> receive(ConnectionId id);
    const QueueItem* peek(ConnectionId id) const;
    // receive() of the oldest item only if `wanted(item)`, with the one lookup a peek and a receive would
    // make twice: `held` says an item is there but was not wanted (the receiver has no room for it).
    template <typename Wanted>
    std::optional<QueueItem> receive_if(ConnectionId id, Wanted&& wanted, bool& held) {
        held = false;
        Connection* connection = find(id);
        const QueuedEntry* front = connection != nullptr ? connection->queue_.front() : nullptr;
        if (front == nullptr) {
            return std::nullopt;
        }
        if (!wanted(std::as_const(front->item))) {
            held = true;
            return std::nullopt;
        }
        return take_front(*connection);
    }
    // Broadcasts and notifications this connection lost to limits since the last call (kdbus dropped_msgs).
    std::uint64_t take_dropped(ConnectionId id);
    // Connections whose queue went from empty to non-empty since the last call, for the gateway's writers.
    // `ready` is cleared and filled; its storage is swapped with the bus's, so reusing one vector allocates
    // nothing.
    void take_readable(std::vector<ConnectionId>& ready);

    // ---- replies
    // REPLY_TIMEOUT to the caller of every call whose deadline is <= now. Returns how many expired.
    std::size_t expire(Timestamp now);
    std::optional<Timestamp> next_deadline() { return replies_.next_deadline(); }
    std::size_t pending_replies(ConnectionId caller) const { return replies_.pending_for_caller(caller); }
    std::vector<PendingReply> pending_replies() const { return replies_.entries(); }
    // A restart: a call still waits for its reply, as it did (both connections restored first; the
    // deadline is CLOCK_MONOTONIC, which a restart does not move).
    Status restore_pending_reply(const PendingReply& pending);

    // ---- matches
    Status add_match(ConnectionId id, MessageMatch match);
    Status add_match(ConnectionId id, NotificationMatch match);
    Status remove_match(ConnectionId id, std::uint64_t cookie);

    // ---- policy and endpoints
    // A policy holder (or activator) replaces all its rules at once; on error the old ones stay.
    Status set_policy(ConnectionId holder, std::vector<PolicyEntry> entries);
    // A custom endpoint with its own policy; names are unique per bus (already_exists).
    Result<EndpointId> make_endpoint(std::string name, std::vector<PolicyEntry> policy);
    Status update_endpoint(EndpointId id, std::vector<PolicyEntry> policy);
    // Disconnects every connection of the endpoint, then removes it. The default endpoint cannot be removed.
    Status remove_endpoint(EndpointId id);
    const PolicyDatabase& bus_policy() const { return bus_policy_; }

    // ---- observation (tests, busgatectl)
    const QuotaRegistry& quotas() const { return quotas_; }
    const MatchIndex& matches() const { return matches_; }
    const NameRegistry& names() const { return names_; }
    std::uint64_t last_sequence() const { return clock_; }

    // Policy checks, exposed for the gateway's driver (e.g. to answer NameHasOwner from a custom endpoint).
    bool can_see_name(const Connection& viewer, std::string_view name) const;
    // TALK to `name` as the viewer's endpoint allows it (the default endpoint leaves it to the bus policy).
    bool may_talk_to_name(const Connection& viewer, std::string_view name) const;
    bool can_see_connection(const Connection& viewer, const Connection& target) const;
    bool may_own(const Connection& connection, std::string_view name) const;
    // A method call from `from` to `to`: the endpoint policy, then (unless privileged, or the same user) the
    // bus policy, each granting TALK to one of the names `to` owns (the endpoint), or owns, waits for or
    // activates (the bus: dbus1's send_destination counts queued owners), or TALK to any_name.
    bool may_talk(const Connection& from, const Connection& to) const;
    // A signal from `sender` reaching `receiver` (see BusConfig::signals_need_talk).
    bool may_hear(const Connection& receiver, const Connection& sender) const;

  private:
    std::optional<QueueItem> take_front(Connection& connection);  // a non-empty queue's oldest, discharged
    // A method call from `caller` reached `receiver`, a connection of a custom endpoint: it may see the
    // caller.
    void remember_caller(Connection& receiver, ConnectionId caller);
    Connection* find(ConnectionId id) const;
    Endpoint* find_endpoint(EndpointId id) const;

    bool endpoint_allows_talk(const Connection& from, const Connection& to) const;
    bool bus_policy_allows_talk(const Connection& from, const Connection& to) const;

    Status enqueue(Connection& receiver, QueuedEntry&& entry);
    void enqueue_notification(Connection& receiver, QueueItem item, bool must_deliver);
    void mark_readable(Connection& connection);

    void apply_name_changes(const std::vector<NameChange>& changes);
    void move_name_messages(ConnectionId from, ConnectionId to, std::uint64_t name_id);
    void notify_name_change(const NameChange& change);
    void notify_id_change(NotificationType type, const Connection& subject);
    void notify_reply(NotificationType type, ConnectionId caller, std::uint64_t cookie);

    void begin_fanout();
    void add_candidate(Connection& connection, const std::uint64_t* cookie);

    Result<SendReceipt> broadcast(Connection& sender, OutgoingMessage& message);
    Result<SendReceipt> unicast(Connection& sender, OutgoingMessage& message);

    BusConfig config_;
    std::uint64_t clock_ = 0;
    // Ordinary connections are numbered 1, 2, ... in the order they said Hello; the bus's own connections
    // (driver, activators, policy holders) come from a range of their own, so they never use
    // up a number a client can see.
    ConnectionId next_connection_id_ = 1;
    ConnectionId next_internal_id_ = first_internal_connection_id;
    EndpointId next_endpoint_id_ = 1;

    boost::unordered_flat_map<ConnectionId, std::unique_ptr<Connection>> connections_;
    boost::unordered_flat_map<EndpointId, std::unique_ptr<Endpoint>> endpoints_;
    // Every connection of a user keeps its quota alive; only ordinary ones count toward the limit (the bus's
    // own activators and policy holders never take a client's place).
    struct UserConnections {
        std::size_t all = 0;
        std::size_t ordinary = 0;
    };
    boost::unordered_flat_map<UserKey, UserConnections> connections_per_user_;
    std::vector<ConnectionId> readable_;

    NameRegistry names_;
    MatchIndex matches_;
    PolicyDatabase bus_policy_;
    ReplyTracker replies_;
    QuotaRegistry quotas_;
    QueueStorage queue_storage_;  // shared by every connection's ReceiveQueue

    std::uint64_t fanout_generation_ = 0;
    std::vector<Connection*> candidates_;
};

}  // namespace busgate::core
