#include <gtest/gtest.h>

#include "busgate/core/quota.h"

namespace busgate::core {
namespace {

constexpr auto bytes = QuotaResource::bytes;

QuotaAmounts of_bytes(std::uint64_t n) {
    return {n, 0, 1};
}

TEST(Quota, SelfChargeIsBoundedOnlyByTheBudget) {
    QuotaRegistry quotas({1000, 10, 100});
    auto charge = quotas.charge(1, 1, of_bytes(1000));
    ASSERT_TRUE(charge.ok());
    EXPECT_EQ(quotas.remaining(1, bytes), 0u);
    EXPECT_EQ(quotas.charge(1, 1, of_bytes(1)).error(), Error::quota_exceeded);
    quotas.discharge(*charge);
    EXPECT_EQ(quotas.remaining(1, bytes), 1000u);
    EXPECT_EQ(quotas.user_count(), 1u);
    quotas.forget_user(1);
    EXPECT_EQ(quotas.user_count(), 0u);
}

TEST(Quota, SingleRemoteUserMayTakeHalfOfWhatRemains) {
    // n = 1 actor: (share + c) * 2 - share <= remaining.
    QuotaRegistry quotas({1000, 10, 100});
    EXPECT_EQ(quotas.charge(1, 2, of_bytes(501)).error(), Error::quota_exceeded);
    auto first = quotas.charge(1, 2, of_bytes(500));
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(quotas.share(1, 2, bytes), 500u);
    // Now share 500, remaining 500: (500 + c) * 2 - 500 <= 500 only for c = 0.
    EXPECT_EQ(quotas.charge(1, 2, of_bytes(1)).error(), Error::quota_exceeded);
    // Nothing was charged by the refused attempt.
    EXPECT_EQ(quotas.remaining(1, bytes), 500u);
}

TEST(Quota, SecondRemoteUserGetsAThirdOfWhatIsLeft) {
    QuotaRegistry quotas({1200, 10, 100});
    ASSERT_TRUE(quotas.charge(1, 2, of_bytes(600)).ok());  // remaining 600
    // Actor 3 is the second actor: n = 2, (0 + c) * 3 <= 600.
    EXPECT_EQ(quotas.charge(1, 3, of_bytes(201)).error(), Error::quota_exceeded);
    ASSERT_TRUE(quotas.charge(1, 3, of_bytes(200)).ok());
    EXPECT_EQ(quotas.actor_count(1), 2u);
    EXPECT_EQ(quotas.remaining(1, bytes), 400u);
}

TEST(Quota, ChargeIsAllOrNothingAcrossResources) {
    QuotaRegistry quotas({1000, 2, 100});
    // Bytes would fit, fds do not ((0 + 2) * 2 > 2).
    EXPECT_EQ(quotas.charge(1, 2, {10, 2, 1}).error(), Error::quota_exceeded);
    EXPECT_EQ(quotas.remaining(1, bytes), 1000u);
    EXPECT_EQ(quotas.remaining(1, QuotaResource::messages), 100u);
}

TEST(Quota, DischargeReturnsTheShareAndForgetsIdleActors) {
    QuotaRegistry quotas({1000, 10, 100});
    auto a = quotas.charge(1, 2, of_bytes(100));
    auto b = quotas.charge(1, 2, of_bytes(100));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(quotas.share(1, 2, bytes), 200u);
    quotas.discharge(*a);
    EXPECT_EQ(quotas.share(1, 2, bytes), 100u);
    quotas.discharge(*a);  // a second discharge of the same charge is a no-op
    EXPECT_EQ(quotas.share(1, 2, bytes), 100u);
    quotas.discharge(*b);
    EXPECT_EQ(quotas.actor_count(1), 0u);
    EXPECT_EQ(quotas.remaining(1, bytes), 1000u);
}

TEST(Quota, OneGreedySenderCannotStarveAnother) {
    QuotaRegistry quotas({1 << 20, 100, 1 << 20});
    // User 2 floods user 1 with 1 KiB messages until refused.
    std::vector<QuotaCharge> charges;
    for (;;) {
        auto charge = quotas.charge(1, 2, of_bytes(1024));
        if (!charge) {
            break;
        }
        charges.push_back(*charge);
    }
    EXPECT_LE(quotas.share(1, 2, bytes), (1u << 20) / 2);
    // User 3 still gets through, and so does the receiving user itself.
    EXPECT_TRUE(quotas.charge(1, 3, of_bytes(1024)).ok());
    EXPECT_TRUE(quotas.charge(1, 1, of_bytes(1024)).ok());
}

}  // namespace
}  // namespace busgate::core
