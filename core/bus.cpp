#include "busgate/core/bus.h"

#include <algorithm>

namespace busgate::core {
namespace {

constexpr std::uint64_t special_hello_flags = hello_flag::activator | hello_flag::policy_holder;
constexpr std::uint64_t known_hello_flags =
    hello_flag::accept_fds | hello_flag::bus_driver | special_hello_flags;
constexpr std::uint64_t known_message_flags =
    message_flag::expect_reply | message_flag::no_auto_start | message_flag::signal;
constexpr std::uint64_t known_acquire_flags = name_flag::replace_existing | name_flag::saved;

// Connections of a custom endpoint are accounted to one anonymous user per endpoint (kdbus).
UserKey user_key_for(const Credentials& credentials, EndpointId endpoint) {
    return endpoint == default_endpoint ? UserKey{credentials.uid} : (UserKey{1} << 32) | endpoint;
}

}  // namespace

Bus::Bus(BusConfig config)
    : config_(std::move(config)),
      names_(config_.limits.max_names_per_connection),
      matches_(config_.limits.max_matches_per_connection),
      replies_(config_.limits.max_pending_replies_per_connection),
      quotas_(config_.limits.quota) {
    endpoints_.emplace(default_endpoint, std::make_unique<Endpoint>(default_endpoint, "bus"));
}

Bus::~Bus() = default;

Connection* Bus::find(ConnectionId id) const {
    auto found = connections_.find(id);
    return found == connections_.end() ? nullptr : found->second.get();
}

Endpoint* Bus::find_endpoint(EndpointId id) const {
    auto found = endpoints_.find(id);
    return found == endpoints_.end() ? nullptr : found->second.get();
}

const Connection* Bus::connection(ConnectionId id) const {
    return find(id);
}

// ---------------------------------------------------------------------------------------------- policy

bool Bus::can_see_name(const Connection& viewer, std::string_view name) const {
    const Endpoint* endpoint = find_endpoint(viewer.endpoint());
    return endpoint->is_default() || endpoint->policy().allows(viewer.credentials(), name, Access::see);
}

bool Bus::may_talk_to_name(const Connection& viewer, std::string_view name) const {
    const Endpoint* endpoint = find_endpoint(viewer.endpoint());
    return endpoint->is_default() || endpoint->policy().allows(viewer.credentials(), name, Access::talk);
}

bool Bus::can_see_connection(const Connection& viewer, const Connection& target) const {
    if (viewer.endpoint() == default_endpoint || viewer.id() == target.id() ||
        viewer.was_called_by(target.id())) {
        return true;
    }
    bool visible = false;
    names_.for_each_owned(
        target.id(), [&](const NameEntry& entry) { visible = visible || can_see_name(viewer, entry.name); });
    return visible;
}

void Bus::remember_caller(Connection& receiver, ConnectionId caller) {
    auto& callers = receiver.callers_;
    if (const auto found = std::find(callers.begin(), callers.end(), caller); found != callers.end()) {
        std::rotate(found, found + 1, callers.end());  // the most recent goes last
        return;
    }
    if (callers.size() == Connection::max_remembered_callers) {
        callers.erase(callers.begin());
    }
    callers.push_back(caller);
}

bool Bus::may_own(const Connection& connection, std::string_view name) const {
    const Endpoint* endpoint = find_endpoint(connection.endpoint());
    if (!endpoint->is_default() && !endpoint->policy().allows(connection.credentials(), name, Access::own)) {
        return false;
    }
    if (connection.privileged() || !config_.enforce_bus_policy) {
        return true;
    }
    return bus_policy_.allows(connection.credentials(), name, Access::own);
}

bool Bus::endpoint_allows_talk(const Connection& from, const Connection& to) const {
    const Endpoint* endpoint = find_endpoint(from.endpoint());
    if (endpoint->is_default() || endpoint->policy().allows_any(from.credentials(), Access::talk)) {
        return true;
    }
    // kdbus: TALK to a connection is TALK to at least one of the names it owns.
    bool allowed = false;
    names_.for_each_owned(to.id(), [&](const NameEntry& entry) {
        allowed = allowed || endpoint->policy().allows(from.credentials(), entry.name, Access::talk);
    });
    return allowed;
}

bool Bus::bus_policy_allows_talk(const Connection& from, const Connection& to) const {
    if (from.privileged() || !config_.enforce_bus_policy || from.credentials().uid == to.credentials().uid) {
        return true;
    }
    if (bus_policy_.allows_any(from.credentials(), Access::talk)) {
        return true;
    }
    // Every name `to` owns, waits for or activates: a dbus1 send_destination rule matches a receiver that is
    // only queued for the name, and a call to an activatable name is checked against that name.
    bool allowed = false;
    names_.for_each_membership(to.id(), [&](const NameEntry& entry) {
        allowed = allowed || bus_policy_.allows(from.credentials(), entry.name, Access::talk);
    });
    return allowed;
}

bool Bus::may_talk(const Connection& from, const Connection& to) const {
    if (((from.flags() | to.flags()) & hello_flag::bus_driver) || from.id() == to.id()) {
        return true;
    }
    return endpoint_allows_talk(from, to) && bus_policy_allows_talk(from, to);
}

bool Bus::may_hear(const Connection& receiver, const Connection& sender) const {
    if (config_.signals_need_talk) {
        return may_talk(receiver, sender);
    }
    if (((receiver.flags() | sender.flags()) & hello_flag::bus_driver) || receiver.id() == sender.id()) {
        return true;
    }
    return endpoint_allows_talk(receiver, sender);
}

// ------------------------------------------------------------------------------------------ connections

Result<ConnectionId> Bus::hello(HelloParams params) {
    const std::uint64_t flags = params.flags;
    if (flags & ~known_hello_flags) {
        return Error::invalid_argument;
    }
    const std::uint64_t special = flags & special_hello_flags;
    if (special & (special - 1)) {
        return Error::invalid_argument;  // activator and policy holder exclude each other
    }
    const Endpoint* endpoint = find_endpoint(params.endpoint);
    if (!endpoint) {
        return Error::no_such_endpoint;
    }
    const bool privileged = endpoint->is_default() &&
                            (params.credentials.uid == 0 || params.credentials.uid == config_.owner_uid);
    if ((special || (flags & hello_flag::bus_driver)) && !privileged) {
        return Error::permission_denied;
    }
    const bool stands_for_name = flags & (hello_flag::activator | hello_flag::policy_holder);
    if (stands_for_name != !params.name.empty() || (!stands_for_name && !params.policy.empty())) {
        return Error::invalid_argument;
    }
    if (stands_for_name && !is_valid_well_known_name(params.name)) {
        return Error::invalid_name;
    }
    if ((flags & hello_flag::activator) && names_.find(params.name) &&
        names_.find(params.name)->activator != 0) {
        return Error::already_exists;
    }
    const UserKey user = user_key_for(params.credentials, params.endpoint);
    if (auto count = connections_per_user_.find(user);
        !special && count != connections_per_user_.end() &&
        count->second.ordinary >= config_.limits.max_connections_per_user) {
        return Error::connection_limit_reached;
    }

    const bool internal = special || (flags & hello_flag::bus_driver);
    if (params.restored_id) {
        if (internal || *params.restored_id == 0 || *params.restored_id >= next_connection_id_) {
            return Error::invalid_argument;
        }
        if (connections_.contains(*params.restored_id)) {
            return Error::already_exists;
        }
    }
    if (!internal && !params.restored_id && next_connection_id_ >= first_internal_connection_id) {
        return Error::connection_limit_reached;  // 2^62 ids given: never one of the bus's own
    }
    const ConnectionId id = internal               ? next_internal_id_++
                            : params.restored_id ? *params.restored_id
                                                 : next_connection_id_++;
    if (stands_for_name) {
        // An activator's rules may only name its own name, without wildcards (kdbus).
        const bool holder = flags & hello_flag::policy_holder;
        if (!holder) {
            for (const auto& entry : params.policy) {
                if (entry.name != params.name) {
                    return Error::invalid_argument;
                }
            }
        }
        if (auto status = bus_policy_.replace(id, params.policy, holder); !status) {
            return status.error();
        }
    }

    auto connection =
        std::make_unique<Connection>(id, std::move(params.credentials), std::move(params.pidfd), flags,
                                     params.endpoint, privileged, user, std::move(params.description));
    Connection& added = *connection;
    connections_.emplace(id, std::move(connection));
    UserConnections& counted = connections_per_user_[user];
    ++counted.all;
    counted.ordinary += special ? 0 : 1;
    // A policy holder stands for rules, not for a peer: no one hears of it.
    if (!added.is_policy_holder() && !params.restored_id) {
        notify_id_change(NotificationType::id_add, added);
    }

    if (added.is_activator()) {
        std::vector<NameChange> changes;
        (void)names_.attach_activator(id, params.name, changes);  // checked above
        apply_name_changes(changes);
    }
    return id;
}

Status Bus::bye(ConnectionId id) {
    Connection* connection = find(id);
    if (!connection) {
        return Error::no_such_connection;
    }

    std::vector<NameChange> changes;
    names_.release_all(id, changes);
    apply_name_changes(changes);
    bus_policy_.remove_owner(id);
    matches_.remove_all(id);
    for (const auto& pending : replies_.take_callee(id)) {
        notify_reply(NotificationType::reply_dead, pending.caller, pending.cookie);
    }
    replies_.drop_caller(id);
    for (auto& entry : connection->queue_.take_all()) {
        quotas_.discharge(entry.charge);
    }

    const UserKey user = connection->user();
    UserConnections& counted = connections_per_user_[user];
    counted.ordinary -= connection->is_ordinary() ? 1 : 0;
    if (--counted.all == 0) {
        connections_per_user_.erase(user);
        quotas_.forget_user(user);
    }
    std::erase(readable_, id);
    std::unique_ptr<Connection> gone = std::move(connections_.find(id)->second);
    connections_.erase(id);
    if (!gone->is_policy_holder()) {
        notify_id_change(NotificationType::id_remove, *gone);
    }
    return {};
}

Result<const Connection*> Bus::connection_info(ConnectionId caller, ConnectionId id) const {
    const Connection* viewer = find(caller);
    const Connection* target = find(id);
    if (!viewer || !target || target->is_policy_holder() || !can_see_connection(*viewer, *target)) {
        return Error::no_such_connection;
    }
    return target;
}

// ---------------------------------------------------------------------------------------------- names

Result<AcquireResult> Bus::acquire_name(ConnectionId id, std::string_view name, std::uint64_t flags) {
    Connection* connection = find(id);
    if (!connection) {
        return Error::no_such_connection;
    }
    if (!connection->is_ordinary()) {
        return Error::not_supported;
    }
    if (flags & ~known_acquire_flags) {
        return Error::invalid_argument;
    }
    if (!is_valid_well_known_name(name)) {
        return Error::invalid_name;
    }
    if (!may_own(*connection, name)) {
        return Error::permission_denied;
    }
    std::vector<NameChange> changes;
    auto result = names_.acquire(id, name, flags, changes);
    apply_name_changes(changes);
    return result;
}

Result<AcquireResult> Bus::restore_name(ConnectionId id, std::string_view name, std::uint64_t saved_flags) {
    const Connection* connection = find(id);
    if (!connection) {
        return Error::no_such_connection;
    }
    if (!connection->is_ordinary()) {
        return Error::not_supported;
    }
    if (saved_flags & ~name_flag::saved) {
        return Error::invalid_argument;
    }
    std::vector<NameChange> unheard;  // the queue is as it was: nothing changed that anyone could hear
    return names_.acquire(id, name, saved_flags, unheard);
}

Status Bus::restore_pending_reply(const PendingReply& pending) {
    if (find(pending.callee) == nullptr || find(pending.caller) == nullptr) {
        return Error::no_such_connection;
    }
    return replies_.add(pending.callee, pending.caller, pending.cookie, pending.deadline);
}

void Bus::resume_numbering(ConnectionId next) {
    next_connection_id_ = std::max(next_connection_id_, std::min(next, first_internal_connection_id));
}

Result<ReleaseResult> Bus::release_name(ConnectionId id, std::string_view name) {
    Connection* connection = find(id);
    if (!connection) {
        return Error::no_such_connection;
    }
    if (!connection->is_ordinary()) {
        return Error::not_supported;
    }
    if (!is_valid_well_known_name(name)) {
        return Error::invalid_name;
    }
    if (!can_see_name(*connection, name)) {
        return ReleaseResult::unowned;
    }
    std::vector<NameChange> changes;
    const ReleaseResult result = names_.release(id, name, changes);
    apply_name_changes(changes);
    return result;
}

std::vector<ListEntry> Bus::list(ConnectionId caller, std::uint64_t flags) const {
    std::vector<ListEntry> records;
    const Connection* viewer = find(caller);
    if (!viewer) {
        return records;
    }
    boost::unordered_flat_map<ConnectionId, bool> contributed;
    auto add = [&](ConnectionId id, const std::string& name, std::uint64_t name_flags) {
        const Connection* owner = find(id);
        if (!owner) {
            return;
        }
        records.push_back({id, owner->flags(), name, name_flags});
        contributed[id] = true;
    };
    names_.for_each([&](const NameEntry& entry) {
        if (!can_see_name(*viewer, entry.name)) {
            return;
        }
        if ((flags & list_flag::names) && !entry.owners.empty()) {
            add(entry.owners.front().id, entry.name, entry.owners.front().flags | name_flag::primary);
        }
        if (flags & list_flag::queued) {
            for (std::size_t i = 1; i < entry.owners.size(); ++i) {
                add(entry.owners[i].id, entry.name, entry.owners[i].flags | name_flag::in_queue);
            }
        }
        if ((flags & list_flag::activators) && entry.activator != 0) {
            add(entry.activator, entry.name,
                name_flag::activator | (entry.owners.empty() ? name_flag::primary : name_flag::in_queue));
        }
    });
    if (flags & list_flag::unique) {
        for (const auto& [id, connection] : connections_) {
            if (connection->is_policy_holder() || contributed.contains(id)) {
                continue;
            }
            if (connection->is_activator() && !(flags & list_flag::activators)) {
                continue;
            }
            if (!can_see_connection(*viewer, *connection)) {
                continue;
            }
            records.push_back({id, connection->flags(), {}, 0});
        }
    }
    std::sort(records.begin(), records.end(), [](const ListEntry& a, const ListEntry& b) {
        return a.id != b.id ? a.id < b.id : a.name < b.name;
    });
    return records;
}

Result<ConnectionId> Bus::name_owner(ConnectionId caller, std::string_view name) const {
    const Connection* viewer = find(caller);
    if (!viewer) {
        return Error::no_such_connection;
    }
    const NameEntry* entry = names_.find(name);
    if (!entry || entry->owners.empty() || !can_see_name(*viewer, name)) {
        return Error::name_has_no_owner;
    }
    return entry->owners.front().id;
}

Result<std::vector<ConnectionId>> Bus::queued_owners(ConnectionId caller, std::string_view name) const {
    const Connection* viewer = find(caller);
    if (!viewer) {
        return Error::no_such_connection;
    }
    const NameEntry* entry = names_.find(name);
    if (!entry || entry->owners.empty() || !can_see_name(*viewer, name)) {
        return Error::name_has_no_owner;
    }
    std::vector<ConnectionId> owners;
    for (const auto& owner : entry->owners) {
        owners.push_back(owner.id);
    }
    return owners;
}

std::vector<std::string> Bus::owned_names(ConnectionId id) const {
    std::vector<std::string> owned;
    names_.for_each_owned(id, [&](const NameEntry& entry) {
        if (!entry.owners.empty()) {
            owned.push_back(entry.name);
        }
    });
    std::sort(owned.begin(), owned.end());
    return owned;
}

void Bus::apply_name_changes(const std::vector<NameChange>& changes) {
    for (const auto& change : changes) {
        if (change.from_activator || change.to_activator) {
            move_name_messages(change.old_id, change.new_id, change.name_id);
        }
        notify_name_change(change);
    }
}

void Bus::move_name_messages(ConnectionId from, ConnectionId to, std::uint64_t name_id) {
    Connection* source = find(from);
    Connection* target = find(to);
    if (!source || !target) {
        return;
    }
    auto moving = source->queue_.extract([&](const QueuedEntry& entry) {
        return entry.name_id == name_id && entry.item.kind == QueueItem::Kind::message;
    });
    std::vector<QueuedEntry> kept;
    std::vector<PendingReply> lost_calls;
    for (auto& entry : moving) {
        quotas_.discharge(entry.charge);
        const bool expects_reply = entry.item.flags & message_flag::expect_reply;
        bool accepted = !(entry.item.fd_count() > 0 && !target->accepts_fds()) &&
                        target->queue_.fits(config_.limits.queue, entry.item);
        if (accepted) {
            auto charge = quotas_.charge(target->user(), entry.actor,
                                         {entry.item.byte_count(), entry.item.fd_count(), 1});
            accepted = charge.ok();
            if (accepted) {
                entry.charge = *charge;
            }
        }
        if (!accepted) {
            target->queue_.count_dropped();
            if (expects_reply && replies_.consume(from, entry.item.sender, entry.item.cookie)) {
                lost_calls.push_back({from, entry.item.sender, entry.item.cookie, 0});
            }
            continue;
        }
        if (expects_reply) {
            replies_.redirect(from, to, entry.item.sender, entry.item.cookie);
        }
        entry.item.destination = to;
        kept.push_back(std::move(entry));
    }
    if (!kept.empty()) {
        target->queue_.merge(std::move(kept));
        mark_readable(*target);
    }
    for (const auto& call : lost_calls) {
        notify_reply(NotificationType::reply_dead, call.caller, call.cookie);
    }
}

// ------------------------------------------------------------------------------------- notifications

void Bus::begin_fanout() {
    ++fanout_generation_;
    candidates_.clear();
}

void Bus::add_candidate(Connection& connection, const std::uint64_t* cookie) {
    if (connection.fanout_stamp_ != fanout_generation_) {
        connection.fanout_stamp_ = fanout_generation_;
        connection.fanout_cookies_.clear();
        candidates_.push_back(&connection);
    }
    if (cookie && !connection.fanout_cookies_.contains(*cookie)) {
        connection.fanout_cookies_.push_back(*cookie);
    }
}

void Bus::enqueue_notification(Connection& receiver, QueueItem item, bool must_deliver) {
    // Notifications are not charged to quotas; broadcast ones respect the queue limits, while reply
    // notifications always go through, since they are the only answer the caller will get.
    if (!must_deliver && !receiver.queue_.fits(config_.limits.queue, item)) {
        receiver.queue_.count_dropped();
        return;
    }
    QueuedEntry entry;
    entry.item = std::move(item);
    receiver.queue_.push(std::move(entry), queue_storage_);
    mark_readable(receiver);
}

void Bus::notify_name_change(const NameChange& change) {
    const std::uint64_t sequence = ++clock_;
    begin_fanout();
    matches_.for_each_notification_match(
        change.type, [&](ConnectionId owner, const NotificationMatch& match) {
            if ((match.old_id == any_connection || match.old_id == change.old_id) &&
                (match.new_id == any_connection || match.new_id == change.new_id) &&
                (match.name.empty() || match.name == change.name)) {
                if (Connection* receiver = find(owner)) {
                    add_candidate(*receiver, &match.cookie);
                }
            }
        });
    // The connections that gained or lost the name are always told (dbus1 NameAcquired / NameLost).
    for (ConnectionId affected : {change.old_id, change.new_id}) {
        if (Connection* receiver = find(affected); receiver && receiver->is_ordinary()) {
            add_candidate(*receiver, nullptr);
        }
    }

    QueueItem item;
    item.kind = QueueItem::Kind::notification;
    item.sequence = sequence;
    item.destination = broadcast_destination;
    item.flags = message_flag::signal;
    item.notification.type = change.type;
    item.notification.name = change.name;
    item.notification.old_id = change.old_id;
    item.notification.old_flags = change.old_flags;
    item.notification.new_id = change.new_id;
    item.notification.new_flags = change.new_flags;
    for (Connection* receiver : candidates_) {
        if (!can_see_name(*receiver, change.name)) {
            continue;
        }
        QueueItem copy = item;
        copy.matched = receiver->fanout_cookies_;
        enqueue_notification(*receiver, std::move(copy), false);
    }
}

void Bus::notify_id_change(NotificationType type, const Connection& subject) {
    const std::uint64_t sequence = ++clock_;
    begin_fanout();
    matches_.for_each_notification_match(type, [&](ConnectionId owner, const NotificationMatch& match) {
        if (match.id == any_connection || match.id == subject.id()) {
            if (Connection* receiver = find(owner); receiver && receiver != &subject) {
                add_candidate(*receiver, &match.cookie);
            }
        }
    });

    QueueItem item;
    item.kind = QueueItem::Kind::notification;
    item.sequence = sequence;
    item.destination = broadcast_destination;
    item.flags = message_flag::signal;
    item.notification.type = type;
    item.notification.id = subject.id();
    item.notification.id_flags = subject.flags();
    for (Connection* receiver : candidates_) {
        if (receiver->endpoint() != default_endpoint) {
            continue;  // ID_* notifications are only delivered on the default endpoint
        }
        QueueItem copy = item;
        copy.matched = receiver->fanout_cookies_;
        enqueue_notification(*receiver, std::move(copy), false);
    }
}

void Bus::notify_reply(NotificationType type, ConnectionId caller, std::uint64_t cookie) {
    Connection* receiver = find(caller);
    if (!receiver) {
        return;
    }
    QueueItem item;
    item.kind = QueueItem::Kind::notification;
    item.sequence = ++clock_;
    item.destination = caller;
    item.reply_cookie = cookie;
    item.notification.type = type;
    enqueue_notification(*receiver, std::move(item), true);
}

// ------------------------------------------------------------------------------------------ messages

void Bus::mark_readable(Connection& connection) {
    if (!connection.readable_listed_) {
        connection.readable_listed_ = true;
        readable_.push_back(connection.id());
    }
}

void Bus::take_readable(std::vector<ConnectionId>& ready) {
    ready.clear();
    ready.swap(readable_);
    for (ConnectionId id : ready) {
        if (Connection* connection = find(id)) {
            connection->readable_listed_ = false;
        }
    }
}

Status Bus::enqueue(Connection& receiver, QueuedEntry&& entry) {
    if (!receiver.queue_.fits(config_.limits.queue, entry.item)) {
        return Error::queue_full;
    }
    auto charge =
        quotas_.charge(receiver.user(), entry.actor, {entry.item.byte_count(), entry.item.fd_count(), 1});
    if (!charge) {
        return charge.error();
    }
    entry.charge = *charge;
    receiver.queue_.push(std::move(entry), queue_storage_);
    mark_readable(receiver);
    return {};
}

Result<SendReceipt> Bus::send(ConnectionId sender_id, OutgoingMessage message) {
    Connection* sender = find(sender_id);
    if (!sender) {
        return Error::no_such_connection;
    }
    // An activator sends nothing but the answers owed for calls it holds, when their service cannot start.
    const bool answers_held_call = sender->is_activator() && message.reply_cookie != 0 &&
                                   !(message.flags & (message_flag::expect_reply | message_flag::signal)) &&
                                   message.destination_id != broadcast_destination;
    if (!sender->is_ordinary() && !answers_held_call) {
        return Error::not_supported;
    }
    if (!message.payload || (message.flags & ~known_message_flags)) {
        return Error::invalid_argument;
    }
    if (message.payload->bytes.size() > config_.limits.max_message_bytes) {
        return Error::message_too_large;
    }
    if (message.payload->fds.size() > config_.limits.max_fds_per_message) {
        return Error::too_many_fds;
    }
    const bool is_signal = message.flags & message_flag::signal;
    const bool expects_reply = message.flags & message_flag::expect_reply;
    const bool is_broadcast = message.destination_id == broadcast_destination;
    if (expects_reply && (message.cookie == 0 || is_signal || is_broadcast)) {
        return Error::invalid_argument;
    }
    if (message.reply_cookie != 0 && is_signal) {
        return Error::invalid_argument;
    }
    if (is_broadcast) {
        return broadcast(*sender, message);
    }
    return unicast(*sender, message);
}

Result<SendReceipt> Bus::broadcast(Connection& sender, OutgoingMessage& message) {
    if (!(message.flags & message_flag::signal) || !message.destination_name.empty() ||
        message.reply_cookie != 0) {
        return Error::invalid_argument;
    }
    SendReceipt receipt;
    receipt.sequence = ++clock_;

    begin_fanout();
    const ConnectionId sender_id = sender.id();
    matches_.observe(message.bloom);
    matches_.for_each_candidate(message.bloom, sender_id, names_, [&](const MatchIndex::Rule& rule) {
        if (rule.owner == sender_id && !config_.broadcasts_reach_sender) {
            return;
        }
        if (rule.sender_id != any_connection && rule.sender_id != sender_id) {
            return;
        }
        if (!rule.sender_name.empty() && !names_.is_primary(sender_id, rule.sender_name)) {
            return;
        }
        if (Connection* receiver = find(rule.owner)) {
            add_candidate(*receiver, &rule.cookie);
        }
    });

    QueuedEntry entry;
    entry.item.kind = QueueItem::Kind::message;
    entry.item.sequence = receipt.sequence;
    entry.item.sender = sender_id;
    entry.item.destination = broadcast_destination;
    entry.item.cookie = message.cookie;
    entry.item.flags = message.flags;
    entry.item.payload = std::move(message.payload);
    entry.actor = sender.user();

    const bool has_fds = entry.item.fd_count() > 0;
    for (Connection* receiver : candidates_) {
        // kdbus: the receiver of a broadcast must be allowed to TALK to the sender (see may_hear).
        if (!may_hear(*receiver, sender)) {
            continue;
        }
        if (has_fds && !receiver->accepts_fds()) {
            receiver->queue_.count_dropped();
            ++receipt.dropped;
            continue;
        }
        QueuedEntry copy;
        copy.item = entry.item;
        copy.item.matched = receiver->fanout_cookies_;
        copy.actor = entry.actor;
        if (enqueue(*receiver, std::move(copy))) {
            ++receipt.delivered;
        } else {
            receiver->queue_.count_dropped();
            ++receipt.dropped;
        }
    }
    return receipt;
}

Result<SendReceipt> Bus::unicast(Connection& sender, OutgoingMessage& message) {
    const bool is_signal = message.flags & message_flag::signal;
    const bool expects_reply = message.flags & message_flag::expect_reply;
    const bool is_reply = message.reply_cookie != 0 && !expects_reply;

    Connection* receiver = nullptr;
    std::uint64_t name_id = 0;
    if (!message.destination_name.empty()) {
        // Only a valid name is ever registered (acquire and attach_activator check): the name is
        // checked when it is not found, not for every message.
        const NameEntry* entry = names_.find(message.destination_name);
        if (!entry) {
            return is_valid_well_known_name(message.destination_name) ? Error::name_has_no_owner
                                                                       : Error::invalid_name;
        }
        if (!can_see_name(sender, message.destination_name)) {
            return Error::name_has_no_owner;
        }
        if (entry->only_activator() && (message.flags & message_flag::no_auto_start)) {
            return Error::activation_disabled;
        }
        const ConnectionId owner = entry->destination();
        if (message.destination_id != 0 && message.destination_id != owner) {
            return Error::destination_changed;
        }
        receiver = find(owner);
        name_id = entry->name_id;
    } else {
        receiver = find(message.destination_id);
        if (!receiver || !receiver->is_ordinary()) {
            return Error::no_such_connection;
        }
        // A peer hidden by the sender's endpoint stays reachable for the replies it is owed.
        const bool owed_reply =
            is_reply && replies_.contains(sender.id(), receiver->id(), message.reply_cookie);
        if (!owed_reply && !can_see_connection(sender, *receiver)) {
            return Error::no_such_connection;
        }
    }

    SendReceipt receipt;
    if (is_reply) {
        // Replies need no TALK: the outstanding call opened the way. They need that call, though.
        if (!replies_.contains(sender.id(), receiver->id(), message.reply_cookie)) {
            return Error::unexpected_reply;
        }
    } else if (is_signal) {
        // A unicast signal is silently dropped unless the receiver may hear the sender (kdbus).
        if (!may_hear(*receiver, sender)) {
            return receipt;
        }
    } else if (!may_talk(sender, *receiver)) {
        return Error::permission_denied;
    }
    if (!message.payload->fds.empty() && !receiver->accepts_fds()) {
        return Error::fds_not_accepted;
    }
    if (expects_reply) {
        if (auto status = replies_.add(receiver->id(), sender.id(), message.cookie, message.timeout);
            !status) {
            return status.error();
        }
    }

    QueuedEntry entry;
    entry.item.kind = QueueItem::Kind::message;
    entry.item.sequence = clock_ + 1;
    entry.item.sender = sender.id();
    entry.item.destination = receiver->id();
    entry.item.cookie = message.cookie;
    entry.item.reply_cookie = message.reply_cookie;
    entry.item.flags = message.flags;
    entry.item.payload = std::move(message.payload);
    entry.name_id = name_id;
    entry.actor = sender.user();
    if (auto status = enqueue(*receiver, std::move(entry)); !status) {
        if (expects_reply) {
            replies_.consume(receiver->id(), sender.id(), message.cookie);
        }
        return status.error();
    }
    if (!is_reply && !is_signal && receiver->endpoint() != default_endpoint) {
        remember_caller(*receiver, sender.id());
    }
    receipt.sequence = ++clock_;
    if (is_reply) {
        replies_.consume(sender.id(), receiver->id(), message.reply_cookie);
    }
    receipt.destination = receiver->id();
    receipt.delivered = 1;
    return receipt;
}

std::optional<QueueItem> Bus::receive(ConnectionId id) {
    Connection* connection = find(id);
    if (!connection) {
        return std::nullopt;
    }
    return take_front(*connection);
}

std::optional<QueueItem> Bus::take_front(Connection& connection) {
    auto entry = connection.queue_.pop(queue_storage_);
    if (!entry) {
        return std::nullopt;
    }
    quotas_.discharge(entry->charge);
    return std::move(entry->item);
}

const QueueItem* Bus::peek(ConnectionId id) const {
    const Connection* connection = find(id);
    if (!connection) {
        return nullptr;
    }
    const QueuedEntry* entry = connection->queue_.front();
    return entry ? &entry->item : nullptr;
}

std::uint64_t Bus::take_dropped(ConnectionId id) {
    Connection* connection = find(id);
    return connection ? connection->queue_.take_dropped() : 0;
}

std::size_t Bus::expire(Timestamp now) {
    auto expired = replies_.take_expired(now);
    for (const auto& pending : expired) {
        notify_reply(NotificationType::reply_timeout, pending.caller, pending.cookie);
    }
    return expired.size();
}

// -------------------------------------------------------------------------------------------- matches

Status Bus::add_match(ConnectionId id, MessageMatch match) {
    Connection* connection = find(id);
    if (!connection) {
        return Error::no_such_connection;
    }
    if (!connection->is_ordinary()) {
        return Error::not_supported;
    }
    return matches_.add(id, std::move(match));
}

Status Bus::add_match(ConnectionId id, NotificationMatch match) {
    Connection* connection = find(id);
    if (!connection) {
        return Error::no_such_connection;
    }
    if (!connection->is_ordinary()) {
        return Error::not_supported;
    }
    return matches_.add(id, std::move(match));
}

Status Bus::remove_match(ConnectionId id, std::uint64_t cookie) {
    if (!find(id)) {
        return Error::no_such_connection;
    }
    return matches_.remove(id, cookie);
}

// -------------------------------------------------------------------------------- policy and endpoints

Status Bus::set_policy(ConnectionId holder, std::vector<PolicyEntry> entries) {
    Connection* connection = find(holder);
    if (!connection) {
        return Error::no_such_connection;
    }
    const bool is_holder = connection->flags() & hello_flag::policy_holder;
    if (!is_holder && !connection->is_activator()) {
        return Error::not_supported;
    }
    return bus_policy_.replace(holder, entries, is_holder);
}

Result<EndpointId> Bus::make_endpoint(std::string name, std::vector<PolicyEntry> policy) {
    if (name.empty()) {
        return Error::invalid_argument;
    }
    for (const auto& [id, endpoint] : endpoints_) {
        if (endpoint->name() == name) {
            return Error::already_exists;
        }
    }
    auto endpoint = std::make_unique<Endpoint>(next_endpoint_id_, std::move(name));
    if (auto status = endpoint->policy().replace(0, policy); !status) {
        return status.error();
    }
    const EndpointId id = next_endpoint_id_++;
    endpoints_.emplace(id, std::move(endpoint));
    return id;
}

Status Bus::update_endpoint(EndpointId id, std::vector<PolicyEntry> policy) {
    Endpoint* endpoint = find_endpoint(id);
    if (!endpoint || endpoint->is_default()) {
        return Error::no_such_endpoint;
    }
    return endpoint->policy().replace(0, policy);
}

Status Bus::remove_endpoint(EndpointId id) {
    Endpoint* endpoint = find_endpoint(id);
    if (!endpoint || endpoint->is_default()) {
        return Error::no_such_endpoint;
    }
    std::vector<ConnectionId> members;
    for (const auto& [connection_id, connection] : connections_) {
        if (connection->endpoint() == id) {
            members.push_back(connection_id);
        }
    }
    std::sort(members.begin(), members.end());
    for (ConnectionId member : members) {
        (void)bye(member);
    }
    endpoints_.erase(id);
    return {};
}

}  // namespace busgate::core
