#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>

#include "busgate/core/match_index.h"

namespace busgate::core {
namespace {

BloomMask mask_member(std::string_view member) {
    BloomMask mask;
    mask.add_message_type("signal");
    mask.add_member(member);
    return mask;
}

BloomFilter filter_member(std::string_view member) {
    BloomFilter filter;
    filter.add_message_type("signal");
    filter.add_interface("org.example.I");
    filter.add_member(member);
    filter.add_path("/org/example");
    return filter;
}

// What one of MatchIndex's for_each_candidate overloads visits, given as a call taking the visitor.
template <typename ForEach>
std::set<std::pair<ConnectionId, std::uint64_t>> visited(ForEach&& for_each) {
    std::set<std::pair<ConnectionId, std::uint64_t>> found;
    for_each([&](const MatchIndex::Rule& rule) {
        EXPECT_TRUE(found.emplace(rule.owner, rule.cookie).second) << "rule visited twice";
    });
    return found;
}

std::set<std::pair<ConnectionId, std::uint64_t>> candidates(const MatchIndex& index,
                                                            const BloomFilter& filter) {
    return visited([&](auto visit) { index.for_each_candidate(filter, visit); });
}

std::set<std::pair<ConnectionId, std::uint64_t>> candidates_from(const MatchIndex& index,
                                                                 const BloomFilter& filter,
                                                                 ConnectionId sender,
                                                                 const NameRegistry& names) {
    return visited([&](auto visit) { index.for_each_candidate(filter, sender, names, visit); });
}

// Rules that share one mask and differ only in their sender are many on a real bus (every client
// watching its own service's signals); a broadcast must not walk the other senders' ones.
TEST(MatchIndex, ABroadcastVisitsOnlyTheRulesOnItsSender) {
    MatchIndex index;
    NameRegistry names;
    std::vector<NameChange> changes;
    ASSERT_TRUE(names.acquire(7, "org.example.Seven", 0, changes).ok());
    ASSERT_TRUE(names.acquire(8, "org.example.Eight", 0, changes).ok());
    ASSERT_TRUE(names.acquire(7, "org.example.Eight", name_flag::queue, changes).ok());  // 7 only waits
    ASSERT_TRUE(names.attach_activator(7, "org.example.Activated", changes).ok());
    const BloomMask changed = mask_member("Changed");
    ASSERT_TRUE(index.add(1, MessageMatch{10, any_connection, "", changed}).ok());
    ASSERT_TRUE(index.add(1, MessageMatch{11, 7, "", changed}).ok());
    ASSERT_TRUE(index.add(1, MessageMatch{12, 8, "", changed}).ok());
    ASSERT_TRUE(index.add(2, MessageMatch{20, any_connection, "org.example.Seven", changed}).ok());
    ASSERT_TRUE(index.add(2, MessageMatch{21, any_connection, "org.example.Eight", changed}).ok());
    ASSERT_TRUE(index.add(2, MessageMatch{22, any_connection, "org.example.Activated", changed}).ok());
    ASSERT_TRUE(index.add(3, MessageMatch{30, 8, "", BloomMask()}).ok());  // wildcard mask, on sender 8
    const BloomFilter filter = filter_member("Changed");
    using Found = std::set<std::pair<ConnectionId, std::uint64_t>>;
    EXPECT_EQ(candidates_from(index, filter, 7, names), (Found{{1, 10}, {1, 11}, {2, 20}}));
    EXPECT_EQ(candidates_from(index, filter, 8, names), (Found{{1, 10}, {1, 12}, {2, 21}, {3, 30}}));
    EXPECT_EQ(candidates_from(index, filter, 9, names), (Found{{1, 10}}));
    EXPECT_EQ(candidates(index, filter).size(), 7U);  // without a sender, every covered rule
    // Many name rules and a sender with one name: the lookup goes from the sender's side.
    for (int i = 0; i < 20; ++i) {
        const std::string name = "org.example.Other" + std::to_string(i);
        ASSERT_TRUE(
            index.add(4, MessageMatch{static_cast<std::uint64_t>(40 + i), any_connection, name, changed})
                .ok());
    }
    EXPECT_EQ(candidates_from(index, filter, 7, names), (Found{{1, 10}, {1, 11}, {2, 20}}));
    ASSERT_TRUE(index.remove(1, 11).ok());
    ASSERT_TRUE(index.remove(2, 20).ok());
    EXPECT_EQ(candidates_from(index, filter, 7, names), (Found{{1, 10}}));
}

TEST(MatchIndex, FindsOnlyRulesWhoseMaskTheFilterCovers) {
    MatchIndex index;
    ASSERT_TRUE(index.add(1, MessageMatch{10, any_connection, "", mask_member("Changed")}).ok());
    ASSERT_TRUE(index.add(2, MessageMatch{20, any_connection, "", mask_member("Removed")}).ok());
    ASSERT_TRUE(index.add(3, MessageMatch{30, any_connection, "", BloomMask()}).ok());  // wildcard
    auto found = candidates(index, filter_member("Changed"));
    EXPECT_EQ(found, (std::set<std::pair<ConnectionId, std::uint64_t>>{{1, 10}, {3, 30}}));
}

TEST(MatchIndex, IdenticalMasksAreSharedAndFreedWithTheirLastRule) {
    MatchIndex index;
    for (ConnectionId id = 1; id <= 50; ++id) {
        ASSERT_TRUE(index.add(id, MessageMatch{id, any_connection, "", mask_member("Changed")}).ok());
    }
    ASSERT_TRUE(index.add(7, MessageMatch{99, any_connection, "", mask_member("Other")}).ok());
    EXPECT_EQ(index.shared_mask_count(), 2u);
    EXPECT_EQ(candidates(index, filter_member("Changed")).size(), 50u);
    for (ConnectionId id = 1; id <= 50; ++id) {
        ASSERT_TRUE(index.remove(id, id).ok());
    }
    EXPECT_EQ(index.shared_mask_count(), 1u);
    EXPECT_TRUE(candidates(index, filter_member("Changed")).empty());
}

TEST(MatchIndex, HasMessageRulesWhileAnyMaskOrWildcardRuleIsInstalled) {
    MatchIndex index;
    EXPECT_FALSE(index.has_message_rules());
    ASSERT_TRUE(index.add(1, NotificationMatch{5, NotificationType::id_add}).ok());
    EXPECT_FALSE(index.has_message_rules());  // notifications are no broadcasts
    ASSERT_TRUE(index.add(2, MessageMatch{20, any_connection, "", BloomMask()}).ok());
    EXPECT_TRUE(index.has_message_rules());
    ASSERT_TRUE(index.add(3, MessageMatch{30, any_connection, "", mask_member("Changed")}).ok());
    ASSERT_TRUE(index.remove(2, 20).ok());
    EXPECT_TRUE(index.has_message_rules());
    ASSERT_TRUE(index.remove(3, 30).ok());
    EXPECT_FALSE(index.has_message_rules());
}

TEST(MatchIndex, RemoveTakesEveryMatchWithTheCookieAndReportsUnknownCookies) {
    MatchIndex index;
    ASSERT_TRUE(index.add(1, MessageMatch{5, any_connection, "", mask_member("A")}).ok());
    ASSERT_TRUE(index.add(1, MessageMatch{5, any_connection, "", mask_member("B")}).ok());
    ASSERT_TRUE(index.add(1, NotificationMatch{5, NotificationType::name_add}).ok());
    ASSERT_TRUE(index.add(1, MessageMatch{6, any_connection, "", mask_member("C")}).ok());
    EXPECT_EQ(index.match_count(1), 4u);
    ASSERT_TRUE(index.remove(1, 5).ok());
    EXPECT_EQ(index.match_count(1), 1u);
    EXPECT_EQ(index.remove(1, 5).error(), Error::no_such_match);
    std::size_t notified = 0;
    index.for_each_notification_match(NotificationType::name_add,
                                      [&](ConnectionId, const auto&) { ++notified; });
    EXPECT_EQ(notified, 0u);
}

TEST(MatchIndex, PerConnectionLimitIsEnforced) {
    MatchIndex index(3);
    for (std::uint64_t cookie = 0; cookie < 3; ++cookie) {
        ASSERT_TRUE(index.add(1, MessageMatch{cookie, any_connection, "", BloomMask()}).ok());
    }
    EXPECT_EQ(index.add(1, MessageMatch{3, any_connection, "", BloomMask()}).error(),
              Error::match_limit_reached);
    EXPECT_EQ(index.add(1, NotificationMatch{3}).error(), Error::match_limit_reached);
    EXPECT_TRUE(index.add(2, MessageMatch{3, any_connection, "", BloomMask()}).ok());
}

TEST(MatchIndex, RemoveAllForgetsTheConnection) {
    MatchIndex index;
    ASSERT_TRUE(index.add(1, MessageMatch{1, any_connection, "", mask_member("A")}).ok());
    ASSERT_TRUE(index.add(1, NotificationMatch{2, NotificationType::id_add}).ok());
    index.remove_all(1);
    EXPECT_EQ(index.match_count(1), 0u);
    EXPECT_EQ(index.shared_mask_count(), 0u);
    EXPECT_TRUE(candidates(index, filter_member("A")).empty());
}

TEST(MatchIndex, IndexAgreesWithLinearScanOnRandomMasks) {
    std::mt19937_64 rng(7);
    const std::vector<std::string> members = {"A", "B", "C", "D", "E", "F", "G", "H"};
    const std::vector<std::string> interfaces = {"org.x.I", "org.y.J", "org.z.K"};
    MatchIndex index;
    struct Stored {
        ConnectionId owner;
        std::uint64_t cookie;
        BloomMask mask;
    };
    std::vector<Stored> stored;
    for (ConnectionId owner = 1; owner <= 200; ++owner) {
        for (std::uint64_t cookie = 0; cookie < 5; ++cookie) {
            BloomMask mask;
            if (rng() % 2) {
                mask.add_member(members[rng() % members.size()]);
            }
            if (rng() % 2) {
                mask.add_interface(interfaces[rng() % interfaces.size()]);
            }
            if (rng() % 3 == 0) {
                mask.add_argument(static_cast<unsigned>(rng() % 3), members[rng() % members.size()]);
            }
            ASSERT_TRUE(index.add(owner, MessageMatch{cookie, any_connection, "", mask}).ok());
            stored.push_back({owner, cookie, mask});
        }
    }
    for (int round = 0; round < 6000; ++round) {
        BloomFilter filter;
        filter.add_member(members[rng() % members.size()]);
        filter.add_interface(interfaces[rng() % interfaces.size()]);
        for (unsigned arg = 0; arg < 3; ++arg) {
            filter.add_argument(arg, members[rng() % members.size()]);
        }
        index.observe(filter);  // re-filing happens along the way and must not change the answer
        std::set<std::pair<ConnectionId, std::uint64_t>> expected;
        for (const auto& s : stored) {
            if (filter.covers(s.mask)) {
                expected.emplace(s.owner, s.cookie);
            }
        }
        ASSERT_EQ(candidates(index, filter), expected);
    }
}

TEST(MatchIndex, MasksAreNotFiledUnderMessageTypeBits) {
    MatchIndex index;
    // Every mask shares the "message-type:signal" bits; filing under them would make every broadcast visit
    // every mask.
    for (ConnectionId id = 1; id <= 100; ++id) {
        ASSERT_TRUE(
            index.add(id, MessageMatch{1, any_connection, "", mask_member("M" + std::to_string(id))}).ok());
    }
    BloomFilter only_type;
    only_type.add_message_type("signal");
    EXPECT_EQ(index.masks_visited(only_type), 0u);
}

TEST(MatchIndex, MasksMoveAwayFromBitsThatBroadcastsCarryOften) {
    MatchIndex index;
    // Each mask = a common element (carried by every broadcast) + a rare one.
    for (ConnectionId id = 1; id <= 200; ++id) {
        BloomMask mask;
        mask.add_interface("org.freedesktop.DBus.Properties");
        mask.add_argument(0, "rare" + std::to_string(id));
        ASSERT_TRUE(index.add(id, MessageMatch{1, any_connection, "", mask}).ok());
    }
    BloomFilter common;
    common.add_interface("org.freedesktop.DBus.Properties");
    common.add_argument(0, "rare7");
    const std::size_t before = index.masks_visited(common);
    for (int i = 0; i < 5000; ++i) {
        index.observe(common);
    }
    const std::size_t after = index.masks_visited(common);
    EXPECT_LT(after, before);
    EXPECT_LE(after, 10u);
    std::printf("masks visited for a common broadcast: %zu before observing traffic, %zu after\n", before,
                after);
    EXPECT_EQ(candidates(index, common), (std::set<std::pair<ConnectionId, std::uint64_t>>{{7, 1}}));
}

}  // namespace
}  // namespace busgate::core
