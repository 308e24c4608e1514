// Micro-benchmarks of the core alone (no sockets, no marshalling): unicast send+receive, call+reply, and
// broadcast delivery to 1000 connections holding 20 match masks each.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "busgate/core/bus.h"

namespace busgate::core {
namespace {

ConnectionId hello(Bus& bus, std::uint32_t uid) {
    HelloParams params;
    params.credentials.uid = uid;
    params.flags = hello_flag::accept_fds;
    return *bus.hello(std::move(params));
}

PayloadRef bench_payload(std::size_t size) {
    return MessagePayload::make(std::vector<std::uint8_t>(size, std::uint8_t{1}));
}

void BM_UnicastSendReceive(benchmark::State& state) {
    Bus bus;
    const ConnectionId a = hello(bus, 1000);
    const ConnectionId b = hello(bus, 1000);
    const PayloadRef body = bench_payload(256);
    std::uint64_t cookie = 0;
    for (auto _ : state) {
        OutgoingMessage message;
        message.payload = body;
        message.destination_id = b;
        message.cookie = ++cookie;
        auto receipt = bus.send(a, std::move(message));
        benchmark::DoNotOptimize(receipt);
        auto item = bus.receive(b);
        benchmark::DoNotOptimize(item);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UnicastSendReceive);

void BM_UnicastByNameSendReceive(benchmark::State& state) {
    Bus bus;
    const ConnectionId a = hello(bus, 1000);
    const ConnectionId b = hello(bus, 0);
    (void)bus.acquire_name(b, "org.example.Service", 0);
    const PayloadRef body = bench_payload(256);
    std::uint64_t cookie = 0;
    for (auto _ : state) {
        OutgoingMessage message;
        message.payload = body;
        message.destination_name = "org.example.Service";
        message.cookie = ++cookie;
        auto receipt = bus.send(a, std::move(message));
        benchmark::DoNotOptimize(receipt);
        auto item = bus.receive(b);
        benchmark::DoNotOptimize(item);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UnicastByNameSendReceive);

void BM_CallAndReply(benchmark::State& state) {
    Bus bus;
    const ConnectionId client = hello(bus, 1000);
    const ConnectionId service = hello(bus, 1000);
    const PayloadRef body = bench_payload(256);
    std::uint64_t cookie = 0;
    for (auto _ : state) {
        OutgoingMessage call;
        call.payload = body;
        call.destination_id = service;
        call.cookie = ++cookie;
        call.flags = message_flag::expect_reply;
        call.timeout = 25'000'000'000;
        (void)bus.send(client, std::move(call));
        auto request = bus.receive(service);
        OutgoingMessage reply;
        reply.payload = body;
        reply.destination_id = client;
        reply.cookie = cookie;
        reply.reply_cookie = request->cookie;
        (void)bus.send(service, std::move(reply));
        auto answer = bus.receive(client);
        benchmark::DoNotOptimize(answer);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CallAndReply);

// 1000 connections x 20 masks. Each mask is a typical signal subscription (type, interface, member, sometimes
// path_namespace or arg0) drawn from a vocabulary of 200 interfaces x 20 members, so a given signal matches
// only a few connections. `matching` extra connections subscribe to exactly the broadcast signal.
BusConfig many_connections() {
    BusConfig config;
    config.limits.max_connections_per_user = 4096;
    return config;
}

struct BroadcastFixture {
    Bus bus{many_connections()};
    ConnectionId sender = 0;
    std::vector<ConnectionId> receivers;
    std::vector<BloomMask> all_masks;
    std::vector<BloomFilter> filters;

    explicit BroadcastFixture(int connections = 1000, int masks_per_connection = 20) {
        std::mt19937_64 rng(1);
        auto interface = [](std::uint64_t i) { return "org.example.Iface" + std::to_string(i); };
        auto member = [](std::uint64_t i) { return "Member" + std::to_string(i); };
        sender = hello(bus, 1000);
        for (int c = 0; c < connections; ++c) {
            const ConnectionId id = hello(bus, 1000);
            receivers.push_back(id);
            for (int m = 0; m < masks_per_connection; ++m) {
                BloomMask mask;
                mask.add_message_type("signal");
                mask.add_interface(interface(rng() % 200));
                mask.add_member(member(rng() % 20));
                if (rng() % 4 == 0) {
                    mask.add_path_namespace("/org/example/obj" + std::to_string(rng() % 50));
                }
                if (rng() % 4 == 0) {
                    mask.add_argument(0, "value" + std::to_string(rng() % 100));
                }
                all_masks.push_back(mask);
                (void)bus.add_match(id,
                                    MessageMatch{static_cast<std::uint64_t>(m), any_connection, "", mask});
            }
        }
        // Broadcasts drawn from the same vocabulary.
        for (int i = 0; i < 256; ++i) {
            BloomFilter filter;
            filter.add_message_type("signal");
            filter.add_interface(interface(rng() % 200));
            filter.add_member(member(rng() % 20));
            filter.add_path("/org/example/obj" + std::to_string(rng() % 50) + "/child");
            filter.add_argument(0, "value" + std::to_string(rng() % 100));
            filter.add_argument(1, "something.else");
            filters.push_back(filter);
        }
    }
};

void BM_Broadcast1000x20(benchmark::State& state) {
    BroadcastFixture fixture;
    Bus& bus = fixture.bus;
    const PayloadRef body = bench_payload(256);
    std::uint64_t cookie = 0;
    std::size_t delivered = 0;
    std::size_t index = 0;
    std::vector<ConnectionId> ready;
    for (auto _ : state) {
        OutgoingMessage message;
        message.payload = body;
        message.destination_id = broadcast_destination;
        message.cookie = ++cookie;
        message.flags = message_flag::signal;
        message.bloom = fixture.filters[index++ % fixture.filters.size()];
        auto receipt = bus.send(fixture.sender, std::move(message));
        delivered += receipt->delivered;
        bus.take_readable(ready);
        for (ConnectionId id : ready) {
            while (auto item = bus.receive(id)) {
                benchmark::DoNotOptimize(item);
            }
        }
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["receivers_per_broadcast"] =
        benchmark::Counter(static_cast<double>(delivered) / static_cast<double>(state.iterations()));
    state.counters["shared_masks"] = static_cast<double>(bus.matches().shared_mask_count());
    std::size_t visited = 0;
    for (const auto& filter : fixture.filters) {
        visited += bus.matches().masks_visited(filter);
    }
    state.counters["masks_tested"] =
        static_cast<double>(visited) / static_cast<double>(fixture.filters.size());
}
BENCHMARK(BM_Broadcast1000x20);

// Baseline for the index: the same filters checked against every one of the 20 000 masks.
void BM_Broadcast1000x20_LinearScanBaseline(benchmark::State& state) {
    BroadcastFixture fixture;
    std::size_t covered = 0;
    std::size_t index = 0;
    for (auto _ : state) {
        const BloomFilter& filter = fixture.filters[index++ % fixture.filters.size()];
        for (const BloomMask& mask : fixture.all_masks) {
            covered += filter.covers(mask);
        }
        benchmark::DoNotOptimize(covered);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Broadcast1000x20_LinearScanBaseline);

// Fan-out cost: every one of 1000 connections matches (e.g. all watch the same PropertiesChanged).
void BM_Broadcast1000AllMatch(benchmark::State& state) {
    Bus bus(many_connections());
    const ConnectionId sender = hello(bus, 1000);
    BloomMask mask;
    mask.add_message_type("signal");
    mask.add_member("PropertiesChanged");
    for (int c = 0; c < 1000; ++c) {
        const ConnectionId id = hello(bus, 1000);
        (void)bus.add_match(id, MessageMatch{1, any_connection, "", mask});
    }
    BloomFilter filter;
    filter.add_message_type("signal");
    filter.add_interface("org.freedesktop.DBus.Properties");
    filter.add_member("PropertiesChanged");
    filter.add_path("/org/example/obj");
    const PayloadRef body = bench_payload(256);
    std::uint64_t cookie = 0;
    std::vector<ConnectionId> ready;
    for (auto _ : state) {
        OutgoingMessage message;
        message.payload = body;
        message.destination_id = broadcast_destination;
        message.cookie = ++cookie;
        message.flags = message_flag::signal;
        message.bloom = filter;
        (void)bus.send(sender, std::move(message));
        bus.take_readable(ready);
        for (ConnectionId id : ready) {
            while (auto item = bus.receive(id)) {
                benchmark::DoNotOptimize(item);
            }
        }
    }
    state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_Broadcast1000AllMatch);

}  // namespace
}  // namespace busgate::core

BENCHMARK_MAIN();
