#include "bus/state.h"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <string_view>
#include <tuple>

#include "bus/activation.h"
#include "bus/bus_daemon.h"
#include "bus/endpoints.h"
#include "bus/match_rule.h"
#include "bus/unique_name.h"
#include "core/siphash.h"

namespace busgate::bus {
namespace {

constexpr std::array<char, 8> magic = {'B', 'G', 'S', 'T', 'A', 'T', 'E', '\0'};
constexpr std::size_t file_header_size = 8 + 4 + 4 + 8;
constexpr std::size_t check_size = 8;
constexpr std::size_t record_header_size = 2 + 2 + 4;
constexpr std::uint16_t skippable = 1;  // a record flag: a reader that does not know the tag may skip it
constexpr std::array<std::uint8_t, 16> check_key{};

// Tags: top-level records, then the fields of each. Never renumber one; retire it instead.
enum Record : std::uint16_t { bus_record = 1, connection_record = 2, name_record = 3, pending_reply_record = 4 };
enum BusField : std::uint16_t { bus_guid = 1, bus_next_connection_id = 2 };
enum ConnectionField : std::uint16_t {
    connection_id = 1,
    connection_uid = 2,
    connection_gid = 3,
    connection_pid = 4,
    connection_group = 5,  // one per supplementary group, in order
    connection_security_label = 6,
    connection_unix_fds = 7,
    connection_endpoint = 8,
    connection_listener = 9,
    connection_match_rule = 10,  // one per rule, in order
    connection_authorized_uid = 11,
    connection_anonymous = 12,
    connection_unread_input = 13,
    connection_unwritten_output = 14,
};
enum NameField : std::uint16_t { name_text = 1, name_owner = 2 };
enum OwnerField : std::uint16_t { owner_id = 1, owner_flags = 2 };  // in a name_owner field's value
enum PendingReplyField : std::uint16_t { pending_callee = 1, pending_caller = 2, pending_cookie = 3, pending_deadline = 4 };

template <typename T>
void put(std::vector<std::uint8_t>& out, T value) {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(value) >> (8 * i)));
    }
}

template <typename T>
T get(std::span<const std::uint8_t> bytes) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        value |= static_cast<std::uint64_t>(bytes[i]) << (8 * i);
    }
    return static_cast<T>(value);
}

std::uint64_t check_of(std::span<const std::uint8_t> bytes) {
    return core::SipHash24::hash(
        check_key, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

class RecordWriter {
  public:
    void open(std::uint16_t tag) {
        header(tag, 0);
        open_.push_back(out_.size());
    }
    void close() {
        const std::size_t start = open_.back();
        open_.pop_back();
        const auto length = static_cast<std::uint32_t>(out_.size() - start);
        for (std::size_t i = 0; i < 4; ++i) {
            out_[start - 4 + i] = static_cast<std::uint8_t>(length >> (8 * i));
        }
    }
    template <typename T>
    void integer(std::uint16_t tag, T value) {
        header(tag, sizeof(T));
        put(out_, value);
    }
    void text(std::uint16_t tag, std::string_view value) {
        header(tag, static_cast<std::uint32_t>(value.size()));
        out_.insert(out_.end(), value.begin(), value.end());
    }
    void bytes(std::uint16_t tag, std::span<const std::uint8_t> value) {
        header(tag, static_cast<std::uint32_t>(value.size()));
        out_.insert(out_.end(), value.begin(), value.end());
    }
    std::vector<std::uint8_t>& written() { return out_; }

  private:
    void header(std::uint16_t tag, std::uint32_t length) {
        put(out_, tag);
        put(out_, std::uint16_t{0});
        put(out_, length);
    }
    std::vector<std::uint8_t> out_;
    std::vector<std::size_t> open_;
};

struct Item {
    std::uint16_t tag = 0;
    std::uint16_t flags = 0;
    std::span<const std::uint8_t> value;
    std::size_t offset = 0;  // of its header, in the whole file
};

// Reads one list of records; the first error is kept and every later read fails.
class Decoder {
  public:
    static constexpr std::size_t whole = static_cast<std::size_t>(-1);  // an error of no one place
    std::string error;

    bool failed() const { return !error.empty(); }
    bool fail(std::size_t offset, std::string_view context, std::string_view problem) {
        if (error.empty()) {
            error.append("state");
            if (offset != whole) {
                error.append(": at byte ").append(std::to_string(offset));
            }
            if (!context.empty()) {
                error.append(" (in ").append(context).append(")");
            }
            error.append(": ").append(problem);
        }
        return false;
    }
    // The records of `list`, which starts at `base` in the file; false (with an error) if one overruns it.
    bool split(std::span<const std::uint8_t> list, std::size_t base, std::string_view context,
               std::vector<Item>& items) {
        std::size_t at = 0;
        while (at < list.size()) {
            if (list.size() - at < record_header_size) {
                return fail(base + at, context, "a record is cut short inside its header");
            }
            Item item;
            item.tag = get<std::uint16_t>(list.subspan(at));
            item.flags = get<std::uint16_t>(list.subspan(at + 2));
            const auto length = get<std::uint32_t>(list.subspan(at + 4));
            item.offset = base + at;
            at += record_header_size;
            if (length > list.size() - at) {
                return fail(item.offset, context,
                            "record " + std::to_string(item.tag) + " claims " + std::to_string(length) +
                                " bytes, " + std::to_string(list.size() - at) + " are left");
            }
            item.value = list.subspan(at, length);
            at += length;
            items.push_back(item);
        }
        return true;
    }
    bool unknown(const Item& item, std::string_view context) {
        if ((item.flags & skippable) != 0) {
            return true;
        }
        return fail(item.offset, context,
                    "record " + std::to_string(item.tag) +
                        " is not known to this busgate and its writer did not let it be skipped");
    }
    template <typename T>
    bool integer(const Item& item, std::string_view context, T& value) {
        if (item.value.size() != sizeof(T)) {
            return fail(item.offset, context,
                        "field " + std::to_string(item.tag) + " has " + std::to_string(item.value.size()) +
                            " bytes where a " + std::to_string(8 * sizeof(T)) + "-bit integer belongs");
        }
        value = get<T>(item.value);
        return true;
    }
    std::string text(const Item& item) {
        return std::string(reinterpret_cast<const char*>(item.value.data()), item.value.size());
    }
    std::size_t value_offset(const Item& item) const { return item.offset + record_header_size; }
};

bool is_guid(std::string_view text) {
    return text.size() == 32 && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

bool decode_connection(Decoder& decoder, const Item& record, ConnectionState& connection) {
    static constexpr std::string_view context = "connection";
    std::vector<Item> fields;
    if (!decoder.split(record.value, decoder.value_offset(record), context, fields)) {
        return false;
    }
    for (const Item& field : fields) {
        bool ok = true;
        switch (field.tag) {
            case connection_id:
                ok = decoder.integer(field, context, connection.id);
                break;
            case connection_uid:
                ok = decoder.integer(field, context, connection.uid.emplace());
                break;
            case connection_gid:
                ok = decoder.integer(field, context, connection.gid.emplace());
                break;
            case connection_pid:
                ok = decoder.integer(field, context, connection.pid);
                break;
            case connection_group:
                ok = decoder.integer(field, context, connection.groups.emplace_back());
                break;
            case connection_security_label:
                connection.security_label = decoder.text(field);
                break;
            case connection_authorized_uid:
                ok = decoder.integer(field, context, connection.authorized_uid.emplace());
                break;
            case connection_anonymous:
            case connection_unix_fds: {
                std::uint8_t flag = 0;
                ok = decoder.integer(field, context, flag);
                (field.tag == connection_anonymous ? connection.anonymous : connection.unix_fds) = flag != 0;
                break;
            }
            case connection_unread_input:
                connection.unread_input.assign(field.value.begin(), field.value.end());
                break;
            case connection_unwritten_output:
                connection.unwritten_output.assign(field.value.begin(), field.value.end());
                break;
            case connection_endpoint:
                connection.endpoint = decoder.text(field);
                break;
            case connection_listener:
                connection.listener_address = decoder.text(field);
                break;
            case connection_match_rule: {
                std::string rule = decoder.text(field);
                if (!parse_match_rule(rule, max_printed_match_rule_length).rule) {
                    return decoder.fail(field.offset, context, "a match rule that does not parse: " + rule);
                }
                connection.match_rules.push_back(std::move(rule));
                break;
            }
            default:
                ok = decoder.unknown(field, context);
        }
        if (!ok) {
            return false;
        }
    }
    if (connection.id == 0 || connection.id >= core::first_internal_connection_id) {
        return decoder.fail(record.offset, context, "no connection id, or one no client can have");
    }
    return true;
}

bool decode_owner(Decoder& decoder, const Item& item, NameOwnerState& owner) {
    static constexpr std::string_view context = "name owner";
    std::vector<Item> fields;
    if (!decoder.split(item.value, decoder.value_offset(item), context, fields)) {
        return false;
    }
    for (const Item& field : fields) {
        const bool ok = field.tag == owner_id      ? decoder.integer(field, context, owner.id)
                        : field.tag == owner_flags ? decoder.integer(field, context, owner.flags)
                                                   : decoder.unknown(field, context);
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool decode_name(Decoder& decoder, const Item& record, NameState& name) {
    static constexpr std::string_view context = "name";
    std::vector<Item> fields;
    if (!decoder.split(record.value, decoder.value_offset(record), context, fields)) {
        return false;
    }
    for (const Item& field : fields) {
        bool ok = true;
        switch (field.tag) {
            case name_text:
                name.name = decoder.text(field);
                break;
            case name_owner:
                ok = decode_owner(decoder, field, name.owners.emplace_back());
                break;
            default:
                ok = decoder.unknown(field, context);
        }
        if (!ok) {
            return false;
        }
    }
    if (!core::is_valid_well_known_name(name.name) || name.name == "org.freedesktop.DBus" ||
        name.owners.empty()) {
        return decoder.fail(record.offset, context,
                            "a name that no client can own (\"" + name.name + "\"), or with nobody holding it");
    }
    for (std::size_t position = 0; position < name.owners.size(); ++position) {
        const std::uint64_t flags = name.owners[position].flags;
        // A waiter asked to queue; nobody keeps more than the flags an owner keeps.
        if ((flags & ~core::name_flag::saved) != 0 || (position > 0 && (flags & core::name_flag::queue) == 0)) {
            return decoder.fail(record.offset, context,
                                "owner " + std::to_string(position) + " of " + name.name + " has flags " +
                                    std::to_string(flags) + ", which no owner in that place can have");
        }
    }
    return true;
}

bool decode_pending_reply(Decoder& decoder, const Item& record, PendingReplyState& pending) {
    static constexpr std::string_view context = "pending reply";
    std::vector<Item> fields;
    if (!decoder.split(record.value, decoder.value_offset(record), context, fields)) {
        return false;
    }
    for (const Item& field : fields) {
        const bool ok = field.tag == pending_callee     ? decoder.integer(field, context, pending.callee)
                        : field.tag == pending_caller   ? decoder.integer(field, context, pending.caller)
                        : field.tag == pending_cookie   ? decoder.integer(field, context, pending.cookie)
                        : field.tag == pending_deadline ? decoder.integer(field, context, pending.deadline)
                                                        : decoder.unknown(field, context);
        if (!ok) {
            return false;
        }
    }
    return true;
}

// What the records say must also hold together: every owner is a connection of the state, no connection
// twice, no name twice, no owner twice in one queue.
bool check_references(Decoder& decoder, const BusState& state) {
    if (state.next_connection_id == 0 || state.next_connection_id >= core::first_internal_connection_id) {
        return decoder.fail(Decoder::whole, "bus",
                            "the next connection id, " + std::to_string(state.next_connection_id) +
                                ", is not one a client can be given");
    }
    std::set<core::ConnectionId> ids;
    for (const ConnectionState& connection : state.connections) {
        if (!ids.insert(connection.id).second) {
            return decoder.fail(Decoder::whole, "connection", "connection " + std::to_string(connection.id) + " twice");
        }
        if (connection.id >= state.next_connection_id) {
            return decoder.fail(Decoder::whole, "connection",
                                "connection " + std::to_string(connection.id) +
                                    " is not below the next id to give, " +
                                    std::to_string(state.next_connection_id));
        }
    }
    std::set<std::string_view> names;
    for (const NameState& name : state.names) {
        if (!names.insert(name.name).second) {
            return decoder.fail(Decoder::whole, "name", "name " + name.name + " twice");
        }
        std::set<core::ConnectionId> queued;
        for (const NameOwnerState& owner : name.owners) {
            if (!ids.contains(owner.id) || !queued.insert(owner.id).second) {
                return decoder.fail(Decoder::whole, "name",
                                    "name " + name.name + " is held by connection " + std::to_string(owner.id) +
                                        ", which the state does not have or lists twice");
            }
        }
    }
    std::set<std::tuple<core::ConnectionId, core::ConnectionId, std::uint64_t>> calls;
    for (const PendingReplyState& pending : state.pending_replies) {
        if (!calls.emplace(pending.callee, pending.caller, pending.cookie).second) {
            return decoder.fail(Decoder::whole, "pending reply",
                                "the call " + std::to_string(pending.cookie) + " from connection " +
                                    std::to_string(pending.caller) + " twice");
        }
        if (!ids.contains(pending.callee) || !ids.contains(pending.caller)) {
            return decoder.fail(Decoder::whole, "pending reply",
                                "a call from connection " + std::to_string(pending.caller) + " to " +
                                    std::to_string(pending.callee) + ", which the state does not both have");
        }
    }
    return true;
}

}  // namespace

std::optional<BusState> capture_state(BusDaemon& daemon, std::string& error) {
    BusState state;
    state.guid = daemon.guid();
    state.next_connection_id = daemon.core().next_connection_id();
    if (daemon.incomplete_count() > 0) {
        error = "a client is still authenticating or has not said Hello yet";
        return std::nullopt;
    }
    if (daemon.activation().in_progress()) {
        error = "a service is being activated";
        return std::nullopt;
    }
    for (const core::PendingReply& pending : daemon.core().pending_replies()) {
        if (pending.callee >= core::first_internal_connection_id ||
            pending.caller >= core::first_internal_connection_id) {
            error = "a call waits on one of the bus's own connections";
            return std::nullopt;
        }
        state.pending_replies.push_back({.callee = pending.callee,
                                         .caller = pending.caller,
                                         .cookie = pending.cookie,
                                         .deadline = pending.deadline});
    }
    daemon.peers().for_each([&](const Peer& peer) {
        if (!error.empty()) {
            return;
        }
        if (!peer.registered()) {
            error = peer.monitor ? "a monitor is connected, and state format 1 does not carry monitors"
                                 : "a client is still authenticating or has not said Hello yet";
            return;
        }
        if (peer.connection->holds_descriptors()) {
            error = peer.unique_name + " has file descriptors in flight";
            return;
        }
        if (daemon.core().peek(peer.id) != nullptr) {
            error = "the bus still queues messages for " + peer.unique_name;
            return;
        }
        if (peer.endpoint != core::default_endpoint) {
            error = peer.unique_name + " came through a container endpoint, which state format 1 does not carry";
            return;
        }
        const transport::PeerCredentials& credentials = peer.connection->credentials();
        ConnectionState& connection = state.connections.emplace_back();
        connection.id = peer.id;
        connection.uid = credentials.uid;
        connection.gid = credentials.gid;
        connection.pid = credentials.pid;
        connection.groups.assign(credentials.groups.begin(), credentials.groups.end());
        connection.security_label = credentials.security_label;
        const transport::SaslOutcome& authentication = peer.connection->authentication();
        connection.authorized_uid = authentication.authorized_uid;
        connection.anonymous = authentication.anonymous;
        connection.unix_fds = authentication.unix_fd_negotiated;
        connection.listener_address = peer.listener_address;
        for (const InstalledMatch& installed : peer.matches) {
            connection.match_rules.push_back(installed.rule.to_string());
        }
        const std::span<const std::uint8_t> unread = peer.connection->unread_input();
        connection.unread_input.assign(unread.begin(), unread.end());
        connection.unwritten_output = peer.connection->unwritten_output();
    });
    if (!error.empty()) {
        return std::nullopt;
    }
    std::sort(state.connections.begin(), state.connections.end(),
              [](const ConnectionState& a, const ConnectionState& b) { return a.id < b.id; });
    daemon.core().names().for_each([&](const core::NameEntry& entry) {
        NameState name{.name = entry.name, .owners = {}};
        for (const core::NameOwner& owner : entry.owners) {
            if (owner.id < core::first_internal_connection_id) {
                name.owners.push_back({.id = owner.id, .flags = owner.flags});
            }
        }
        if (!name.owners.empty()) {
            state.names.push_back(std::move(name));
        }
    });
    std::sort(state.names.begin(), state.names.end(),
              [](const NameState& a, const NameState& b) { return a.name < b.name; });
    return state;
}

bool BusDaemon::restore(const BusState& state, std::vector<util::UniqueFd> sockets, std::string& error) {
    if (state.guid != guid_ || sockets.size() != state.connections.size()) {
        error = "the state is of another bus (GUID " + state.guid + "), or not every connection has its socket";
        return false;
    }
    // Everything that can be checked before anything changes: a refusal here leaves this bus as it was.
    if (peers_.size() > 0 || acceptor_.incomplete_count() > 0) {
        error = "clients came to this bus before it took the state over";
        return false;
    }
    for (std::size_t i = 0; i < state.connections.size(); ++i) {
        const ConnectionState& saved = state.connections[i];
        if (!saved.endpoint.empty() || !sockets[i]) {
            error = "connection " + unique_name_of(saved.id) +
                    (sockets[i] ? " came through container endpoint " + saved.endpoint +
                                      ", which state format 1 does not carry"
                                : " has no socket");
            return false;
        }
        if (saved.match_rules.size() > options_.max_match_rules_per_connection) {
            error = "connection " + unique_name_of(saved.id) + " has more match rules than this bus allows";
            return false;
        }
    }
    // From here a refusal leaves this bus half made: its process must exit (the old one goes on).
    bus_.resume_numbering(state.next_connection_id);
    for (std::size_t i = 0; i < state.connections.size(); ++i) {
        const ConnectionState& saved = state.connections[i];
        transport::PeerCredentials credentials{.uid = saved.uid,
                                               .gid = saved.gid,
                                               .pid = saved.pid,
                                               .groups = {saved.groups.begin(), saved.groups.end()},
                                               .security_label = saved.security_label};
        auto peer = std::make_unique<Peer>();
        peer->listener_address = saved.listener_address;
        peer->connection = transport::Connection::resumed(std::move(sockets[i]), credentials,
                                                          {.unix_fd_negotiated = saved.unix_fds,
                                                           .authorized_uid = saved.authorized_uid,
                                                           .anonymous = saved.anonymous,
                                                           .authorized_pid = saved.pid},
                                                          options_.client, saved.unread_input,
                                                          saved.unwritten_output);
        // As Hello counts it: whom SASL let in, else the socket's owner.
        const std::uint32_t uid = saved.authorized_uid.value_or(saved.uid.value_or(~0u));
        core::HelloParams params;
        params.credentials = {.uid = uid,
                              .gid = saved.gid.value_or(~0u),
                              .groups = saved.groups,
                              .pid = saved.pid,
                              .security_label = saved.security_label};
        params.flags = saved.unix_fds ? core::hello_flag::accept_fds : 0;
        params.restored_id = saved.id;
        const auto id = bus_.hello(std::move(params));
        if (!id) {
            error = "connection " + unique_name_of(saved.id) + " could not be taken back: " +
                    std::string(core::describe(id.error()));
            return false;
        }
        peer->id = *id;
        peer->uid = uid;
        peer->unique_name = unique_name_of(peer->id);
        const int fd = peer->connection->fd();
        loop_.add(fd, EPOLLIN, [this, fd](std::uint32_t events) {
            on_client_event(fd, events);
            deliver();
        });
        Peer& added = peers_.add(std::move(peer));
        peers_.registered(added);
        assign_policy(added);
        for (const std::string& text : saved.match_rules) {
            const ParsedMatchRule parsed = parse_match_rule(text, max_printed_match_rule_length);
            if (!parsed.ok() || !install_match(added, *parsed.rule)) {
                error = "connection " + added.unique_name + " could not take back its match rule " + text;
                return false;
            }
        }
        fresh_.push_back(fd);  // what it wrote while the bus changed hands is read before the next wait
        if (added.connection->has_output()) {
            mark_dirty(added);
        }
    }
    for (const NameState& name : state.names) {
        for (std::size_t position = 0; position < name.owners.size(); ++position) {
            const NameOwnerState& owner = name.owners[position];
            const auto result = bus_.restore_name(owner.id, name.name, owner.flags);
            const core::AcquireResult expected =
                position == 0 ? core::AcquireResult::acquired : core::AcquireResult::queued;
            if (!result || *result != expected) {
                error = "name " + name.name + " could not be given back to " + unique_name_of(owner.id) +
                        " at place " + std::to_string(position) + " of its queue";
                return false;
            }
        }
    }
    for (const PendingReplyState& pending : state.pending_replies) {
        if (!bus_.restore_pending_reply({.callee = pending.callee,
                                         .caller = pending.caller,
                                         .cookie = pending.cookie,
                                         .deadline = pending.deadline})) {
            error = "the call " + std::to_string(pending.cookie) + " from " + unique_name_of(pending.caller) +
                    " to " + unique_name_of(pending.callee) + " could not wait for its reply again";
            return false;
        }
    }
    for (const ConnectionState& saved : state.connections) {
        if (Peer* peer = peers_.find(saved.id)) {
            peer->names_stale = true;
        }
    }
    arm_timer();
    return true;
}

std::vector<std::uint8_t> encode_state(const BusState& state) {
    RecordWriter records;
    records.open(bus_record);
    records.text(bus_guid, state.guid);
    records.integer(bus_next_connection_id, state.next_connection_id);
    records.close();
    for (const ConnectionState& connection : state.connections) {
        records.open(connection_record);
        records.integer(connection_id, connection.id);
        if (connection.uid) {
            records.integer(connection_uid, *connection.uid);
        }
        if (connection.gid) {
            records.integer(connection_gid, *connection.gid);
        }
        records.integer(connection_pid, connection.pid);
        for (const std::uint32_t group : connection.groups) {
            records.integer(connection_group, group);
        }
        records.text(connection_security_label, connection.security_label);
        if (connection.authorized_uid) {
            records.integer(connection_authorized_uid, *connection.authorized_uid);
        }
        records.integer(connection_anonymous, std::uint8_t{connection.anonymous});
        records.integer(connection_unix_fds, std::uint8_t{connection.unix_fds});
        records.text(connection_endpoint, connection.endpoint);
        records.text(connection_listener, connection.listener_address);
        for (const std::string& rule : connection.match_rules) {
            records.text(connection_match_rule, rule);
        }
        records.bytes(connection_unread_input, connection.unread_input);
        records.bytes(connection_unwritten_output, connection.unwritten_output);
        records.close();
    }
    for (const NameState& name : state.names) {
        records.open(name_record);
        records.text(name_text, name.name);
        for (const NameOwnerState& owner : name.owners) {
            records.open(name_owner);
            records.integer(owner_id, owner.id);
            records.integer(owner_flags, owner.flags);
            records.close();
        }
        records.close();
    }

    for (const PendingReplyState& pending : state.pending_replies) {
        records.open(pending_reply_record);
        records.integer(pending_callee, pending.callee);
        records.integer(pending_caller, pending.caller);
        records.integer(pending_cookie, pending.cookie);
        records.integer(pending_deadline, pending.deadline);
        records.close();
    }

    std::vector<std::uint8_t> out(magic.begin(), magic.end());
    put(out, state_format_version);
    put(out, std::uint32_t{1});  // the oldest reader: every version reads version 1
    put(out, static_cast<std::uint64_t>(records.written().size()));
    out.insert(out.end(), records.written().begin(), records.written().end());
    put(out, check_of(out));
    return out;
}

DecodedState decode_state(std::span<const std::uint8_t> bytes) {
    Decoder decoder;
    DecodedState decoded;
    if (bytes.size() < file_header_size + check_size ||
        !std::equal(magic.begin(), magic.end(), bytes.begin())) {
        decoder.fail(0, {}, "not a busgate state (no BGSTATE header)");
        decoded.error = decoder.error;
        return decoded;
    }
    const auto version = get<std::uint32_t>(bytes.subspan(8));
    const auto oldest_reader = get<std::uint32_t>(bytes.subspan(12));
    const auto length = get<std::uint64_t>(bytes.subspan(16));
    if (length != bytes.size() - file_header_size - check_size) {
        decoder.fail(16, {},
                     "the header says " + std::to_string(length) + " bytes of records, the file has " +
                         std::to_string(bytes.size() - file_header_size - check_size) +
                         " (cut short, or something appended)");
    } else if (get<std::uint64_t>(bytes.subspan(bytes.size() - check_size)) !=
               check_of(bytes.first(bytes.size() - check_size))) {
        decoder.fail(bytes.size() - check_size, {}, "the check does not match: the state is damaged");
    } else if (oldest_reader > state_format_version || oldest_reader == 0 || version < oldest_reader) {
        decoder.fail(8, {},
                     "format " + std::to_string(version) + " needs a reader of format " +
                         std::to_string(oldest_reader) + " or later; this busgate reads up to format " +
                         std::to_string(state_format_version));
    }
    std::vector<Item> records;
    BusState state;
    bool saw_bus = false;
    if (!decoder.failed() &&
        decoder.split(bytes.subspan(file_header_size, length), file_header_size, "state", records)) {
        for (const Item& record : records) {
            if (record.tag == bus_record) {
                std::vector<Item> fields;
                if (saw_bus) {
                    decoder.fail(record.offset, "bus", "a second bus record");
                    break;
                }
                saw_bus = true;
                if (!decoder.split(record.value, decoder.value_offset(record), "bus", fields)) {
                    break;
                }
                for (const Item& field : fields) {
                    if (field.tag == bus_guid) {
                        state.guid = decoder.text(field);
                    } else if (field.tag == bus_next_connection_id) {
                        decoder.integer(field, "bus", state.next_connection_id);
                    } else {
                        decoder.unknown(field, "bus");
                    }
                }
                if (!decoder.failed() && !is_guid(state.guid)) {
                    decoder.fail(record.offset, "bus", "the GUID is not 32 hex digits");
                }
            } else if (record.tag == connection_record) {
                decode_connection(decoder, record, state.connections.emplace_back());
            } else if (record.tag == name_record) {
                decode_name(decoder, record, state.names.emplace_back());
            } else if (record.tag == pending_reply_record) {
                decode_pending_reply(decoder, record, state.pending_replies.emplace_back());
            } else {
                decoder.unknown(record, "state");
            }
            if (decoder.failed()) {
                break;
            }
        }
    }
    if (!decoder.failed() && !saw_bus) {
        decoder.fail(file_header_size, "state", "no bus record");
    }
    if (!decoder.failed() && check_references(decoder, state)) {
        decoded.state = std::move(state);
    }
    decoded.error = decoder.error;
    return decoded;
}

}  // namespace busgate::bus
