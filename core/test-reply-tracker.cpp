#include <gtest/gtest.h>

#include "busgate/core/reply_tracker.h"

namespace busgate::core {
namespace {

TEST(ReplyTracker, ReplyConsumesItsCallExactlyOnce) {
    ReplyTracker tracker;
    ASSERT_TRUE(tracker.add(2, 1, 42, 0).ok());
    EXPECT_FALSE(tracker.consume(1, 2, 42));  // wrong direction
    EXPECT_FALSE(tracker.consume(2, 1, 43));  // wrong cookie
    EXPECT_TRUE(tracker.consume(2, 1, 42));
    EXPECT_FALSE(tracker.consume(2, 1, 42));
    EXPECT_EQ(tracker.size(), 0u);
}

TEST(ReplyTracker, DuplicateCallIsRefused) {
    ReplyTracker tracker;
    ASSERT_TRUE(tracker.add(2, 1, 42, 0).ok());
    EXPECT_EQ(tracker.add(2, 1, 42, 0).error(), Error::invalid_argument);
}

TEST(ReplyTracker, PerCallerLimit) {
    ReplyTracker tracker(2);
    ASSERT_TRUE(tracker.add(2, 1, 1, 0).ok());
    ASSERT_TRUE(tracker.add(3, 1, 2, 0).ok());
    EXPECT_EQ(tracker.add(4, 1, 3, 0).error(), Error::too_many_pending_replies);
    EXPECT_TRUE(tracker.add(1, 9, 3, 0).ok());  // another caller is unaffected
    EXPECT_TRUE(tracker.consume(2, 1, 1));
    EXPECT_TRUE(tracker.add(4, 1, 3, 0).ok());
}

TEST(ReplyTracker, ExpiryReturnsDueCallsInDeadlineOrderAndSkipsAnswered) {
    ReplyTracker tracker;
    ASSERT_TRUE(tracker.add(2, 1, 1, 300).ok());
    ASSERT_TRUE(tracker.add(2, 1, 2, 100).ok());
    ASSERT_TRUE(tracker.add(2, 1, 3, 200).ok());
    ASSERT_TRUE(tracker.add(2, 1, 4, 0).ok());  // no deadline
    EXPECT_TRUE(tracker.consume(2, 1, 3));
    EXPECT_EQ(tracker.next_deadline(), 100u);
    EXPECT_TRUE(tracker.take_expired(99).empty());
    auto expired = tracker.take_expired(1000);
    ASSERT_EQ(expired.size(), 2u);
    EXPECT_EQ(expired[0].cookie, 2u);
    EXPECT_EQ(expired[1].cookie, 1u);
    EXPECT_EQ(tracker.size(), 1u);
    EXPECT_FALSE(tracker.next_deadline().has_value());
}

TEST(ReplyTracker, CalleeDeathReturnsItsCallsNewestFirstAndCallerDeathForgetsThem) {
    ReplyTracker tracker;
    ASSERT_TRUE(tracker.add(2, 1, 1, 0).ok());
    ASSERT_TRUE(tracker.add(2, 3, 7, 50).ok());
    ASSERT_TRUE(tracker.add(4, 1, 2, 0).ok());
    auto dead = tracker.take_callee(2);
    ASSERT_EQ(dead.size(), 2u);
    EXPECT_EQ(dead[0].caller, 3u);  // dbus-daemon sends NoReply for the newest call first
    EXPECT_EQ(dead[1].caller, 1u);
    tracker.drop_caller(1);
    EXPECT_EQ(tracker.size(), 0u);
    EXPECT_EQ(tracker.pending_for_caller(1), 0u);
    EXPECT_TRUE(tracker.take_expired(1000).empty());
}

TEST(ReplyTracker, RedirectMovesTheCallToTheNewCallee) {
    ReplyTracker tracker;
    ASSERT_TRUE(tracker.add(10, 1, 5, 70).ok());
    EXPECT_TRUE(tracker.redirect(10, 11, 1, 5));
    EXPECT_FALSE(tracker.contains(10, 1, 5));
    EXPECT_TRUE(tracker.contains(11, 1, 5));
    EXPECT_EQ(tracker.pending_for_caller(1), 1u);
    auto expired = tracker.take_expired(70);
    ASSERT_EQ(expired.size(), 1u);
    EXPECT_EQ(expired[0].callee, 11u);
}

TEST(ReplyTracker, ManyAnsweredCallsDoNotAccumulate) {
    ReplyTracker tracker;
    for (std::uint64_t cookie = 1; cookie <= 10000; ++cookie) {
        ASSERT_TRUE(tracker.add(2, 1, cookie, 1000000 + cookie).ok());
        ASSERT_TRUE(tracker.consume(2, 1, cookie));
    }
    EXPECT_EQ(tracker.size(), 0u);
    EXPECT_FALSE(tracker.next_deadline().has_value());
}

}  // namespace
}  // namespace busgate::core
