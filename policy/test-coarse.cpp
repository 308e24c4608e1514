// Coarse compilation onto core policy entries: what each kind of rule becomes, and the core refusing on its
// own, with the compiled entries, what no rule grants.
#include <gtest/gtest.h>

#include <cstdint>

#include "busgate/core/bus.h"
#include "busgate/policy/coarse.h"
#include "busgate/policy/policy.h"

using namespace busgate::policy;
namespace core = busgate::core;

namespace {

PolicyRules rules_of(std::string_view body) {
    LoadOptions options;
    options.users = UserDatabase{[](std::string_view name) -> std::optional<std::uint32_t> {
                                     if (name == "svc") {
                                         return 500;
                                     }
                                     return std::nullopt;
                                 },
                                 [](std::string_view name) -> std::optional<std::uint32_t> {
                                     if (name == "admins") {
                                         return 60;
                                     }
                                     return std::nullopt;
                                 }};
    return parse_configuration("<busconfig><listen>x:</listen>" + std::string(body) + "</busconfig>",
                               "/v.conf", options)
        .policy;
}

core::PolicyDatabase database_of(const PolicyRules& rules) {
    core::PolicyDatabase database;
    EXPECT_TRUE(database.replace(1, compile_coarse(rules).entries).ok());
    return database;
}

const core::Credentials svc{500, 500, {}, 0, {}};
const core::Credentials admin{1000, 1000, {60}, 0, {}};
const core::Credentials other{1001, 1001, {}, 0, {}};

}  // namespace

TEST(CoarseCompilation, ServiceRulesBecomeOwnAndTalkGrants) {
    const auto rules = rules_of(
        "<policy user=\"svc\"><allow own=\"org.example.Svc\"/></policy>"
        "<policy context=\"default\"><allow send_destination=\"org.example.Svc\"/><deny own=\"*\"/></policy>"
        "<policy group=\"admins\"><allow send_destination=\"org.example.Admin\" "
        "send_interface=\"a.b\"/></policy>");
    const CoarsePolicy coarse = compile_coarse(rules);
    ASSERT_EQ(coarse.entries.size(), 3u);  // the two names, and "*" with nothing but SEE
    const core::PolicyDatabase database = database_of(rules);
    EXPECT_TRUE(database.allows(svc, "org.example.Svc", core::Access::own));
    EXPECT_FALSE(database.allows(other, "org.example.Svc", core::Access::own));
    EXPECT_TRUE(database.allows(other, "org.example.Svc", core::Access::talk));
    EXPECT_TRUE(database.allows(admin, "org.example.Admin", core::Access::talk));
    EXPECT_FALSE(database.allows(other, "org.example.Admin", core::Access::talk));
    EXPECT_TRUE(database.allows(other, "org.example.Admin", core::Access::see));
    EXPECT_TRUE(database.allows(other, "org.example.Unmentioned", core::Access::see));
    EXPECT_FALSE(database.allows_any(other, core::Access::talk));  // deny own="*" grants nothing
    EXPECT_FALSE(database.allows(other, "org.example.Unmentioned", core::Access::own));
}

TEST(CoarseCompilation, WildcardsBecomeSubtreeAndAnyEntries) {
    const auto database =
        database_of(rules_of("<policy context=\"default\"><allow own_prefix=\"org.a\"/></policy>"
                             "<policy user=\"svc\"><allow send_destination=\"*\"/><allow own=\"*\"/></policy>"
                             "<policy group=\"admins\"><allow send_destination_prefix=\"org.b\"/></policy>"));
    EXPECT_TRUE(database.allows(other, "org.a", core::Access::own));
    EXPECT_TRUE(database.allows(other, "org.a.b.c", core::Access::own));
    EXPECT_FALSE(database.allows(other, "org.ab", core::Access::own));
    EXPECT_TRUE(database.allows_any(svc, core::Access::own));
    EXPECT_FALSE(database.allows_any(other, core::Access::talk));
    EXPECT_TRUE(database.allows(admin, "org.b.c", core::Access::talk));
    EXPECT_FALSE(database.allows(admin, "org.c.d", core::Access::talk));
}

TEST(CoarseCompilation, ContextsGrantToWhomTheyMayApply) {
    const auto database =
        database_of(rules_of("<policy context=\"mandatory\"><allow own=\"a.mandatory\"/></policy>"
                             "<policy at_console=\"true\"><allow own=\"a.console\"/></policy>"
                             "<policy at_console=\"false\"><allow own=\"a.away\"/></policy>"
                             "<policy group=\"admins\"><allow own=\"a.admins\"/></policy>"));
    for (const char* name : {"a.mandatory", "a.console", "a.away"}) {
        EXPECT_TRUE(database.allows(other, name, core::Access::own)) << name;
    }
    EXPECT_TRUE(database.allows(admin, "a.admins", core::Access::own));
    const core::Credentials primary_group{1002, 60, {}, 0, {}};  // the gid counts as a group
    EXPECT_TRUE(database.allows(primary_group, "a.admins", core::Access::own));
    EXPECT_FALSE(database.allows(other, "a.admins", core::Access::own));
}

TEST(CoarseCompilation, SendRulesNoMethodCallMatchesGrantNoTalk) {
    const auto database = database_of(rules_of(
        "<policy context=\"default\"><allow send_type=\"signal\"/>"
        "<allow send_type=\"method_return\" send_requested_reply=\"true\"/><allow send_type=\"error\"/>"
        "<allow send_broadcast=\"true\"/><allow send_destination=\"a.signal\" send_type=\"signal\"/>"
        "<allow receive_sender=\"a.received\"/></policy>"));
    EXPECT_FALSE(database.allows_any(other, core::Access::talk));
    EXPECT_FALSE(database.allows(other, "a.signal", core::Access::talk));
    EXPECT_FALSE(database.allows(other, "a.received", core::Access::talk));
    // A unique name cannot be singled out by the core: such a rule opens every connection to the grantee.
    EXPECT_TRUE(database_of(rules_of("<policy user=\"svc\"><allow send_destination=\":1.7\"/></policy>"))
                    .allows_any(svc, core::Access::talk));
}

TEST(CoarseCompilation, NamesNoConnectionCanHaveGrantNothing) {
    const auto coarse =
        compile_coarse(rules_of("<policy context=\"default\"><allow own=\"single\"/><allow own=\"a.1b\"/>"
                                "<allow own_prefix=\"a.\"/><allow send_destination=\"single\"/></policy>"));
    ASSERT_EQ(coarse.entries.size(), 1u);
    EXPECT_EQ(coarse.entries[0].name, core::any_name);
}

// The backstop: the gateway's exact check is not asked at all; the core, with the compiled entries uploaded
// by a policy holder, refuses by itself a name no <allow own> grants and a call no <allow send> could allow.
TEST(CoarseBackstop, TheCoreAloneRefusesWhatNoRuleGrants) {
    const auto rules = rules_of(
        "<policy context=\"default\"><deny own=\"*\"/><deny send_type=\"method_call\"/>"
        "<allow send_type=\"signal\"/><allow send_destination=\"org.example.Svc\"/></policy>"
        "<policy user=\"svc\"><allow own=\"org.example.Svc\"/></policy>");
    core::BusConfig config;
    config.owner_uid = 0;
    config.signals_need_talk = false;
    core::Bus bus(config);
    core::HelloParams holder;
    holder.flags = core::hello_flag::policy_holder;
    holder.name = "org.busgate.Policy";
    holder.policy = compile_coarse(rules).entries;
    ASSERT_TRUE(bus.hello(std::move(holder)).ok());
    const auto hello = [&](const core::Credentials& credentials) {
        core::HelloParams params;
        params.credentials = credentials;
        return *bus.hello(std::move(params));
    };
    const core::ConnectionId service = hello(svc);
    const core::ConnectionId intruder = hello(other);
    const core::ConnectionId root = hello({0, 0, {}, 0, {}});

    auto refused = bus.acquire_name(intruder, "org.example.Svc", core::name_flag::queue);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error(), core::Error::permission_denied);
    refused = bus.acquire_name(service, "org.example.Other", 0);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error(), core::Error::permission_denied);
    EXPECT_TRUE(bus.acquire_name(service, "org.example.Svc", 0).ok());
    EXPECT_TRUE(bus.acquire_name(root, "org.example.Other", 0).ok());  // root is privileged, as in kdbus

    const auto call = [&](core::ConnectionId from, core::ConnectionId to, std::string name = {}) {
        core::OutgoingMessage message;
        message.payload = core::MessagePayload::make(std::vector<std::uint8_t>(8), {});
        message.destination_id = name.empty() ? to : 0;
        message.destination_name = std::move(name);
        message.cookie = 1;
        return bus.send(from, std::move(message));
    };
    EXPECT_TRUE(call(intruder, 0, "org.example.Svc").ok());
    EXPECT_TRUE(call(intruder, service).ok());  // the connection owns a name the caller may talk to
    auto denied = call(intruder, root, "org.example.Other");
    ASSERT_FALSE(denied.ok());
    EXPECT_EQ(denied.error(), core::Error::permission_denied);
    denied = call(service, intruder);  // a nameless peer of another user: no rule reaches it
    ASSERT_FALSE(denied.ok());
    EXPECT_EQ(denied.error(), core::Error::permission_denied);
}
