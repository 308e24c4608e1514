#include <gtest/gtest.h>

#include "busgate/core/name_registry.h"

namespace busgate::core {
namespace {

using namespace name_flag;

class NameRegistryTest : public ::testing::Test {
  protected:
    AcquireResult acquire(ConnectionId id, std::string_view name, std::uint64_t flags) {
        auto result = registry.acquire(id, name, flags, changes);
        EXPECT_TRUE(result.ok());
        return result.ok() ? *result : AcquireResult::owned_elsewhere;
    }
    std::vector<ConnectionId> queue_of(std::string_view name) {
        std::vector<ConnectionId> ids;
        if (const NameEntry* entry = registry.find(name)) {
            for (const auto& owner : entry->owners) {
                ids.push_back(owner.id);
            }
        }
        return ids;
    }
    NameChange last_change() {
        EXPECT_FALSE(changes.empty());
        return changes.empty() ? NameChange{} : changes.back();
    }

    NameRegistry registry;
    std::vector<NameChange> changes;
};

TEST_F(NameRegistryTest, FirstRequestBecomesPrimaryWithNameAdd) {
    EXPECT_EQ(acquire(1, "org.example.A", 0), AcquireResult::acquired);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].type, NotificationType::name_add);
    EXPECT_EQ(changes[0].old_id, 0u);
    EXPECT_EQ(changes[0].new_id, 1u);
    EXPECT_EQ(changes[0].name, "org.example.A");
}

TEST_F(NameRegistryTest, RepeatedRequestByPrimaryIsAlreadyOwnerAndUpdatesFlags) {
    acquire(1, "org.example.A", 0);
    changes.clear();
    EXPECT_EQ(acquire(1, "org.example.A", allow_replacement), AcquireResult::already_owner);
    EXPECT_TRUE(changes.empty());
    EXPECT_EQ(registry.find("org.example.A")->owners[0].flags, allow_replacement);
}

TEST_F(NameRegistryTest, InvalidNamesAreRefused) {
    for (auto name : {"", "single", "org..x", "org.1abc", ".org.x", "org.x.", "org.ex ample", ":1.5"}) {
        auto result = registry.acquire(1, name, 0, changes);
        ASSERT_FALSE(result.ok()) << name;
        EXPECT_EQ(result.error(), Error::invalid_name);
    }
    EXPECT_TRUE(registry.acquire(1, "org._1-x.y", 0, changes).ok());
}

TEST_F(NameRegistryTest, WithoutQueueSecondRequesterGetsExists) {
    acquire(1, "org.example.A", 0);
    EXPECT_EQ(acquire(2, "org.example.A", 0), AcquireResult::owned_elsewhere);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{1}));
}

TEST_F(NameRegistryTest, QueueFlagPutsRequesterInQueueInOrder) {
    acquire(1, "org.example.A", 0);
    EXPECT_EQ(acquire(2, "org.example.A", queue), AcquireResult::queued);
    EXPECT_EQ(acquire(3, "org.example.A", queue), AcquireResult::queued);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{1, 2, 3}));
}

TEST_F(NameRegistryTest, ReplaceExistingFailsWithoutAllowReplacement) {
    acquire(1, "org.example.A", queue);
    EXPECT_EQ(acquire(2, "org.example.A", replace_existing), AcquireResult::owned_elsewhere);
    EXPECT_EQ(acquire(3, "org.example.A", replace_existing | queue), AcquireResult::queued);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{1, 3}));
}

TEST_F(NameRegistryTest, RefusedReplacementWaitsFirstInLine) {
    acquire(1, "org.example.A", queue);
    acquire(2, "org.example.A", queue);
    EXPECT_EQ(acquire(3, "org.example.A", replace_existing | queue), AcquireResult::queued);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{1, 3, 2}));  // as dbus-daemon queues
    EXPECT_EQ(acquire(2, "org.example.A", replace_existing | queue), AcquireResult::queued);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{1, 2, 3}));
}

TEST_F(NameRegistryTest, ReleaseAllReleasesNewestFirst) {
    acquire(1, "org.example.First", queue);
    acquire(1, "org.example.Second", queue);
    changes.clear();
    registry.release_all(1, changes);
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[0].name, "org.example.Second");
    EXPECT_EQ(changes[1].name, "org.example.First");
}

TEST_F(NameRegistryTest, ReplacedOwnerQueuesSecond) {
    acquire(1, "org.example.A", allow_replacement | queue);
    acquire(2, "org.example.A", queue);
    changes.clear();
    EXPECT_EQ(acquire(3, "org.example.A", replace_existing), AcquireResult::acquired);
    // dbus-daemon's order: the new owner, then the replaced owner, then the earlier waiters.
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{3, 1, 2}));
    const NameChange change = last_change();
    EXPECT_EQ(change.type, NotificationType::name_change);
    EXPECT_EQ(change.old_id, 1u);
    EXPECT_EQ(change.new_id, 3u);
}

TEST_F(NameRegistryTest, ReplacedOwnerWithoutQueueLosesTheName) {
    acquire(1, "org.example.A", allow_replacement);
    acquire(2, "org.example.A", queue);
    EXPECT_EQ(acquire(3, "org.example.A", replace_existing), AcquireResult::acquired);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{3, 2}));
    EXPECT_EQ(registry.membership_count(1), 0u);
}

TEST_F(NameRegistryTest, QueuedWaiterCanReplaceAndLeavesItsOldPlace) {
    acquire(1, "org.example.A", allow_replacement | queue);
    acquire(2, "org.example.A", queue);
    acquire(3, "org.example.A", queue);
    EXPECT_EQ(acquire(3, "org.example.A", replace_existing), AcquireResult::acquired);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{3, 1, 2}));
}

TEST_F(NameRegistryTest, WaiterAskingAgainWithoutQueueLeavesTheQueue) {
    acquire(1, "org.example.A", 0);
    acquire(2, "org.example.A", queue);
    EXPECT_EQ(acquire(2, "org.example.A", 0), AcquireResult::owned_elsewhere);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{1}));
}

TEST_F(NameRegistryTest, ReleaseByPrimaryHandsNameToNextInLine) {
    acquire(1, "org.example.A", 0);
    acquire(2, "org.example.A", queue);
    changes.clear();
    EXPECT_EQ(registry.release(1, "org.example.A", changes), ReleaseResult::released);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{2}));
    EXPECT_EQ(last_change().type, NotificationType::name_change);
    EXPECT_EQ(last_change().old_id, 1u);
    EXPECT_EQ(last_change().new_id, 2u);
}

TEST_F(NameRegistryTest, ReleaseOfLastOwnerRemovesName) {
    acquire(1, "org.example.A", 0);
    changes.clear();
    EXPECT_EQ(registry.release(1, "org.example.A", changes), ReleaseResult::released);
    EXPECT_EQ(registry.find("org.example.A"), nullptr);
    EXPECT_EQ(last_change().type, NotificationType::name_remove);
    EXPECT_EQ(last_change().new_id, 0u);
}

TEST_F(NameRegistryTest, ReleaseResultsForStrangersAndUnknownNames) {
    acquire(1, "org.example.A", 0);
    acquire(2, "org.example.A", queue);
    EXPECT_EQ(registry.release(3, "org.example.A", changes), ReleaseResult::not_owner);
    EXPECT_EQ(registry.release(3, "org.example.Missing", changes), ReleaseResult::unowned);
    changes.clear();
    EXPECT_EQ(registry.release(2, "org.example.A", changes), ReleaseResult::released);
    EXPECT_TRUE(changes.empty());  // leaving the queue changes no owner
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{1}));
}

TEST_F(NameRegistryTest, PerConnectionNameLimitCountsOwnedAndQueued) {
    NameRegistry small(2);
    EXPECT_TRUE(small.acquire(9, "org.other.X", 0, changes).ok());
    EXPECT_TRUE(small.acquire(1, "org.example.A", 0, changes).ok());
    EXPECT_TRUE(small.acquire(1, "org.other.X", queue, changes).ok());
    auto third = small.acquire(1, "org.example.C", 0, changes);
    ASSERT_FALSE(third.ok());
    EXPECT_EQ(third.error(), Error::name_limit_reached);
    // Asking again for a name it already holds is not a new membership.
    EXPECT_TRUE(small.acquire(1, "org.example.A", 0, changes).ok());
}

TEST_F(NameRegistryTest, ActivatorHoldsNameUntilRealOwnerArrives) {
    ASSERT_TRUE(registry.attach_activator(10, "org.example.Svc", changes).ok());
    EXPECT_EQ(last_change().type, NotificationType::name_add);
    EXPECT_EQ(last_change().new_flags, activator);
    EXPECT_EQ(registry.find("org.example.Svc")->destination(), 10u);
    EXPECT_TRUE(registry.find("org.example.Svc")->only_activator());

    changes.clear();
    EXPECT_EQ(acquire(1, "org.example.Svc", 0), AcquireResult::acquired);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].type, NotificationType::name_change);
    EXPECT_EQ(changes[0].old_id, 10u);
    EXPECT_TRUE(changes[0].from_activator);
    EXPECT_EQ(registry.find("org.example.Svc")->destination(), 1u);

    changes.clear();
    EXPECT_EQ(registry.release(1, "org.example.Svc", changes), ReleaseResult::released);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_TRUE(changes[0].to_activator);
    EXPECT_EQ(changes[0].new_id, 10u);
    EXPECT_EQ(registry.find("org.example.Svc")->destination(), 10u);
}

TEST_F(NameRegistryTest, SecondActivatorForANameIsRefused) {
    ASSERT_TRUE(registry.attach_activator(10, "org.example.Svc", changes).ok());
    auto again = registry.attach_activator(11, "org.example.Svc", changes);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error(), Error::already_exists);
}

TEST_F(NameRegistryTest, ReleaseAllAdvancesEveryQueueAndDropsActivatorName) {
    acquire(1, "org.example.A", 0);
    acquire(2, "org.example.A", queue);
    acquire(1, "org.example.B", 0);
    acquire(2, "org.example.C", 0);
    acquire(1, "org.example.C", queue);
    ASSERT_TRUE(registry.attach_activator(1, "org.example.D", changes).ok());
    changes.clear();
    registry.release_all(1, changes);
    EXPECT_EQ(queue_of("org.example.A"), (std::vector<ConnectionId>{2}));
    EXPECT_EQ(registry.find("org.example.B"), nullptr);
    EXPECT_EQ(queue_of("org.example.C"), (std::vector<ConnectionId>{2}));
    EXPECT_EQ(registry.find("org.example.D"), nullptr);
    EXPECT_EQ(registry.membership_count(1), 0u);
    EXPECT_EQ(changes.size(), 3u);  // A changes, B removed, D removed; leaving C's queue is silent
}

}  // namespace
}  // namespace busgate::core
