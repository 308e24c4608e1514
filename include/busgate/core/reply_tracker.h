// ReplyTracker: the outstanding method calls, each (callee, caller, cookie) with an optional deadline.
// A reply is accepted only if it consumes an entry (dbus-daemon refuses unrequested replies; kdbus EPERM).
// Invariants: at most one entry per (callee, caller, cookie); a caller has at most `max_per_caller` entries;
// an entry leaves by exactly one of: consumed by its reply, expired, callee gone, caller gone.
// Deadlines are absolute monotonic nanoseconds passed in by the caller (0 = no deadline), so tests need no
// real clock.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "busgate/core/result.h"
#include "busgate/core/types.h"

namespace busgate::core {

struct PendingReply {
    ConnectionId callee = 0;
    ConnectionId caller = 0;
    std::uint64_t cookie = 0;
    Timestamp deadline = 0;
};

class ReplyTracker {
  public:
    explicit ReplyTracker(std::size_t max_per_caller = 128) : max_per_caller_(max_per_caller) {}

    // too_many_pending_replies when the caller has its maximum; invalid_argument for a duplicate.
    Status add(ConnectionId callee, ConnectionId caller, std::uint64_t cookie, Timestamp deadline);
    // Removes the entry a reply from `callee` to `caller` answering `cookie` consumes; false if none.
    bool consume(ConnectionId callee, ConnectionId caller, std::uint64_t cookie);
    bool contains(ConnectionId callee, ConnectionId caller, std::uint64_t cookie) const;
    // The call was moved to another connection (activator hand-over): the reply must now come from there.
    bool redirect(ConnectionId old_callee, ConnectionId new_callee, ConnectionId caller,
                  std::uint64_t cookie);

    // Removes and returns every entry whose deadline is <= now, earliest first.
    std::vector<PendingReply> take_expired(Timestamp now);
    // Removes and returns every entry waiting on `callee` (it disconnected), newest call first.
    std::vector<PendingReply> take_callee(ConnectionId callee);
    // Forgets every entry of `caller` (it disconnected; nobody is left to tell).
    void drop_caller(ConnectionId caller);

    // Every entry, by caller and cookie (a restart hands them over).
    std::vector<PendingReply> entries() const;
    std::optional<Timestamp> next_deadline();
    std::size_t pending_for_caller(ConnectionId caller) const;
    std::size_t size() const { return entries_.size(); }

  private:
    struct Key {
        ConnectionId callee, caller;
        std::uint64_t cookie;
        friend bool operator==(const Key&, const Key&) = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& key) const;
    };
    struct Value {
        Timestamp deadline;
        std::uint64_t generation;
    };
    struct HeapItem {
        Timestamp deadline;
        std::uint64_t generation;
        Key key;
    };

    void erase(boost::unordered_flat_map<Key, Value, KeyHash>::iterator it);
    void push_deadline(const Key& key, const Value& value);
    void prune_heap();

    std::size_t max_per_caller_;
    std::uint64_t next_generation_ = 1;
    boost::unordered_flat_map<Key, Value, KeyHash> entries_;
    boost::unordered_flat_map<ConnectionId, std::size_t> per_caller_;
    // Min-heap on deadline with lazy deletion: items whose generation no longer matches are stale.
    std::vector<HeapItem> heap_;
    std::size_t live_deadlines_ = 0;
};

}  // namespace busgate::core
