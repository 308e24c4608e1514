// Match rules against messages: evaluation (cases from dbus-daemon's own bus/signals.c tests and the
// specification's examples), and the core mask that a rule becomes never rejecting a message the exact rule
// matches.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <set>

#include "bus/match_rule.h"
#include "bus/test_match_rule.h"
#include "bus/unique_name.h"
#include "busgate/core/bloom.h"
#include "busgate/marshal/names.h"
#include "busgate/marshal/writer.h"

using namespace busgate;
using namespace busgate::bus;
using busgate::bus::testing::parse;
using marshal::BodyWriter;
using marshal::MessageSpec;
using marshal::MessageType;

namespace {

// A built message and its parsed header (whose views point into `bytes`, hence no copies).
struct Message {
    std::vector<std::uint8_t> bytes;
    marshal::MessageHeader header;

    Message(const MessageSpec& spec, const BodyWriter& body) : bytes(marshal::build_message(spec, body)) {
        EXPECT_EQ(marshal::parse_message(bytes, header), marshal::Validity::valid);
    }
    Message(const Message&) = delete;
    Message& operator=(const Message&) = delete;

    MessageView view() const { return MessageView(bytes, header); }
};

MessageSpec signal_spec(std::string_view member = "Frobated", std::string_view path = "/") {
    MessageSpec spec;
    spec.type = MessageType::signal;
    spec.path = path;
    spec.interface = "org.example.Interface";
    spec.member = member;
    spec.sender = ":1.7";
    return spec;
}

bool rule_matches(std::string_view rule, const Message& message, const MessageParties& parties = {":1.7"}) {
    return matches(parse(rule), message.view(), parties);
}

class Owners final : public NameOwnership {
  public:
    void set(std::string name, std::string owner) { owners_[std::move(name)] = std::move(owner); }
    bool is_primary_owner(std::string_view unique_name, std::string_view name) const override {
        const auto found = owners_.find(std::string(name));
        return found != owners_.end() && found->second == unique_name;
    }

  private:
    std::map<std::string, std::string> owners_;
};

// ---------------------------------------------------------------------------------------------------------
// Evaluation

TEST(MatchRuleMatches, HeaderKeysAndStringArguments) {
    // dbus-daemon's message 1: signal Frobated("foobar", int32 3).
    const Message message(signal_spec(), BodyWriter().string("foobar").int32(3));
    for (const char* rule :
         {"", "type='signal'", "member='Frobated'", "arg0='foobar'", "type='signal',member='Frobated'",
          "type='signal',member='Frobated',arg0='foobar'", "member='Frobated',arg0='foobar'",
          "type='signal',arg0='foobar'", "arg0path='foobar'", "arg0namespace='foobar'",
          "interface='org.example.Interface'", "path='/'"}) {
        EXPECT_TRUE(rule_matches(rule, message)) << rule;
    }
    for (const char* rule : {"type='method_call'",
                             "type='error'",
                             "type='method_return'",
                             "type='signal',member='Oopsed'",
                             "arg0='blah'",
                             "arg1='foobar'",
                             "arg2='foobar'",
                             "arg3='foobar'",
                             "arg0='3'",
                             "arg1='3'",
                             "arg0='foobar',arg1='abcdef'",
                             "arg0='foobar',arg1='abcdef',arg2='abcdefghi',arg3='abcdefghi',arg4='abcdefghi'",
                             "arg0path='foo'",
                             "arg0path='foobar/'",
                             "arg1path='3'",
                             "arg0namespace='foo'",
                             "arg0namespace='foo',arg1='abcdef'",
                             "arg0namespace='moo'",
                             "interface='org.example.Other'",
                             "path='/foo'"}) {
        EXPECT_FALSE(rule_matches(rule, message)) << rule;
    }
}

TEST(MatchRuleMatches, AbsentHeaderFieldsFailTheirKeys) {
    MessageSpec spec;
    spec.type = MessageType::method_return;
    spec.reply_serial = 3;
    spec.sender = ":1.7";
    const Message reply(spec, BodyWriter());
    EXPECT_TRUE(rule_matches("type='method_return'", reply));
    EXPECT_FALSE(rule_matches("interface='org.example.Interface'", reply));
    EXPECT_FALSE(rule_matches("member='Frobated'", reply));
    EXPECT_FALSE(rule_matches("path_namespace='/'", reply));
    EXPECT_FALSE(rule_matches("arg0=''", reply));
}

TEST(MatchRuleMatches, Arg0NamespaceMatchesWholeNameElements) {
    const Message message(signal_spec("NameOwnerChanged"), BodyWriter().string("com.example.backend.foo"));
    for (const char* rule : {"arg0namespace='com.example.backend'", "arg0namespace='com.example'",
                             "arg0namespace='com'", "arg0namespace='com.example.backend.foo'"}) {
        EXPECT_TRUE(rule_matches(rule, message)) << rule;
    }
    for (const char* rule :
         {"arg0namespace='com.example.backend.foo.bar'", "arg0namespace='com.example.backend.foobar'",
          "arg0namespace='com.example.backend.fo'", "arg0namespace='com.example.backen'",
          "arg0namespace='com.exampl'", "arg0namespace='co'"}) {
        EXPECT_FALSE(rule_matches(rule, message)) << rule;
    }
    const Message foo(signal_spec(), BodyWriter().string("org.examplefoo"));
    EXPECT_FALSE(rule_matches("arg0namespace='org.example'", foo));
    const Message exact(signal_spec(), BodyWriter().string("org.example"));
    EXPECT_TRUE(rule_matches("arg0namespace='org.example'", exact));
}

TEST(MatchRuleMatches, Arg0NamespaceAndArgNNeedAStringNotAnObjectPath) {
    const Message message(signal_spec(), BodyWriter().object_path("/org/example").signature("s"));
    EXPECT_FALSE(rule_matches("arg0='/org/example'", message));
    EXPECT_FALSE(rule_matches("arg1='s'", message));
    const Message path_first(signal_spec(), BodyWriter().object_path("/a"));
    EXPECT_FALSE(rule_matches("arg0namespace='a'", path_first));
    EXPECT_TRUE(rule_matches("arg0path='/a'", path_first));
}

TEST(MatchRuleMatches, ArgPathMatchesPrefixesEndingInSlashEitherWay) {
    // The specification's example rule arg0path='/aa/bb/'. "/aa/", "/aa/bb/" and "/aa/bb/cc/" are not valid
    // object paths, so they are sent as strings only.
    const auto check = [](char type, std::string_view value, bool expected) {
        BodyWriter body;
        if (type == 's') {
            body.string(value);
        } else {
            body.object_path(value);
        }
        const Message message(signal_spec("Foo"), body);
        EXPECT_EQ(rule_matches("arg0path='/aa/bb/'", message), expected) << type << " " << value;
    };
    for (const char* value : {"/aa/", "/aa/bb/", "/aa/bb/cc/", "/", "/aa/bb/cc"}) {
        check('s', value, true);
    }
    for (const char* value : {"/", "/aa/bb/cc"}) {
        check('o', value, true);
    }
    for (const char* value : {"/aa/b", "/aa", "/aa/bb"}) {
        check('s', value, false);
        check('o', value, false);
    }
}

TEST(MatchRuleMatches, ArgPathWithEmptyValuesMatchesOnlyEmpty) {
    const Message empty(signal_spec(), BodyWriter().string(""));
    const Message slash(signal_spec(), BodyWriter().string("/"));
    EXPECT_TRUE(rule_matches("arg0path=''", empty));
    EXPECT_FALSE(rule_matches("arg0path='/'", empty));
    EXPECT_FALSE(rule_matches("arg0path=''", slash));
}

TEST(MatchRuleMatches, PathNamespaceContainsTheObjectAndItsChildren) {
    const auto matches_path = [](std::string_view rule, std::string_view path) {
        const Message message(signal_spec("Foo", path), BodyWriter());
        return rule_matches(rule, message);
    };
    EXPECT_TRUE(matches_path("type='signal',path_namespace='/'", "/foo/TheObjectManager"));
    EXPECT_TRUE(matches_path("type='signal',path_namespace='/foo'", "/foo/TheObjectManager"));
    EXPECT_TRUE(
        matches_path("type='signal',path_namespace='/foo/TheObjectManager'", "/foo/TheObjectManager"));
    EXPECT_FALSE(matches_path("type='signal',path_namespace='/bar'", "/foo/TheObjectManager"));
    EXPECT_FALSE(
        matches_path("type='signal',path_namespace='/bar/TheObjectManager'", "/foo/TheObjectManager"));
    EXPECT_TRUE(matches_path("type='signal',path_namespace='/foo/TheObjectManager'",
                             "/foo/TheObjectManager/child_object"));
    EXPECT_FALSE(
        matches_path("type='signal',path_namespace='/foo/TheObjectManager'", "/foo/TheObjectManagerOther"));
    EXPECT_TRUE(matches_path("type='signal',path_namespace='/'", "/"));
    EXPECT_FALSE(matches_path("type='signal',path_namespace='/foo'", "/"));
    EXPECT_FALSE(matches_path("path='/foo'", "/foo/bar"));
}

TEST(MatchRuleMatches, ArgumentsAfterContainersAndOtherTypesAreFound) {
    BodyWriter body;
    body.open_array("{sv}").open_dict_entry().string("key").open_variant("(ai)").open_struct().open_array(
        "i");
    body.int32(1).int32(2).close_array().close_struct().close_variant().close_dict_entry().close_array();
    body.byte(7).open_struct().int64(9).string("inner").close_struct().double_(0.5).open_variant("s");
    body.string("in variant")
        .close_variant()
        .int16(3)
        .string("sixth")
        .object_path("/seventh")
        .signature("ai");
    const Message message(signal_spec(), body);
    EXPECT_TRUE(rule_matches("arg6='sixth'", message));
    EXPECT_TRUE(rule_matches("arg7path='/'", message));
    EXPECT_FALSE(rule_matches("arg7path='/seventh/'", message));
    EXPECT_FALSE(rule_matches("arg4='in variant'", message));
    EXPECT_FALSE(rule_matches("arg8='ai'", message));  // a SIGNATURE is not a STRING
    EXPECT_FALSE(rule_matches("arg9=''", message));
    EXPECT_FALSE(rule_matches("arg63=''", message));
    const MessageView view = message.view();
    EXPECT_EQ(view.argument(0).type, 'a');
    EXPECT_EQ(view.argument(2).type, '(');
    EXPECT_EQ(view.argument(4).type, 'v');
    EXPECT_EQ(view.argument(8).type, 'g');
    EXPECT_EQ(view.argument(8).text, "ai");
    EXPECT_EQ(view.argument(9).type, 0);
}

TEST(MatchRuleMatches, BigEndianBodiesAreRead) {
    BodyWriter body(marshal::ByteOrder::big);
    body.uint32(5).string("big").open_array("s").string("x").close_array().string("after");
    const Message message(signal_spec(), body);
    EXPECT_TRUE(rule_matches("arg1='big',arg3='after'", message));
}

TEST(MatchRuleMatches, ArgumentsAreDecodedOnlyAsFarAsNeeded) {
    Message message(signal_spec(), BodyWriter().string("first").string("second"));
    // Corrupt the second argument's length: a rule on arg0 still matches, one on arg1 fails safely.
    const std::size_t second_length = message.header.body_offset + 12;
    message.bytes[second_length] = 0xff;
    message.bytes[second_length + 1] = 0xff;
    EXPECT_TRUE(rule_matches("arg0='first'", message));
    EXPECT_FALSE(rule_matches("arg1='second'", message));
}

TEST(MatchRuleMatches, SenderByUniqueName) {
    const Message message(signal_spec(), BodyWriter());
    EXPECT_TRUE(rule_matches("sender=':1.7'", message, {":1.7"}));
    EXPECT_FALSE(rule_matches("sender=':1.8'", message, {":1.7"}));
    EXPECT_FALSE(rule_matches("sender=':1.7'", message, {}));
}

TEST(MatchRuleMatches, SenderByWellKnownNameNeedsThePrimaryOwnerNow) {
    const Message message(signal_spec(), BodyWriter());
    Owners owners;
    owners.set("org.example.Service", ":1.7");
    EXPECT_TRUE(rule_matches("sender='org.example.Service'", message, {":1.7", {}, &owners}));
    EXPECT_FALSE(rule_matches("sender='org.example.Other'", message, {":1.7", {}, &owners}));
    owners.set("org.example.Service", ":1.9");
    EXPECT_FALSE(rule_matches("sender='org.example.Service'", message, {":1.7", {}, &owners}));
    EXPECT_FALSE(rule_matches("sender='org.example.Service'", message, {":1.9", {}, nullptr}));
}

TEST(MatchRuleMatches, TheDriverIsOnlyOrgFreedesktopDBus) {
    MessageSpec spec = signal_spec("NameOwnerChanged", "/org/freedesktop/DBus");
    spec.sender = "org.freedesktop.DBus";
    const Message message(spec, BodyWriter().string("a.b").string("").string(":1.7"));
    const MessageParties from_driver{};
    EXPECT_TRUE(rule_matches("sender='org.freedesktop.DBus',arg0='a.b'", message, from_driver));
    EXPECT_FALSE(rule_matches("sender=':1.0'", message, from_driver));
    EXPECT_FALSE(rule_matches("sender='org.example.Service'", message, from_driver));
}

TEST(MatchRuleMatches, MessagesWithADestinationMatchOnlyEavesdroppers) {
    MessageSpec spec = signal_spec();
    spec.destination = ":1.9";
    const Message unicast(spec, BodyWriter());
    const MessageParties parties{":1.7", ":1.9"};
    EXPECT_FALSE(rule_matches("type='signal'", unicast, parties));
    EXPECT_FALSE(rule_matches("", unicast, parties));
    EXPECT_FALSE(rule_matches("eavesdrop='false'", unicast, parties));
    EXPECT_TRUE(rule_matches("type='signal',eavesdrop='true'", unicast, parties));
    EXPECT_TRUE(rule_matches("eavesdrop='true'", unicast, parties));

    MessageSpec call_spec = signal_spec();
    call_spec.type = MessageType::method_call;
    call_spec.destination = "org.example.Service";
    const Message call(call_spec, BodyWriter());
    EXPECT_FALSE(rule_matches("type='method_call'", call, parties));
    EXPECT_TRUE(rule_matches("type='method_call',eavesdrop='true'", call, parties));
}

TEST(MatchRuleMatches, DestinationKeysMatchOnlyEavesdroppersOnTheAddressedRecipient) {
    MessageSpec spec = signal_spec();
    spec.type = MessageType::method_call;
    spec.destination = "org.example.Service";
    const Message call(spec, BodyWriter());
    Owners owners;
    owners.set("org.example.Service", ":1.9");
    const MessageParties parties{":1.7", ":1.9", &owners};
    EXPECT_FALSE(rule_matches("destination=':1.9'", call, parties));
    EXPECT_TRUE(rule_matches("destination=':1.9',eavesdrop='true'", call, parties));
    EXPECT_TRUE(rule_matches("destination='org.example.Service',eavesdrop='true'", call, parties));
    EXPECT_FALSE(rule_matches("destination=':1.8',eavesdrop='true'", call, parties));
    EXPECT_FALSE(rule_matches("destination='org.example.Other',eavesdrop='true'", call, parties));

    // Nobody is addressed yet (activation, or the driver): the rule compares with the field as sent.
    const MessageParties unaddressed{":1.7", {}, &owners};
    EXPECT_TRUE(rule_matches("destination='org.example.Service',eavesdrop='true'", call, unaddressed));
    EXPECT_FALSE(rule_matches("destination=':1.9',eavesdrop='true'", call, unaddressed));

    const Message broadcast(signal_spec(), BodyWriter());
    EXPECT_FALSE(rule_matches("destination=':1.9',eavesdrop='true'", broadcast, parties));
}

// ---------------------------------------------------------------------------------------------------------
// Core translation

TEST(MatchRuleCore, HeaderKeysBecomeTheirBloomElements) {
    const CoreMatch core = to_core_match(
        parse("type='signal',interface='org.a.B',member='M',path_namespace='/a/b',arg0namespace='org.x',"
              "arg2='two',arg3path='/p/'"),
        42);
    core::BloomMask expected;
    expected.add_message_type("signal");
    expected.add_interface("org.a.B");
    expected.add_member("M");
    expected.add_path_namespace("/a/b");
    expected.add_argument_namespace(0, "org.x");
    expected.add_argument(2, "two");
    EXPECT_EQ(core.match.mask, expected);
    EXPECT_EQ(core.match.cookie, 42u);
    EXPECT_EQ(core.match.sender_id, core::any_connection);
    EXPECT_TRUE(core.match.sender_name.empty());
    EXPECT_TRUE(core.matches_broadcasts);
    EXPECT_FALSE(core.matches_unicast);

    core::BloomMask path;
    path.add_path("/a");
    EXPECT_EQ(to_core_match(parse("path='/a'"), 1).match.mask, path);
}

TEST(MatchRuleCore, EmptyRuleAndArgPathGiveAnEmptyMask) {
    EXPECT_TRUE(to_core_match(parse(""), 1).match.mask.empty());
    EXPECT_TRUE(to_core_match(parse("arg0path='/a/',eavesdrop='false'"), 1).match.mask.empty());
}

TEST(MatchRuleCore, SendersBecomeIdOrNameFilters) {
    EXPECT_EQ(to_core_match(parse("sender=':1.42'"), 1).match.sender_id, 43u);  // ":1.0" is connection 1
    const CoreMatch by_name = to_core_match(parse("sender='org.example.Service'"), 1);
    EXPECT_EQ(by_name.match.sender_name, "org.example.Service");
    EXPECT_EQ(by_name.match.sender_id, core::any_connection);
    EXPECT_EQ(to_core_match(parse("sender='org.freedesktop.DBus'"), 1, 3).match.sender_id, 3u);
    const CoreMatch driver_unknown = to_core_match(parse("sender='org.freedesktop.DBus'"), 1);
    EXPECT_EQ(driver_unknown.match.sender_id, core::any_connection);
    EXPECT_TRUE(driver_unknown.match.sender_name.empty());
    for (const char* foreign :
         {"sender=':1.042'", "sender=':2.3'", "sender=':452345.34'", "sender=':1.99999999999999999999999'"}) {
        EXPECT_FALSE(to_core_match(parse(foreign), 1).matches_broadcasts) << foreign;
    }
}

TEST(MatchRuleCore, DestinationAndEavesdropAreTheGatewaysToHandle) {
    EXPECT_FALSE(to_core_match(parse("destination=':1.5'"), 1).matches_broadcasts);
    const CoreMatch eavesdrop = to_core_match(parse("type='method_call',eavesdrop='true'"), 1);
    EXPECT_TRUE(eavesdrop.matches_broadcasts);
    EXPECT_TRUE(eavesdrop.matches_unicast);
    const CoreMatch both = to_core_match(parse("destination=':1.5',eavesdrop='true'"), 1);
    EXPECT_FALSE(both.matches_broadcasts);
    EXPECT_TRUE(both.matches_unicast);
}

TEST(MatchRuleCore, MasksNeverRejectWhatTheExactRuleMatches) {
    std::mt19937 random(20260423);
    const auto pick = [&random](const auto& pool) { return pool[random() % std::size(pool)]; };
    const auto chance = [&random](unsigned percent) { return random() % 100 < percent; };
    const char* interfaces[] = {"org.a", "org.a.B", "com.x.Y"};
    const char* members[] = {"Changed", "Removed", "Added"};
    const char* paths[] = {"/", "/a", "/a/b", "/ab", "/a/b/c"};
    const char* texts[] = {"org.a", "org.a.b", "org.ab", "/a/", "/a/b", "/a", "x", ""};
    const char* senders[] = {":1.3", ":1.4", "org.a.Service"};
    Owners owners;
    owners.set("org.a.Service", ":1.3");

    int matched = 0;
    for (int round = 0; round < 600; ++round) {
        // A random broadcast signal: up to five arguments of mixed types.
        const std::string interface = pick(interfaces);
        const std::string member = pick(members);
        const std::string path = pick(paths);
        const std::string sender_unique = chance(50) ? ":1.3" : ":1.4";
        MessageSpec spec = signal_spec(member, path);
        spec.interface = interface;
        spec.sender = sender_unique;
        BodyWriter body;
        std::vector<std::string> values;
        const unsigned count = random() % 6;
        for (unsigned i = 0; i < count; ++i) {
            std::string value = pick(texts);
            switch (random() % 5) {
                case 0:
                case 1:
                    body.string(value);
                    break;
                case 2:
                    value = marshal::is_valid_object_path(value) ? value : "/a/b";
                    body.object_path(value);
                    break;
                case 3:
                    body.int32(7);
                    break;
                default:
                    body.open_array("s").string(value).close_array();
                    break;
            }
            values.push_back(value);
        }
        const Message message(spec, body);

        // A random rule, biased towards the message's own values so that a good share matches.
        std::string text = "type='signal'";
        if (chance(50)) {
            text += ",interface='" + (chance(70) ? interface : std::string(pick(interfaces))) + "'";
        }
        if (chance(50)) {
            text += ",member='" + (chance(70) ? member : std::string(pick(members))) + "'";
        }
        if (chance(40)) {
            text += std::string(chance(50) ? ",path=" : ",path_namespace=") + "'" + pick(paths) + "'";
        }
        if (chance(30)) {
            text += ",sender='" + std::string(pick(senders)) + "'";
        }
        std::set<unsigned> used;
        for (unsigned a = random() % 3; a > 0; --a) {
            const unsigned index = count == 0 ? 0 : random() % count;
            if (!used.insert(index).second) {
                continue;
            }
            const std::string value = index < values.size() && chance(70) ? values[index] : pick(texts);
            switch (random() % 3) {
                case 0:
                    text += ",arg" + std::to_string(index) + "='" + value + "'";
                    break;
                case 1:
                    text += ",arg" + std::to_string(index) + "path='" + value + "'";
                    break;
                default:
                    if (index == 0 && marshal::is_valid_bus_namespace(value)) {
                        text += ",arg0namespace='" + value + "'";
                    }
                    break;
            }
        }
        const MatchRule rule = parse(text);
        const MessageView view = message.view();
        if (!matches(rule, view, {sender_unique, {}, &owners})) {
            continue;
        }
        ++matched;
        const CoreMatch core = to_core_match(rule, 1);
        EXPECT_TRUE(core.matches_broadcasts) << text;
        EXPECT_TRUE(bloom_filter_of(message.bytes, message.header).covers(core.match.mask)) << text;
        if (core.match.sender_id != core::any_connection) {
            EXPECT_EQ(unique_name_of(core.match.sender_id), sender_unique) << text;
        }
        if (!core.match.sender_name.empty()) {
            EXPECT_TRUE(owners.is_primary_owner(sender_unique, core.match.sender_name)) << text;
        }
    }
    EXPECT_GT(matched, 60);
}

}  // namespace
