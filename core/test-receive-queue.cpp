#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "busgate/core/receive_queue.h"
#include "busgate/util/unique_fd.h"

namespace busgate::core {
namespace {

QueuedEntry entry(std::uint64_t sequence, std::size_t bytes = 10, std::uint64_t name_id = 0) {
    QueuedEntry e;
    e.item.sequence = sequence;
    e.item.payload = MessagePayload::make(std::vector<std::uint8_t>(bytes));
    e.name_id = name_id;
    return e;
}

std::vector<std::uint64_t> sequences(ReceiveQueue& queue, QueueStorage& storage) {
    std::vector<std::uint64_t> out;
    while (auto e = queue.pop(storage)) {
        out.push_back(e->item.sequence);
    }
    return out;
}

TEST(ReceiveQueue, PopsInSequenceOrderAndKeepsCountersExact) {
    QueueStorage storage;
    ReceiveQueue queue;
    queue.push(entry(1, 100), storage);
    queue.push(entry(2, 20), storage);
    EXPECT_EQ(queue.counters().messages, 2u);
    EXPECT_EQ(queue.counters().bytes, 120u);
    EXPECT_EQ(queue.front()->item.sequence, 1u);
    EXPECT_EQ(queue.pop(storage)->item.sequence, 1u);
    EXPECT_EQ(queue.counters().bytes, 20u);
    EXPECT_EQ(sequences(queue, storage), (std::vector<std::uint64_t>{2}));
    EXPECT_EQ(queue.counters().messages, 0u);
    EXPECT_TRUE(queue.empty());
}

TEST(ReceiveQueue, MovedInEntriesAreMergedAtTheirPlaceInTheGlobalOrder) {
    QueueStorage storage;
    ReceiveQueue queue;
    for (std::uint64_t s : {2, 5, 9}) {
        queue.push(entry(s), storage);
    }
    (void)queue.pop(storage);  // a consumed head must not confuse the merge
    std::vector<QueuedEntry> moved;
    for (std::uint64_t s : {1, 6, 12}) {
        moved.push_back(entry(s));
    }
    queue.merge(std::move(moved));
    EXPECT_EQ(queue.counters().messages, 5u);
    EXPECT_EQ(sequences(queue, storage), (std::vector<std::uint64_t>{1, 5, 6, 9, 12}));
}

TEST(ReceiveQueue, ExtractTakesMatchingEntriesAndAdjustsCounters) {
    QueueStorage storage;
    ReceiveQueue queue;
    queue.push(entry(1, 10, 7), storage);
    queue.push(entry(2, 10, 8), storage);
    queue.push(entry(3, 10, 7), storage);
    auto taken = queue.extract([](const QueuedEntry& e) { return e.name_id == 7; });
    ASSERT_EQ(taken.size(), 2u);
    EXPECT_EQ(taken[0].item.sequence, 1u);
    EXPECT_EQ(taken[1].item.sequence, 3u);
    EXPECT_EQ(queue.counters().messages, 1u);
    EXPECT_EQ(queue.counters().bytes, 10u);
    EXPECT_EQ(sequences(queue, storage), (std::vector<std::uint64_t>{2}));
}

TEST(ReceiveQueue, ExtractThatTakesNothingLeavesEveryEntryIntact) {
    // The owner of an activatable name releases it while its queue holds messages not sent to the name:
    // they must stay deliverable (this left them without payloads, and the bus crashed delivering them).
    QueueStorage storage;
    ReceiveQueue queue;
    queue.push(entry(1, 10, 0), storage);
    queue.push(entry(2, 20, 0), storage);
    EXPECT_TRUE(queue.extract([](const QueuedEntry& e) { return e.name_id == 7; }).empty());
    auto first = queue.pop(storage);
    ASSERT_TRUE(first.has_value());
    ASSERT_NE(first->item.payload, nullptr);
    EXPECT_EQ(first->item.payload->bytes.size(), 10u);
    auto second = queue.pop(storage);
    ASSERT_TRUE(second.has_value());
    ASSERT_NE(second->item.payload, nullptr);
    EXPECT_EQ(second->item.sequence, 2u);
}

TEST(ReceiveQueue, LimitsAreCheckedBeforeQueueing) {
    QueueStorage storage;
    ReceiveQueue queue;
    QueueLimits limits{.max_bytes = 25, .max_messages = 2, .max_fds = 0};
    EXPECT_TRUE(queue.fits(limits, entry(1, 20).item));
    queue.push(entry(1, 20), storage);
    EXPECT_FALSE(queue.fits(limits, entry(2, 10).item));  // bytes
    EXPECT_TRUE(queue.fits(limits, entry(2, 5).item));
    queue.push(entry(2, 5), storage);
    EXPECT_FALSE(queue.fits(limits, entry(3, 0).item));  // messages
}

TEST(ReceiveQueue, AQuietQueueHoldsNoStorageOnceDrainedAndABusyOneKeepsIt) {
    QueueStorage storage;
    ReceiveQueue queue;
    queue.push(entry(1), storage);
    queue.push(entry(2), storage);
    queue.pop(storage);
    EXPECT_GT(queue.capacity(), 0u);
    queue.pop(storage);
    EXPECT_EQ(queue.capacity(), 0u);  // an idle connection: Hello's reply and NameAcquired went out
    EXPECT_EQ(storage.spares(), 1u);  // for the next queue that needs some

    for (std::uint64_t sequence = 1; sequence <= 64; ++sequence) {
        queue.push(entry(sequence), storage);
    }
    EXPECT_EQ(sequences(queue, storage).size(), 64u);
    EXPECT_GE(queue.capacity(), 64u);  // pipelined calls: no allocation for the next burst
}

TEST(ReceiveQueue, LongRunsStayInOrder) {
    // Two pushes per pop: the consumed head is compacted away many times along the way.
    QueueStorage storage;
    ReceiveQueue queue;
    std::uint64_t next_expected = 1;
    for (std::uint64_t s = 1; s <= 100000; ++s) {
        queue.push(entry(s, 1), storage);
        if (s % 2 == 0) {
            auto popped = queue.pop(storage);
            ASSERT_TRUE(popped.has_value());
            ASSERT_EQ(popped->item.sequence, next_expected++);
        }
    }
    EXPECT_EQ(queue.size(), 50000u);
    EXPECT_EQ(queue.counters().messages, 50000u);
    EXPECT_EQ(queue.front()->item.sequence, 50001u);
}

TEST(UniqueFd, ClosesOnDestructionAndMovesOwnership) {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(raw, 0);
    {
        util::UniqueFd first(raw);
        util::UniqueFd second(std::move(first));
        EXPECT_FALSE(first.valid());
        EXPECT_EQ(second.get(), raw);
        EXPECT_NE(::fcntl(raw, F_GETFD), -1);
    }
    EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
    util::UniqueFd released(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    const int kept = released.release();
    EXPECT_FALSE(released.valid());
    EXPECT_NE(::fcntl(kept, F_GETFD), -1);
    ::close(kept);
}

}  // namespace
}  // namespace busgate::core
