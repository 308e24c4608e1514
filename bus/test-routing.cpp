// Routing and delivery, over the wire to a bus in process: unicasts by unique and well-known name,
// missing destinations, broadcasts and match rules, reply tracking, eavesdroppers and monitors. Checked
// against dbus-daemon 1.14 with BUSGATE_TEST_REFERENCE_DAEMON=/usr/bin/dbus-daemon.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "bus/test_harness.h"
#include "busgate/marshal/writer.h"
#include "busgate/util/unique_fd.h"

using namespace busgate;
using namespace busgate::bus;
using namespace busgate::bus::testing;

namespace {

// Replies to org.example.Echo.Echo(s) with the same string.
void echo(sd_bus_message* call) {
    if (sd_bus_message_is_method_call(call, "org.example.Echo", "Echo")) {
        const char* text = nullptr;
        sd_bus_message_read(call, "s", &text);
        sd_bus_reply_method_return(call, "s", text);
    }
}

Reply call_echo(BusClient& client, const char* destination, const char* text) {
    return call_method(client, destination, "/org/example", "org.example.Echo", "Echo", "s", text);
}

bool become_monitor(BusClient& client, const char* rule) {
    sd_bus_message* call = nullptr;
    sd_bus_message_new_method_call(client.bus, &call, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                   "org.freedesktop.DBus.Monitoring", "BecomeMonitor");
    const char* rules[] = {rule, nullptr};
    sd_bus_message_append_strv(call, const_cast<char**>(rule ? rules : rules + 1));
    sd_bus_message_append(call, "u", 0u);
    sd_bus_error error = SD_BUS_ERROR_NULL;
    const int result = sd_bus_call(client.bus, call, 0, &error, nullptr);
    sd_bus_message_unref(call);
    sd_bus_error_free(&error);
    return result >= 0;
}

// Whether `client` is given a method call of `member` within `timeout`.
bool sees_call(BusClient& client, const char* member,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(500)) {
    sd_bus_message* message = wait_for(
        client,
        [&](sd_bus_message* candidate) { return sd_bus_message_is_method_call(candidate, nullptr, member); },
        timeout);
    sd_bus_message_unref(message);
    return message != nullptr;
}

}  // namespace

TEST(Routing, WhatAClientSentBeforeGarbageIsDeliveredBeforeItIsCutOff) {
    // dbus-daemon dispatches the messages it read before the one that made it close the connection; the
    // receive policy (every bus has one) still knows their sender then.
    RunningBus bus;
    BusClient listener(bus.address());
    ASSERT_EQ(add_match(listener, "type='signal',interface='org.example.Garbage'"), "");
    util::UniqueFd sender = raw_client(bus.address());
    ASSERT_TRUE(sender);
    marshal::BodyWriter body;
    body.string("intact");
    std::vector<std::uint8_t> bytes = marshal::build_message({.type = marshal::MessageType::signal,
                                                              .serial = 2,
                                                              .path = "/org/example",
                                                              .interface = "org.example.Garbage",
                                                              .member = "Before"},
                                                             body);
    const std::uint8_t garbage[16] = {'X', 1, 0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0};  // no byte order
    bytes.insert(bytes.end(), std::begin(garbage), std::end(garbage));
    ASSERT_EQ(::write(sender.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    EXPECT_EQ(next_signal(listener), "Before:intact");
}

TEST(Routing, AUnicastToAUniqueNameReachesItAndTheReplyComesBack) {
    RunningBus bus;
    BusClient service(bus.address());
    const std::string service_name = service.unique_name();
    Server server(service, echo);
    BusClient client(bus.address());
    Reply reply = call_echo(client, service_name.c_str(), "by unique name");
    ASSERT_TRUE(reply.ok()) << reply.error();
    EXPECT_EQ(read_string(reply), "by unique name");
    EXPECT_EQ(std::string(sd_bus_message_get_sender(reply.message)), service_name);
}

TEST(Routing, AUnicastToAWellKnownNameReachesItsPrimaryOwner) {
    RunningBus bus;
    BusClient service(bus.address());
    const std::string service_name = service.unique_name();
    ASSERT_GE(sd_bus_request_name(service.bus, "org.example.Echo", 0), 0);
    Server server(service, echo);
    BusClient client(bus.address());
    Reply reply = call_echo(client, "org.example.Echo", "by well-known name");
    ASSERT_TRUE(reply.ok()) << reply.error();
    EXPECT_EQ(read_string(reply), "by well-known name");
    // The reply comes from the owner's unique name.
    EXPECT_EQ(std::string(sd_bus_message_get_sender(reply.message)), service_name);
}

TEST(Routing, AMissingWellKnownNameIsServiceUnknown) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(
        call_echo(client, "org.example.Nobody", "x").error(),
        "org.freedesktop.DBus.Error.ServiceUnknown: The name org.example.Nobody was not provided by any "
        ".service files");
}

TEST(Routing, AMissingUniqueNameIsServiceUnknownToo) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(
        call_echo(client, ":1.999", "x").error(),
        "org.freedesktop.DBus.Error.ServiceUnknown: The name :1.999 was not provided by any .service files");
}

TEST(Routing, BroadcastsReachMatchingRulesOnly) {
    RunningBus bus;
    BusClient emitter(bus.address());
    BusClient wanting(bus.address());
    BusClient other(bus.address());
    ASSERT_EQ(add_match(wanting, "type='signal',interface='org.example.I',member='Wanted'"), "");
    ASSERT_EQ(add_match(other, "type='signal',interface='org.example.I',member='Other'"), "");
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/org/example", "org.example.I", "Unwanted", "s", "no"), 0);
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/org/example", "org.example.I", "Wanted", "s", "yes"), 0);
    sd_bus_flush(emitter.bus);
    EXPECT_EQ(next_signal(wanting), "Wanted:yes");
    EXPECT_EQ(next_signal(other, std::chrono::milliseconds(300)), "");
}

TEST(Routing, ABroadcastReachesItsSenderWhenItsOwnRuleMatches) {
    RunningBus bus;
    BusClient emitter(bus.address());
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/org/example", "org.example.I", "Before", "s", "unheard"), 0);
    sd_bus_flush(emitter.bus);
    ASSERT_EQ(add_match(emitter, "type='signal',interface='org.example.I',member='Loop'"), "");
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/org/example", "org.example.I", "Loop", "s", "back"), 0);
    sd_bus_flush(emitter.bus);
    EXPECT_EQ(next_signal(emitter), "Loop:back");
}

TEST(Routing, ARuleWithSenderMatchesOnlyThatSender) {
    RunningBus bus;
    BusClient first(bus.address());
    BusClient second(bus.address());
    BusClient subscriber(bus.address());
    ASSERT_GE(sd_bus_request_name(second.bus, "org.example.Second", 0), 0);
    ASSERT_EQ(add_match(subscriber, "type='signal',sender='org.example.Second'"), "");
    ASSERT_GE(sd_bus_emit_signal(first.bus, "/", "org.example.I", "FromFirst", "s", "no"), 0);
    sd_bus_flush(first.bus);
    ASSERT_GE(sd_bus_emit_signal(second.bus, "/", "org.example.I", "FromSecond", "s", "yes"), 0);
    sd_bus_flush(second.bus);
    EXPECT_EQ(next_signal(subscriber), "FromSecond:yes");
}

// system.conf's rules: replies only when requested.
constexpr const char* system_policy =
    "<policy context=\"default\"><allow own=\"*\"/><allow send_type=\"method_call\"/>"
    "<allow send_type=\"signal\"/><allow send_requested_reply=\"true\" send_type=\"method_return\"/>"
    "<allow send_requested_reply=\"true\" send_type=\"error\"/><allow receive_type=\"method_call\"/>"
    "<allow receive_type=\"method_return\"/><allow receive_type=\"error\"/><allow receive_type=\"signal\"/>"
    "</policy>";

TEST(Routing, AReplyNobodyAskedForIsRefused) {
    RunningBus bus({}, system_policy);
    BusClient sender(bus.address());
    BusClient target(bus.address());
    // A method return that answers a call `target` never made: an invented call from it, answered.
    sd_bus_message* invented = nullptr;
    ASSERT_GE(sd_bus_message_new_method_call(sender.bus, &invented, sender.unique_name().c_str(), "/",
                                             "org.example.I", "Never"),
              0);
    ASSERT_GE(sd_bus_message_set_sender(invented, target.unique_name().c_str()), 0);
    ASSERT_GE(sd_bus_message_seal(invented, 4242, 0), 0);
    sd_bus_message* reply = nullptr;
    ASSERT_GE(sd_bus_message_new_method_return(invented, &reply), 0);
    sd_bus_message_unref(invented);
    std::uint64_t cookie = 0;
    ASSERT_GE(sd_bus_send(sender.bus, reply, &cookie), 0);
    sd_bus_message_unref(reply);
    sd_bus_message* refusal = wait_for(sender, [&](sd_bus_message* candidate) {
        std::uint64_t replied = 0;
        return sd_bus_message_is_method_error(candidate, nullptr) &&
               sd_bus_message_get_reply_cookie(candidate, &replied) >= 0 && replied == cookie;
    });
    ASSERT_NE(refusal, nullptr) << "no error for the unrequested reply";
    const sd_bus_error* error = sd_bus_message_get_error(refusal);
    EXPECT_STREQ(error->name, "org.freedesktop.DBus.Error.AccessDenied");
    EXPECT_TRUE(std::string(error->message).starts_with("Rejected send message")) << error->message;
    sd_bus_message_unref(refusal);
    // And it never reached the target.
    sd_bus_message* leaked = wait_for(
        target,
        [](sd_bus_message* candidate) {
            std::uint8_t type = 0;
            sd_bus_message_get_type(candidate, &type);
            return type == SD_BUS_MESSAGE_METHOD_RETURN;
        },
        std::chrono::milliseconds(300));
    EXPECT_EQ(leaked, nullptr);
    sd_bus_message_unref(leaked);
}

TEST(Routing, ACalleeThatLeavesWithoutReplyingGivesNoReply) {
    RunningBus bus;
    BusClient client(bus.address());
    std::string callee_name;
    std::atomic<bool> called{false};
    auto callee = std::make_unique<BusClient>(bus.address());
    callee_name = callee->unique_name();
    std::thread leaver([&] {
        // Takes the call, then disconnects without answering.
        sd_bus_message* call = wait_for(*callee, [](sd_bus_message* candidate) {
            return sd_bus_message_is_method_call(candidate, "org.example.I", "Abandoned");
        });
        called = call != nullptr;
        sd_bus_message_unref(call);
        callee.reset();
    });
    Reply reply = call_method(client, callee_name.c_str(), "/", "org.example.I", "Abandoned", "");
    leaver.join();
    EXPECT_TRUE(called);
    EXPECT_EQ(reply.error(),
              "org.freedesktop.DBus.Error.NoReply: Message recipient disconnected from message bus without "
              "replying");
}

TEST(Routing, EavesdroppersGetCopiesOfUnicastsOthersDoNot) {
    RunningBus bus;
    BusClient service(bus.address());
    const std::string service_name = service.unique_name();
    BusClient eavesdropper(bus.address());
    BusClient bystander(bus.address());
    ASSERT_EQ(add_match(eavesdropper, "type='method_call',member='Secret',eavesdrop='true'"), "");
    ASSERT_EQ(add_match(bystander, "type='method_call',member='Secret'"), "");
    BusClient client(bus.address());
    ASSERT_GE(sd_bus_call_method_async(client.bus, nullptr, service_name.c_str(), "/", "org.example.I",
                                       "Secret", nullptr, nullptr, ""),
              0);
    sd_bus_flush(client.bus);
    EXPECT_TRUE(sees_call(service, "Secret"));
    EXPECT_TRUE(sees_call(eavesdropper, "Secret"));
    EXPECT_FALSE(sees_call(bystander, "Secret", std::chrono::milliseconds(300)));
}

TEST(Routing, MonitorsGetCopiesOfWhatTheirRulesMatch) {
    RunningBus bus;
    BusClient service(bus.address());
    const std::string service_name = service.unique_name();
    BusClient monitor(bus.address());
    ASSERT_TRUE(become_monitor(monitor, "type='method_call',member='Watched'"));
    BusClient client(bus.address());
    for (const char* member : {"Unwatched", "Watched"}) {
        ASSERT_GE(sd_bus_call_method_async(client.bus, nullptr, service_name.c_str(), "/", "org.example.I",
                                           member, nullptr, nullptr, ""),
                  0);
    }
    sd_bus_flush(client.bus);
    sd_bus_message* copy = wait_for(monitor, [](sd_bus_message* candidate) {
        return sd_bus_message_is_method_call(candidate, nullptr, nullptr);
    });
    ASSERT_NE(copy, nullptr);
    EXPECT_STREQ(sd_bus_message_get_member(copy), "Watched");
    EXPECT_EQ(std::string(sd_bus_message_get_destination(copy)), service_name);
    EXPECT_EQ(std::string(sd_bus_message_get_sender(copy)), client.unique_name());
    sd_bus_message_unref(copy);
    // The callee still gets both.
    EXPECT_TRUE(sees_call(service, "Unwatched"));
    EXPECT_TRUE(sees_call(service, "Watched"));
}
