// Steady-state message traffic allocates nothing: the rule of ARCHITECTURE.md, checked by counting calls to
// the global operator new in this test executable.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "busgate/core/bus.h"

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

// g++ 12 flags free() in a replaced operator delete as mismatched with the (inlined) replaced operator new.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size ? size : 1)) {
        return p;
    }
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace busgate::core {
namespace {

ConnectionId hello(Bus& bus, std::uint32_t uid) {
    HelloParams params;
    params.credentials.uid = uid;
    params.flags = hello_flag::accept_fds;
    return *bus.hello(std::move(params));
}

TEST(Allocation, UnicastSendReceiveAndCallReplyAllocateNothingInSteadyState) {
    Bus bus(BusConfig{.owner_uid = 1000});
    const ConnectionId a = hello(bus, 1000);  // privileged: may talk to anyone
    const ConnectionId b = hello(bus, 2000);  // talks through the policy below
    const ConnectionId service = hello(bus, 0);
    HelloParams holder;
    holder.credentials.uid = 0;
    holder.flags = hello_flag::policy_holder;
    holder.name = "org.example.Policy";
    holder.policy = {{"org.example.Service", {{Grantee::world, 0, Access::talk}}}};
    ASSERT_TRUE(bus.hello(std::move(holder)).ok());
    ASSERT_TRUE(bus.acquire_name(service, "org.example.Service", 0).ok());
    while (bus.receive(service)) {  // the NAME_ADD telling it that it owns the name
    }
    const PayloadRef body = MessagePayload::make(std::vector<std::uint8_t>(128));
    std::uint64_t cookie = 0;
    std::vector<ConnectionId> ready;
    auto round = [&] {
        OutgoingMessage by_id;
        by_id.payload = body;
        by_id.destination_id = service;
        by_id.cookie = ++cookie;
        by_id.flags = message_flag::expect_reply;
        by_id.timeout = 1'000'000 + cookie;
        auto sent = bus.send(a, std::move(by_id));
        ASSERT_TRUE(sent.ok()) << describe(sent.error()) << " at cookie " << cookie;
        OutgoingMessage by_name;
        by_name.payload = body;
        by_name.destination_name = "org.example.Service";
        by_name.cookie = ++cookie;
        ASSERT_TRUE(bus.send(b, std::move(by_name)).ok());
        auto call = bus.receive(service);
        ASSERT_TRUE(call.has_value());
        ASSERT_TRUE(bus.receive(service).has_value());
        OutgoingMessage reply;
        reply.payload = body;
        reply.destination_id = a;
        reply.cookie = ++cookie;
        reply.reply_cookie = call->cookie;
        ASSERT_TRUE(bus.send(service, std::move(reply)).ok());
        ASSERT_TRUE(bus.receive(a).has_value());
        bus.take_readable(ready);
    };
    for (int i = 0; i < 2000; ++i) {
        round();
    }
    const std::size_t before = allocations.load();
    for (int i = 0; i < 1000; ++i) {
        round();
    }
    EXPECT_EQ(allocations.load() - before, 0u);
}

TEST(Allocation, BroadcastToMatchingReceiversAllocatesNothingInSteadyState) {
    Bus bus;
    const ConnectionId sender = hello(bus, 1000);
    std::vector<ConnectionId> receivers;
    for (int i = 0; i < 20; ++i) {
        receivers.push_back(hello(bus, 1000));
        BloomMask mask;
        mask.add_member(i % 2 ? "Even" : "Odd");
        ASSERT_TRUE(bus.add_match(receivers.back(), MessageMatch{1, any_connection, "", mask}).ok());
        ASSERT_TRUE(bus.add_match(receivers.back(), MessageMatch{2, any_connection, "", BloomMask()}).ok());
    }
    BloomFilter filter;
    filter.add_message_type("signal");
    filter.add_member("Even");
    const PayloadRef body = MessagePayload::make(std::vector<std::uint8_t>(128));
    std::uint64_t cookie = 0;
    auto round = [&] {
        OutgoingMessage message;
        message.payload = body;
        message.destination_id = broadcast_destination;
        message.cookie = ++cookie;
        message.flags = message_flag::signal;
        message.bloom = filter;
        auto receipt = bus.send(sender, std::move(message));
        ASSERT_TRUE(receipt.ok());
        ASSERT_EQ(receipt->delivered, 20u);
        for (ConnectionId id : receivers) {
            ASSERT_TRUE(bus.receive(id).has_value());
        }
    };
    for (int i = 0; i < 5000; ++i) {
        round();
    }
    const std::size_t before = allocations.load();
    for (int i = 0; i < 1000; ++i) {
        round();
    }
    EXPECT_EQ(allocations.load() - before, 0u);
}

}  // namespace
}  // namespace busgate::core
