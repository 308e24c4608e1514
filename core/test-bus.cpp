#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "busgate/core/bus.h"

namespace busgate::core {
namespace {

constexpr std::uint32_t bus_owner = 1000;  // privileged on the default endpoint, like root
constexpr std::uint32_t alice = 2000;
constexpr std::uint32_t bob = 3000;

BusConfig test_config() {
    BusConfig config;
    config.owner_uid = bus_owner;
    return config;
}

PayloadRef payload(std::size_t size = 16, std::size_t fds = 0) {
    std::vector<util::UniqueFd> descriptors;
    for (std::size_t i = 0; i < fds; ++i) {
        descriptors.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
    return MessagePayload::make(std::vector<std::uint8_t>(size, std::uint8_t{0x5a}), std::move(descriptors));
}

OutgoingMessage call_to(ConnectionId destination, std::uint64_t cookie, Timestamp timeout = 0) {
    OutgoingMessage message;
    message.payload = payload();
    message.destination_id = destination;
    message.cookie = cookie;
    message.flags = message_flag::expect_reply;
    message.timeout = timeout;
    return message;
}

OutgoingMessage call_to_name(std::string_view name, std::uint64_t cookie) {
    OutgoingMessage message = call_to(0, cookie);
    message.destination_name = name;
    return message;
}

OutgoingMessage reply_to(ConnectionId caller, std::uint64_t cookie, std::uint64_t reply_cookie) {
    OutgoingMessage message;
    message.payload = payload();
    message.destination_id = caller;
    message.cookie = cookie;
    message.reply_cookie = reply_cookie;
    return message;
}

BloomFilter signal_filter(std::string_view member) {
    BloomFilter filter;
    filter.add_message_type("signal");
    filter.add_interface("org.example.Iface");
    filter.add_member(member);
    filter.add_path("/org/example");
    return filter;
}

BloomMask signal_mask(std::string_view member) {
    BloomMask mask;
    mask.add_message_type("signal");
    mask.add_member(member);
    return mask;
}

OutgoingMessage broadcast_of(std::string_view member, std::uint64_t cookie, PayloadRef body = payload()) {
    OutgoingMessage message;
    message.payload = std::move(body);
    message.destination_id = broadcast_destination;
    message.cookie = cookie;
    message.flags = message_flag::signal;
    message.bloom = signal_filter(member);
    return message;
}

class BusTest : public ::testing::Test {
  protected:
    ConnectionId connect(std::uint32_t uid, std::uint64_t flags = hello_flag::accept_fds,
                         EndpointId endpoint = default_endpoint, std::string name = {},
                         std::vector<PolicyEntry> policy = {}) {
        HelloParams params;
        params.credentials.uid = uid;
        params.credentials.gid = uid;
        params.flags = flags;
        params.endpoint = endpoint;
        params.name = std::move(name);
        params.policy = std::move(policy);
        auto id = bus.hello(std::move(params));
        EXPECT_TRUE(id.ok()) << (id.ok() ? "" : describe(id.error()));
        return id.ok() ? *id : 0;
    }

    // A policy holder (root) granting `grants` on `name`.
    ConnectionId hold_policy(std::vector<PolicyEntry> policy) {
        return connect(0, hello_flag::policy_holder, default_endpoint,
                       "org.busgate.Policy" + std::to_string(++holders_), std::move(policy));
    }

    std::vector<QueueItem> drain(ConnectionId id) {
        std::vector<QueueItem> items;
        while (auto item = bus.receive(id)) {
            items.push_back(std::move(*item));
        }
        return items;
    }

    std::vector<QueueItem> drain_messages(ConnectionId id) {
        auto items = drain(id);
        std::erase_if(items, [](const QueueItem& item) { return item.kind != QueueItem::Kind::message; });
        return items;
    }

    std::vector<QueueItem> drain_notifications(ConnectionId id, NotificationType type) {
        auto items = drain(id);
        std::erase_if(items, [type](const QueueItem& item) {
            return item.kind != QueueItem::Kind::notification || item.notification.type != type;
        });
        return items;
    }

    void expect_error(const auto& result, Error error) {
        ASSERT_FALSE(result.ok());
        EXPECT_EQ(result.error(), error) << describe(result.error());
    }

    Bus bus{test_config()};
    int holders_ = 0;
};

// ------------------------------------------------------------------------------------------ connections

TEST_F(BusTest, HelloAssignsIdsThatAreNeverReused) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(alice);
    EXPECT_GT(b, a);
    ASSERT_TRUE(bus.bye(b).ok());
    const ConnectionId c = connect(alice);
    EXPECT_GT(c, b);
    expect_error(bus.bye(b), Error::no_such_connection);
}

TEST_F(BusTest, TheBussOwnConnectionsUseUpNoClientNumber) {
    const ConnectionId first = connect(alice);
    EXPECT_EQ(first, 1u);  // ":1.0" to dbus1 clients
    HelloParams driver;
    driver.credentials.uid = bus_owner;
    driver.flags = hello_flag::bus_driver;
    const ConnectionId driver_id = *bus.hello(std::move(driver));
    hold_policy({});
    HelloParams activator;
    activator.credentials.uid = bus_owner;
    activator.flags = hello_flag::activator;
    activator.name = "org.example.Activatable";
    const ConnectionId activator_id = *bus.hello(std::move(activator));
    EXPECT_GE(driver_id, first_internal_connection_id);
    EXPECT_GE(activator_id, first_internal_connection_id);
    EXPECT_EQ(connect(alice), 2u);
}

TEST_F(BusTest, HelloRecordsCredentialsAndFlags) {
    HelloParams params;
    params.credentials = {alice, 55, {4, 24, 27}, 4242, "system_u:system_r:foo_t:s0"};
    params.pidfd = util::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    const int raw_pidfd = params.pidfd.get();
    params.flags = hello_flag::accept_fds;
    params.description = "test client";
    auto id = bus.hello(std::move(params));
    ASSERT_TRUE(id.ok());
    const Connection* connection = bus.connection(*id);
    ASSERT_NE(connection, nullptr);
    EXPECT_EQ(connection->credentials().uid, alice);
    EXPECT_EQ(connection->credentials().gid, 55u);
    EXPECT_EQ(connection->credentials().groups, (std::vector<std::uint32_t>{4, 24, 27}));
    EXPECT_EQ(connection->credentials().pid, 4242);
    EXPECT_EQ(connection->credentials().security_label, "system_u:system_r:foo_t:s0");
    EXPECT_EQ(connection->pidfd(), raw_pidfd);
    EXPECT_TRUE(connection->accepts_fds());
    EXPECT_FALSE(connection->privileged());
    EXPECT_EQ(connection->description(), "test client");
    EXPECT_TRUE(bus.connection(connect(bus_owner))->privileged());
    EXPECT_TRUE(bus.connection(connect(0))->privileged());
}

TEST_F(BusTest, HelloRejectsBadFlagCombinations) {
    HelloParams both;
    both.credentials.uid = 0;
    both.flags = hello_flag::activator | hello_flag::policy_holder;
    both.name = "org.example.Svc";
    expect_error(bus.hello(std::move(both)), Error::invalid_argument);

    HelloParams unprivileged_holder;
    unprivileged_holder.credentials.uid = alice;
    unprivileged_holder.flags = hello_flag::policy_holder;
    unprivileged_holder.name = "org.example.Policy";
    expect_error(bus.hello(std::move(unprivileged_holder)), Error::permission_denied);

    HelloParams kdbus_monitor;  // bit 3, kdbus's monitor flag, which this core does not have
    kdbus_monitor.credentials.uid = 0;
    kdbus_monitor.flags = std::uint64_t{1} << 3;
    expect_error(bus.hello(std::move(kdbus_monitor)), Error::invalid_argument);

    HelloParams nameless_activator;
    nameless_activator.credentials.uid = 0;
    nameless_activator.flags = hello_flag::activator;
    expect_error(bus.hello(std::move(nameless_activator)), Error::invalid_argument);

    HelloParams ordinary_with_name;
    ordinary_with_name.credentials.uid = alice;
    ordinary_with_name.name = "org.example.Svc";
    expect_error(bus.hello(std::move(ordinary_with_name)), Error::invalid_argument);

    HelloParams ordinary_with_policy;
    ordinary_with_policy.credentials.uid = 0;
    ordinary_with_policy.policy = {{"org.example.Svc", {{Grantee::world, 0, Access::own}}}};
    expect_error(bus.hello(std::move(ordinary_with_policy)), Error::invalid_argument);

    HelloParams unknown_flag;
    unknown_flag.flags = 1 << 10;
    expect_error(bus.hello(std::move(unknown_flag)), Error::invalid_argument);
}

TEST_F(BusTest, PerUserConnectionLimit) {
    BusConfig config = test_config();
    config.limits.max_connections_per_user = 2;
    Bus small(config);
    HelloParams params;
    params.credentials.uid = alice;
    ASSERT_TRUE(small.hello(HelloParams{params.credentials}).ok());
    ASSERT_TRUE(small.hello(HelloParams{params.credentials}).ok());
    expect_error(small.hello(HelloParams{params.credentials}), Error::connection_limit_reached);
    HelloParams other;
    other.credentials.uid = bob;
    EXPECT_TRUE(small.hello(std::move(other)).ok());
}

TEST_F(BusTest, TheBussOwnActivatorsNeverTakeAClientsPlace) {
    BusConfig config = test_config();
    config.limits.max_connections_per_user = 2;
    Bus small(config);
    for (const char* name : {"org.example.A", "org.example.B", "org.example.C"}) {
        HelloParams activator;
        activator.credentials.uid = bus_owner;
        activator.flags = hello_flag::activator;
        activator.name = name;
        ASSERT_TRUE(small.hello(std::move(activator)).ok()) << name;
    }
    HelloParams client;
    client.credentials.uid = bus_owner;
    ASSERT_TRUE(small.hello(HelloParams{client.credentials}).ok());
    ASSERT_TRUE(small.hello(HelloParams{client.credentials}).ok());
    expect_error(small.hello(HelloParams{client.credentials}), Error::connection_limit_reached);
}

TEST_F(BusTest, QueueAccountsBytesMessagesAndFds) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(alice);
    OutgoingMessage message = call_to(b, 1);
    message.payload = payload(300, 2);
    ASSERT_TRUE(bus.send(a, std::move(message)).ok());
    OutgoingMessage second = call_to(b, 2);
    second.payload = payload(100);
    ASSERT_TRUE(bus.send(a, std::move(second)).ok());
    const auto& counters = bus.connection(b)->queue_counters();
    EXPECT_EQ(counters.messages, 2u);
    EXPECT_EQ(counters.bytes, 400u);
    EXPECT_EQ(counters.fds, 2u);
    EXPECT_EQ(bus.quotas().remaining(alice, QuotaResource::bytes), QuotaLimits{}.bytes - 400);

    auto first = bus.receive(b);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->cookie, 1u);
    EXPECT_EQ(first->fd_count(), 2u);
    EXPECT_EQ(counters.messages, 1u);
    EXPECT_EQ(counters.bytes, 100u);
    EXPECT_EQ(counters.fds, 0u);
    ASSERT_TRUE(bus.receive(b).has_value());
    EXPECT_FALSE(bus.receive(b).has_value());
    EXPECT_EQ(bus.quotas().remaining(alice, QuotaResource::bytes), QuotaLimits{}.bytes);
    EXPECT_EQ(bus.quotas().actor_count(alice), 0u);
}

// receive_if takes the oldest item only when the caller wants it (the gateway: when its socket has room);
// one it does not want stays first, charged, and is reported as held, not as an empty queue.
TEST_F(BusTest, ReceiveIfLeavesAnUnwantedItemFirstAndSaysItIsThere) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(alice);
    ASSERT_TRUE(bus.send(a, call_to(b, 1)).ok());
    ASSERT_TRUE(bus.send(a, call_to(b, 2)).ok());
    bool held = false;
    EXPECT_FALSE(bus.receive_if(b, [](const QueueItem&) { return false; }, held).has_value());
    EXPECT_TRUE(held);
    EXPECT_EQ(bus.connection(b)->queued(), 2u);
    EXPECT_EQ(bus.peek(b)->cookie, 1u);
    EXPECT_LT(bus.quotas().remaining(alice, QuotaResource::messages), QuotaLimits{}.messages);

    std::uint64_t seen = 0;
    auto first = bus.receive_if(b, [&](const QueueItem& item) { seen = item.cookie; return true; }, held);
    ASSERT_TRUE(first.has_value());
    EXPECT_FALSE(held);
    EXPECT_EQ(seen, 1u);
    EXPECT_EQ(first->cookie, 1u);
    ASSERT_TRUE(bus.receive_if(b, [](const QueueItem&) { return true; }, held).has_value());
    EXPECT_FALSE(bus.receive_if(b, [](const QueueItem&) { return true; }, held).has_value());
    EXPECT_FALSE(held);  // empty, not held
    EXPECT_EQ(bus.quotas().remaining(alice, QuotaResource::messages), QuotaLimits{}.messages);
    EXPECT_FALSE(bus.receive_if(12345, [](const QueueItem&) { return true; }, held).has_value());
    EXPECT_FALSE(held);
}

TEST_F(BusTest, FdsToAConnectionThatDoesNotAcceptThemFail) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(alice, 0);
    OutgoingMessage message = call_to(b, 1);
    message.payload = payload(8, 1);
    expect_error(bus.send(a, std::move(message)), Error::fds_not_accepted);
    EXPECT_EQ(bus.pending_replies(a), 0u);
}

TEST_F(BusTest, ByeDropsTheQueueAndReturnsItsCharges) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(bob);
    const ConnectionId c = connect(bob);
    ASSERT_TRUE(bus.send(c, call_to(b, 1)).ok());
    ASSERT_TRUE(bus.send(c, call_to(b, 2)).ok());
    EXPECT_LT(bus.quotas().remaining(bob, QuotaResource::messages), QuotaLimits{}.messages);
    ASSERT_TRUE(bus.bye(b).ok());
    EXPECT_EQ(bus.quotas().remaining(bob, QuotaResource::messages), QuotaLimits{}.messages);
    EXPECT_EQ(bus.quotas().actor_count(bob), 0u);
    ASSERT_TRUE(bus.bye(c).ok());  // bob's last connection: his record goes
    EXPECT_EQ(bus.quotas().user_count(), 0u);
    (void)a;
}

TEST_F(BusTest, TakeReadableListsConnectionsThatGotItemsOnce) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(alice);
    std::vector<ConnectionId> ready;
    bus.take_readable(ready);
    ASSERT_TRUE(bus.send(a, call_to(b, 1)).ok());
    ASSERT_TRUE(bus.send(a, call_to(b, 2)).ok());
    bus.take_readable(ready);
    EXPECT_EQ(ready, (std::vector<ConnectionId>{b}));
    bus.take_readable(ready);
    EXPECT_TRUE(ready.empty());
}

// ---------------------------------------------------------------------------------------------- names

TEST_F(BusTest, UnprivilegedCallerNeedsOwnPolicy) {
    const ConnectionId a = connect(alice);
    expect_error(bus.acquire_name(a, "org.example.A", 0), Error::permission_denied);
    hold_policy({{"org.example.A", {{Grantee::user, alice, Access::own}}}});
    auto result = bus.acquire_name(a, "org.example.A", 0);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(*result, AcquireResult::acquired);
    const ConnectionId privileged = connect(bus_owner);
    EXPECT_EQ(*bus.acquire_name(privileged, "org.example.Anything", 0), AcquireResult::acquired);
}

TEST_F(BusTest, RequestNameResultCodesAndReleaseResults) {
    const ConnectionId a = connect(bus_owner);
    const ConnectionId b = connect(bus_owner);
    EXPECT_EQ(*bus.acquire_name(a, "org.example.A", name_flag::allow_replacement | name_flag::queue),
              AcquireResult::acquired);
    EXPECT_EQ(*bus.acquire_name(a, "org.example.A", name_flag::allow_replacement | name_flag::queue),
              AcquireResult::already_owner);
    EXPECT_EQ(*bus.acquire_name(b, "org.example.A", 0), AcquireResult::owned_elsewhere);
    EXPECT_EQ(*bus.acquire_name(b, "org.example.A", name_flag::queue), AcquireResult::queued);
    EXPECT_EQ(*bus.queued_owners(a, "org.example.A"), (std::vector<ConnectionId>{a, b}));
    EXPECT_EQ(*bus.acquire_name(b, "org.example.A", name_flag::replace_existing), AcquireResult::acquired);
    EXPECT_EQ(*bus.queued_owners(a, "org.example.A"), (std::vector<ConnectionId>{b, a}));
    EXPECT_EQ(*bus.name_owner(a, "org.example.A"), b);
    EXPECT_EQ(*bus.release_name(b, "org.example.A"), ReleaseResult::released);
    EXPECT_EQ(*bus.name_owner(a, "org.example.A"), a);
    EXPECT_EQ(*bus.release_name(b, "org.example.A"), ReleaseResult::not_owner);
    EXPECT_EQ(*bus.release_name(b, "org.example.Nope"), ReleaseResult::unowned);
    expect_error(bus.acquire_name(a, "not-a-name", 0), Error::invalid_name);
    expect_error(bus.acquire_name(a, "org.example.A", 1 << 9), Error::invalid_argument);
}

TEST_F(BusTest, NameNotificationsReachMatchesAndTheAffectedOwners) {
    const ConnectionId watcher = connect(alice);
    ASSERT_TRUE(bus.add_match(watcher, NotificationMatch{77, NotificationType::name_add}).ok());
    ASSERT_TRUE(bus.add_match(watcher, NotificationMatch{78, NotificationType::name_change}).ok());
    ASSERT_TRUE(bus.add_match(watcher, NotificationMatch{79, NotificationType::name_remove}).ok());
    const ConnectionId a = connect(bus_owner);
    const ConnectionId b = connect(bus_owner);
    drain(a);
    drain(watcher);
    ASSERT_TRUE(bus.acquire_name(a, "org.example.A", name_flag::allow_replacement).ok());
    ASSERT_TRUE(bus.acquire_name(b, "org.example.A", name_flag::replace_existing).ok());
    ASSERT_TRUE(bus.release_name(b, "org.example.A").ok());

    auto seen = drain(watcher);
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].notification.type, NotificationType::name_add);
    EXPECT_EQ(seen[0].notification.new_id, a);
    EXPECT_TRUE(seen[0].matched.contains(77));
    EXPECT_EQ(seen[1].notification.type, NotificationType::name_change);
    EXPECT_EQ(seen[1].notification.old_id, a);
    EXPECT_EQ(seen[1].notification.new_id, b);
    EXPECT_TRUE(seen[1].matched.contains(78));
    EXPECT_EQ(seen[2].notification.type, NotificationType::name_remove);
    EXPECT_EQ(seen[2].notification.old_id, b);
    EXPECT_EQ(seen[2].notification.name, "org.example.A");
    EXPECT_LT(seen[0].sequence, seen[1].sequence);
    EXPECT_LT(seen[1].sequence, seen[2].sequence);

    // a had no matches but gained and lost the name: it hears of both (NameAcquired / NameLost).
    auto own = drain(a);
    ASSERT_EQ(own.size(), 2u);
    EXPECT_EQ(own[0].notification.type, NotificationType::name_add);
    EXPECT_TRUE(own[0].matched.empty());
    EXPECT_EQ(own[1].notification.type, NotificationType::name_change);
}

TEST_F(BusTest, NotificationMatchFiltersByNameAndIds) {
    const ConnectionId watcher = connect(alice);
    NotificationMatch only_b{1, NotificationType::name_add};
    only_b.name = "org.example.B";
    ASSERT_TRUE(bus.add_match(watcher, only_b).ok());
    const ConnectionId owner = connect(bus_owner);
    ASSERT_TRUE(bus.acquire_name(owner, "org.example.A", 0).ok());
    ASSERT_TRUE(bus.acquire_name(owner, "org.example.B", 0).ok());
    auto seen = drain(watcher);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].notification.name, "org.example.B");
}

TEST_F(BusTest, IdAddAndIdRemoveNotifications) {
    const ConnectionId watcher = connect(alice);
    ASSERT_TRUE(bus.add_match(watcher, NotificationMatch{1, NotificationType::id_add}).ok());
    ASSERT_TRUE(bus.add_match(watcher, NotificationMatch{2, NotificationType::id_remove}).ok());
    const ConnectionId other = connect(bob, hello_flag::accept_fds);
    ASSERT_TRUE(bus.bye(other).ok());
    auto seen = drain(watcher);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].notification.type, NotificationType::id_add);
    EXPECT_EQ(seen[0].notification.id, other);
    EXPECT_EQ(seen[0].notification.id_flags, hello_flag::accept_fds);
    EXPECT_EQ(seen[1].notification.type, NotificationType::id_remove);
    EXPECT_EQ(seen[1].notification.id, other);
}

TEST_F(BusTest, ByeReleasesNamesSoTheQueueAdvances) {
    const ConnectionId watcher = connect(alice);
    ASSERT_TRUE(bus.add_match(watcher, NotificationMatch{1, NotificationType::name_change}).ok());
    ASSERT_TRUE(bus.add_match(watcher, NotificationMatch{2, NotificationType::id_remove}).ok());
    const ConnectionId a = connect(bus_owner);
    const ConnectionId b = connect(bus_owner);
    ASSERT_TRUE(bus.acquire_name(a, "org.example.A", 0).ok());
    ASSERT_TRUE(bus.acquire_name(b, "org.example.A", name_flag::queue).ok());
    ASSERT_TRUE(bus.bye(a).ok());
    EXPECT_EQ(*bus.name_owner(b, "org.example.A"), b);
    auto seen = drain(watcher);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].notification.type, NotificationType::name_change);
    EXPECT_EQ(seen[0].notification.new_id, b);
    EXPECT_EQ(seen[1].notification.type, NotificationType::id_remove);  // after the name changes
}

TEST_F(BusTest, ListReportsUniqueWellKnownActivatableAndQueued) {
    const ConnectionId a = connect(bus_owner);
    const ConnectionId b = connect(bus_owner);
    const ConnectionId activator = connect(0, hello_flag::activator, default_endpoint, "org.example.Svc");
    ASSERT_TRUE(bus.acquire_name(a, "org.example.A", 0).ok());
    ASSERT_TRUE(bus.acquire_name(b, "org.example.A", name_flag::queue).ok());

    auto names = bus.list(a, list_flag::unique | list_flag::names);
    constexpr std::uint64_t fds = hello_flag::accept_fds;
    EXPECT_EQ(names,
              (std::vector<ListEntry>{{a, fds, "org.example.A", name_flag::primary}, {b, fds, {}, 0}}));

    auto activatable = bus.list(a, list_flag::activators);
    EXPECT_EQ(activatable, (std::vector<ListEntry>{{activator, hello_flag::activator, "org.example.Svc",
                                                    name_flag::activator | name_flag::primary}}));

    auto queued = bus.list(a, list_flag::queued);
    EXPECT_EQ(queued,
              (std::vector<ListEntry>{{b, fds, "org.example.A", name_flag::queue | name_flag::in_queue}}));
}

TEST_F(BusTest, PerConnectionNameLimit) {
    BusConfig config = test_config();
    config.limits.max_names_per_connection = 2;
    Bus small(config);
    HelloParams params;
    params.credentials.uid = bus_owner;
    const ConnectionId a = *small.hello(std::move(params));
    ASSERT_TRUE(small.acquire_name(a, "org.example.A", 0).ok());
    ASSERT_TRUE(small.acquire_name(a, "org.example.B", 0).ok());
    expect_error(small.acquire_name(a, "org.example.C", 0), Error::name_limit_reached);
    ASSERT_TRUE(small.release_name(a, "org.example.A").ok());
    EXPECT_TRUE(small.acquire_name(a, "org.example.C", 0).ok());
}

TEST_F(BusTest, ActivatorQueuedMessagesMoveToTheRealOwner) {
    const ConnectionId activator =
        connect(0, hello_flag::activator | hello_flag::accept_fds, default_endpoint, "org.example.Svc");
    const ConnectionId client = connect(bus_owner);
    ASSERT_TRUE(bus.send(client, call_to_name("org.example.Svc", 1)).ok());
    ASSERT_TRUE(bus.send(client, call_to_name("org.example.Svc", 2)).ok());
    EXPECT_EQ(bus.connection(activator)->queued(), 2u);
    ASSERT_EQ(bus.peek(activator)->cookie, 1u);  // systemd peeks at the activator's queue

    const ConnectionId service = connect(bus_owner);
    ASSERT_EQ(*bus.acquire_name(service, "org.example.Svc", 0), AcquireResult::acquired);
    EXPECT_EQ(bus.connection(activator)->queued(), 0u);
    auto moved = drain_messages(service);
    ASSERT_EQ(moved.size(), 2u);
    EXPECT_EQ(moved[0].cookie, 1u);
    EXPECT_EQ(moved[1].cookie, 2u);
    // The reply windows moved along: the real owner may answer, and only once.
    EXPECT_TRUE(bus.send(service, reply_to(client, 10, 1)).ok());
    expect_error(bus.send(service, reply_to(client, 11, 1)), Error::unexpected_reply);
}

TEST_F(BusTest, UnreadMessagesGoBackToTheActivatorWhenTheOwnerLeaves) {
    const ConnectionId activator =
        connect(0, hello_flag::activator | hello_flag::accept_fds, default_endpoint, "org.example.Svc");
    const ConnectionId service = connect(bus_owner);
    ASSERT_TRUE(bus.acquire_name(service, "org.example.Svc", 0).ok());
    const ConnectionId client = connect(bus_owner);
    ASSERT_TRUE(bus.send(client, call_to_name("org.example.Svc", 5)).ok());
    ASSERT_TRUE(bus.send(client, call_to(service, 6)).ok());  // by id: stays with the service
    ASSERT_TRUE(bus.bye(service).ok());
    auto back = drain_messages(activator);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].cookie, 5u);
    // The call sent by id died with the service.
    auto dead = drain_notifications(client, NotificationType::reply_dead);
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].reply_cookie, 6u);
}

TEST_F(BusTest, NoAutoStartToAnActivatorOnlyNameFails) {
    connect(0, hello_flag::activator, default_endpoint, "org.example.Svc");
    const ConnectionId client = connect(bus_owner);
    OutgoingMessage message = call_to_name("org.example.Svc", 1);
    message.flags |= message_flag::no_auto_start;
    expect_error(bus.send(client, std::move(message)), Error::activation_disabled);
    expect_error(bus.name_owner(client, "org.example.Svc"), Error::name_has_no_owner);
}

TEST_F(BusTest, ActivatorsCannotSend) {
    const ConnectionId activator = connect(0, hello_flag::activator, default_endpoint, "org.example.Svc");
    const ConnectionId other = connect(0);
    expect_error(bus.send(activator, call_to(other, 1)), Error::not_supported);
    expect_error(bus.acquire_name(activator, "org.example.Other", 0), Error::not_supported);
}

TEST_F(BusTest, AnActivatorAnswersOnlyTheCallsItHoldsWhenItsServiceCannotStart) {
    const ConnectionId activator = connect(0, hello_flag::activator, default_endpoint, "org.example.Svc");
    const ConnectionId client = connect(bus_owner);
    ASSERT_TRUE(bus.send(client, call_to_name("org.example.Svc", 7)).ok());
    expect_error(bus.send(activator, reply_to(client, 1, 8)), Error::unexpected_reply);  // no such call
    ASSERT_TRUE(bus.receive(activator).has_value());
    EXPECT_TRUE(bus.send(activator, reply_to(client, 2, 7)).ok());
    expect_error(bus.send(activator, reply_to(client, 3, 7)), Error::unexpected_reply);  // answered once
    auto answers = drain_messages(client);
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].reply_cookie, 7u);
    EXPECT_EQ(bus.pending_replies(client), 0u);
}

TEST_F(BusTest, PinnedDestinationMustStillOwnTheName) {
    const ConnectionId a = connect(bus_owner);
    const ConnectionId b = connect(bus_owner);
    ASSERT_TRUE(bus.acquire_name(a, "org.example.A", 0).ok());
    OutgoingMessage pinned = call_to_name("org.example.A", 1);
    pinned.destination_id = b;
    expect_error(bus.send(a, std::move(pinned)), Error::destination_changed);
    OutgoingMessage right = call_to_name("org.example.A", 2);
    right.destination_id = a;
    EXPECT_TRUE(bus.send(b, std::move(right)).ok());
    expect_error(bus.send(a, call_to_name("org.example.Missing", 3)), Error::name_has_no_owner);
    expect_error(bus.send(a, call_to(99999, 4)), Error::no_such_connection);
    // A malformed name is found nowhere, and is named as malformed, not as unowned.
    for (const char* malformed : {"not-a-name", "org..example", ".org.example", "org.1example"}) {
        expect_error(bus.send(a, call_to_name(malformed, 5)), Error::invalid_name);
    }
}

// ------------------------------------------------------------------------------- broadcasts and order

TEST_F(BusTest, BroadcastReachesOnlyMatchingReceiversOnceWithEveryMatchedCookie) {
    const ConnectionId sender = connect(alice);
    const ConnectionId both = connect(alice);
    const ConnectionId other = connect(alice);
    const ConnectionId everything = connect(alice);
    ASSERT_TRUE(bus.add_match(both, MessageMatch{1, any_connection, "", signal_mask("Changed")}).ok());
    ASSERT_TRUE(bus.add_match(both, MessageMatch{2, any_connection, "", BloomMask()}).ok());
    ASSERT_TRUE(bus.add_match(other, MessageMatch{3, any_connection, "", signal_mask("Removed")}).ok());
    ASSERT_TRUE(bus.add_match(everything, MessageMatch{4, any_connection, "", BloomMask()}).ok());
    ASSERT_TRUE(bus.add_match(sender, MessageMatch{5, any_connection, "", BloomMask()}).ok());

    auto receipt = bus.send(sender, broadcast_of("Changed", 9));
    ASSERT_TRUE(receipt.ok());
    EXPECT_EQ(receipt->delivered, 2u);
    auto got = drain_messages(both);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].matched.size(), 2u);
    EXPECT_TRUE(got[0].matched.contains(1));
    EXPECT_TRUE(got[0].matched.contains(2));
    EXPECT_EQ(got[0].destination, broadcast_destination);
    EXPECT_TRUE(drain_messages(other).empty());
    EXPECT_EQ(drain_messages(everything).size(), 1u);
    EXPECT_TRUE(drain_messages(sender).empty());  // never to itself
}

TEST_F(BusTest, BroadcastReachesItsSenderWhenConfiguredAsDbus1Does) {
    BusConfig config = test_config();
    config.broadcasts_reach_sender = true;
    Bus dbus1(config);
    HelloParams params;
    params.credentials.uid = alice;
    const ConnectionId sender = *dbus1.hello(std::move(params));
    ASSERT_TRUE(dbus1.add_match(sender, MessageMatch{5, any_connection, "", signal_mask("Changed")}).ok());
    ASSERT_TRUE(dbus1.send(sender, broadcast_of("Removed", 1)).ok());
    ASSERT_TRUE(dbus1.send(sender, broadcast_of("Changed", 2)).ok());
    std::vector<QueueItem> got;
    while (auto item = dbus1.receive(sender)) {
        if (item->kind == QueueItem::Kind::message) {
            got.push_back(std::move(*item));
        }
    }
    ASSERT_EQ(got.size(), 1u);  // only what its own match covers
    EXPECT_EQ(got[0].cookie, 2u);
    EXPECT_TRUE(got[0].matched.contains(5));
}

TEST_F(BusTest, BroadcastSharesOnePayloadAmongReceivers) {
    const ConnectionId sender = connect(alice);
    std::vector<ConnectionId> receivers;
    for (int i = 0; i < 5; ++i) {
        receivers.push_back(connect(alice));
        ASSERT_TRUE(bus.add_match(receivers.back(), MessageMatch{1, any_connection, "", BloomMask()}).ok());
    }
    PayloadRef body = payload(64);
    const MessagePayload* raw = body.get();
    ASSERT_TRUE(bus.send(sender, broadcast_of("Changed", 1, body)).ok());
    EXPECT_EQ(body.use_count(), 6);
    for (auto id : receivers) {
        EXPECT_EQ(bus.peek(id)->payload.get(), raw);
    }
}

TEST_F(BusTest, BroadcastSenderFiltersByIdAndByOwnedName) {
    const ConnectionId a = connect(bus_owner);
    const ConnectionId b = connect(bus_owner);
    const ConnectionId listener = connect(bus_owner);
    ASSERT_TRUE(bus.add_match(listener, MessageMatch{1, a, "", BloomMask()}).ok());
    ASSERT_TRUE(bus.add_match(listener, MessageMatch{2, any_connection, "org.example.B", BloomMask()}).ok());
    ASSERT_TRUE(bus.send(a, broadcast_of("X", 1)).ok());
    ASSERT_TRUE(bus.send(b, broadcast_of("X", 2)).ok());  // b does not own org.example.B yet
    ASSERT_TRUE(bus.acquire_name(b, "org.example.B", 0).ok());
    ASSERT_TRUE(bus.send(b, broadcast_of("X", 3)).ok());
    auto got = drain_messages(listener);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].sender, a);
    EXPECT_TRUE(got[0].matched.contains(1));
    EXPECT_EQ(got[1].sender, b);
    EXPECT_EQ(got[1].cookie, 3u);
    EXPECT_TRUE(got[1].matched.contains(2));
}

TEST_F(BusTest, RemovedMatchStopsDelivery) {
    const ConnectionId sender = connect(alice);
    const ConnectionId listener = connect(alice);
    ASSERT_TRUE(bus.add_match(listener, MessageMatch{1, any_connection, "", signal_mask("Changed")}).ok());
    ASSERT_TRUE(bus.remove_match(listener, 1).ok());
    expect_error(bus.remove_match(listener, 1), Error::no_such_match);
    ASSERT_TRUE(bus.send(sender, broadcast_of("Changed", 1)).ok());
    EXPECT_TRUE(drain_messages(listener).empty());
}

TEST_F(BusTest, BroadcastMustBeASignalWithoutReplyExpectation) {
    const ConnectionId sender = connect(alice);
    OutgoingMessage not_signal = broadcast_of("X", 1);
    not_signal.flags = 0;
    expect_error(bus.send(sender, std::move(not_signal)), Error::invalid_argument);
    OutgoingMessage expecting = broadcast_of("X", 1);
    expecting.flags |= message_flag::expect_reply;
    expect_error(bus.send(sender, std::move(expecting)), Error::invalid_argument);
}

TEST_F(BusTest, TwoReceiversSeeMessagesAndNotificationsInTheSameOrder) {
    const ConnectionId r1 = connect(bus_owner);
    const ConnectionId r2 = connect(bus_owner);
    for (ConnectionId r : {r1, r2}) {
        ASSERT_TRUE(bus.add_match(r, MessageMatch{1, any_connection, "", BloomMask()}).ok());
        ASSERT_TRUE(bus.add_match(r, NotificationMatch{2, NotificationType::name_add}).ok());
        ASSERT_TRUE(bus.add_match(r, NotificationMatch{3, NotificationType::name_remove}).ok());
        ASSERT_TRUE(bus.add_match(r, NotificationMatch{4, NotificationType::id_add}).ok());
    }
    const ConnectionId s1 = connect(bus_owner);
    const ConnectionId s2 = connect(bus_owner);
    // Interleave broadcasts from two senders, unicasts to r1 only, and name changes.
    for (int round = 0; round < 20; ++round) {
        ASSERT_TRUE(bus.send(s1, broadcast_of("A", 100 + static_cast<std::uint64_t>(round))).ok());
        if (round % 3 == 0) {
            ASSERT_TRUE(bus.acquire_name(s2, "org.example.N" + std::to_string(round), 0).ok());
        }
        OutgoingMessage direct = call_to(r1, 500 + static_cast<std::uint64_t>(round));
        direct.flags = 0;
        ASSERT_TRUE(bus.send(s2, std::move(direct)).ok());
        ASSERT_TRUE(bus.send(s2, broadcast_of("B", 200 + static_cast<std::uint64_t>(round))).ok());
        if (round % 4 == 0 && round % 3 == 0) {
            ASSERT_TRUE(bus.release_name(s2, "org.example.N" + std::to_string(round)).ok());
        }
    }
    auto common = [](std::vector<QueueItem> items) {
        std::vector<std::uint64_t> order;
        std::uint64_t last = 0;
        for (const auto& item : items) {
            EXPECT_GT(item.sequence, last);  // strictly increasing in each queue
            last = item.sequence;
            if (item.destination == broadcast_destination) {
                order.push_back(item.sequence);
            }
        }
        return order;
    };
    auto order1 = common(drain(r1));
    auto order2 = common(drain(r2));
    EXPECT_EQ(order1, order2);
    // id_add for s1 and s2, 2 broadcasts per round, name_add in rounds 0,3,..,18, name_remove in rounds 0
    // and 12.
    EXPECT_EQ(order1.size(), 2u + 40u + 7u + 2u);
}

// --------------------------------------------------------------------------------------------- policy

TEST_F(BusTest, SameUserMayTalkWithoutAnyPolicy) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(alice);
    EXPECT_TRUE(bus.send(a, call_to(b, 1)).ok());
}

TEST_F(BusTest, OtherUserNeedsTalkOnOneOfTheDestinationsNames) {
    const ConnectionId service = connect(bob);
    const ConnectionId client = connect(alice);
    expect_error(bus.send(client, call_to(service, 1)), Error::permission_denied);
    hold_policy(
        {{"org.example.Svc", {{Grantee::user, bob, Access::own}}},
         {"org.example.Public", {{Grantee::user, bob, Access::own}, {Grantee::world, 0, Access::talk}}}});
    ASSERT_TRUE(bus.acquire_name(service, "org.example.Svc", 0).ok());
    // Owning a name nobody may talk to does not help.
    expect_error(bus.send(client, call_to_name("org.example.Svc", 2)), Error::permission_denied);
    ASSERT_TRUE(bus.acquire_name(service, "org.example.Public", 0).ok());
    // TALK on any one of its names opens the connection, whichever name (or id) is addressed.
    EXPECT_TRUE(bus.send(client, call_to_name("org.example.Svc", 3)).ok());
    EXPECT_TRUE(bus.send(client, call_to(service, 4)).ok());
}

TEST_F(BusTest, PrivilegedConnectionsBypassPolicyOnTheDefaultEndpoint) {
    const ConnectionId service = connect(bob);
    const ConnectionId root = connect(0);
    const ConnectionId owner = connect(bus_owner);
    EXPECT_TRUE(bus.send(root, call_to(service, 1)).ok());
    EXPECT_TRUE(bus.send(owner, call_to(service, 2)).ok());
    EXPECT_TRUE(bus.acquire_name(owner, "org.example.Free", 0).ok());
}

TEST_F(BusTest, WithoutBusPolicyEnforcementOnlyEndpointPoliciesGate) {
    BusConfig config = test_config();
    config.enforce_bus_policy = false;
    Bus open(config);
    const auto hello = [&](std::uint32_t uid, EndpointId endpoint) {
        HelloParams params;
        params.credentials.uid = uid;
        params.credentials.gid = uid;
        params.endpoint = endpoint;
        auto id = open.hello(std::move(params));
        EXPECT_TRUE(id.ok());
        return id.ok() ? *id : ConnectionId{0};
    };
    const ConnectionId service = hello(bob, default_endpoint);
    const ConnectionId client = hello(alice, default_endpoint);
    EXPECT_TRUE(open.acquire_name(service, "org.example.Svc", 0).ok());
    EXPECT_TRUE(open.send(client, call_to(service, 1)).ok());

    auto sandbox =
        open.make_endpoint("1000-sandbox", {{"org.example.Svc", {{Grantee::world, 0, Access::talk}}}});
    ASSERT_TRUE(sandbox.ok());
    const ConnectionId inside = hello(alice, *sandbox);
    expect_error(open.acquire_name(inside, "org.example.Other", 0), Error::permission_denied);
    EXPECT_TRUE(open.send(inside, call_to_name("org.example.Svc", 2)).ok());
}

TEST_F(BusTest, PolicyHolderReplacesItsRulesAtomicallyAndTheyDieWithIt) {
    const ConnectionId holder = hold_policy({{"org.example.A", {{Grantee::user, alice, Access::own}}}});
    const ConnectionId a = connect(alice);
    ASSERT_TRUE(bus.acquire_name(a, "org.example.A", 0).ok());
    ASSERT_TRUE(bus.set_policy(holder, {{"org.example.B", {{Grantee::user, alice, Access::own}}}}).ok());
    ASSERT_TRUE(bus.release_name(a, "org.example.A").ok());
    expect_error(bus.acquire_name(a, "org.example.A", 0), Error::permission_denied);
    EXPECT_TRUE(bus.acquire_name(a, "org.example.B", 0).ok());

    // A second holder cannot take over a name another holder covers; nothing of its upload applies.
    const ConnectionId rival = hold_policy({});
    expect_error(bus.set_policy(rival, {{"org.example.C", {{Grantee::world, 0, Access::own}}},
                                        {"org.example.B", {{Grantee::world, 0, Access::own}}}}),
                 Error::already_exists);
    EXPECT_FALSE(bus.bus_policy().query(bus.connection(a)->credentials(), "org.example.C").has_value());

    ASSERT_TRUE(bus.bye(holder).ok());
    EXPECT_FALSE(bus.bus_policy().query(bus.connection(a)->credentials(), "org.example.B").has_value());
    expect_error(bus.set_policy(a, {}), Error::not_supported);
}

TEST_F(BusTest, WildcardPolicyGrantsOwnOnOneLevelOfNames) {
    hold_policy({{"org.example.*", {{Grantee::group, alice, Access::own}}}});
    const ConnectionId a = connect(alice);  // gid == alice in these tests
    EXPECT_TRUE(bus.acquire_name(a, "org.example.One", 0).ok());
    expect_error(bus.acquire_name(a, "org.example.One.Two", 0), Error::permission_denied);
}

TEST_F(BusTest, SubtreeAndAnyPolicyCoverDeeperNamesAndNamelessPeers) {
    hold_policy({{"org.example", {{Grantee::user, alice, Access::own}}, true},
                 {"*", {{Grantee::user, bob, Access::talk}}}});
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(bob);
    EXPECT_TRUE(bus.acquire_name(a, "org.example", 0).ok());
    EXPECT_TRUE(bus.acquire_name(a, "org.example.One.Two", 0).ok());
    expect_error(bus.acquire_name(a, "org.other.One", 0), Error::permission_denied);
    expect_error(bus.acquire_name(b, "org.example.Three", 0), Error::permission_denied);
    // TALK on "*" reaches every connection, one without any name too; without it a name is needed.
    const ConnectionId nameless = connect(alice);
    EXPECT_TRUE(bus.send(b, call_to(nameless, 1)).ok());
    expect_error(bus.send(a, call_to(b, 2)), Error::permission_denied);
}

TEST_F(BusTest, TalkCountsTheNamesADestinationWaitsFor) {
    // dbus1's send_destination matches a receiver that is only queued for the name.
    hold_policy(
        {{"org.example.Svc", {{Grantee::world, 0, Access::own}, {Grantee::user, alice, Access::talk}}}});
    const ConnectionId first = connect(bob);
    const ConnectionId second = connect(bob);
    const ConnectionId client = connect(alice);
    ASSERT_TRUE(bus.acquire_name(first, "org.example.Svc", 0).ok());
    expect_error(bus.send(client, call_to(second, 1)), Error::permission_denied);
    ASSERT_EQ(*bus.acquire_name(second, "org.example.Svc", name_flag::queue), AcquireResult::queued);
    EXPECT_TRUE(bus.send(client, call_to(second, 2)).ok());
}

TEST_F(BusTest, TalkToAnActivatableNameIsTalkToThatName) {
    hold_policy({{"org.example.Lazy", {{Grantee::user, alice, Access::talk}}}});
    HelloParams activator;
    activator.credentials.uid = bus_owner;
    activator.flags = hello_flag::activator;
    activator.name = "org.example.Lazy";
    ASSERT_TRUE(bus.hello(std::move(activator)).ok());
    EXPECT_TRUE(bus.send(connect(alice), call_to_name("org.example.Lazy", 1)).ok());
    expect_error(bus.send(connect(bob), call_to_name("org.example.Lazy", 2)), Error::permission_denied);
}

TEST_F(BusTest, WithoutSignalTalkSignalsAnswerToTheEndpointAloneAndCallsStillNeedTalk) {
    BusConfig config = test_config();
    config.signals_need_talk = false;
    Bus calls_only(config);
    const auto hello = [&](std::uint32_t uid) {
        HelloParams params;
        params.credentials.uid = uid;
        params.credentials.gid = uid;
        return *calls_only.hello(std::move(params));
    };
    const ConnectionId sender = hello(bob);
    const ConnectionId listener = hello(alice);
    ASSERT_TRUE(calls_only.add_match(listener, MessageMatch{1, any_connection, "", BloomMask()}).ok());
    ASSERT_EQ(calls_only.send(sender, broadcast_of("X", 1))->delivered, 1u);
    OutgoingMessage signal;
    signal.payload = payload();
    signal.destination_id = listener;
    signal.cookie = 2;
    signal.flags = message_flag::signal;
    ASSERT_EQ(calls_only.send(sender, std::move(signal))->delivered, 1u);
    auto refused = calls_only.send(sender, call_to(listener, 3));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error(), Error::permission_denied);
}

TEST_F(BusTest, PolicyHoldersAreNeitherListedNorAnnounced) {
    const ConnectionId watcher = connect(alice);
    NotificationMatch added;
    added.cookie = 9;
    added.type = NotificationType::id_add;
    ASSERT_TRUE(bus.add_match(watcher, added).ok());
    const ConnectionId holder = hold_policy({});
    const ConnectionId peer = connect(alice);
    auto announced = drain_notifications(watcher, NotificationType::id_add);
    ASSERT_EQ(announced.size(), 1u);
    EXPECT_EQ(announced[0].notification.id, peer);
    for (const ListEntry& entry :
         bus.list(watcher, list_flag::unique | list_flag::names | list_flag::activators)) {
        EXPECT_NE(entry.id, holder);
    }
    expect_error(bus.connection_info(watcher, holder), Error::no_such_connection);
}

TEST_F(BusTest, BroadcastNeedsTheReceiverToBeAllowedToTalkToTheSender) {
    const ConnectionId sender = connect(bob);
    const ConnectionId listener = connect(alice);
    ASSERT_TRUE(bus.add_match(listener, MessageMatch{1, any_connection, "", BloomMask()}).ok());
    ASSERT_TRUE(bus.send(sender, broadcast_of("X", 1)).ok());
    EXPECT_TRUE(drain_messages(listener).empty());
    hold_policy(
        {{"org.example.Sender", {{Grantee::user, bob, Access::own}, {Grantee::user, alice, Access::talk}}}});
    ASSERT_TRUE(bus.acquire_name(sender, "org.example.Sender", 0).ok());
    ASSERT_TRUE(bus.send(sender, broadcast_of("X", 2)).ok());
    auto got = drain_messages(listener);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].cookie, 2u);
}

TEST_F(BusTest, UnicastSignalIsSilentlyDroppedWithoutReceiverTalk) {
    const ConnectionId sender = connect(bob);
    const ConnectionId target = connect(alice);
    OutgoingMessage signal;
    signal.payload = payload();
    signal.destination_id = target;
    signal.cookie = 1;
    signal.flags = message_flag::signal;
    auto receipt = bus.send(sender, std::move(signal));
    ASSERT_TRUE(receipt.ok());
    EXPECT_EQ(receipt->delivered, 0u);
    EXPECT_TRUE(drain_messages(target).empty());
}

// ------------------------------------------------------------------------------------------ endpoints

class EndpointTest : public BusTest {
  protected:
    void SetUp() override {
        // The sandbox may see and talk to org.example.Visible and own org.example.Sandboxed.
        auto made = bus.make_endpoint("1000-sandbox",
                                      {{"org.example.Visible", {{Grantee::world, 0, Access::talk}}},
                                       {"org.example.Sandboxed", {{Grantee::world, 0, Access::own}}}});
        ASSERT_TRUE(made.ok());
        sandbox = *made;
        service = connect(bus_owner);
        ASSERT_TRUE(bus.acquire_name(service, "org.example.Visible", 0).ok());
        hidden = connect(bus_owner);
        ASSERT_TRUE(bus.acquire_name(hidden, "org.example.Hidden", 0).ok());
    }

    EndpointId sandbox = 0;
    ConnectionId service = 0;
    ConnectionId hidden = 0;
};

TEST_F(EndpointTest, TheBusDriverReachesEveryEndpoint) {
    const ConnectionId inside = connect(alice, hello_flag::accept_fds, sandbox);
    ASSERT_TRUE(bus.add_match(inside, MessageMatch{1, any_connection, "", BloomMask()}).ok());
    // An ordinary connection owning no name the sandbox may talk to is not heard inside...
    const ConnectionId stranger = connect(bus_owner);
    EXPECT_EQ(bus.send(stranger, broadcast_of("Changed", 1))->delivered, 0u);
    // ...the bus driver always is, broadcast or unicast, and only a privileged connection may be it.
    const ConnectionId driver = connect(bus_owner, hello_flag::bus_driver);
    EXPECT_EQ(bus.send(driver, broadcast_of("NameOwnerChanged", 2))->delivered, 1u);
    OutgoingMessage acquired = broadcast_of("NameAcquired", 3);
    acquired.destination_id = inside;
    acquired.bloom = {};
    EXPECT_EQ(bus.send(driver, std::move(acquired))->delivered, 1u);
    EXPECT_EQ(drain_messages(inside).size(), 2u);
    HelloParams impostor;
    impostor.credentials.uid = alice;
    impostor.flags = hello_flag::bus_driver;
    expect_error(bus.hello(std::move(impostor)), Error::permission_denied);
}

TEST_F(EndpointTest, CustomEndpointEnforcesItsPolicyEvenForPrivilegedCallers) {
    const ConnectionId root_inside = connect(0, hello_flag::accept_fds, sandbox);
    EXPECT_FALSE(bus.connection(root_inside)->privileged());
    expect_error(bus.acquire_name(root_inside, "org.example.Other", 0), Error::permission_denied);
    // The endpoint grants OWN, but the bus policy must too (no privilege inside an endpoint).
    expect_error(bus.acquire_name(root_inside, "org.example.Sandboxed", 0), Error::permission_denied);
    hold_policy({{"org.example.Sandboxed", {{Grantee::world, 0, Access::own}}}});
    EXPECT_TRUE(bus.acquire_name(root_inside, "org.example.Sandboxed", 0).ok());
}

TEST_F(EndpointTest, InvisibleNamesAreAbsentFromListsLookupsAndSends) {
    const ConnectionId inside = connect(bus_owner, hello_flag::accept_fds, sandbox);
    EXPECT_EQ(*bus.name_owner(inside, "org.example.Visible"), service);
    expect_error(bus.name_owner(inside, "org.example.Hidden"), Error::name_has_no_owner);
    expect_error(bus.send(inside, call_to_name("org.example.Hidden", 1)), Error::name_has_no_owner);
    expect_error(bus.send(inside, call_to(hidden, 2)), Error::no_such_connection);
    expect_error(bus.connection_info(inside, hidden), Error::no_such_connection);
    EXPECT_EQ(*bus.release_name(inside, "org.example.Hidden"), ReleaseResult::unowned);
    EXPECT_TRUE(bus.send(inside, call_to_name("org.example.Visible", 3)).ok());

    auto listed = bus.list(inside, list_flag::unique | list_flag::names);
    for (const auto& entry : listed) {
        EXPECT_NE(entry.name, "org.example.Hidden");
        EXPECT_NE(entry.id, hidden);
    }
    EXPECT_TRUE(std::any_of(listed.begin(), listed.end(),
                            [](const ListEntry& e) { return e.name == "org.example.Visible"; }));
    // From the default endpoint everything is visible.
    EXPECT_EQ(*bus.name_owner(service, "org.example.Hidden"), hidden);
}

TEST_F(EndpointTest, InvisibleNamesAreAbsentFromNotifications) {
    const ConnectionId inside = connect(bus_owner, hello_flag::accept_fds, sandbox);
    ASSERT_TRUE(bus.add_match(inside, NotificationMatch{1, NotificationType::name_add}).ok());
    ASSERT_TRUE(bus.add_match(inside, NotificationMatch{2, NotificationType::id_add}).ok());
    connect(alice);  // ID_ADD: not delivered on custom endpoints
    ASSERT_TRUE(bus.acquire_name(service, "org.example.Hidden2", 0).ok());
    ASSERT_TRUE(bus.release_name(service, "org.example.Visible").ok());
    ASSERT_TRUE(bus.acquire_name(service, "org.example.Visible", 0).ok());
    auto seen = drain(inside);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].notification.type, NotificationType::name_add);
    EXPECT_EQ(seen[0].notification.name, "org.example.Visible");
}

TEST_F(EndpointTest, TalkIsEnforcedInsideAnEndpointEvenBetweenTheSameUser) {
    const ConnectionId inside = connect(alice, hello_flag::accept_fds, sandbox);
    const ConnectionId same_user_outside = connect(alice);
    // Nameless peer: invisible and unreachable from the endpoint despite the same uid.
    expect_error(bus.send(inside, call_to(same_user_outside, 1)), Error::no_such_connection);
    // And a broadcast from it does not reach the sandbox either.
    ASSERT_TRUE(bus.add_match(inside, MessageMatch{1, any_connection, "", BloomMask()}).ok());
    ASSERT_TRUE(bus.send(same_user_outside, broadcast_of("X", 2)).ok());
    EXPECT_TRUE(drain_messages(inside).empty());
    // From a peer owning a name the endpoint lets it talk to, it arrives once the bus policy agrees too.
    ASSERT_TRUE(bus.send(service, broadcast_of("X", 3)).ok());
    EXPECT_TRUE(drain_messages(inside).empty());
    hold_policy({{"org.example.Visible", {{Grantee::world, 0, Access::talk}}}});
    ASSERT_TRUE(bus.send(service, broadcast_of("X", 4)).ok());
    EXPECT_EQ(drain_messages(inside).size(), 1u);
}

TEST_F(EndpointTest, ASandboxedServiceMayAnswerACallerAndSeeButNotCallIt) {
    const ConnectionId inside = connect(bus_owner, hello_flag::accept_fds, sandbox);
    hold_policy(
        {{"org.example.Sandboxed", {{Grantee::world, 0, Access::own}, {Grantee::world, 0, Access::talk}}}});
    ASSERT_TRUE(bus.acquire_name(inside, "org.example.Sandboxed", 0).ok());
    const ConnectionId caller = connect(alice);  // no names: invisible from the sandbox
    const ConnectionId bystander = connect(alice);
    expect_error(bus.connection_info(inside, caller), Error::no_such_connection);
    ASSERT_TRUE(bus.send(caller, call_to_name("org.example.Sandboxed", 1)).ok());
    // Having called in, the caller may be seen (xdg-dbus-proxy's SEE for a peer that calls the sandbox), not
    // called; its bystander stays hidden.
    EXPECT_TRUE(bus.connection_info(inside, caller).ok());
    expect_error(bus.connection_info(inside, bystander), Error::no_such_connection);
    expect_error(bus.send(inside, call_to(caller, 2)), Error::permission_denied);
    EXPECT_TRUE(bus.send(inside, reply_to(caller, 3, 1)).ok());
    expect_error(bus.send(inside, reply_to(caller, 4, 1)), Error::unexpected_reply);  // nothing owed now
}

TEST_F(EndpointTest, AConnectionRemembersOnlyItsMostRecentCallers) {
    const ConnectionId inside = connect(bus_owner, hello_flag::accept_fds, sandbox);
    hold_policy(
        {{"org.example.Sandboxed", {{Grantee::world, 0, Access::own}, {Grantee::world, 0, Access::talk}}}});
    ASSERT_TRUE(bus.acquire_name(inside, "org.example.Sandboxed", 0).ok());
    std::vector<ConnectionId> callers;
    for (std::size_t i = 0; i <= Connection::max_remembered_callers; ++i) {
        callers.push_back(connect(alice));
        OutgoingMessage call = call_to_name("org.example.Sandboxed", i + 1);
        call.flags = 0;  // no reply expected: the reply limit stays out of it
        ASSERT_TRUE(bus.send(callers.back(), std::move(call)).ok());
    }
    expect_error(bus.connection_info(inside, callers.front()), Error::no_such_connection);
    EXPECT_TRUE(bus.connection_info(inside, callers[1]).ok());
    EXPECT_TRUE(bus.connection_info(inside, callers.back()).ok());
}

TEST_F(EndpointTest, UpdateReplacesTheEndpointPolicy) {
    const ConnectionId inside = connect(alice, hello_flag::accept_fds, sandbox);
    ASSERT_TRUE(
        bus.update_endpoint(sandbox, {{"org.example.Hidden", {{Grantee::world, 0, Access::see}}}}).ok());
    EXPECT_EQ(*bus.name_owner(inside, "org.example.Hidden"), hidden);
    expect_error(bus.name_owner(inside, "org.example.Visible"), Error::name_has_no_owner);
    // SEE is not TALK.
    expect_error(bus.send(inside, call_to_name("org.example.Hidden", 1)), Error::permission_denied);
}

TEST_F(EndpointTest, EndpointConnectionsAreChargedToTheEndpointsOwnUser) {
    const ConnectionId inside = connect(alice, hello_flag::accept_fds, sandbox);
    EXPECT_NE(bus.connection(inside)->user(), UserKey{alice});
    ASSERT_TRUE(bus.send(service, call_to(inside, 1)).ok());
    EXPECT_EQ(bus.quotas().remaining(alice, QuotaResource::messages), QuotaLimits{}.messages);
    EXPECT_LT(bus.quotas().remaining(bus.connection(inside)->user(), QuotaResource::messages),
              QuotaLimits{}.messages);
}

TEST_F(EndpointTest, EndpointNamesAreUnique) {
    expect_error(bus.make_endpoint("1000-sandbox", {}), Error::already_exists);
    expect_error(bus.make_endpoint("", {}), Error::invalid_argument);
    EXPECT_TRUE(bus.make_endpoint("1000-other", {}).ok());
}

TEST_F(EndpointTest, RemovingAnEndpointDisconnectsItsConnections) {
    const ConnectionId inside = connect(alice, hello_flag::accept_fds, sandbox);
    ASSERT_TRUE(bus.remove_endpoint(sandbox).ok());
    EXPECT_EQ(bus.connection(inside), nullptr);
    expect_error(bus.remove_endpoint(sandbox), Error::no_such_endpoint);
    expect_error(bus.remove_endpoint(default_endpoint), Error::no_such_endpoint);
    HelloParams late;
    late.endpoint = sandbox;
    expect_error(bus.hello(std::move(late)), Error::no_such_endpoint);
}

// -------------------------------------------------------------------------------------------- replies

TEST_F(BusTest, UnrequestedReplyRejected) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(alice);
    expect_error(bus.send(b, reply_to(a, 1, 77)), Error::unexpected_reply);
    ASSERT_TRUE(bus.send(a, call_to(b, 77)).ok());
    expect_error(bus.send(a, reply_to(b, 2, 77)), Error::unexpected_reply);  // wrong direction
    ASSERT_TRUE(bus.send(b, reply_to(a, 3, 77)).ok());
    expect_error(bus.send(b, reply_to(a, 4, 77)), Error::unexpected_reply);  // only once
    auto got = drain_messages(a);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].reply_cookie, 77u);
}

TEST_F(BusTest, ReplyNeedsNoTalkPermission) {
    const ConnectionId client = connect(0);
    const ConnectionId service = connect(bob);
    ASSERT_TRUE(bus.send(client, call_to(service, 5)).ok());
    // bob may not talk to root's nameless connection, but may answer its call.
    expect_error(bus.send(service, call_to(client, 6)), Error::permission_denied);
    EXPECT_TRUE(bus.send(service, reply_to(client, 7, 5)).ok());
}

TEST_F(BusTest, PendingReplyLimitPerConnection) {
    BusConfig config = test_config();
    config.limits.max_pending_replies_per_connection = 2;
    Bus small(config);
    HelloParams p1, p2;
    p1.credentials.uid = p2.credentials.uid = alice;
    const ConnectionId a = *small.hello(std::move(p1));
    const ConnectionId b = *small.hello(std::move(p2));
    ASSERT_TRUE(small.send(a, call_to(b, 1)).ok());
    ASSERT_TRUE(small.send(a, call_to(b, 2)).ok());
    expect_error(small.send(a, call_to(b, 3)), Error::too_many_pending_replies);
    ASSERT_TRUE(small.send(b, reply_to(a, 9, 1)).ok());
    EXPECT_TRUE(small.send(a, call_to(b, 3)).ok());
}

TEST_F(BusTest, ExpiredCallsProduceReplyTimeout) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(alice);
    ASSERT_TRUE(bus.send(a, call_to(b, 1, 1'000)).ok());
    ASSERT_TRUE(bus.send(a, call_to(b, 2, 5'000)).ok());
    ASSERT_TRUE(bus.send(a, call_to(b, 3)).ok());  // no deadline
    EXPECT_EQ(bus.next_deadline(), 1'000u);
    EXPECT_EQ(bus.expire(999), 0u);
    EXPECT_EQ(bus.expire(1'000), 1u);
    auto timeouts = drain_notifications(a, NotificationType::reply_timeout);
    ASSERT_EQ(timeouts.size(), 1u);
    EXPECT_EQ(timeouts[0].reply_cookie, 1u);
    EXPECT_EQ(timeouts[0].sender, kernel_connection);
    // A late reply is refused: the caller already got its answer.
    expect_error(bus.send(b, reply_to(a, 10, 1)), Error::unexpected_reply);
    EXPECT_EQ(bus.expire(1'000'000), 1u);
    EXPECT_EQ(bus.pending_replies(a), 1u);
}

TEST_F(BusTest, CalleeDisconnectProducesReplyDeadForEachOutstandingCall) {
    const ConnectionId a = connect(alice);
    const ConnectionId c = connect(alice);
    const ConnectionId b = connect(alice);
    ASSERT_TRUE(bus.send(a, call_to(b, 1)).ok());
    ASSERT_TRUE(bus.send(a, call_to(b, 2)).ok());
    ASSERT_TRUE(bus.send(c, call_to(b, 3)).ok());
    ASSERT_TRUE(bus.send(b, reply_to(a, 100, 1)).ok());  // answered: no reply-dead for it
    ASSERT_TRUE(bus.bye(b).ok());
    auto dead_a = drain_notifications(a, NotificationType::reply_dead);
    ASSERT_EQ(dead_a.size(), 1u);
    EXPECT_EQ(dead_a[0].reply_cookie, 2u);
    auto dead_c = drain_notifications(c, NotificationType::reply_dead);
    ASSERT_EQ(dead_c.size(), 1u);
    EXPECT_EQ(dead_c[0].reply_cookie, 3u);
    EXPECT_EQ(bus.pending_replies(a), 0u);
}

TEST_F(BusTest, CallerDisconnectForgetsItsCalls) {
    const ConnectionId a = connect(alice);
    const ConnectionId b = connect(alice);
    ASSERT_TRUE(bus.send(a, call_to(b, 1, 10)).ok());
    ASSERT_TRUE(bus.bye(a).ok());
    EXPECT_EQ(bus.expire(100), 0u);
    expect_error(bus.send(b, reply_to(a, 2, 1)), Error::no_such_connection);
}

// --------------------------------------------------------------------------------------------- quotas

TEST_F(BusTest, SendingUserGetsOnlyAShareOfTheReceiversBudget) {
    BusConfig config = test_config();
    config.limits.quota = {10'000, 100, 1'000};
    Bus small(config);
    auto hello = [&](std::uint32_t uid) {
        HelloParams params;
        params.credentials.uid = uid;
        return *small.hello(std::move(params));
    };
    const ConnectionId receiver = hello(bus_owner);  // privileged, so anybody... no: others need TALK
    const ConnectionId root = hello(0);
    (void)root;
    const ConnectionId greedy = hello(alice);
    const ConnectionId polite = hello(bob);
    HelloParams holder;
    holder.credentials.uid = 0;
    holder.flags = hello_flag::policy_holder;
    holder.name = "org.busgate.Policy";
    holder.policy = {{"org.example.Sink", {{Grantee::world, 0, Access::talk}}}};
    ASSERT_TRUE(small.hello(std::move(holder)).ok());
    ASSERT_TRUE(small.acquire_name(receiver, "org.example.Sink", 0).ok());

    auto send_kib = [&](ConnectionId from, std::uint64_t cookie) {
        OutgoingMessage message;
        message.payload = payload(1000);
        message.destination_name = "org.example.Sink";
        message.cookie = cookie;
        return small.send(from, std::move(message));
    };
    int accepted = 0;
    Error failure = Error::invalid_argument;
    for (std::uint64_t cookie = 1; cookie < 100; ++cookie) {
        auto result = send_kib(greedy, cookie);
        if (!result) {
            failure = result.error();
            break;
        }
        ++accepted;
    }
    // (share + 1000) * 2 - share <= remaining: alice stops at half of the 10 000 bytes.
    EXPECT_EQ(accepted, 5);
    EXPECT_EQ(failure, Error::quota_exceeded);
    // Another user still gets a share of what is left, and the bus is fine.
    EXPECT_TRUE(send_kib(polite, 1).ok());
    // Once the receiver reads, the greedy sender may send again.
    while (small.receive(receiver)) {
    }
    EXPECT_TRUE(send_kib(greedy, 200).ok());
}

TEST_F(BusTest, ReceiverQueueLimitFailsTheSendNotTheBus) {
    BusConfig config = test_config();
    config.limits.queue.max_messages = 2;
    Bus small(config);
    HelloParams p1, p2;
    p1.credentials.uid = p2.credentials.uid = alice;
    const ConnectionId a = *small.hello(std::move(p1));
    const ConnectionId b = *small.hello(std::move(p2));
    ASSERT_TRUE(small.send(a, call_to(b, 1)).ok());
    ASSERT_TRUE(small.send(a, call_to(b, 2)).ok());
    expect_error(small.send(a, call_to(b, 3)), Error::queue_full);
    EXPECT_EQ(small.pending_replies(a), 2u);  // the refused call left no reply window behind
    ASSERT_TRUE(small.receive(b).has_value());
    EXPECT_TRUE(small.send(a, call_to(b, 3)).ok());
}

TEST_F(BusTest, BroadcastOverLimitIsDroppedAndCountedForThatReceiverOnly) {
    BusConfig config = test_config();
    config.limits.queue.max_messages = 1;
    Bus small(config);
    auto hello = [&] {
        HelloParams params;
        params.credentials.uid = alice;
        return *small.hello(std::move(params));
    };
    const ConnectionId sender = hello();
    const ConnectionId slow = hello();
    const ConnectionId fast = hello();
    for (ConnectionId id : {slow, fast}) {
        ASSERT_TRUE(small.add_match(id, MessageMatch{1, any_connection, "", BloomMask()}).ok());
    }
    ASSERT_TRUE(small.send(sender, broadcast_of("X", 1)).ok());
    ASSERT_TRUE(small.receive(fast).has_value());
    auto receipt = small.send(sender, broadcast_of("X", 2));
    ASSERT_TRUE(receipt.ok());
    EXPECT_EQ(receipt->delivered, 1u);
    EXPECT_EQ(receipt->dropped, 1u);
    EXPECT_EQ(small.take_dropped(slow), 1u);
    EXPECT_EQ(small.take_dropped(slow), 0u);
    EXPECT_EQ(small.take_dropped(fast), 0u);
}

TEST_F(BusTest, MessageSizeAndFdLimits) {
    BusConfig config = test_config();
    config.limits.max_message_bytes = 100;
    config.limits.max_fds_per_message = 1;
    Bus small(config);
    HelloParams p1, p2;
    p1.credentials.uid = p2.credentials.uid = alice;
    p2.flags = hello_flag::accept_fds;
    const ConnectionId a = *small.hello(std::move(p1));
    const ConnectionId b = *small.hello(std::move(p2));
    OutgoingMessage big = call_to(b, 1);
    big.payload = payload(101);
    expect_error(small.send(a, std::move(big)), Error::message_too_large);
    OutgoingMessage fds = call_to(b, 2);
    fds.payload = payload(10, 2);
    expect_error(small.send(a, std::move(fds)), Error::too_many_fds);
}

// A restart: the new bus numbers on from where the old one stopped, takes the old connections back under
// their ids and rebuilds a name's queue in order, and no one hears of any of it.
TEST_F(BusTest, ARestoredBusKeepsIdsAndQueuesAndNobodyHearsOfIt) {
    const ConnectionId a = connect(bus_owner);
    const ConnectionId b = connect(bus_owner);
    const ConnectionId c = connect(bus_owner);
    ASSERT_TRUE(bus.acquire_name(a, "org.example.A", name_flag::allow_replacement | name_flag::queue).ok());
    ASSERT_EQ(*bus.acquire_name(b, "org.example.A", name_flag::queue), AcquireResult::queued);
    ASSERT_EQ(*bus.acquire_name(c, "org.example.A", name_flag::queue), AcquireResult::queued);

    Bus restored(test_config());
    restored.resume_numbering(bus.next_connection_id());
    HelloParams watching;
    watching.credentials.uid = bob;
    const ConnectionId watcher = *restored.hello(std::move(watching));
    EXPECT_EQ(watcher, bus.next_connection_id());
    for (const NotificationType type :
         {NotificationType::id_add, NotificationType::name_add, NotificationType::name_change}) {
        ASSERT_TRUE(restored.add_match(watcher, NotificationMatch{.cookie = 1, .type = type}).ok());
    }
    for (const ConnectionId id : {a, b, c}) {
        HelloParams params;
        params.credentials = bus.connection(id)->credentials();
        params.flags = hello_flag::accept_fds;
        params.restored_id = id;
        ASSERT_EQ(*restored.hello(std::move(params)), id);
    }
    for (const NameOwner& owner : bus.names().find("org.example.A")->owners) {
        ASSERT_TRUE(restored.restore_name(owner.id, "org.example.A", owner.flags).ok());
    }
    EXPECT_EQ(*restored.queued_owners(watcher, "org.example.A"), *bus.queued_owners(a, "org.example.A"));
    EXPECT_EQ(*restored.queued_owners(watcher, "org.example.A"), (std::vector<ConnectionId>{a, b, c}));
    EXPECT_EQ(restored.names().find("org.example.A")->owners[0].flags,
              name_flag::allow_replacement | name_flag::queue);
    EXPECT_EQ(restored.receive(watcher), std::nullopt);

    // Ids go on past the watcher; none is given twice. And the watcher's rules work: it hears of this one.
    HelloParams later;
    later.credentials.uid = bob;
    EXPECT_EQ(*restored.hello(std::move(later)), watcher + 1);
    const auto heard = restored.receive(watcher);
    ASSERT_TRUE(heard);
    EXPECT_EQ(heard->notification.type, NotificationType::id_add);
    EXPECT_EQ(heard->notification.id, watcher + 1);
    HelloParams taken;
    taken.restored_id = b;
    expect_error(restored.hello(std::move(taken)), Error::already_exists);
    HelloParams ahead;
    ahead.restored_id = watcher + 5;
    expect_error(restored.hello(std::move(ahead)), Error::invalid_argument);
    HelloParams internal;
    internal.restored_id = first_internal_connection_id + 1;
    expect_error(restored.hello(std::move(internal)), Error::invalid_argument);
    expect_error(restored.restore_name(a, "org.example.B", name_flag::replace_existing), Error::invalid_argument);
    restored.resume_numbering(1);  // never back
    EXPECT_EQ(restored.next_connection_id(), watcher + 2);
    Bus exhausted(test_config());
    exhausted.resume_numbering(first_internal_connection_id);  // every ordinary id given
    HelloParams one_too_many;
    expect_error(exhausted.hello(std::move(one_too_many)), Error::connection_limit_reached);

    // A call that waited for its reply goes on waiting; one between connections that are not there is refused.
    ASSERT_TRUE(restored.restore_pending_reply({.callee = a, .caller = b, .cookie = 5, .deadline = 0}).ok());
    EXPECT_EQ(restored.pending_replies().size(), 1u);
    EXPECT_EQ(restored.pending_replies(b), 1u);
    expect_error(restored.restore_pending_reply({.callee = a, .caller = watcher + 9, .cookie = 6, .deadline = 0}),
                 Error::no_such_connection);
}

}  // namespace
}  // namespace busgate::core
