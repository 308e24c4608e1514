// What the bus shows the floors above it (web/), and the one way they watch it. The bus thread owns
// BusCounters (plain integers, bumped where messages are routed or refused); an observer attached to the
// bus gets a copy of each routed message while it says it is watching, and may post work to the bus
// thread, which runs it when the observer's fd is readable. The rule: the bus thread never waits for an
// observer. Nothing in bus/ knows who the observer is.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace busgate::bus {

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

class BusObserver {
  public:
    virtual ~BusObserver() = default;
    // Bus thread, once per routed message: whether routed() wants it. Must be cheap.
    virtual bool watching() const = 0;
    // Bus thread: a routed message as its receivers get it (SENDER stamped). Must not block.
    virtual void routed(std::span<const std::uint8_t> bytes) = 0;
    // The fd the bus thread watches for work the observer posts from its own thread, and running it.
    virtual int wake_fd() const = 0;
    virtual void run_posted() = 0;
};

}  // namespace busgate::bus
