// BusState's byte format: what one version writes the next reads, and a cut, damaged or too new state is
// refused with where and why, before anything would act on it.
#include <gtest/gtest.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bus/match_rule.h"
#include "bus/state.h"
#include "bus/test_harness.h"
#include "bus/unique_name.h"
#include "busgate/marshal/writer.h"
#include "core/siphash.h"

namespace busgate::bus {
namespace {

// The state the golden fixture holds: every field of format 1 with a value that is not its default.
BusState sample() {
    BusState state;
    state.guid = "0123456789abcdef0123456789abcdef";
    state.next_connection_id = 42;
    state.connections.push_back({.id = 3,
                                 .uid = 1000,
                                 .gid = 1000,
                                 .pid = 4242,
                                 .groups = {4, 24, 27},
                                 .security_label = "unconfined",
                                 .authorized_uid = 1000,
                                 .anonymous = false,
                                 .unix_fds = true,
                                 .endpoint = {},
                                 .listener_address = "unix:path=/run/user/1000/bus",
                                 .match_rules = {"type='signal',interface='org.example.A'",
                                                 "type='signal',sender='org.freedesktop.DBus',"
                                                 "member='NameOwnerChanged',arg0='org.example.B'"},
                                 .unread_input = {'l', 1, 0, 1, 4, 0},
                                 .unwritten_output = {'l', 4, 1, 1, 0, 0, 0, 0}});
    state.connections.push_back({.id = 7,
                                 .uid = std::nullopt,
                                 .gid = std::nullopt,
                                 .pid = 0,
                                 .groups = {},
                                 .security_label = {},
                                 .authorized_uid = std::nullopt,
                                 .anonymous = true,
                                 .unix_fds = false,
                                 .endpoint = "org.example.Sandbox",
                                 .listener_address = "unix:path=/run/busgate/sandbox",
                                 .match_rules = {}});
    state.names.push_back({.name = "org.example.Queued",
                           .owners = {{.id = 7, .flags = 6}, {.id = 3, .flags = 4}}});
    state.names.push_back({.name = "org.example.Single", .owners = {{.id = 3, .flags = 0}}});
    state.pending_replies.push_back({.callee = 7, .caller = 3, .cookie = 12, .deadline = 987654321});
    return state;
}

std::vector<std::uint8_t> read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void put32(std::vector<std::uint8_t>& bytes, std::size_t at, std::uint32_t value) {
    for (std::size_t i = 0; i < 4; ++i) {
        bytes[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

// The length and the check made right again after a test changed the records, so that only the change
// itself can be what a decoder refuses.
void reseal(std::vector<std::uint8_t>& bytes) {
    ASSERT_GE(bytes.size(), 32u);
    bytes.erase(bytes.end() - 8, bytes.end());
    const std::uint64_t length = bytes.size() - 24;
    for (std::size_t i = 0; i < 8; ++i) {
        bytes[16 + i] = static_cast<std::uint8_t>(length >> (8 * i));
    }
    const std::uint64_t check = core::SipHash24::hash(
        {}, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    for (std::size_t i = 0; i < 8; ++i) {
        bytes.push_back(static_cast<std::uint8_t>(check >> (8 * i)));
    }
}

// A top-level record `tag` with one 4-byte field, placed before the check.
void append_record(std::vector<std::uint8_t>& bytes, std::uint16_t tag, std::uint16_t flags) {
    std::vector<std::uint8_t> record = {static_cast<std::uint8_t>(tag), static_cast<std::uint8_t>(tag >> 8),
                                        static_cast<std::uint8_t>(flags), static_cast<std::uint8_t>(flags >> 8),
                                        12, 0, 0, 0,
                                        1, 0, 0, 0, 4, 0, 0, 0, 9, 9, 9, 9};
    bytes.insert(bytes.end() - 8, record.begin(), record.end());
    reseal(bytes);
}

// What the driver says about the bus and about each of `clients`: the names, and every client's
// credentials (body only, without the pidfd's number, which differs from call to call).
std::string bus_as_seen_by(testing::BusClient& asking, std::vector<testing::BusClient*> clients) {
    std::string seen;
    testing::Reply names = testing::call_bus(asking, "ListNames", "");
    std::vector<std::string> listed = testing::read_strings(names);
    std::sort(listed.begin(), listed.end());
    for (const std::string& name : listed) {
        seen += name + "\n";
    }
    for (testing::BusClient* client : clients) {
        testing::Reply credentials =
            testing::call_bus(asking, "GetConnectionCredentials", "s", client->unique_name().c_str());
        char* text = nullptr;
        std::size_t length = 0;
        FILE* out = open_memstream(&text, &length);
        sd_bus_message_dump(credentials.message, out, SD_BUS_MESSAGE_DUMP_SUBTREE_ONLY);
        std::fclose(out);
        std::istringstream lines(std::string(text, length));
        std::free(text);
        for (std::string line; std::getline(lines, line);) {
            if (line.find("UNIX_FD") == std::string::npos) {
                seen += line + "\n";
            }
        }
    }
    return seen;
}

// How many signals of the driver (NameAcquired, NameOwnerChanged...) `client` is given within 200 ms.
int driver_signals(testing::BusClient& client) {
    int count = 0;
    while (testing::wait_for(
               client,
               [](sd_bus_message* m) {
                   const char* sender = sd_bus_message_get_sender(m);
                   const bool driver = sender != nullptr && std::string(sender) == "org.freedesktop.DBus" &&
                                       sd_bus_message_is_signal(m, nullptr, nullptr) > 0;
                   if (driver) {
                       sd_bus_message_unref(m);
                   }
                   return driver;
               },
               std::chrono::milliseconds(200)) != nullptr) {
        ++count;
    }
    return count;
}

TEST(BusState, WhatIsWrittenReadsBackEqual) {
    const BusState state = sample();
    const DecodedState decoded = decode_state(encode_state(state));
    ASSERT_TRUE(decoded.state) << decoded.error;
    EXPECT_EQ(*decoded.state, state);

    const BusState empty{.guid = "ffffffffffffffffffffffffffffffff"};
    const DecodedState none = decode_state(encode_state(empty));
    ASSERT_TRUE(none.state) << none.error;
    EXPECT_EQ(*none.state, empty);
}

// The fixture was written by format 1 (`BUSGATE_WRITE_STATE_FIXTURE=PATH` writes it again). Every later
// format must keep loading it: change the decoder, never the file.
TEST(BusState, TheFormatOneFixtureStillLoads) {
    if (const char* path = std::getenv("BUSGATE_WRITE_STATE_FIXTURE")) {
        const std::vector<std::uint8_t> bytes = encode_state(sample());
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                    static_cast<std::streamsize>(bytes.size()));
    }
    const std::vector<std::uint8_t> bytes = read_file(BUSGATE_STATE_FIXTURE);
    ASSERT_FALSE(bytes.empty()) << BUSGATE_STATE_FIXTURE;
    const DecodedState decoded = decode_state(bytes);
    ASSERT_TRUE(decoded.state) << decoded.error;
    EXPECT_EQ(*decoded.state, sample());
}

TEST(BusState, EveryCutIsRefusedAndSaysWhere) {
    const std::vector<std::uint8_t> bytes = encode_state(sample());
    for (std::size_t length = 0; length < bytes.size(); ++length) {
        const DecodedState decoded = decode_state(std::span(bytes).first(length));
        EXPECT_FALSE(decoded.state) << "cut at " << length;
        EXPECT_EQ(decoded.error.rfind("state: ", 0), 0u) << decoded.error;
    }
    EXPECT_EQ(decode_state(std::span(bytes).first(100)).error,
              "state: at byte 16: the header says " + std::to_string(bytes.size() - 32) +
                  " bytes of records, the file has 68 (cut short, or something appended)");
}

TEST(BusState, EveryDamagedByteIsRefused) {
    const std::vector<std::uint8_t> original = encode_state(sample());
    for (std::size_t at = 0; at < original.size(); ++at) {
        std::vector<std::uint8_t> bytes = original;
        bytes[at] ^= 0x20;
        EXPECT_FALSE(decode_state(bytes).state) << "byte " << at;
    }
    std::vector<std::uint8_t> bytes = original;
    bytes[40] ^= 1;
    EXPECT_EQ(decode_state(bytes).error, "state: at byte " + std::to_string(bytes.size() - 8) +
                                             ": the check does not match: the state is damaged");
}

TEST(BusState, ARecordOfALaterFormatIsSkippedOnlyWhenItsWriterAllows) {
    std::vector<std::uint8_t> skippable = encode_state(sample());
    append_record(skippable, 999, 1);
    const DecodedState skipped = decode_state(skippable);
    ASSERT_TRUE(skipped.state) << skipped.error;
    EXPECT_EQ(*skipped.state, sample());

    std::vector<std::uint8_t> required = encode_state(sample());
    append_record(required, 999, 0);
    const DecodedState refused = decode_state(required);
    EXPECT_FALSE(refused.state);
    EXPECT_EQ(refused.error, "state: at byte " + std::to_string(required.size() - 28) +
                                 " (in state): record 999 is not known to this busgate and its writer did "
                                 "not let it be skipped");
}

TEST(BusState, AFormatThatNeedsANewerReaderIsRefusedBeforeItsRecordsAreRead) {
    std::vector<std::uint8_t> bytes = encode_state(sample());
    put32(bytes, 8, 3);   // written by format 3 ...
    put32(bytes, 12, 2);  // ... for readers of format 2 and later
    reseal(bytes);
    EXPECT_EQ(decode_state(bytes).error,
              "state: at byte 8: format 3 needs a reader of format 2 or later; this busgate reads up to "
              "format 1");

    put32(bytes, 12, 1);  // format 3 that format 1 may read: its new records are skippable
    reseal(bytes);
    EXPECT_TRUE(decode_state(bytes).state) << decode_state(bytes).error;
}

TEST(BusState, RecordsThatDoNotHoldTogetherAreRefused) {
    BusState unknown_owner = sample();
    unknown_owner.names[0].owners.push_back({.id = 9, .flags = core::name_flag::queue});
    EXPECT_EQ(decode_state(encode_state(unknown_owner)).error,
              "state (in name): name org.example.Queued is held by connection 9, which the state does not "
              "have or lists twice");

    BusState twice = sample();
    twice.connections.push_back(twice.connections[0]);
    EXPECT_EQ(decode_state(encode_state(twice)).error, "state (in connection): connection 3 twice");

    BusState reused = sample();
    reused.next_connection_id = 7;
    EXPECT_FALSE(decode_state(encode_state(reused)).state);

    BusState bad_rule = sample();
    bad_rule.connections[1].match_rules.push_back("type='nonsense'");
    EXPECT_NE(decode_state(encode_state(bad_rule)).error.find("a match rule that does not parse"),
              std::string::npos);

    BusState lost_callee = sample();
    lost_callee.pending_replies.push_back({.callee = 8, .caller = 3, .cookie = 13, .deadline = 0});
    EXPECT_EQ(decode_state(encode_state(lost_callee)).error,
              "state (in pending reply): a call from connection 3 to 8, which the state does not both have");

    BusState internal = sample();
    internal.next_connection_id = core::first_internal_connection_id;
    EXPECT_EQ(decode_state(encode_state(internal)).error,
              "state (in bus): the next connection id, 4611686018427387904, is not one a client can be given");

    BusState unqueued_waiter = sample();
    unqueued_waiter.names[0].owners[1].flags = 0;  // a waiter that never asked to queue
    EXPECT_NE(decode_state(encode_state(unqueued_waiter)).error.find("which no owner in that place can have"),
              std::string::npos);
    BusState replacing = sample();
    replacing.names[0].owners[0].flags = core::name_flag::replace_existing;  // not a flag an owner keeps
    EXPECT_FALSE(decode_state(encode_state(replacing)).state);
    BusState drivers_name = sample();
    drivers_name.names[0].name = "org.freedesktop.DBus";
    EXPECT_NE(decode_state(encode_state(drivers_name)).error.find("a name that no client can own"),
              std::string::npos);
    BusState call_twice = sample();
    call_twice.pending_replies.push_back(call_twice.pending_replies[0]);
    EXPECT_EQ(decode_state(encode_state(call_twice)).error,
              "state (in pending reply): the call 12 from connection 3 twice");

    BusState bad_guid = sample();
    bad_guid.guid = "not-a-guid";
    EXPECT_EQ(decode_state(encode_state(bad_guid)).error,
              "state: at byte 24 (in bus): the GUID is not 32 hex digits");
}

// What a running bus would hand over: its connections with their credentials and rules in order, and the
// owner queue of a name in order; the bytes it becomes read back as the same state.
TEST(BusState, ARunningBusIsCapturedWithItsQueuesAndRulesInOrder) {
    BUSGATE_SKIP_ON_REFERENCE("the state is busgate's");
    testing::RunningBus bus;
    testing::BusClient first(bus.address());
    testing::BusClient second(bus.address());
    // Rules print longer than they were sent (every value quoted, an apostrophe as '\''): one at the
    // length limit, one with apostrophes, and an eavesdropping one.
    const std::vector<std::string> rules = {"type='signal',interface='org.example.A'",
                                            "type='signal',member='Changed',arg0='x'",
                                            "arg0=" + std::string(1019, 'a'),
                                            "arg1=\\'\\'\\'it\\'s",
                                            "eavesdrop=true,type='method_call',interface='org.example.Overheard'"};
    for (const std::string& rule : rules) {
        EXPECT_TRUE(testing::call_bus(first, "AddMatch", "s", rule.c_str()).ok()) << rule;
    }
    EXPECT_TRUE(testing::call_bus(second, "RequestName", "su", "org.example.Queued", 0u).ok());
    testing::Reply requested = testing::call_bus(first, "RequestName", "su", "org.example.Queued", 0u);
    EXPECT_TRUE(requested.ok()) << requested.error();

    BusState state;
    bus.paused([&](BusDaemon& daemon) {
        std::string error;
        state = capture_state(daemon, error).value_or(BusState{});
        EXPECT_EQ(error, "");
    });
    const auto first_id = connection_id_of(first.unique_name());
    const auto second_id = connection_id_of(second.unique_name());
    ASSERT_TRUE(first_id && second_id);
    ASSERT_EQ(state.connections.size(), 2u);
    EXPECT_EQ(state.connections[0].id, *first_id);
    EXPECT_EQ(state.connections[1].id, *second_id);
    EXPECT_EQ(state.connections[0].uid, getuid());
    EXPECT_EQ(state.connections[0].pid, getpid());
    EXPECT_TRUE(state.connections[0].unix_fds);
    std::vector<std::string> captured_rules;
    for (const std::string& rule : state.connections[0].match_rules) {
        captured_rules.push_back(rule);
    }
    ASSERT_EQ(captured_rules.size(), rules.size());
    EXPECT_GT(captured_rules[2].size(), max_match_rule_length);
    for (std::size_t i = 0; i < rules.size(); ++i) {
        EXPECT_EQ(parse_match_rule(captured_rules[i], max_printed_match_rule_length).rule,
                  parse_match_rule(rules[i]).rule)
            << i;
    }
    EXPECT_TRUE(state.connections[1].match_rules.empty());
    EXPECT_GT(state.next_connection_id, *second_id);
    ASSERT_EQ(state.names.size(), 1u);
    EXPECT_EQ(state.names[0].name, "org.example.Queued");
    ASSERT_EQ(state.names[0].owners.size(), 2u);
    EXPECT_EQ(state.names[0].owners[0].id, *second_id);
    EXPECT_EQ(state.names[0].owners[1].id, *first_id);

    const DecodedState decoded = decode_state(encode_state(state));
    ASSERT_TRUE(decoded.state) << decoded.error;
    EXPECT_EQ(*decoded.state, state);
}

// The handover itself, between two buses in one process: the second takes the first one's sockets and
// state, and its clients go on as if nothing happened: the same unique names and GUID, the same queue, a
// signal reaches the match rule added on the first bus, and the next client gets the next number.
TEST(BusState, AnotherBusTakesTheConnectionsOverAndTheClientsNoticeNothing) {
    BUSGATE_SKIP_ON_REFERENCE("the handover is busgate's");
    testing::RunningBus old_bus;
    testing::BusClient listener(old_bus.address());
    testing::BusClient owner(old_bus.address());
    testing::BusClient waiter(old_bus.address());
    ASSERT_TRUE(testing::call_bus(listener, "AddMatch", "s", "type='signal',interface='org.example.Tick'").ok());
    ASSERT_TRUE(testing::call_bus(owner, "RequestName", "su", "org.example.Name", 0u).ok());
    ASSERT_TRUE(testing::call_bus(waiter, "RequestName", "su", "org.example.Name", 0u).ok());
    testing::Reply id_before = testing::call_bus(listener, "GetId", "");
    const std::string guid = testing::read_string(id_before);
    EXPECT_GT(driver_signals(owner) + driver_signals(waiter), 0);  // NameAcquired, before the handover

    // A call the owner answers only after the handover: the new bus must still let its reply through.
    sd_bus_message* slow = nullptr;
    ASSERT_GE(sd_bus_message_new_method_call(listener.bus, &slow, "org.example.Name", "/org/example",
                                             "org.example.Slow", "Wait"),
              0);
    std::uint64_t slow_cookie = 0;
    ASSERT_GE(sd_bus_send(listener.bus, slow, &slow_cookie), 0);
    sd_bus_message_unref(slow);
    sd_bus_flush(listener.bus);

    // A client halfway through writing a signal when the bus changes hands ...
    util::UniqueFd half_writer = testing::raw_client(old_bus.address());
    ASSERT_TRUE(half_writer);
    marshal::BodyWriter split_body;
    split_body.string("split");
    const std::vector<std::uint8_t> split = marshal::build_message(
        {.type = marshal::MessageType::signal, .serial = 2, .path = "/org/example",
         .interface = "org.example.Tick", .member = "Half"},
        split_body);
    const std::size_t half = split.size() / 2;
    ASSERT_EQ(::write(half_writer.get(), split.data(), half), static_cast<ssize_t>(half));
    // ... and a 12 MiB call the bus has written only in part to a receiver that is not reading yet (more
    // than a socket holds, even with the bus's larger send buffer; less than a user's 16 MiB in flight).
    testing::BusClient receiver(old_bus.address());
    sd_bus_message* large = nullptr;
    ASSERT_GE(sd_bus_message_new_method_call(owner.bus, &large, receiver.unique_name().c_str(), "/org/example",
                                             "org.example.Large", "Take"),
              0);
    const std::vector<std::uint8_t> payload(12 << 20, 0x5a);
    sd_bus_message_append_array(large, 'y', payload.data(), payload.size());
    sd_bus_message_set_expect_reply(large, 0);
    ASSERT_GE(sd_bus_send(owner.bus, large, nullptr), 0);
    sd_bus_message_unref(large);
    sd_bus_flush(owner.bus);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::string seen_before = bus_as_seen_by(listener, {&listener, &owner, &waiter, &receiver});
    ASSERT_NE(seen_before.find("org.example.Name"), std::string::npos);

    BusState state;
    std::vector<util::UniqueFd> sockets;
    old_bus.halted([&](BusDaemon& daemon) {
        std::string error;
        state = capture_state(daemon, error).value_or(BusState{});
        EXPECT_EQ(error, "");
        for (const ConnectionState& connection : state.connections) {
            sockets.emplace_back(::dup(daemon.peers().find(connection.id)->connection->fd()));
        }
    });
    ASSERT_EQ(state.connections.size(), 5u);
    ASSERT_EQ(state.pending_replies.size(), 1u);
    EXPECT_EQ(state.pending_replies[0].cookie, slow_cookie);
    std::size_t unread = 0;
    std::size_t unwritten = 0;
    for (const ConnectionState& connection : state.connections) {
        unread += connection.unread_input.size();
        unwritten += connection.unwritten_output.size();
    }
    EXPECT_EQ(unread, half);
    EXPECT_GT(unwritten, 0u);
    // The bytes travel, not the structure.
    const DecodedState decoded = decode_state(encode_state(state));
    ASSERT_TRUE(decoded.state) << decoded.error;

    testing::RunningBus new_bus([&](DaemonOptions& options, const std::filesystem::path&) {
        options.guid = decoded.state->guid;
    });
    new_bus.paused([&](BusDaemon& daemon) {
        std::string error;
        EXPECT_TRUE(daemon.restore(*decoded.state, std::move(sockets), error)) << error;
    });

    EXPECT_EQ(bus_as_seen_by(listener, {&listener, &owner, &waiter, &receiver}), seen_before);
    testing::Reply id_after = testing::call_bus(listener, "GetId", "");
    EXPECT_EQ(testing::read_string(id_after), guid);
    testing::Reply queued = testing::call_bus(owner, "ListQueuedOwners", "s", "org.example.Name");
    EXPECT_EQ(testing::read_strings(queued), (std::vector<std::string>{owner.unique_name(), waiter.unique_name()}));
    testing::Reply owner_name = testing::call_bus(waiter, "GetNameOwner", "s", "org.example.Name");
    EXPECT_EQ(testing::read_string(owner_name), owner.unique_name());

    sd_bus_message* waiting = testing::wait_for(
        owner, [](sd_bus_message* m) { return sd_bus_message_is_method_call(m, "org.example.Slow", "Wait") > 0; });
    ASSERT_NE(waiting, nullptr);
    ASSERT_GE(sd_bus_reply_method_return(waiting, "s", "late"), 0);
    sd_bus_message_unref(waiting);
    sd_bus_message* late = testing::wait_for(listener, [&](sd_bus_message* m) {
        std::uint64_t answered = 0;
        return sd_bus_message_get_reply_cookie(m, &answered) >= 0 && answered == slow_cookie;
    });
    ASSERT_NE(late, nullptr);
    EXPECT_FALSE(sd_bus_message_is_method_error(late, nullptr));
    sd_bus_message_unref(late);

    ASSERT_GE(sd_bus_emit_signal(owner.bus, "/org/example", "org.example.Tick", "Tick", "s", "tick"), 0);
    sd_bus_flush(owner.bus);
    EXPECT_EQ(testing::next_signal(listener), "Tick:tick");

    ASSERT_EQ(::write(half_writer.get(), split.data() + half, split.size() - half),
              static_cast<ssize_t>(split.size() - half));
    EXPECT_EQ(testing::next_signal(listener), "Half:split");
    sd_bus_message* taken = testing::wait_for(
        receiver, [](sd_bus_message* m) { return sd_bus_message_is_method_call(m, "org.example.Large", "Take") > 0; });
    ASSERT_NE(taken, nullptr);
    const void* bytes = nullptr;
    std::size_t size = 0;
    ASSERT_GE(sd_bus_message_read_array(taken, 'y', &bytes, &size), 0);
    EXPECT_EQ(std::vector<std::uint8_t>(static_cast<const std::uint8_t*>(bytes),
                                        static_cast<const std::uint8_t*>(bytes) + size),
              payload);
    sd_bus_message_unref(taken);

    // Nothing changed that a client could hear: no NameAcquired, NameOwnerChanged or NameLost again.
    for (testing::BusClient* client : {&listener, &owner, &waiter, &receiver}) {
        EXPECT_EQ(driver_signals(*client), 0) << client->unique_name();
    }

    testing::BusClient newcomer(new_bus.address());
    EXPECT_EQ(newcomer.unique_name(), unique_name_of(state.next_connection_id));

    // And the refusal that leaves the old bus to go on: a state of another bus.
    testing::RunningBus other;
    other.paused([&](BusDaemon& daemon) {
        std::string error;
        EXPECT_FALSE(daemon.restore(*decoded.state, {}, error));
        EXPECT_NE(error.find("another bus"), std::string::npos) << error;
    });
}

// Format 1 carries no client that is authenticating or before Hello: the bus is not captured while one
// is there (the caller goes on serving and tries again), rather than dropped at the handover.
TEST(BusState, ABusIsNotCapturedWhileAClientWouldBeLeftBehind) {
    BUSGATE_SKIP_ON_REFERENCE("the state is busgate's");
    testing::RunningBus bus;
    testing::BusClient ready(bus.address());
    testing::BusClient before_hello(bus.address(), false);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the bus has it by then
    bus.paused([&](BusDaemon& daemon) {
        std::string error;
        EXPECT_FALSE(capture_state(daemon, error));
        EXPECT_EQ(error, "a client is still authenticating or has not said Hello yet");
    });
}

}  // namespace
}  // namespace busgate::bus
