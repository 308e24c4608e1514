// Coarse compilation onto core policy entries, and its over-approximation guarantee.
#include <gtest/gtest.h>

#include "busgate/policy/coarse.h"
#include "busgate/policy/policy.h"

using namespace busgate::policy;
namespace core = busgate::core;

namespace {

PolicyRules rules_of(std::string_view body) {
    LoadOptions options;
    options.users = UserDatabase{[](std::string_view name) -> std::optional<uint32_t> {
                                     if (name == "svc")
                                         return 500;
                                     return std::nullopt;
                                 },
                                 [](std::string_view name) -> std::optional<uint32_t> {
                                     if (name == "admins")
                                         return 60;
                                     return std::nullopt;
                                 }};
    return parse_configuration("<busconfig><listen>x:</listen>" + std::string(body) + "</busconfig>",
                               "/v.conf", options)
        .policy;
}

}  // namespace

TEST(CoarseCompilation, ServiceRulesBecomeOwnAndTalkGrants) {
    const auto rules = rules_of(
        "<policy user=\"svc\"><allow own=\"org.example.Svc\"/></policy>"
        "<policy context=\"default\"><allow send_destination=\"org.example.Svc\"/><deny own=\"*\"/></policy>"
        "<policy group=\"admins\"><allow send_destination=\"org.example.Admin\" "
        "send_interface=\"a.b\"/></policy>");
    const CoarsePolicy coarse = compile_coarse(rules);
    ASSERT_EQ(coarse.entries.size(), 2u);
    core::PolicyDatabase database;
    ASSERT_TRUE(database.replace(1, coarse.entries).ok());
    core::Credentials svc{500, 500, {}, 0, {}};
    core::Credentials admin{1000, 1000, {60}, 0, {}};
    core::Credentials other{1001, 1001, {}, 0, {}};
    EXPECT_TRUE(database.allows(svc, "org.example.Svc", core::Access::own));
    EXPECT_FALSE(database.allows(other, "org.example.Svc", core::Access::own));
    EXPECT_TRUE(database.allows(other, "org.example.Svc", core::Access::talk));
    EXPECT_TRUE(database.allows(admin, "org.example.Admin", core::Access::talk));
    EXPECT_FALSE(database.allows(other, "org.example.Admin", core::Access::talk));
    EXPECT_TRUE(database.allows(other, "org.example.Admin", core::Access::see));
    EXPECT_FALSE(coarse.own_wildcards);  // deny own="*" grants nothing
}

TEST(CoarseCompilation, WildcardsAreReportedNotGuessed) {
    const auto coarse = compile_coarse(rules_of(
        "<policy context=\"default\"><allow own_prefix=\"org.a\"/><allow send_destination=\"*\"/></policy>"));
    EXPECT_TRUE(coarse.own_wildcards);
    EXPECT_TRUE(coarse.talk_wildcards);
    EXPECT_TRUE(coarse.entries.empty());
}

TEST(CoarseCompilation, NeverRefusesWhatTheExactPolicyAllows) {
    const auto rules = rules_of(
        "<policy context=\"default\"><deny own=\"a.b\"/><allow own=\"a.c\"/><allow "
        "send_destination=\"a.c\"/></policy>"
        "<policy user=\"svc\"><allow own=\"a.b\"/><deny own=\"a.c\"/></policy>"
        "<policy context=\"mandatory\"><allow own=\"a.d\"/></policy>");
    const Policy policy(rules);
    core::PolicyDatabase database;
    ASSERT_TRUE(database.replace(1, compile_coarse(rules).entries).ok());
    for (uint32_t uid : {500u, 1000u}) {
        const auto client = policy.for_connection({uid, {}, false});
        const core::Credentials credentials{uid, uid, {}, 0, {}};
        for (const char* name : {"a.b", "a.c", "a.d", "a.e"}) {
            SCOPED_TRACE(std::string(name) + " uid " + std::to_string(uid));
            if (client.check_can_own(name)) {
                EXPECT_TRUE(database.allows(credentials, name, core::Access::own));
            }
        }
    }
}
