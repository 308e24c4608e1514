#include "busgate/core/reply_tracker.h"

#include <algorithm>
#include <tuple>

namespace busgate::core {
namespace {

std::uint64_t mix(std::uint64_t h) {
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ULL;
    h ^= h >> 27;
    h *= 0x81dadef4bc2dd44dULL;
    h ^= h >> 33;
    return h;
}

}  // namespace

std::size_t ReplyTracker::KeyHash::operator()(const Key& key) const {
    return static_cast<std::size_t>(
        mix(key.callee * 0x9e3779b97f4a7c15ULL ^ mix(key.caller) ^ (key.cookie << 1)));
}

// Heap order: std heap functions build a max-heap; invert for earliest deadline on top.
static bool later(const auto& a, const auto& b) {
    return a.deadline > b.deadline;
}

void ReplyTracker::push_deadline(const Key& key, const Value& value) {
    if (value.deadline == 0) {
        return;
    }
    heap_.push_back({value.deadline, value.generation, key});
    std::push_heap(heap_.begin(), heap_.end(), later<HeapItem, HeapItem>);
    ++live_deadlines_;
}

Status ReplyTracker::add(ConnectionId callee, ConnectionId caller, std::uint64_t cookie, Timestamp deadline) {
    if (pending_for_caller(caller) >= max_per_caller_) {
        return Error::too_many_pending_replies;
    }
    const Key key{callee, caller, cookie};
    const Value value{deadline, next_generation_++};
    auto [it, inserted] = entries_.try_emplace(key, value);
    if (!inserted) {
        return Error::invalid_argument;
    }
    ++per_caller_[caller];
    push_deadline(key, value);
    return {};
}

void ReplyTracker::erase(boost::unordered_flat_map<Key, Value, KeyHash>::iterator it) {
    auto count = per_caller_.find(it->first.caller);
    if (--count->second == 0) {
        per_caller_.erase(count);
    }
    if (it->second.deadline != 0) {
        --live_deadlines_;
    }
    entries_.erase(it);
    prune_heap();
}

void ReplyTracker::prune_heap() {
    // Stale heap items are dropped on the way out of expiry; rebuild when they dominate.
    if (heap_.size() < 64 || heap_.size() < 2 * live_deadlines_) {
        return;
    }
    std::erase_if(heap_, [this](const HeapItem& item) {
        auto found = entries_.find(item.key);
        return found == entries_.end() || found->second.generation != item.generation;
    });
    std::make_heap(heap_.begin(), heap_.end(), later<HeapItem, HeapItem>);
}

bool ReplyTracker::consume(ConnectionId callee, ConnectionId caller, std::uint64_t cookie) {
    auto found = entries_.find(Key{callee, caller, cookie});
    if (found == entries_.end()) {
        return false;
    }
    erase(found);
    return true;
}

bool ReplyTracker::contains(ConnectionId callee, ConnectionId caller, std::uint64_t cookie) const {
    return entries_.contains(Key{callee, caller, cookie});
}

bool ReplyTracker::redirect(ConnectionId old_callee, ConnectionId new_callee, ConnectionId caller,
                            std::uint64_t cookie) {
    auto found = entries_.find(Key{old_callee, caller, cookie});
    if (found == entries_.end()) {
        return false;
    }
    const Key key{new_callee, caller, cookie};
    if (entries_.contains(key)) {
        return false;
    }
    const Timestamp deadline = found->second.deadline;
    erase(found);
    const Value value{deadline, next_generation_++};
    entries_.emplace(key, value);
    ++per_caller_[caller];
    push_deadline(key, value);
    return true;
}

std::vector<PendingReply> ReplyTracker::take_expired(Timestamp now) {
    std::vector<PendingReply> expired;
    while (!heap_.empty() && heap_.front().deadline <= now) {
        std::pop_heap(heap_.begin(), heap_.end(), later<HeapItem, HeapItem>);
        const HeapItem item = heap_.back();
        heap_.pop_back();
        auto found = entries_.find(item.key);
        if (found == entries_.end() || found->second.generation != item.generation) {
            continue;
        }
        expired.push_back({item.key.callee, item.key.caller, item.key.cookie, item.deadline});
        erase(found);
    }
    return expired;
}

std::vector<PendingReply> ReplyTracker::take_callee(ConnectionId callee) {
    std::vector<std::pair<std::uint64_t, PendingReply>> by_age;
    for (const auto& [key, value] : entries_) {
        if (key.callee == callee) {
            by_age.push_back({value.generation, {key.callee, key.caller, key.cookie, value.deadline}});
        }
    }
    // Newest call first, as dbus-daemon answers a departing callee's pending calls with NoReply.
    std::sort(by_age.begin(), by_age.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<PendingReply> taken;
    for (const auto& [generation, pending] : by_age) {
        taken.push_back(pending);
    }
    for (const auto& pending : taken) {
        consume(pending.callee, pending.caller, pending.cookie);
    }
    return taken;
}

void ReplyTracker::drop_caller(ConnectionId caller) {
    std::vector<Key> keys;
    for (const auto& [key, value] : entries_) {
        if (key.caller == caller) {
            keys.push_back(key);
        }
    }
    for (const auto& key : keys) {
        erase(entries_.find(key));
    }
}

std::vector<PendingReply> ReplyTracker::entries() const {
    std::vector<PendingReply> all;
    all.reserve(entries_.size());
    for (const auto& [key, value] : entries_) {
        all.push_back({.callee = key.callee, .caller = key.caller, .cookie = key.cookie, .deadline = value.deadline});
    }
    std::sort(all.begin(), all.end(), [](const PendingReply& a, const PendingReply& b) {
        return std::tie(a.caller, a.cookie, a.callee) < std::tie(b.caller, b.cookie, b.callee);
    });
    return all;
}

std::optional<Timestamp> ReplyTracker::next_deadline() {
    while (!heap_.empty()) {
        const HeapItem& top = heap_.front();
        auto found = entries_.find(top.key);
        if (found != entries_.end() && found->second.generation == top.generation) {
            return top.deadline;
        }
        std::pop_heap(heap_.begin(), heap_.end(), later<HeapItem, HeapItem>);
        heap_.pop_back();
    }
    return std::nullopt;
}

std::size_t ReplyTracker::pending_for_caller(ConnectionId caller) const {
    auto found = per_caller_.find(caller);
    return found == per_caller_.end() ? 0 : found->second;
}

}  // namespace busgate::core
