#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "busgate/core/policy_database.h"

namespace busgate::core {
namespace {

// The name tables' hash (keyed, eight bytes a step): every byte must count, the last partial word too,
// and the low bits (boost's open addressing groups by them) must spread.
TEST(StringHash, EveryByteCountsAndTheLowBitsSpread) {
    const StringHash hash;
    const std::string base = "org.freedesktop.portal.Desktop.Extra";  // 36 bytes: words and a tail
    for (std::size_t at = 0; at < base.size(); ++at) {
        std::string changed = base;
        changed[at] ^= 1;
        EXPECT_NE(hash(changed), hash(base)) << "byte " << at;
    }
    for (std::size_t length = 0; length < base.size(); ++length) {
        EXPECT_NE(hash(base.substr(0, length)), hash(base.substr(0, length + 1))) << "length " << length;
    }
    EXPECT_NE(hash(std::string("a\0", 2)), hash("a"));
    // 16,384 names in 1,024 buckets: for a uniform hash the sum of the squared loads is 1,024 * (16 + 256)
    // with a spread of about 1.5%; a hash that ignores some bytes or bits is far above.
    std::vector<std::uint64_t> buckets(1024);
    for (int i = 0; i < 16384; ++i) {
        ++buckets[hash("org.example.Name" + std::to_string(i)) % buckets.size()];
    }
    std::uint64_t squares = 0;
    for (const std::uint64_t load : buckets) {
        squares += load * load;
    }
    EXPECT_LT(squares, 1024u * 272u * 12 / 10);
}

// The key is drawn per process, so names that collide in one bus do not in the next; within one it is
// fixed, so a table's hashes stay valid.
TEST(StringHash, OneProcessHashesANameAlike) {
    EXPECT_EQ(StringHash{}("org.example.Same"), StringHash{}("org.example.Same"));
}

Credentials user(std::uint32_t uid, std::uint32_t gid = 100, std::vector<std::uint32_t> groups = {}) {
    Credentials credentials;
    credentials.uid = uid;
    credentials.gid = gid;
    credentials.groups = std::move(groups);
    return credentials;
}

TEST(PolicyDatabase, NoEntryMeansNoAccess) {
    PolicyDatabase db;
    EXPECT_FALSE(db.query(user(1000), "org.example.A").has_value());
}

TEST(PolicyDatabase, HighestMatchingGrantWinsAndImpliesLowerLevels) {
    PolicyDatabase db;
    ASSERT_TRUE(db.replace(7, std::vector<PolicyEntry>{{"org.example.A",
                                                        {{Grantee::world, 0, Access::see},
                                                         {Grantee::user, 1000, Access::own},
                                                         {Grantee::group, 50, Access::talk}}}})
                    .ok());
    EXPECT_EQ(db.query(user(1000), "org.example.A"), Access::own);
    EXPECT_TRUE(db.allows(user(1000), "org.example.A", Access::talk));
    EXPECT_EQ(db.query(user(1001, 50), "org.example.A"), Access::talk);
    EXPECT_EQ(db.query(user(1001, 100, {50}), "org.example.A"), Access::talk);  // supplementary group
    EXPECT_EQ(db.query(user(1002), "org.example.A"), Access::see);
    EXPECT_FALSE(db.allows(user(1002), "org.example.A", Access::talk));
}

TEST(PolicyDatabase, WildcardCoversExactlyOneMoreElement) {
    PolicyDatabase db;
    ASSERT_TRUE(
        db.replace(7, std::vector<PolicyEntry>{{"org.example.*", {{Grantee::world, 0, Access::talk}}}}).ok());
    EXPECT_EQ(db.query(user(1), "org.example.Foo"), Access::talk);
    EXPECT_FALSE(db.query(user(1), "org.example.Foo.Bar").has_value());
    EXPECT_FALSE(db.query(user(1), "org.example").has_value());
}

TEST(PolicyDatabase, ExactEntryHidesWildcard) {
    PolicyDatabase db;
    ASSERT_TRUE(
        db.replace(7, std::vector<PolicyEntry>{{"org.example.*", {{Grantee::world, 0, Access::own}}},
                                               {"org.example.Locked", {{Grantee::user, 0, Access::own}}}})
            .ok());
    EXPECT_FALSE(db.query(user(1000), "org.example.Locked").has_value());
    EXPECT_EQ(db.query(user(1000), "org.example.Open"), Access::own);
}

TEST(PolicyDatabase, ReplaceIsAtomicAndRefusesForeignNames) {
    PolicyDatabase db;
    ASSERT_TRUE(
        db.replace(1, std::vector<PolicyEntry>{{"org.one.A", {{Grantee::world, 0, Access::talk}}}}).ok());
    ASSERT_TRUE(
        db.replace(2, std::vector<PolicyEntry>{{"org.two.A", {{Grantee::world, 0, Access::talk}}}}).ok());
    // Holder 2 tries to take holder 1's name along with a new one: nothing changes.
    auto status = db.replace(2, std::vector<PolicyEntry>{{"org.two.B", {{Grantee::world, 0, Access::own}}},
                                                         {"org.one.A", {{Grantee::world, 0, Access::own}}}});
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error(), Error::already_exists);
    EXPECT_EQ(db.query(user(5), "org.two.A"), Access::talk);
    EXPECT_FALSE(db.query(user(5), "org.two.B").has_value());
    EXPECT_EQ(db.query(user(5), "org.one.A"), Access::talk);

    // A successful upload replaces the whole previous set.
    ASSERT_TRUE(
        db.replace(2, std::vector<PolicyEntry>{{"org.two.B", {{Grantee::world, 0, Access::own}}}}).ok());
    EXPECT_FALSE(db.query(user(5), "org.two.A").has_value());
    EXPECT_EQ(db.query(user(5), "org.two.B"), Access::own);
}

TEST(PolicyDatabase, InvalidNamesAndForbiddenWildcardsAreRejected) {
    PolicyDatabase db;
    EXPECT_EQ(db.replace(1, std::vector<PolicyEntry>{{"no-dots", {}}}).error(), Error::invalid_name);
    EXPECT_EQ(db.replace(1, std::vector<PolicyEntry>{{"org.x.*", {}}}, false).error(),
              Error::invalid_argument);
    EXPECT_TRUE(db.replace(1, std::vector<PolicyEntry>{{"org.*", {{Grantee::world, 0, Access::see}}}}).ok());
    EXPECT_EQ(db.query(user(1), "org.x"), Access::see);
}

TEST(PolicyDatabase, RemoveOwnerDropsOnlyItsEntries) {
    PolicyDatabase db;
    ASSERT_TRUE(
        db.replace(1, std::vector<PolicyEntry>{{"org.one.A", {{Grantee::world, 0, Access::talk}}}}).ok());
    ASSERT_TRUE(
        db.replace(2, std::vector<PolicyEntry>{{"org.two.A", {{Grantee::world, 0, Access::talk}}}}).ok());
    db.remove_owner(1);
    EXPECT_FALSE(db.query(user(5), "org.one.A").has_value());
    EXPECT_TRUE(db.query(user(5), "org.two.A").has_value());
}

TEST(PolicyDatabase, SubtreeCoversTheNameAndEveryNameBelowIt) {
    PolicyDatabase db;
    ASSERT_TRUE(
        db.replace(7, std::vector<PolicyEntry>{{"org.example", {{Grantee::user, 1000, Access::own}}, true}})
            .ok());
    EXPECT_EQ(db.query(user(1000), "org.example"), Access::own);
    EXPECT_EQ(db.query(user(1000), "org.example.A"), Access::own);
    EXPECT_EQ(db.query(user(1000), "org.example.A.B.C"), Access::own);
    EXPECT_FALSE(db.query(user(1000), "org.examples").has_value());  // element boundaries only
    EXPECT_FALSE(db.query(user(1000), "org.exampl").has_value());
    EXPECT_FALSE(db.query(user(1001), "org.example.A").has_value());
    // A single element is a valid subtree, as it is a valid kdbus wildcard.
    ASSERT_TRUE(
        db.replace(8, std::vector<PolicyEntry>{{"net", {{Grantee::world, 0, Access::talk}}, true}}).ok());
    EXPECT_EQ(db.query(user(5), "net.x.y"), Access::talk);
}

TEST(PolicyDatabase, SubtreeAndAnyEntriesAddToWhatAnExactEntryGrants) {
    PolicyDatabase db;
    ASSERT_TRUE(
        db.replace(7, std::vector<PolicyEntry>{{"org.example.Locked", {{Grantee::user, 0, Access::own}}},
                                               {"org.example", {{Grantee::group, 60, Access::own}}, true},
                                               {"*", {{Grantee::world, 0, Access::talk}}}})
            .ok());
    EXPECT_EQ(db.query(user(1000, 60), "org.example.Locked"), Access::own);
    EXPECT_EQ(db.query(user(1000), "org.example.Locked"), Access::talk);
    EXPECT_EQ(db.query(user(1000), "com.other.Name"), Access::talk);
    EXPECT_TRUE(db.allows_any(user(1000), Access::talk));
    EXPECT_FALSE(db.allows_any(user(1000), Access::own));
    EXPECT_EQ(db.size(), 3u);
}

TEST(PolicyDatabase, AnyEntryHasOneOwnerAndGoesWithIt) {
    PolicyDatabase db;
    ASSERT_TRUE(db.replace(1, std::vector<PolicyEntry>{{"*", {{Grantee::world, 0, Access::own}}}}).ok());
    EXPECT_EQ(db.replace(2, std::vector<PolicyEntry>{{"*", {}}}).error(), Error::already_exists);
    EXPECT_EQ(db.replace(2, std::vector<PolicyEntry>{{"*", {}}}, false).error(), Error::invalid_argument);
    EXPECT_EQ(db.replace(2, std::vector<PolicyEntry>{{"org.a", {}, true}}, false).error(),
              Error::invalid_argument);
    EXPECT_EQ(db.replace(2, std::vector<PolicyEntry>{{"org.1a", {}, true}}).error(), Error::invalid_name);
    EXPECT_TRUE(db.allows(user(9), "any.Name", Access::own));
    db.remove_owner(1);
    EXPECT_FALSE(db.allows_any(user(9), Access::see));
    EXPECT_FALSE(db.query(user(9), "any.Name").has_value());
}

}  // namespace
}  // namespace busgate::core
