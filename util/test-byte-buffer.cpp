#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "busgate/util/byte_buffer.h"

using busgate::util::ByteBuffer;

namespace {

std::vector<std::uint8_t> contents(const ByteBuffer& buffer) {
    return {buffer.begin(), buffer.end()};
}

}  // namespace

TEST(ByteBuffer, HeadroomStaysInFrontThroughGrowthAndMoves) {
    const std::vector<std::uint8_t> head = {1, 2, 3};
    ByteBuffer buffer;
    buffer.assign(head, 32);
    EXPECT_EQ(buffer.headroom(), 32u);
    EXPECT_EQ(contents(buffer), head);
    const std::vector<std::uint8_t> more(1000, 7);
    buffer.append(more);  // reallocates
    EXPECT_EQ(buffer.headroom(), 32u);
    EXPECT_EQ(buffer.size(), 1003u);
    EXPECT_EQ(buffer.data()[2], 3);
    EXPECT_EQ(buffer.data()[3], 7);
    buffer.resize(5000);
    EXPECT_EQ(buffer.headroom(), 32u);
    ByteBuffer moved = std::move(buffer);
    EXPECT_EQ(moved.headroom(), 32u);
    EXPECT_EQ(moved.data()[0], 1);
    EXPECT_EQ(buffer.headroom(), 0u);
    EXPECT_EQ(buffer.size(), 0u);
}

TEST(ByteBuffer, GrowingIntoTheHeadroomMovesTheStartNotTheBytes) {
    const std::vector<std::uint8_t> message = {10, 11, 12, 13};
    ByteBuffer buffer;
    buffer.assign(message, 16);
    const std::uint8_t* before = buffer.data();
    buffer.grow_front(8);
    EXPECT_EQ(buffer.data() + 8, before);
    EXPECT_EQ(buffer.headroom(), 8u);
    EXPECT_EQ(buffer.size(), 12u);
    EXPECT_EQ(buffer.data()[8], 10);
}

TEST(ByteBuffer, AssigningNothingAllocatesNothing) {
    // An idle connection's input buffer: framing leaves it "empty with headroom" after every read.
    ByteBuffer buffer;
    buffer.assign({}, 32);
    EXPECT_EQ(buffer.data(), nullptr);
    EXPECT_EQ(buffer.size(), 0u);
}

TEST(ByteBuffer, AssignMayTakeBytesFromItself) {
    const std::vector<std::uint8_t> bytes = {1, 2, 3, 4, 5, 6, 7, 8};
    ByteBuffer buffer;
    buffer.assign(bytes, 0);
    buffer.reserve(64);
    buffer.assign({buffer.data() + 5, 3}, 4);  // the tail of a read kept, with headroom
    EXPECT_EQ(buffer.headroom(), 4u);
    EXPECT_EQ(contents(buffer), (std::vector<std::uint8_t>{6, 7, 8}));
}

TEST(ByteBuffer, AppendingWhatFitsKeepsTheBuffer) {
    // A large message read straight into a buffer of its size, whose last bytes arrive by append: the
    // buffer it becomes (the payload, kept while receivers are slow) must not be twice the message.
    ByteBuffer buffer;
    buffer.reserve(100);
    const std::uint8_t* before = buffer.data();
    const std::vector<std::uint8_t> bytes(10, 1);
    buffer.append(bytes);
    EXPECT_EQ(buffer.data(), before);
    EXPECT_EQ(buffer.capacity(), 100u);
}
