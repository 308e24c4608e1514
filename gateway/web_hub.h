// WebHub: the only thing the bus thread and the HTTP/WebSocket thread share. The bus thread owns
// BusCounters (plain integers, bumped where messages are routed or refused) and answers requests the web
// thread posts (a snapshot of names, connections, rules and counters; a policy check) when an eventfd
// wakes it; it copies routed messages into every monitor subscriber's bounded queue. The rule: the bus
// thread never waits for the web thread — a full subscriber queue drops the event and counts it.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "busgate/core/unique_fd.h"

namespace busgate::gateway {

// Upper bounds (seconds) of the routing latency histogram's buckets; +Inf is implied.
inline constexpr std::array<double, 10> latency_buckets = {1e-6, 2.5e-6, 5e-6,   1e-5, 2.5e-5,
                                                           5e-5, 1e-4,   2.5e-4, 1e-3, 1e-2};

// Monotonic counters of one bus, never reset (a reload keeps them).
struct BusCounters {
    enum Type { method_call, method_return, error, signal, type_count };
    enum Denial { send_denied, receive_denied, core_denied, denial_count };
    enum Quota {
        outgoing_queue,
        pending_replies,
        core_limit,
        connections_per_user,
        match_rules,
        quota_count
    };
    std::array<std::uint64_t, type_count> messages{};
    std::array<std::uint64_t, type_count> bytes{};
    std::array<std::uint64_t, denial_count> denials{};
    std::array<std::uint64_t, quota_count> quota_hits{};
    std::uint64_t activation_starts = 0;
    std::uint64_t activation_failures = 0;
    std::uint64_t connections_accepted = 0;
    std::array<std::uint64_t, latency_buckets.size() + 1> latency{};  // per bucket, not cumulative
    std::uint64_t latency_count = 0;
    double latency_sum = 0;  // seconds
};

// What the web thread may know of the bus, copied on the bus thread.
struct BusSnapshot {
    struct Name {
        std::string name;
        std::string owner;               // unique name of the primary owner
        std::vector<std::string> queue;  // waiting owners, in order
        bool activatable = false;        // an activator holds it (no owner yet)
    };
    struct Match {
        std::string rule;
    };
    struct Connection {
        std::string unique_name;
        std::string endpoint;
        std::uint32_t uid = 0;
        std::uint32_t gid = 0;
        std::int32_t pid = 0;
        std::string security_label;
        std::vector<std::string> names;
        std::vector<std::string> match_rules;
        std::uint64_t queued_bytes = 0;  // written by the bus, not yet read by the client
        bool monitor = false;
    };
    struct Rule {
        std::string context;  // default, mandatory, user=N, group=N, at_console=true|false
        std::string text;     // the rule as XML
        std::string where;    // file:line
    };
    struct Endpoint {
        std::string address;
        std::size_t connections = 0;
    };
    std::vector<Name> names;
    std::vector<Connection> connections;
    std::vector<Endpoint> endpoints;
    std::vector<Rule> policy;  // the bus's policy, shared by every endpoint today
    std::vector<std::pair<std::string, std::uint64_t>> limits;
    std::size_t incomplete_connections = 0;
    BusCounters counters;
    std::uint64_t monitor_events_dropped = 0;  // filled in by the hub
};

// POST /api/policy-check: could `sender` send this message to `destination`?
struct PolicyCheckRequest {
    std::string sender;  // a unique name, or empty with `uid` set for a connection that does not exist yet
    std::optional<std::uint32_t> uid;
    std::string type = "method_call";
    std::string destination;
    std::string path;
    std::string interface;
    std::string member;
    std::string error_name;
};
struct PolicyCheckResult {
    std::string error;  // the request could not be evaluated (unknown sender, bad type...)
    bool allowed = false;
    std::string verdict;  // allowed, send_denied, receive_denied
    std::string recipient;
    std::uint32_t matched_rules = 0;
    std::optional<std::string> rule;   // the deciding rule, as XML
    std::optional<std::string> where;  // and where it was written
};

// One message as routed, for live monitors.
struct MonitorEvent {
    std::uint64_t realtime_ns = 0;
    std::vector<std::uint8_t> bytes;  // SENDER stamped, as receivers get it
};

class MonitorSubscriber {
  public:
    explicit MonitorSubscriber(std::size_t capacity) : capacity_(capacity) {}
    // Bus thread: never blocks on the reader.
    void push(const std::shared_ptr<const MonitorEvent>& event);
    // Web thread: everything queued so far, and how many events were lost since the last call.
    std::vector<std::shared_ptr<const MonitorEvent>> take(std::uint64_t& dropped);
    std::uint64_t dropped_total() const { return dropped_total_.load(std::memory_order_relaxed); }

  private:
    std::mutex mutex_;
    std::deque<std::shared_ptr<const MonitorEvent>> queue_;
    std::size_t capacity_;
    std::uint64_t dropped_ = 0;
    std::atomic<std::uint64_t> dropped_total_{0};
};

class WebHub {
  public:
    WebHub();
    WebHub(const WebHub&) = delete;
    WebHub& operator=(const WebHub&) = delete;

    // Web thread: runs `task` on the bus thread soon. Tasks must not block; they pass their answers back
    // through the web thread's own queue (asio::post).
    void post_to_bus(std::function<void()> task);
    // Bus thread: the fd to watch, and the tasks to run when it is readable.
    int wake_fd() const { return wake_.get(); }
    void run_bus_tasks();
    // When the web thread is gone: the tasks it left may hold its sessions, which must not outlive it.
    void discard_tasks();

    // Monitors.
    std::shared_ptr<MonitorSubscriber> subscribe(std::size_t capacity);
    void unsubscribe(const std::shared_ptr<MonitorSubscriber>& subscriber);
    // The bus thread's one check per routed message when the server is on.
    bool monitoring() const { return subscribers_count_.load(std::memory_order_relaxed) > 0; }
    void publish(std::span<const std::uint8_t> bytes);
    // Events lost by subscribers that left, plus those of subscribers still here.
    std::uint64_t dropped_total();

  private:
    core::UniqueFd wake_;
    std::mutex tasks_mutex_;
    std::vector<std::function<void()>> tasks_;
    std::mutex subscribers_mutex_;
    std::vector<std::shared_ptr<MonitorSubscriber>> subscribers_;
    std::atomic<std::size_t> subscribers_count_{0};
    std::uint64_t dropped_by_departed_ = 0;
};

}  // namespace busgate::gateway
