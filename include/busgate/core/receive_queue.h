// ReceiveQueue: one connection's incoming items in global sequence order, with byte/message/fd counters and
// the quota charge each item holds.
// Invariants: items are sorted by sequence (appends come in increasing order; moved-in items are merged);
// the counters equal the sums over queued items; an item's quota charge is returned exactly once, when it
// leaves the queue (popped, moved out or dropped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "busgate/core/message.h"
#include "busgate/core/quota.h"

namespace busgate::core {

struct QueueLimits {
    std::uint64_t max_bytes = 127 * 1024 * 1024;  // dbus-daemon's max_outgoing_bytes
    std::uint64_t max_messages = 16384;
    std::uint64_t max_fds = 4096;
};

struct QueueCounters {
    std::uint64_t bytes = 0;
    std::uint64_t messages = 0;
    std::uint64_t fds = 0;
    std::uint64_t dropped = 0;  // broadcasts and notifications lost to limits or quotas since the last reset
};

// A queued item with the core's bookkeeping.
struct QueuedEntry {
    QueueItem item;
    std::uint64_t name_id = 0;  // the name it was sent to (0: by id or broadcast), for activator hand-overs
    UserKey actor = 0;          // the sending user, to re-charge when moved
    QuotaCharge charge;
};

// The storage of drained quiet queues, for the next queue that needs some: an idle connection holds none,
// and steady-state traffic allocates nothing. Holds at most max_spares buffers of a quiet queue's size.
class QueueStorage {
  public:
    static constexpr std::size_t quiet_capacity = 2;  // Hello's reply and NameAcquired fit without growing
    static constexpr std::size_t max_spares = 4096;

    std::vector<QueuedEntry> take();
    void give(std::vector<QueuedEntry>&& storage);
    std::size_t spares() const { return spares_.size(); }

  private:
    std::vector<std::vector<QueuedEntry>> spares_;
};

class ReceiveQueue {
  public:
    bool empty() const { return head_ == entries_.size(); }
    std::size_t size() const { return entries_.size() - head_; }
    const QueueCounters& counters() const { return counters_; }
    void count_dropped() { ++counters_.dropped; }
    std::uint64_t take_dropped() { return std::exchange(counters_.dropped, 0); }
    // Entries its storage has room for: none once a quiet queue is drained.
    std::size_t capacity() const { return entries_.capacity(); }

    bool fits(const QueueLimits& limits, const QueueItem& item) const {
        return counters_.messages + 1 <= limits.max_messages &&
               counters_.bytes + item.byte_count() <= limits.max_bytes &&
               counters_.fds + item.fd_count() <= limits.max_fds;
    }

    // Storage comes from and returns to `storage`; a queue's own grown storage stays while it is busy.
    void push(QueuedEntry&& entry, QueueStorage& storage);
    // Inserts entries (sorted by sequence) at their place in the order.
    void merge(std::vector<QueuedEntry> entries);
    const QueuedEntry* front() const { return empty() ? nullptr : &entries_[head_]; }
    std::optional<QueuedEntry> pop(QueueStorage& storage);
    // Removes and returns the entries for which pred(entry) holds, keeping their order.
    template <typename Pred>
    std::vector<QueuedEntry> extract(Pred&& pred) {
        std::vector<QueuedEntry> taken;
        std::vector<QueuedEntry> kept;
        for (std::size_t i = head_; i < entries_.size(); ++i) {
            if (pred(entries_[i])) {
                account(entries_[i].item, -1);
                taken.push_back(std::move(entries_[i]));
            } else {
                kept.push_back(std::move(entries_[i]));
            }
        }
        // Every entry was moved out, into one list or the other: the kept ones must come back even when
        // nothing was taken.
        entries_ = std::move(kept);
        head_ = 0;
        return taken;
    }
    // Removes everything (the connection is going away).
    std::vector<QueuedEntry> take_all();

  private:
    void account(const QueueItem& item, int direction);
    void compact(QueueStorage& storage);

    std::vector<QueuedEntry> entries_;
    std::size_t head_ = 0;
    QueueCounters counters_;
};

}  // namespace busgate::core
