// The web interface's parts that need no sockets: the hand-off between threads, address and token checks,
// the OpenMetrics text, pcapng blocks and the dbus-json3 mapping of bodies.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "busgate/marshal/writer.h"
#include "web/dbus_json.h"
#include "web/metrics.h"
#include "web/pcapng.h"
#include "web/web_hub.h"
#include "web/web_server.h"

namespace busgate::web {
namespace {

namespace json = boost::json;

std::shared_ptr<const MonitorEvent> event_of(std::uint8_t byte) {
    auto event = std::make_shared<MonitorEvent>();
    event->bytes = {byte};
    return event;
}

TEST(MonitorSubscriber, DropsWhatOverflowsItsQueueAndCountsIt) {
    MonitorSubscriber subscriber(2);
    for (std::uint8_t i = 0; i < 5; ++i) {
        subscriber.push(event_of(i));
    }
    std::uint64_t dropped = 0;
    const auto events = subscriber.take(dropped);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0]->bytes[0], 0);
    EXPECT_EQ(events[1]->bytes[0], 1);
    EXPECT_EQ(dropped, 3u);
    subscriber.push(event_of(9));
    EXPECT_EQ(subscriber.take(dropped).size(), 1u);
    EXPECT_EQ(dropped, 0u);  // reported once
    EXPECT_EQ(subscriber.dropped_total(), 3u);
}

TEST(WebHub, PublishesOnlyWhileSomeoneSubscribesAndKeepsDepartedLosses) {
    WebHub hub;
    EXPECT_FALSE(hub.watching());
    auto subscriber = hub.subscribe(1);
    EXPECT_TRUE(hub.watching());
    const std::uint8_t bytes[] = {1, 2, 3};
    hub.routed(bytes);
    hub.routed(bytes);
    EXPECT_EQ(hub.dropped_total(), 1u);
    hub.unsubscribe(subscriber);
    EXPECT_FALSE(hub.watching());
    EXPECT_EQ(hub.dropped_total(), 1u);
}

TEST(WebHub, RunsPostedTasksWhenTheBusThreadDrainsIt) {
    WebHub hub;
    int ran = 0;
    hub.post_to_bus([&ran] { ++ran; });
    hub.post_to_bus([&ran] { ++ran; });
    EXPECT_EQ(ran, 0);
    hub.run_posted();
    EXPECT_EQ(ran, 2);
}

TEST(WebAddress, AcceptsUnixPathsAndLoopbackTcpOnly) {
    std::string error;
    const auto unix_address = parse_web_address("unix:path=/run/busgate-web", error);
    ASSERT_TRUE(unix_address);
    EXPECT_FALSE(unix_address->tcp);
    EXPECT_EQ(unix_address->path, "/run/busgate-web");
    const auto tcp_address = parse_web_address("tcp:host=127.0.0.1,port=8080", error);
    ASSERT_TRUE(tcp_address);
    EXPECT_EQ(tcp_address->port, 8080);
    EXPECT_TRUE(parse_web_address("tcp:host=::1,port=0", error));
    EXPECT_TRUE(parse_web_address("tcp:host=localhost,port=1", error));
    for (const char* refused :
         {"tcp:host=0.0.0.0,port=80", "tcp:host=192.168.1.2,port=80", "tcp:host=::,port=1",
          "tcp:host=example.org,port=1", "tcp:host=127.0.0.1,port=70000",
          "tcp:host=127.0.0.1,port=1,family=ipv4", "unix:abstract=x", "nonce-tcp:", "path"}) {
        EXPECT_FALSE(parse_web_address(refused, error)) << refused;
        EXPECT_FALSE(error.empty());
    }
}

TEST(TokenFile, OnlyItsOwnerMayReadIt) {
    const std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("busgate-token-" + std::to_string(::getpid()));
    std::ofstream(path) << "0123456789abcdef0123\n";
    std::string error;
    ::chmod(path.c_str(), 0600);
    EXPECT_EQ(read_token_file(path, ::geteuid(), error).value_or(""), "0123456789abcdef0123");
    ::chmod(path.c_str(), 0640);
    EXPECT_FALSE(read_token_file(path, ::geteuid(), error));
    ::chmod(path.c_str(), 0604);
    EXPECT_FALSE(read_token_file(path, ::geteuid(), error));
    ::chmod(path.c_str(), 0600);
    EXPECT_FALSE(read_token_file(path, ::geteuid() + 1, error));  // someone else's file
    std::ofstream(path) << "short\n";
    EXPECT_FALSE(read_token_file(path, ::geteuid(), error));
    std::filesystem::remove(path);
}

TEST(Metrics, OpenMetricsTextWithTotalsHistogramAndEof) {
    bus::BusSnapshot snapshot;
    snapshot.counters.messages[bus::BusCounters::signal] = 5;
    snapshot.counters.denials[bus::BusCounters::send_denied] = 2;
    snapshot.counters.latency[0] = 1;
    snapshot.counters.latency[3] = 2;
    snapshot.counters.latency_count = 3;
    snapshot.connections.push_back({.unique_name = ":1.1", .uid = 1000, .match_rules = {"type='signal'"}});
    snapshot.endpoints.push_back({"unix:path=/run/bus", 1});
    const std::string text = render_openmetrics(snapshot);
    EXPECT_TRUE(text.ends_with("\n# EOF\n"));
    EXPECT_NE(text.find("# TYPE busgate_messages_routed counter\n"), std::string::npos);
    EXPECT_NE(text.find("busgate_messages_routed_total{type=\"signal\"} 5\n"), std::string::npos);
    EXPECT_NE(text.find("busgate_policy_denials_total{reason=\"send_denied\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("busgate_connections_by_user{uid=\"1000\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("busgate_connections{endpoint=\"unix:path=/run/bus\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("busgate_match_rules 1\n"), std::string::npos);
    // Buckets are cumulative.
    EXPECT_NE(text.find("busgate_routing_latency_seconds_bucket{le=\"1e-06\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("busgate_routing_latency_seconds_bucket{le=\"1e-05\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("busgate_routing_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
}

TEST(Pcapng, HeaderNamesLinkType231AndPacketsArePadded) {
    const std::string header = pcapng_header();
    ASSERT_EQ(header.size(), 48u);
    EXPECT_EQ(header.substr(0, 4), std::string("\x0a\x0d\x0d\x0a", 4));
    EXPECT_EQ(static_cast<std::uint8_t>(header[28 + 8]), 231);  // IDB link type, little-endian
    const std::uint8_t message[] = {'l', 4, 1, 1, 0};
    const std::string packet = pcapng_packet(1'500'000'000'123'456'789, message);
    ASSERT_EQ(packet.size(), 32u + 8);
    EXPECT_EQ(packet[0], 6);
    EXPECT_EQ(static_cast<std::uint8_t>(packet[4]), 40);  // total length, at both ends
    EXPECT_EQ(static_cast<std::uint8_t>(packet[36]), 40);
    EXPECT_EQ(static_cast<std::uint8_t>(packet[20]), 5);  // captured length
    const std::uint64_t microseconds = (std::uint64_t{static_cast<std::uint8_t>(packet[12])} |
                                        std::uint64_t{static_cast<std::uint8_t>(packet[13])} << 8 |
                                        std::uint64_t{static_cast<std::uint8_t>(packet[14])} << 16 |
                                        std::uint64_t{static_cast<std::uint8_t>(packet[15])} << 24)
                                           << 32 |
                                       (std::uint64_t{static_cast<std::uint8_t>(packet[16])} |
                                        std::uint64_t{static_cast<std::uint8_t>(packet[17])} << 8 |
                                        std::uint64_t{static_cast<std::uint8_t>(packet[18])} << 16 |
                                        std::uint64_t{static_cast<std::uint8_t>(packet[19])} << 24);
    EXPECT_EQ(microseconds, 1'500'000'000'123'456u);
}

TEST(DbusJson, BodiesFollowCockpitsDbusJson3Mapping) {
    marshal::BodyWriter body;
    body.string("hello").int32(-4).boolean(true);
    body.open_array("{sv}");
    body.open_dict_entry().string("count").open_variant("u").uint32(3).close_variant().close_dict_entry();
    body.open_dict_entry().string("raw").open_variant("ay").open_array("y").byte('h').byte('i').close_array();
    body.close_variant().close_dict_entry();
    body.close_array();
    body.open_struct().object_path("/a").double_(0.5).close_struct();
    body.open_array("{us}").open_dict_entry().uint32(7).string("seven").close_dict_entry().close_array();
    const auto bytes = marshal::build_message({.type = marshal::MessageType::signal,
                                               .serial = 9,
                                               .path = "/org/example",
                                               .interface = "org.example.Iface",
                                               .member = "Changed",
                                               .sender = ":1.4"},
                                              body);
    marshal::MessageHeader header;
    ASSERT_EQ(marshal::parse_message(bytes, header), marshal::Validity::valid);
    const json::object object = message_to_json(bytes, header, true);
    EXPECT_EQ(object.at("type"), "signal");
    EXPECT_EQ(object.at("sender"), ":1.4");
    EXPECT_EQ(object.at("member"), "Changed");
    EXPECT_EQ(object.at("serial"), 9);
    EXPECT_FALSE(object.contains("destination"));
    EXPECT_EQ(
        json::serialize(object.at("body")),
        R"(["hello",-4,true,{"count":{"t":"u","v":3},"raw":{"t":"ay","v":"aGk="}},["/a",5E-1],{"7":"seven"}])");
    EXPECT_FALSE(message_to_json(bytes, header, false).contains("body"));
}

}  // namespace
}  // namespace busgate::web
