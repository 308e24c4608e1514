// BusState: what a running bus hands to the binary that replaces it in place (issue 20, `busgatectl
// restart`), and its byte format: documented and versioned, never a memory dump. This is the format and
// its first records (the bus, its connections with their rules, the names with their queues); the
// handover that sends it with the descriptors, and the restore, build on it.
//
// The format, all integers little-endian:
//   magic "BGSTATE\0" (8) | u32 version | u32 oldest reader | u64 length L | L bytes of records | u64 check
// A record is u16 tag | u16 flags | u32 length N | N bytes of value. The value of a top-level record is a
// list of records again (its fields); a field's value is a fixed-size integer or bytes. The check is
// SipHash-2-4 under an all-zero key of everything before it: it finds a damaged or cut file, it is no
// defence against someone who may write the file (the state travels between two processes of the bus).
// Rules a reader must know:
//  - a later version adds records and fields with new tags and never changes an old one. A reader skips
//    a tag it does not know when the writer flagged it skippable, and refuses the file otherwise;
//  - "oldest reader" is the oldest version that can load the file; a binary older than that refuses it
//    before the old process gives anything up, and so does every binary when a check fails;
//  - decoding trusts no length and no reference: every error names the byte offset and the record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "busgate/core/types.h"

namespace busgate::bus {

inline constexpr std::uint32_t state_format_version = 1;

struct ConnectionState {
    core::ConnectionId id = 0;  // its unique name is unique_name_of(id)
    std::optional<std::uint32_t> uid;
    std::optional<std::uint32_t> gid;
    std::int32_t pid = 0;
    std::vector<std::uint32_t> groups;
    std::string security_label;
    std::optional<std::uint32_t> authorized_uid;  // whom SASL let in (EXTERNAL, DBUS_COOKIE_SHA1)
    bool anonymous = false;                       // SASL ANONYMOUS let it in
    bool unix_fds = false;                        // it negotiated descriptor passing
    std::string endpoint;          // the container endpoint it came through; empty: the bus's own socket
    std::string listener_address;  // the address of the listener it came through
    std::vector<std::string> match_rules;  // MatchRule::to_string of each, in the order they were added
    // Byte-exact: a message it was in the middle of sending, and what the bus had not written to it yet.
    std::vector<std::uint8_t> unread_input;
    std::vector<std::uint8_t> unwritten_output;
    friend bool operator==(const ConnectionState&, const ConnectionState&) = default;
};

struct NameOwnerState {
    core::ConnectionId id = 0;
    std::uint64_t flags = 0;  // core::name_flag bits it asked with
    friend bool operator==(const NameOwnerState&, const NameOwnerState&) = default;
};

// A name some client owns or waits for. What the bus itself holds (org.freedesktop.DBus, the activators
// of service files) is not state: the new binary makes it again from its configuration.
struct NameState {
    std::string name;
    std::vector<NameOwnerState> owners;  // the primary owner first, then the queue in order
    friend bool operator==(const NameState&, const NameState&) = default;
};

// A method call still waiting for its reply: the reply is let through, exactly once, on the new bus.
struct PendingReplyState {
    core::ConnectionId callee = 0;
    core::ConnectionId caller = 0;
    std::uint64_t cookie = 0;    // the call's serial
    std::uint64_t deadline = 0;  // CLOCK_MONOTONIC ns (a restart does not move it); 0: none
    friend bool operator==(const PendingReplyState&, const PendingReplyState&) = default;
};

struct BusState {
    std::string guid;  // 32 hex digits: clients compare it with the address they were given
    core::ConnectionId next_connection_id = 1;  // unique names are never given twice, across restarts too
    std::vector<ConnectionState> connections;   // by increasing id
    std::vector<NameState> names;               // by name
    std::vector<PendingReplyState> pending_replies;  // by caller and cookie
    friend bool operator==(const BusState&, const BusState&) = default;
};

std::vector<std::uint8_t> encode_state(const BusState& state);

class BusDaemon;
// The state of `daemon` as it is now, between two messages (its loop is not running): every connection
// and the names clients hold. Or nullopt, with why, when format 1 cannot carry all of it now, so that
// nobody would be dropped: a client still authenticating or before Hello, a monitor, descriptors in
// flight, messages the core still queues for a receiver whose socket is full, or a service being
// activated. The caller goes on serving and may try again.
std::optional<BusState> capture_state(BusDaemon& daemon, std::string& error);

// The state, or why these bytes are not one this binary can load (with the byte offset where it found out).
struct DecodedState {
    std::optional<BusState> state;
    std::string error;
};
DecodedState decode_state(std::span<const std::uint8_t> bytes);

}  // namespace busgate::bus
