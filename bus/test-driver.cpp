// The org.freedesktop.DBus driver, one test per method (and its refusals), over the wire to a bus in
// process. Every reply and error text is dbus-daemon 1.14's: run with
// BUSGATE_TEST_REFERENCE_DAEMON=/usr/bin/dbus-daemon to check them against it.
#include <gtest/gtest.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bus/driver.h"
#include "bus/endpoints_interface.h"
#include "bus/errors.h"
#include "bus/test_harness.h"
#include "busgate/marshal/message.h"
#include "busgate/marshal/writer.h"

using namespace busgate;
using namespace busgate::bus;
using namespace busgate::bus::testing;

namespace {

bool contains(const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

std::uint32_t request_name(BusClient& client, const char* name, std::uint32_t flags = 0) {
    Reply reply = call_bus(client, "RequestName", "su", name, flags);
    EXPECT_TRUE(reply.ok()) << reply.error();
    return read_uint32(reply);
}

bool is_hex(const std::string& text, std::size_t length) {
    return text.size() == length && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// An a{sv} reply's entries, each value as text (u and s values; other types as their signature).
std::map<std::string, std::string> read_dictionary(Reply& reply) {
    std::map<std::string, std::string> entries;
    if (!reply.ok() || sd_bus_message_enter_container(reply.message, 'a', "{sv}") < 0) {
        return entries;
    }
    while (sd_bus_message_enter_container(reply.message, 'e', "sv") > 0) {
        const char* key = nullptr;
        sd_bus_message_read(reply.message, "s", &key);
        const char* contents = nullptr;
        sd_bus_message_peek_type(reply.message, nullptr, &contents);
        std::string value = contents ? contents : "";
        if (value == "u") {
            std::uint32_t number = 0;
            sd_bus_message_read(reply.message, "v", "u", &number);
            value = std::to_string(number);
        } else if (value == "s") {
            const char* text = nullptr;
            sd_bus_message_read(reply.message, "v", "s", &text);
            value = text;
        } else if (value == "as") {
            sd_bus_message_enter_container(reply.message, 'v', "as");
            char** strings = nullptr;
            sd_bus_message_read_strv(reply.message, &strings);
            value = "[";
            for (char** text = strings; text && *text; ++text) {
                value += std::string(text == strings ? "" : ",") + *text;
                free(*text);
            }
            free(strings);
            value += "]";
            sd_bus_message_exit_container(reply.message);
        } else {
            sd_bus_message_skip(reply.message, "v");
        }
        entries[key] = value;
        sd_bus_message_exit_container(reply.message);
    }
    return entries;
}

constexpr const char* bus_path = "/org/freedesktop/DBus";
constexpr const char* bus_name = "org.freedesktop.DBus";

}  // namespace

TEST(Driver, HelloGivesAUniqueNameOnceOnly) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(client.unique_name().substr(0, 3), ":1.");
    EXPECT_EQ(call_bus(client, "Hello", "").error(),
              "org.freedesktop.DBus.Error.Failed: Already handled an Hello message");
}

TEST(Driver, MethodsOtherThanHelloNeedHelloFirst) {
    RunningBus bus;
    BusClient client(bus.address(), false);
    EXPECT_EQ(
        call_bus(client, "ListNames", "").error(),
        "org.freedesktop.DBus.Error.AccessDenied: Client tried to send a message other than Hello without "
        "being registered");
    // The connection stays: Hello still works.
    Reply hello = call_bus(client, "Hello", "");
    ASSERT_TRUE(hello.ok()) << hello.error();
    EXPECT_EQ(read_string(hello).substr(0, 3), ":1.");
}

TEST(Driver, RequestNameAnswersWithDbusDaemonsReplyNumbers) {
    RunningBus bus;
    BusClient owner(bus.address());
    BusClient rival(bus.address());
    EXPECT_EQ(request_name(owner, "org.example.Name"), 1u);     // PRIMARY_OWNER
    EXPECT_EQ(request_name(owner, "org.example.Name"), 4u);     // ALREADY_OWNER
    EXPECT_EQ(request_name(rival, "org.example.Name", 4), 3u);  // DO_NOT_QUEUE: EXISTS
    EXPECT_EQ(request_name(rival, "org.example.Name"), 2u);     // IN_QUEUE
}

TEST(Driver, RequestNameRefusesInvalidUniqueAndReservedNames) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(call_bus(client, "RequestName", "su", "not..valid", 0u).error(),
              "org.freedesktop.DBus.Error.InvalidArgs: Requested bus name \"not..valid\" is not valid");
    EXPECT_EQ(call_bus(client, "RequestName", "su", ":1.77", 0u).error(),
              "org.freedesktop.DBus.Error.InvalidArgs: Cannot acquire a service starting with ':' such as "
              "\":1.77\"");
    // dbus-daemon's name and text, the missing space before "because" included.
    EXPECT_EQ(
        call_bus(client, "RequestName", "su", bus_name, 0u).error(),
        "org.freedesktop.DBus.Error.InvalidArgs: Connection \"" + client.unique_name() +
            "\" is not allowed to own the service \"org.freedesktop.DBus\"because it is reserved for D-Bus' "
            "use only");
}

TEST(Driver, ReleaseNameAnswersReleasedNonExistentOrNotOwner) {
    RunningBus bus;
    BusClient owner(bus.address());
    BusClient other(bus.address());
    ASSERT_EQ(request_name(owner, "org.example.Release"), 1u);
    Reply not_owner = call_bus(other, "ReleaseName", "s", "org.example.Release");
    EXPECT_EQ(read_uint32(not_owner), 3u);
    Reply released = call_bus(owner, "ReleaseName", "s", "org.example.Release");
    EXPECT_EQ(read_uint32(released), 1u);
    Reply gone = call_bus(owner, "ReleaseName", "s", "org.example.Release");
    EXPECT_EQ(read_uint32(gone), 2u);
    EXPECT_EQ(call_bus(owner, "ReleaseName", "s", "not..valid").error(),
              "org.freedesktop.DBus.Error.InvalidArgs: Given bus name \"not..valid\" is not valid");
    EXPECT_EQ(call_bus(owner, "ReleaseName", "s", ":1.77").error(),
              "org.freedesktop.DBus.Error.InvalidArgs: Cannot release a service starting with ':' such as "
              "\":1.77\"");
}

TEST(Driver, ReleaseNameOfTheBusNamesTheBus) {
    RunningBus bus;
    BusClient owner(bus.address());
    EXPECT_EQ(
        call_bus(owner, "ReleaseName", "s", bus_name).error(),
        "org.freedesktop.DBus.Error.InvalidArgs: Cannot release the org.freedesktop.DBus service because it "
        "is owned by the bus");
}

TEST(Driver, ListQueuedOwnersListsThePrimaryOwnerFirst) {
    RunningBus bus;
    BusClient first(bus.address());
    BusClient second(bus.address());
    ASSERT_EQ(request_name(first, "org.example.Queue"), 1u);
    ASSERT_EQ(request_name(second, "org.example.Queue"), 2u);
    Reply queued = call_bus(first, "ListQueuedOwners", "s", "org.example.Queue");
    EXPECT_EQ(read_strings(queued), (std::vector<std::string>{first.unique_name(), second.unique_name()}));
    Reply driver = call_bus(first, "ListQueuedOwners", "s", bus_name);
    EXPECT_EQ(read_strings(driver), std::vector<std::string>{bus_name});
    EXPECT_EQ(call_bus(first, "ListQueuedOwners", "s", "org.example.Nobody").error(),
              "org.freedesktop.DBus.Error.NameHasNoOwner: Could not get owners of name 'org.example.Nobody': "
              "no such "
              "name");
}

TEST(Driver, ListNamesHasTheBusUniqueAndWellKnownNames) {
    RunningBus bus;
    BusClient client(bus.address());
    ASSERT_EQ(request_name(client, "org.example.Listed"), 1u);
    Reply reply = call_bus(client, "ListNames", "");
    const std::vector<std::string> names = read_strings(reply);
    EXPECT_TRUE(contains(names, bus_name));
    EXPECT_TRUE(contains(names, client.unique_name()));
    EXPECT_TRUE(contains(names, "org.example.Listed"));
    EXPECT_FALSE(contains(names, "org.example.Unlisted"));
}

TEST(Driver, ListActivatableNamesHasTheBusItself) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply reply = call_bus(client, "ListActivatableNames", "");
    EXPECT_EQ(read_strings(reply), std::vector<std::string>{bus_name});
}

TEST(Driver, NameHasOwnerAnswersTrueOnlyForOwnedNames) {
    RunningBus bus;
    BusClient client(bus.address());
    ASSERT_EQ(request_name(client, "org.example.Owned"), 1u);
    const auto has_owner = [&](const char* name) {
        Reply reply = call_bus(client, "NameHasOwner", "s", name);
        int value = -1;
        EXPECT_TRUE(reply.ok()) << reply.error();
        if (reply.ok()) {
            sd_bus_message_read(reply.message, "b", &value);
        }
        return value;
    };
    EXPECT_EQ(has_owner("org.example.Owned"), 1);
    EXPECT_EQ(has_owner("org.example.Free"), 0);
    EXPECT_EQ(has_owner(bus_name), 1);
    EXPECT_EQ(has_owner(client.unique_name().c_str()), 1);
    EXPECT_EQ(has_owner(":1.999"), 0);
}

TEST(Driver, StartServiceByNameOfANameNoServiceFileProvides) {
    RunningBus bus;
    BusClient owner(bus.address());
    // Even a name someone owns: dbus-daemon looks for the service file first (ALREADY_RUNNING is in
    // test-activation).
    ASSERT_EQ(request_name(owner, "org.example.Running"), 1u);
    EXPECT_EQ(
        call_bus(owner, "StartServiceByName", "su", "org.example.Running", 0u).error(),
        "org.freedesktop.DBus.Error.ServiceUnknown: The name org.example.Running was not provided by any "
        ".service files");
    EXPECT_EQ(
        call_bus(owner, "StartServiceByName", "su", "org.example.Unknown", 0u).error(),
        "org.freedesktop.DBus.Error.ServiceUnknown: The name org.example.Unknown was not provided by any "
        ".service files");
}

TEST(Driver, UpdateActivationEnvironmentAcceptsVariablesFromTheBusOwner) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply updated = call_bus(client, "UpdateActivationEnvironment", "a{ss}", 1, "BUSGATE_TEST", "1");
    EXPECT_TRUE(updated.ok()) << updated.error();
    EXPECT_EQ(
        call_bus(client, "UpdateActivationEnvironment", "s", "x").error(),
        "org.freedesktop.DBus.Error.InvalidArgs: Call to UpdateActivationEnvironment has wrong args (s, "
        "expected a{ss})\n");
}

TEST(Driver, GetNameOwnerGivesTheUniqueNameOrNameHasNoOwner) {
    RunningBus bus;
    BusClient client(bus.address());
    ASSERT_EQ(request_name(client, "org.example.Owner"), 1u);
    EXPECT_EQ(call_string(client, "GetNameOwner", "org.example.Owner"), client.unique_name());
    EXPECT_EQ(call_string(client, "GetNameOwner", bus_name), bus_name);
    EXPECT_EQ(call_bus(client, "GetNameOwner", "s", "org.example.Nobody").error(),
              "org.freedesktop.DBus.Error.NameHasNoOwner: Could not get owner of name 'org.example.Nobody': "
              "no such "
              "name");
}

TEST(Driver, GetConnectionUnixUserGivesTheUid) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply reply = call_bus(client, "GetConnectionUnixUser", "s", client.unique_name().c_str());
    EXPECT_EQ(read_uint32(reply), getuid());
    Reply driver = call_bus(client, "GetConnectionUnixUser", "s", bus_name);
    EXPECT_EQ(read_uint32(driver), getuid());  // the bus runs as us
    EXPECT_EQ(call_bus(client, "GetConnectionUnixUser", "s", ":1.999").error(),
              "org.freedesktop.DBus.Error.NameHasNoOwner: Could not get UID of name ':1.999': no such name");
}

TEST(Driver, GetConnectionUnixProcessIDGivesThePid) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply reply = call_bus(client, "GetConnectionUnixProcessID", "s", client.unique_name().c_str());
    EXPECT_EQ(read_uint32(reply), static_cast<std::uint32_t>(getpid()));
    EXPECT_EQ(call_bus(client, "GetConnectionUnixProcessID", "s", ":1.999").error(),
              "org.freedesktop.DBus.Error.NameHasNoOwner: Could not get PID of name ':1.999': no such name");
}

TEST(Driver, GetAdtAuditSessionDataIsUnknownOffSolaris) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(call_bus(client, "GetAdtAuditSessionData", "s", client.unique_name().c_str()).error(),
              "org.freedesktop.DBus.Error.AdtAuditDataUnknown: Could not determine audit session data for '" +
                  client.unique_name() + "'");
    EXPECT_EQ(
        call_bus(client, "GetAdtAuditSessionData", "s", ":1.999").error(),
        "org.freedesktop.DBus.Error.NameHasNoOwner: Could not get audit session data of name ':1.999': no "
        "such name");
}

TEST(Driver, GetConnectionSELinuxSecurityContextIsUnknownWithoutSELinux) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(
        call_bus(client, "GetConnectionSELinuxSecurityContext", "s", client.unique_name().c_str()).error(),
        "org.freedesktop.DBus.Error.SELinuxSecurityContextUnknown: Could not determine security context for "
        "'" +
            client.unique_name() + "'");
    EXPECT_EQ(
        call_bus(client, "GetConnectionSELinuxSecurityContext", "s", ":1.999").error(),
        "org.freedesktop.DBus.Error.NameHasNoOwner: Could not get security context of name ':1.999': no such "
        "name");
}

TEST(Driver, GetConnectionCredentialsHasUidPidAndGroups) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply reply = call_bus(client, "GetConnectionCredentials", "s", client.unique_name().c_str());
    ASSERT_TRUE(reply.ok()) << reply.error();
    const auto credentials = read_dictionary(reply);
    EXPECT_EQ(credentials.at("UnixUserID"), std::to_string(getuid()));
    EXPECT_EQ(credentials.at("ProcessID"), std::to_string(getpid()));
    EXPECT_EQ(credentials.count("UnixGroupIDs"), 1u);
    EXPECT_EQ(call_bus(client, "GetConnectionCredentials", "s", ":1.999").error(),
              "org.freedesktop.DBus.Error.NameHasNoOwner: Could not get credentials of name ':1.999': no "
              "such name");
}

TEST(Driver, AddMatchAcceptsRulesAndRefusesMalformedOnes) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(add_match(client, "type='signal',interface='org.example.I'"), "");
    EXPECT_EQ(call_bus(client, "AddMatch", "s", "type='nonsense'").error(),
              "org.freedesktop.DBus.Error.MatchRuleInvalid: Invalid message type (nonsense) in match rule\n");
    EXPECT_EQ(call_bus(client, "AddMatch", "s", "member='M',member='N'").error(),
              "org.freedesktop.DBus.Error.MatchRuleInvalid: Key member specified twice in match rule\n");
    EXPECT_EQ(call_bus(client, "AddMatch", "s", "bogus='x'").error(),
              "org.freedesktop.DBus.Error.MatchRuleInvalid: Unknown key \"bogus\" in match rule");
}

TEST(Driver, RemoveMatchRemovesOneEqualRule) {
    RunningBus bus;
    BusClient client(bus.address());
    ASSERT_EQ(add_match(client, "type='signal',member='A'"), "");
    EXPECT_EQ(call_bus(client, "RemoveMatch", "s", "member='A',type='signal'").error(), "");
    EXPECT_EQ(call_bus(client, "RemoveMatch", "s", "member='A',type='signal'").error(),
              "org.freedesktop.DBus.Error.MatchRuleNotFound: The given match rule wasn't found and can't be "
              "removed");
}

TEST(Driver, GetIdIsAHexUuidThatStaysTheSame) {
    // dbus-daemon's id is not the guid of its address (busgate's is); no client may rely on either.
    RunningBus bus;
    BusClient client(bus.address());
    BusClient other(bus.address());
    Reply reply = call_bus(client, "GetId", "");
    const std::string id = read_string(reply);
    EXPECT_TRUE(is_hex(id, 32)) << id;
    Reply again = call_bus(other, "GetId", "");
    EXPECT_EQ(read_string(again), id);
}

TEST(Driver, BecomeMonitorTurnsAConnectionIntoAMonitor) {
    RunningBus bus;
    BusClient monitor(bus.address());
    BusClient emitter(bus.address());
    sd_bus_message* call = nullptr;
    ASSERT_GE(sd_bus_message_new_method_call(monitor.bus, &call, bus_name, bus_path,
                                             "org.freedesktop.DBus.Monitoring", "BecomeMonitor"),
              0);
    sd_bus_message_append_strv(call, nullptr);
    sd_bus_message_append(call, "u", 0u);
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply_message = nullptr;
    const int result = sd_bus_call(monitor.bus, call, 0, &error, &reply_message);
    sd_bus_message_unref(call);
    Reply reply = take_reply(result, error, reply_message);
    ASSERT_TRUE(reply.ok()) << reply.error();
    // A monitor sees every message, without a match rule.
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/org/example", "org.example.I", "Seen", "s", "by the monitor"),
              0);
    sd_bus_flush(emitter.bus);
    EXPECT_EQ(next_signal(monitor), "Seen:by the monitor");
    // It no longer holds its unique name.
    EXPECT_EQ(call_string(emitter, "GetNameOwner", monitor.unique_name().c_str()),
              "error:org.freedesktop.DBus.Error.NameHasNoOwner");
}

TEST(Driver, ReloadConfigSucceeds) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply reply = call_bus(client, "ReloadConfig", "");
    EXPECT_TRUE(reply.ok()) << reply.error();
}

TEST(Driver, PropertiesGetAndGetAllTheFeaturesAndInterfaces) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply interfaces = call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Properties", "Get", "ss",
                                   bus_name, "Interfaces");
    ASSERT_TRUE(interfaces.ok()) << interfaces.error();
    ASSERT_GE(sd_bus_message_enter_container(interfaces.message, 'v', "as"), 0);
    const std::vector<std::string> names = read_strings(interfaces);
    EXPECT_TRUE(contains(names, "org.freedesktop.DBus.Monitoring")) << ::testing::PrintToString(names);
    Reply all =
        call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Properties", "GetAll", "s", bus_name);
    const auto properties = read_dictionary(all);
    EXPECT_EQ(properties.count("Features"), 1u);
    EXPECT_EQ(properties.count("Interfaces"), 1u);
    EXPECT_NE(properties.at("Features").find("HeaderFiltering"), std::string::npos)
        << properties.at("Features");
}

TEST(Driver, PropertiesRefuseUnknownPropertiesAndInterfaces) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(
        call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Properties", "Get", "ss", bus_name,
                    "NoSuch")
            .error(),
        "org.freedesktop.DBus.Error.UnknownProperty: Property \"org.freedesktop.DBus.NoSuch\" not found");
    EXPECT_EQ(call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Properties", "Get", "ss",
                          "org.example.NoSuch", "Features")
                  .error(),
              "org.freedesktop.DBus.Error.UnknownInterface: Interface \"org.example.NoSuch\" not found");
}

TEST(Driver, PropertiesSetRefusesWithDbusDaemonsText) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Properties", "Set", "ssv",
                          bus_name, "Features", "s", "x")
                  .error(),
              "org.freedesktop.DBus.Error.PropertyReadOnly: Property 'org.freedesktop.DBus.Features' cannot "
              "be set");
}

TEST(Driver, IntrospectDescribesTheDriverInterfaces) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply reply =
        call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Introspectable", "Introspect", "");
    const std::string xml = read_string(reply);
    EXPECT_NE(xml.find("<interface name=\"org.freedesktop.DBus\">"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<method name=\"RequestName\">"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<interface name=\"org.freedesktop.DBus.Introspectable\">"), std::string::npos) << xml;
    Reply root = call_method(client, bus_name, "/", "org.freedesktop.DBus.Introspectable", "Introspect", "");
    EXPECT_NE(read_string(root).find("<node name=\"org/freedesktop/DBus\"/>"), std::string::npos);
}

TEST(Driver, PeerPingAndGetMachineId) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply ping = call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Peer", "Ping", "");
    EXPECT_TRUE(ping.ok()) << ping.error();
    Reply machine = call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Peer", "GetMachineId", "");
    const std::string id = read_string(machine);
    EXPECT_TRUE(is_hex(id, 32)) << id;
    EXPECT_EQ(
        call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Peer", "NoSuch", "").error(),
        "org.freedesktop.DBus.Error.UnknownMethod: org.freedesktop.DBus does not understand message NoSuch");
}

TEST(Driver, UnknownMethodsInterfacesAndWrongSignatures) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(
        call_bus(client, "NoSuch", "").error(),
        "org.freedesktop.DBus.Error.UnknownMethod: org.freedesktop.DBus does not understand message NoSuch");
    EXPECT_EQ(
        call_method(client, bus_name, bus_path, "org.example.NoSuch", "M", "").error(),
        "org.freedesktop.DBus.Error.UnknownInterface: org.freedesktop.DBus does not understand message M");
    EXPECT_EQ(
        call_bus(client, "GetNameOwner", "u", 5u).error(),
        "org.freedesktop.DBus.Error.InvalidArgs: Call to GetNameOwner has wrong args (u, expected s)\n");
}

TEST(Driver, DebugStatsAnswersAtTheCanonicalPath) {
    RunningBus bus;
    BusClient client(bus.address());
    Reply stats = call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Debug.Stats", "GetStats", "");
    ASSERT_TRUE(stats.ok()) << stats.error();
    const auto entries = read_dictionary(stats);
    EXPECT_EQ(entries.count("Serial"), 1u);
    EXPECT_EQ(entries.count("ActiveConnections"), 1u);
    Reply connection = call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Debug.Stats",
                                   "GetConnectionStats", "s", client.unique_name().c_str());
    ASSERT_TRUE(connection.ok()) << connection.error();
    EXPECT_EQ(read_dictionary(connection).at("UniqueName"), client.unique_name());
    ASSERT_EQ(add_match(client, "type='signal',member='M'"), "");
    Reply rules =
        call_method(client, bus_name, bus_path, "org.freedesktop.DBus.Debug.Stats", "GetAllMatchRules", "");
    EXPECT_TRUE(rules.ok()) << rules.error();
}

// A handler sends no error itself: it returns what went wrong, and the driver's one dispatch point sends
// that as the call's error, with the table's name and the handler's text.
TEST(Driver, AHandlersRefusalIsTheErrorItsCallerGets) {
    BUSGATE_SKIP_ON_REFERENCE("calls a handler of busgate's own org.busgate.Endpoints1 directly");
    // In process, without a socket or a client: StopListening's handler, for an endpoint nobody added.
    transport::EventLoop loop;
    BusDaemon daemon(loop, DaemonOptions{});
    const auto& methods = endpoints_interface_table.methods;
    const auto row = std::find_if(methods.begin(), methods.end(), [](const Driver::Method& method) {
        return method.member == "StopListening";
    });
    ASSERT_NE(row, methods.end());
    marshal::BodyWriter arguments;
    arguments.string("nothing");
    const std::vector<std::uint8_t> bytes = marshal::build_message({.path = bus_path,
                                                                    .interface = endpoints_interface_name,
                                                                    .member = "StopListening",
                                                                    .destination = bus_name},
                                                                   arguments);
    transport::IncomingMessage call;
    call.bytes.assign(bytes);
    const std::span<const std::uint8_t> message(call.bytes.data(), call.bytes.size());
    ASSERT_EQ(marshal::parse_message(message, call.header), marshal::Validity::valid);
    marshal::BodyReader reader(message, call.header);
    Peer caller;
    const Driver::Outcome refusal = row->handler(daemon.driver(), caller, call, reader);
    ASSERT_TRUE(refusal.has_value());
    EXPECT_EQ(*refusal, (Refusal{BusError::invalid_args, "No endpoint named \"nothing\""}));

    // Over the wire, the caller gets exactly that refusal as the error of its call.
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(call_method(client, bus_name, bus_path, endpoints_interface_name.data(), "StopListening", "s",
                          "nothing")
                  .error(),
              std::string(name_of(refusal->error)) + ": " + refusal->text);
}

// Activation's failures are named by the bus's one error table, in dbus-daemon's words (the spawner's
// tests in launch/test-bus-activation.cpp see them reach the callers).
TEST(Driver, ActivationErrorsHaveDbusDaemonsSpawnNames) {
    EXPECT_EQ(name_of(BusError::spawn_exec_failed), "org.freedesktop.DBus.Error.Spawn.ExecFailed");
    EXPECT_EQ(name_of(BusError::spawn_fork_failed), "org.freedesktop.DBus.Error.Spawn.ForkFailed");
    EXPECT_EQ(name_of(BusError::spawn_child_exited), "org.freedesktop.DBus.Error.Spawn.ChildExited");
    EXPECT_EQ(name_of(BusError::spawn_child_signaled), "org.freedesktop.DBus.Error.Spawn.ChildSignaled");
    EXPECT_EQ(name_of(BusError::spawn_file_invalid), "org.freedesktop.DBus.Error.Spawn.FileInvalid");
    EXPECT_EQ(name_of(BusError::spawn_failed_to_setup), "org.freedesktop.DBus.Error.Spawn.FailedToSetup");
    EXPECT_EQ(name_of(BusError::spawn_config_invalid), "org.freedesktop.DBus.Error.Spawn.ConfigInvalid");
    EXPECT_EQ(name_of(BusError::spawn_service_not_valid), "org.freedesktop.DBus.Error.Spawn.ServiceNotValid");
    EXPECT_EQ(name_of(BusError::spawn_service_not_found), "org.freedesktop.DBus.Error.Spawn.ServiceNotFound");
    EXPECT_EQ(name_of(BusError::spawn_permissions_invalid),
              "org.freedesktop.DBus.Error.Spawn.PermissionsInvalid");
    EXPECT_EQ(name_of(BusError::timed_out), "org.freedesktop.DBus.Error.TimedOut");
}

TEST(Driver, TheConnectionsPerUserLimitCountsWhoIsConnectedNow) {
    // Busgate keeps a count per uid instead of walking every connection at each Hello; the count must
    // follow connections leaving, and a monitor still counts (dbus-daemon counts completed connections).
    RunningBus bus([](DaemonOptions& options, const auto&) { options.max_connections_per_user = 3; },
                   std::string(session_policy) + "<limit name=\"max_connections_per_user\">3</limit>");
    // The unique name Hello gave, or the error's name.
    const auto hello = [&bus](std::optional<BusClient>& client) {
        client.emplace(bus.address(), false);
        Reply reply = call_bus(*client, "Hello", "");
        return reply.ok() ? read_string(reply) : reply.error_name;
    };
    const std::string limited = "org.freedesktop.DBus.Error.LimitsExceeded";
    std::optional<BusClient> first, second, third, fourth;
    ASSERT_EQ(hello(first).front(), ':');
    const std::string second_name = hello(second);
    ASSERT_EQ(second_name.front(), ':');
    ASSERT_EQ(hello(third).front(), ':');
    EXPECT_EQ(hello(fourth), limited);

    second.reset();
    ASSERT_TRUE(eventually([&] {
        return call_string(*first, "GetNameOwner", second_name.c_str()) ==
               "error:org.freedesktop.DBus.Error.NameHasNoOwner";
    }));
    std::optional<BusClient> replacement;
    EXPECT_EQ(hello(replacement).front(), ':') << "the connection that left still counted";

    Reply became = call_method(*first, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus.Monitoring", "BecomeMonitor", "asu", 0, 0u);
    ASSERT_TRUE(became.ok()) << became.error();
    std::optional<BusClient> fifth;
    EXPECT_EQ(hello(fifth), limited) << "a monitor is still a connection";
}
