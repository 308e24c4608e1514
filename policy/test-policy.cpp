// Policy evaluation: context order, last match wins, requested replies, the bus driver, prefixes,
// eavesdropping.
#include <gtest/gtest.h>

#include "busgate/policy/policy.h"

using namespace busgate::policy;
using busgate::marshal::MessageType;

namespace {

UserDatabase numeric_users() {
    auto numeric = [](std::string_view name) -> std::optional<std::uint32_t> {
        if (name == "alice") {
            return 1000;
        }
        if (name == "staff") {
            return 50;
        }
        if (name == "wheel") {
            return 10;
        }
        if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
            return static_cast<std::uint32_t>(std::stoul(std::string(name)));
        }
        return std::nullopt;
    };
    return UserDatabase{numeric, numeric};
}

Policy policy_of(std::string_view policies) {
    LoadOptions options;
    options.users = numeric_users();
    const std::string text =
        "<busconfig><listen>unix:path=/x</listen>" + std::string(policies) + "</busconfig>";
    return Policy(parse_configuration(text, "/virtual/policy.conf", options).policy);
}

MessageInfo call(std::string_view destination, std::string_view interface, std::string_view member,
                 std::string_view path = "/") {
    MessageInfo message;
    message.type = MessageType::method_call;
    message.destination = destination;
    message.interface = interface;
    message.member = member;
    message.path = path;
    return message;
}

MessageInfo reply(std::string_view destination) {
    MessageInfo message;
    message.type = MessageType::method_return;
    message.destination = destination;
    message.has_reply_serial = true;
    return message;
}

MessageInfo broadcast(std::string_view interface, std::string_view member) {
    MessageInfo message;
    message.type = MessageType::signal;
    message.interface = interface;
    message.member = member;
    message.path = "/";
    return message;
}

struct Fixture {
    explicit Fixture(std::string_view policies) : policy(policy_of(policies)) {}
    bool send(const MessageInfo& message, std::vector<std::string> receiver_names, std::uint32_t uid = 1000,
              bool requested_reply = false, std::vector<std::uint32_t> groups = {}) const {
        auto client = policy.for_connection({uid, std::move(groups), false});
        auto names = policy.prepare_names(receiver_names);
        return client.check_can_send(policy.prepare(message), &names, requested_reply).allowed;
    }
    bool send_to_driver(const MessageInfo& message, std::uint32_t uid = 1000) const {
        auto client = policy.for_connection({uid, {}, false});
        return client.check_can_send(policy.prepare(message), nullptr, false).allowed;
    }
    bool receive(const MessageInfo& message, std::vector<std::string> sender_names,
                 bool eavesdropping = false, bool requested_reply = false) const {
        auto client = policy.for_connection({1000, {}, false});
        auto names = policy.prepare_names(sender_names);
        return client.check_can_receive(policy.prepare(message), &names, requested_reply, eavesdropping)
            .allowed;
    }
    bool own(std::string_view name, ConnectionCredentials credentials = {1000, {}, false}) const {
        return policy.for_connection(credentials).check_can_own(name);
    }
    Policy policy;
};

}  // namespace

TEST(PolicyEvaluation, NothingMatchingMeansDeny) {
    Fixture f("<policy context=\"default\"><allow own=\"a.b\"/></policy>");
    EXPECT_FALSE(f.send(call("a.b", "a.b.I", "M"), {"a.b", ":1.1"}));
    EXPECT_FALSE(f.receive(broadcast("a.b.I", "S"), {":1.1"}));
    EXPECT_FALSE(f.own("c.d"));
    EXPECT_TRUE(f.own("a.b"));
}

TEST(PolicyEvaluation, LaterMatchingRuleWins) {
    Fixture f(
        "<policy context=\"default\"><allow send_destination=\"a.b\"/><deny send_destination=\"a.b\" "
        "send_interface=\"a.b.Secret\"/><allow send_destination=\"a.b\" send_interface=\"a.b.Secret\" "
        "send_member=\"Open\"/></policy>");
    EXPECT_TRUE(f.send(call("a.b", "a.b.Public", "M"), {"a.b"}));
    EXPECT_FALSE(f.send(call("a.b", "a.b.Secret", "M"), {"a.b"}));
    EXPECT_TRUE(f.send(call("a.b", "a.b.Secret", "Open"), {"a.b"}));
}

TEST(PolicyEvaluation, ContextsApplyDefaultGroupsUserConsoleMandatory) {
    const char* rules =
        "<policy context=\"mandatory\"><deny own=\"m.m\"/></policy>"
        "<policy user=\"1000\"><allow own=\"u.u\"/><allow own=\"m.m\"/><deny own=\"g.g\"/></policy>"
        "<policy group=\"50\"><allow own=\"g.g\"/><deny own=\"d.d\"/><allow own=\"u.u\"/></policy>"
        "<policy at_console=\"true\"><allow own=\"c.c\"/><deny own=\"u.u\"/></policy>"
        "<policy at_console=\"false\"><allow own=\"n.n\"/></policy>"
        "<policy context=\"default\"><allow own=\"d.d\"/><deny own=\"u.u\"/></policy>";
    Fixture f(rules);
    const ConnectionCredentials staff_user{1000, {50}, false};
    EXPECT_FALSE(f.own("d.d", staff_user));  // group beats default
    EXPECT_TRUE(f.own("d.d", {1000, {}, false}));
    EXPECT_FALSE(f.own("g.g", staff_user));  // user beats group
    EXPECT_TRUE(f.own("g.g", {1001, {50}, false}));
    EXPECT_TRUE(f.own("u.u", staff_user));
    EXPECT_FALSE(f.own("u.u", {1000, {50}, true}));  // console beats user
    EXPECT_TRUE(f.own("c.c", {1000, {}, true}));
    EXPECT_FALSE(f.own("c.c", {1000, {}, false}));
    EXPECT_TRUE(f.own("n.n", {1000, {}, false}));
    EXPECT_FALSE(f.own("n.n", {1000, {}, true}));  // at_console="false" only for users not at the console
    EXPECT_FALSE(f.own("m.m", staff_user));        // mandatory beats everything
}

TEST(PolicyEvaluation, OwnPrefixMatchesWholeElementsOnly) {
    Fixture f("<policy context=\"default\"><allow own_prefix=\"org.freedesktop.ManySystems\"/></policy>");
    EXPECT_TRUE(f.own("org.freedesktop.ManySystems"));
    EXPECT_TRUE(f.own("org.freedesktop.ManySystems.foo"));
    EXPECT_TRUE(f.own("org.freedesktop.ManySystems.foo.bar"));
    EXPECT_FALSE(f.own("org.freedesktop.ManySystems2"));
    EXPECT_FALSE(f.own("org.freedesktop"));
}

TEST(PolicyEvaluation, OwnStarMatchesAnyName) {
    Fixture f("<policy context=\"default\"><allow own=\"*\"/><deny own=\"no.pe\"/></policy>");
    EXPECT_TRUE(f.own("any.thing"));
    EXPECT_FALSE(f.own("no.pe"));
}

TEST(PolicyEvaluation, SendDestinationMatchesAnyNameTheReceiverOwns) {
    Fixture f(
        "<policy context=\"default\"><allow send_destination=\"*\"/><deny "
        "send_destination=\"a.b\"/></policy>");
    // Addressed by its unique name, or by another name: still the owner of a.b.
    EXPECT_FALSE(f.send(call(":1.5", "x.y", "M"), {":1.5", "c.d", "a.b"}));
    EXPECT_FALSE(f.send(call("c.d", "x.y", "M"), {":1.5", "c.d", "a.b"}));
    EXPECT_TRUE(f.send(call("c.d", "x.y", "M"), {":1.5", "c.d"}));
}

TEST(PolicyEvaluation, SendDestinationPrefixCoversTheNamespace) {
    Fixture f(
        "<policy context=\"default\"><deny send_destination_prefix=\"a.b\"/>"
        "<allow send_destination=\"a.b.ok\"/></policy>");
    Fixture g("<policy context=\"default\"><allow send_destination_prefix=\"a.b\"/></policy>");
    EXPECT_TRUE(g.send(call("a.b", "i.i", "M"), {"a.b"}));
    EXPECT_TRUE(g.send(call("a.b.c.d", "i.i", "M"), {"a.b.c.d"}));
    EXPECT_FALSE(g.send(call("a.bc", "i.i", "M"), {"a.bc"}));
    EXPECT_TRUE(g.send(call(":1.2", "i.i", "M"), {":1.2", "a.b.x"}));
    EXPECT_TRUE(f.send(call("a.b.ok", "i.i", "M"), {"a.b.ok"}));
    // Both rules match a receiver owning a.b.ok and a.b.other; the later allow decides.
    EXPECT_TRUE(f.send(call("a.b.ok", "i.i", "M"), {"a.b.ok", "a.b.other"}));
}

TEST(PolicyEvaluation, InterfaceIsOptionalForDenyButRequiredForAllow) {
    Fixture f(
        "<policy context=\"default\"><allow send_destination=\"*\"/>"
        "<deny send_destination=\"a.b\" send_interface=\"a.b.I\"/></policy>");
    MessageInfo no_interface = call("a.b", "x", "M");
    no_interface.interface.reset();
    EXPECT_FALSE(f.send(no_interface, {"a.b"}));  // the deny matches a message without interface
    Fixture g(
        "<policy context=\"default\"><allow send_destination=\"a.b\" send_interface=\"a.b.I\"/></policy>");
    EXPECT_FALSE(g.send(no_interface, {"a.b"}));  // the allow does not
    EXPECT_TRUE(g.send(call("a.b", "a.b.I", "M"), {"a.b"}));
}

TEST(PolicyEvaluation, PathMemberAndErrorMatchMessagesLackingTheField) {
    // dbus-daemon skips a rule only when the message HAS the field with another value: a reply has no path,
    // so a send_path rule applies to it.
    Fixture f(
        "<policy context=\"default\"><allow send_destination=\"*\" send_requested_reply=\"false\"/>"
        "<deny send_path=\"/secret\" send_requested_reply=\"true\"/>"
        "<deny send_type=\"error\" send_error=\"a.b.Bad\" send_requested_reply=\"true\"/></policy>");
    EXPECT_FALSE(f.send(call("a.b", "a.b.I", "M", "/secret"), {"a.b"}));
    EXPECT_TRUE(f.send(call("a.b", "a.b.I", "M", "/public"), {"a.b"}));
    EXPECT_FALSE(f.send(reply("a.b"), {"a.b"}, 1000, true));
    Fixture g(
        "<policy context=\"default\"><allow send_destination=\"*\" send_requested_reply=\"false\"/>"
        "<deny send_type=\"error\" send_error=\"a.b.Bad\" send_requested_reply=\"true\"/></policy>");
    MessageInfo error = reply("a.b");
    error.type = MessageType::error;
    error.error_name = "a.b.Bad";
    EXPECT_FALSE(g.send(error, {"a.b"}, 1000, true));
    error.error_name = "a.b.Good";
    EXPECT_TRUE(g.send(error, {"a.b"}, 1000, true));
}

TEST(PolicyEvaluation, RequestedRepliesNeedRequestedReplyRules) {
    // system.conf's defaults: replies allowed only when requested.
    Fixture f(
        "<policy context=\"default\"><deny send_type=\"method_call\"/>"
        "<allow send_requested_reply=\"true\" send_type=\"method_return\"/></policy>");
    EXPECT_TRUE(f.send(reply(":1.1"), {":1.1"}, 1000, true));
    EXPECT_FALSE(f.send(reply(":1.1"), {":1.1"}, 1000, false));
    Fixture any_reply(
        "<policy context=\"default\"><allow send_requested_reply=\"false\" "
        "send_type=\"method_return\"/></policy>");
    EXPECT_TRUE(any_reply.send(reply(":1.1"), {":1.1"}, 1000, false));
    // An allow with eavesdrop="true" lets unrequested replies through too (session.conf).
    Fixture session(
        "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/></policy>");
    EXPECT_TRUE(session.send(reply(":1.1"), {":1.1"}, 1000, false));
    Fixture plain("<policy context=\"default\"><allow send_destination=\"*\"/></policy>");
    EXPECT_FALSE(plain.send(reply(":1.1"), {":1.1"}, 1000, false));
    EXPECT_TRUE(plain.send(reply(":1.1"), {":1.1"}, 1000, true));
}

TEST(PolicyEvaluation, DenyRulesOnlyStopUnrequestedRepliesByDefault) {
    Fixture f(
        "<policy context=\"default\"><allow send_destination=\"*\" send_requested_reply=\"false\"/>"
        "<deny send_type=\"method_return\"/></policy>");
    EXPECT_TRUE(f.send(reply(":1.1"), {":1.1"}, 1000, true));
    EXPECT_FALSE(f.send(reply(":1.1"), {":1.1"}, 1000, false));
    Fixture always(
        "<policy context=\"default\"><allow send_destination=\"*\" send_requested_reply=\"false\"/>"
        "<deny send_type=\"method_return\" send_requested_reply=\"true\"/></policy>");
    EXPECT_FALSE(always.send(reply(":1.1"), {":1.1"}, 1000, true));
}

TEST(PolicyEvaluation, BroadcastAttribute) {
    Fixture f(
        "<policy context=\"default\"><allow send_destination=\"*\"/>"
        "<deny send_interface=\"a.B\" send_broadcast=\"true\"/>"
        "<deny send_interface=\"a.U\" send_broadcast=\"false\"/></policy>");
    EXPECT_FALSE(f.send(broadcast("a.B", "S"), {}));
    MessageInfo unicast_signal = broadcast("a.B", "S");
    unicast_signal.destination = ":1.1";
    EXPECT_TRUE(f.send(unicast_signal, {":1.1"}));
    EXPECT_TRUE(f.send(broadcast("a.U", "S"), {}));
    unicast_signal.interface = "a.U";
    EXPECT_FALSE(f.send(unicast_signal, {":1.1"}));
    EXPECT_FALSE(f.send(call(":1.1", "a.U", "M"), {":1.1"}));
}

TEST(PolicyEvaluation, BusDriverIsMatchedByTheDestinationField) {
    Fixture f(
        "<policy context=\"default\"><deny send_type=\"method_call\"/>"
        "<allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>"
        "<deny send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\" "
        "send_member=\"UpdateActivationEnvironment\"/></policy>");
    EXPECT_TRUE(f.send_to_driver(call("org.freedesktop.DBus", "org.freedesktop.DBus", "Hello")));
    EXPECT_FALSE(f.send_to_driver(
        call("org.freedesktop.DBus", "org.freedesktop.DBus", "UpdateActivationEnvironment")));
    EXPECT_FALSE(
        f.send_to_driver(call("org.freedesktop.DBus", "org.freedesktop.DBus.Debug.Stats", "GetStats")));
}

TEST(PolicyEvaluation, ReceiveSenderFromTheDriverUsesTheSenderField) {
    Fixture f(
        "<policy context=\"default\"><allow receive_sender=\"*\"/>"
        "<deny receive_sender=\"org.freedesktop.DBus\" receive_member=\"NameAcquired\" "
        "receive_interface=\"org.freedesktop.DBus\"/></policy>");
    MessageInfo acquired = broadcast("org.freedesktop.DBus", "NameAcquired");
    acquired.sender = "org.freedesktop.DBus";
    acquired.destination = ":1.7";
    auto client = f.policy.for_connection({1000, {}, false});
    EXPECT_FALSE(client.check_can_receive(f.policy.prepare(acquired), nullptr, false, false).allowed);
    acquired.member = "NameLost";
    EXPECT_TRUE(client.check_can_receive(f.policy.prepare(acquired), nullptr, false, false).allowed);
}

TEST(PolicyEvaluation, EavesdroppingNeedsEavesdropRules) {
    Fixture system("<policy context=\"default\"><allow receive_type=\"method_call\"/></policy>");
    EXPECT_TRUE(system.receive(call(":1.1", "a.I", "M"), {":1.2"}, false));
    EXPECT_FALSE(system.receive(call(":1.1", "a.I", "M"), {":1.2"}, true));
    Fixture session("<policy context=\"default\"><allow eavesdrop=\"true\"/></policy>");
    EXPECT_TRUE(session.receive(call(":1.1", "a.I", "M"), {":1.2"}, true));
    Fixture deny_only_eavesdrop(
        "<policy context=\"default\"><allow eavesdrop=\"true\"/>"
        "<deny receive_interface=\"a.I\" eavesdrop=\"true\"/></policy>");
    EXPECT_TRUE(deny_only_eavesdrop.receive(call(":1.1", "a.I", "M"), {":1.2"}, false));
    EXPECT_FALSE(deny_only_eavesdrop.receive(call(":1.1", "a.I", "M"), {":1.2"}, true));
}

TEST(PolicyEvaluation, FdCountRules) {
    Fixture f(
        "<policy context=\"default\"><allow send_destination=\"*\"/>"
        "<deny send_path=\"/max2\" max_fds=\"2\"/><deny send_path=\"/min4\" min_fds=\"4\"/></policy>");
    auto with_fds = [](std::string_view path, std::uint32_t fds) {
        MessageInfo message = call(":1.1", "a.I", "M", path);
        message.unix_fds = fds;
        return message;
    };
    EXPECT_FALSE(f.send(with_fds("/max2", 2), {":1.1"}));
    EXPECT_TRUE(f.send(with_fds("/max2", 3), {":1.1"}));
    EXPECT_TRUE(f.send(with_fds("/min4", 3), {":1.1"}));
    EXPECT_FALSE(f.send(with_fds("/min4", 4), {":1.1"}));
}

TEST(PolicyEvaluation, LogAttributeIsReportedOnAllowedSends) {
    Fixture f("<policy context=\"default\"><allow send_destination=\"*\" log=\"true\"/></policy>");
    auto client = f.policy.for_connection({1000, {}, false});
    auto names = f.policy.prepare_names(std::vector<std::string>{":1.1"});
    auto decision = client.check_can_send(f.policy.prepare(call(":1.1", "a.I", "M")), &names, false);
    EXPECT_TRUE(decision.allowed);
    EXPECT_TRUE(decision.log);
    ASSERT_NE(decision.rule, nullptr);
    EXPECT_EQ(decision.rule->where.line, 1);
}

TEST(PolicyEvaluation, ConnectionRulesStartFromTheBusOwner) {
    Fixture none("<policy context=\"default\"><allow own=\"*\"/></policy>");
    EXPECT_TRUE(none.policy.allows_connection(1000, {}, true));
    EXPECT_FALSE(none.policy.allows_connection(1001, {}, false));
    Fixture system(
        "<policy context=\"default\"><allow user=\"*\"/></policy>"
        "<policy context=\"mandatory\"><deny user=\"1001\"/><deny group=\"10\"/></policy>");
    EXPECT_TRUE(system.policy.allows_connection(1002, {}, false));
    EXPECT_FALSE(system.policy.allows_connection(1001, {}, false));
    const std::uint32_t wheel[] = {100, 10};
    EXPECT_FALSE(system.policy.allows_connection(1002, wheel, false));
    // user= rules inside an at_console policy are accepted but never consulted, as in dbus-daemon.
    Fixture console("<policy at_console=\"true\"><allow user=\"*\"/></policy>");
    EXPECT_FALSE(console.policy.allows_connection(1000, {}, false));
}

TEST(PolicyRoutes, RepliesFromTheDriverAreRequested) {
    Fixture f("<policy context=\"default\"><allow receive_type=\"method_return\"/></policy>");
    auto client = f.policy.for_connection({1000, {}, false});
    MessageInfo message = reply(":1.3");
    message.sender = "org.freedesktop.DBus";
    Route route;
    route.recipient = &client;
    auto names = f.policy.prepare_names(std::vector<std::string>{":1.3"});
    route.recipient_names = &names;
    auto result = f.policy.check_route(f.policy.prepare(message), route);
    EXPECT_EQ(result.verdict, Verdict::allowed);
    EXPECT_TRUE(result.requested_reply);
}

TEST(PolicyRoutes, RepliesBetweenClientsAreRequestedOnlyWhenPendingAndNotEavesdropped) {
    Fixture f(
        "<policy context=\"default\"><allow send_requested_reply=\"true\" send_type=\"method_return\"/>"
        "<allow receive_type=\"method_return\"/></policy>");
    auto sender = f.policy.for_connection({1000, {}, false});
    auto recipient = f.policy.for_connection({1001, {}, false});
    auto sender_names = f.policy.prepare_names(std::vector<std::string>{":1.1"});
    auto recipient_names = f.policy.prepare_names(std::vector<std::string>{":1.2"});
    const auto message = f.policy.prepare(reply(":1.2"));
    Route route{&sender, &sender_names, &recipient, &recipient_names, false, true};
    EXPECT_EQ(f.policy.check_route(message, route).verdict, Verdict::allowed);
    route.reply_expected = false;
    EXPECT_EQ(f.policy.check_route(message, route).verdict, Verdict::send_denied);
    route.reply_expected = true;
    route.eavesdropping = true;
    EXPECT_EQ(f.policy.check_route(message, route).verdict, Verdict::send_denied);
}

TEST(PolicyCompilation, MessagesAreResolvedToInternedIds) {
    Fixture f(
        "<policy context=\"default\"><allow send_destination=\"a.b\" send_interface=\"a.b.I\"/>"
        "<allow own_prefix=\"x.y\"/></policy>");
    EXPECT_EQ(f.policy.interned_strings(), 3u);
    // Strings no rule names resolve to "unknown" and match only wildcards.
    EXPECT_FALSE(f.send(call("q.q", "a.b.I", "M"), {"q.q"}));
}

TEST(PolicyEvaluation, CatchAllLookingRuleDropsEarlierRulesAsDbusDaemonDoes) {
    // dbus-daemon's bus_client_policy_optimize(): <deny send_broadcast="true"/> names nothing else, so it
    // removes the earlier allow although it only matches broadcasts (confirmed against dbus-daemon 1.14.10 in
    // the differential table, configuration "optimize").
    Fixture f(
        "<policy context=\"default\"><allow send_destination=\"a.b\"/><deny "
        "send_broadcast=\"true\"/></policy>");
    EXPECT_FALSE(f.send(call("a.b", "a.b.I", "M"), {"a.b"}));
    // A rule with a destination is not a catch-all, so nothing is dropped.
    Fixture g(
        "<policy context=\"default\"><allow send_destination=\"a.b\"/>"
        "<deny send_destination=\"*\" send_interface=\"x.y\" send_broadcast=\"true\"/></policy>");
    EXPECT_TRUE(g.send(call("a.b", "a.b.I", "M"), {"a.b"}));
}

// A list of one rule that names nothing is decided without walking the tests (the fast path of
// check_can_send / check_can_receive). The same rule followed by one that never matches takes the walk:
// both must decide alike, for every kind of message, eavesdropping or not, requested reply or not.
TEST(PolicyEvaluation, ABareCatchAllDecidesAsTheFullWalkDoes) {
    const std::vector<std::string> bare_rules = {
        "<allow send_destination=\"*\"/>",
        "<allow send_destination=\"*\" log=\"true\"/>",
        "<deny send_destination=\"*\"/>",
        "<allow send_destination=\"*\" eavesdrop=\"true\"/>",
        "<allow send_destination=\"*\" send_requested_reply=\"false\"/>",
        "<deny send_destination=\"*\" send_requested_reply=\"true\"/>",
        "<allow receive_sender=\"*\"/>",
        "<deny receive_sender=\"*\"/>",
        "<allow receive_sender=\"*\" eavesdrop=\"true\"/>",
        "<deny receive_sender=\"*\" eavesdrop=\"true\"/>",
        "<allow receive_sender=\"*\" receive_requested_reply=\"false\"/>",
        "<deny receive_sender=\"*\" receive_requested_reply=\"true\"/>",
        "<allow eavesdrop=\"true\"/>",
    };
    const std::string never =
        "<allow send_interface=\"never.Matched\"/><allow receive_interface=\"never.Matched\"/>";
    MessageInfo with_fds = call(":1.1", "a.I", "M");
    with_fds.unix_fds = 3;
    MessageInfo unicast_signal = broadcast("a.I", "S");
    unicast_signal.destination = ":1.1";
    MessageInfo error;
    error.type = MessageType::error;
    error.error_name = "a.Error";
    error.destination = ":1.1";
    error.has_reply_serial = true;
    const std::vector<MessageInfo> messages = {call(":1.1", "a.I", "M"), call("a.b", "a.I", "M"),
                                               broadcast("a.I", "S"), unicast_signal, with_fds,
                                               reply(":1.1"), error};
    for (const std::string& rule : bare_rules) {
        const Policy fast = policy_of("<policy context=\"default\">" + rule + "</policy>");
        const Policy walked = policy_of("<policy context=\"default\">" + rule + never + "</policy>");
        const ClientPolicy fast_client = fast.for_connection({1000, {}, false});
        const ClientPolicy walked_client = walked.for_connection({1000, {}, false});
        for (const MessageInfo& message : messages) {
            const auto fast_names = fast.prepare_names(std::vector<std::string>{":1.1", "a.b"});
            const auto walked_names = walked.prepare_names(std::vector<std::string>{":1.1", "a.b"});
            for (const bool requested : {false, true}) {
                const Decision a = fast_client.check_can_send(fast.prepare(message), &fast_names, requested);
                const Decision b =
                    walked_client.check_can_send(walked.prepare(message), &walked_names, requested);
                EXPECT_EQ(a.allowed, b.allowed) << rule << " send, requested " << requested;
                EXPECT_EQ(a.log, b.log) << rule;
                EXPECT_EQ(a.matched_rules, b.matched_rules) << rule;
                for (const bool eavesdropping : {false, true}) {
                    const Decision c = fast_client.check_can_receive(fast.prepare(message), &fast_names,
                                                                     requested, eavesdropping);
                    const Decision d = walked_client.check_can_receive(walked.prepare(message), &walked_names,
                                                                       requested, eavesdropping);
                    EXPECT_EQ(c.allowed, d.allowed)
                        << rule << " receive, requested " << requested << ", eavesdropping " << eavesdropping;
                    EXPECT_EQ(c.matched_rules, d.matched_rules) << rule;
                }
            }
        }
    }
}
