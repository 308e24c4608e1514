#include "busgate/core/receive_queue.h"

#include <algorithm>
#include <cassert>
#include <iterator>

namespace busgate::core {

std::vector<QueuedEntry> QueueStorage::take() {
    if (spares_.empty()) {
        std::vector<QueuedEntry> storage;
        storage.reserve(quiet_capacity);
        return storage;
    }
    std::vector<QueuedEntry> storage = std::move(spares_.back());
    spares_.pop_back();
    return storage;
}

void QueueStorage::give(std::vector<QueuedEntry>&& storage) {
    assert(storage.empty());
    if (spares_.size() < max_spares) {
        spares_.push_back(std::move(storage));
    }
    storage = std::vector<QueuedEntry>();  // freed if not kept; moved-from is empty but unspecified
}

void ReceiveQueue::account(const QueueItem& item, int direction) {
    if (direction > 0) {
        counters_.bytes += item.byte_count();
        counters_.fds += item.fd_count();
        counters_.messages += 1;
    } else {
        counters_.bytes -= item.byte_count();
        counters_.fds -= item.fd_count();
        counters_.messages -= 1;
    }
}

void ReceiveQueue::compact(QueueStorage& storage) {
    // Reuse the storage instead of shifting on every pop: move the live tail down once the dead head
    // dominates, so steady-state push/pop allocates nothing.
    if (head_ == entries_.size()) {
        // A quiet queue gives its storage back, so an idle connection holds none (10,000 of them held 5.6 MB).
        // A busy queue keeps what it grew to.
        entries_.clear();
        if (entries_.capacity() <= QueueStorage::quiet_capacity) {
            storage.give(std::move(entries_));
        }
        head_ = 0;
    } else if (head_ >= 32 && head_ * 2 >= entries_.size()) {
        std::move(entries_.begin() + static_cast<std::ptrdiff_t>(head_), entries_.end(), entries_.begin());
        entries_.resize(entries_.size() - head_);
        head_ = 0;
    }
}

void ReceiveQueue::push(QueuedEntry&& entry, QueueStorage& storage) {
    assert(empty() || entries_.back().item.sequence <= entry.item.sequence);
    account(entry.item, +1);
    if (entries_.capacity() == 0) {
        entries_ = storage.take();
    }
    entries_.push_back(std::move(entry));
}

void ReceiveQueue::merge(std::vector<QueuedEntry> incoming) {
    if (incoming.empty()) {
        return;
    }
    for (const auto& entry : incoming) {
        account(entry.item, +1);
    }
    std::vector<QueuedEntry> merged;
    merged.reserve(size() + incoming.size());
    auto by_sequence = [](const QueuedEntry& a, const QueuedEntry& b) {
        return a.item.sequence < b.item.sequence;
    };
    std::merge(std::make_move_iterator(entries_.begin() + static_cast<std::ptrdiff_t>(head_)),
               std::make_move_iterator(entries_.end()), std::make_move_iterator(incoming.begin()),
               std::make_move_iterator(incoming.end()), std::back_inserter(merged), by_sequence);
    entries_ = std::move(merged);
    head_ = 0;
}

std::optional<QueuedEntry> ReceiveQueue::pop(QueueStorage& storage) {
    if (empty()) {
        return std::nullopt;
    }
    // Made in the optional that is returned: one move of the entry, not two.
    std::optional<QueuedEntry> entry(std::in_place, std::move(entries_[head_++]));
    account(entry->item, -1);
    compact(storage);
    return entry;
}

std::vector<QueuedEntry> ReceiveQueue::take_all() {
    std::vector<QueuedEntry> taken;
    for (std::size_t i = head_; i < entries_.size(); ++i) {
        account(entries_[i].item, -1);
        taken.push_back(std::move(entries_[i]));
    }
    entries_.clear();
    head_ = 0;
    return taken;
}

}  // namespace busgate::core
