// Micro-benchmark of the per-message work on the routing path: framing, header parse and
// validation of a small (~200-byte) method call, body validation, and the SENDER rewrite.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "busgate/marshal/message.h"
#include "busgate/marshal/rewrite.h"
#include "busgate/marshal/writer.h"

using namespace busgate::marshal;

namespace {

std::vector<std::uint8_t> small_method_call() {
    BodyWriter body;
    body.string("org.example.Music.Player").uint32(42);
    return build_message({.type = MessageType::method_call,
                          .serial = 1234,
                          .path = "/org/example/Music/Player",
                          .interface = "org.example.Music.Player",
                          .member = "SetVolume",
                          .destination = "org.example.Music"},
                         body);
}

void HeaderParse(benchmark::State& state) {
    const auto message = small_method_call();
    MessageHeader header;
    for (auto _ : state) {
        const FrameSize frame = frame_size(message);
        benchmark::DoNotOptimize(frame);
        benchmark::DoNotOptimize(parse_header(message, header));
        benchmark::DoNotOptimize(header);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(message.size()));
    state.counters["message_bytes"] = static_cast<double>(message.size());
}
BENCHMARK(HeaderParse);

void MessageParse(benchmark::State& state) {
    const auto message = small_method_call();
    MessageHeader header;
    for (auto _ : state) {
        benchmark::DoNotOptimize(parse_message(message, header));
        benchmark::DoNotOptimize(header);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(MessageParse);

void SenderRewrite(benchmark::State& state) {
    const auto message = small_method_call();
    MessageHeader header;
    parse_header(message, header);
    std::vector<std::uint8_t> out;
    out.reserve(512);
    for (auto _ : state) {
        rewrite_header_with_sender(message, header, ":1.4242", out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(SenderRewrite);

}  // namespace

BENCHMARK_MAIN();
