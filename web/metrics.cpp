// OpenMetrics text exposition of a bus::BusSnapshot (see metrics.h).
#include "web/metrics.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>

namespace busgate::web {
namespace {

class Exposition {
  public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        text_ += "# TYPE busgate_";
        text_ += name;
        text_ += ' ';
        text_ += type;
        text_ += "\n# HELP busgate_";
        text_ += name;
        text_ += ' ';
        text_ += help;
        text_ += '\n';
    }
    // `labels` is already formatted: key="value",...
    void sample(std::string_view name, std::string_view labels, double value) {
        text_ += "busgate_";
        text_ += name;
        if (!labels.empty()) {
            text_ += '{';
            text_ += labels;
            text_ += '}';
        }
        char number[64];
        if (value == static_cast<double>(static_cast<std::uint64_t>(value)) && value < 1e18) {
            std::snprintf(number, sizeof number, " %llu\n",
                          static_cast<unsigned long long>(static_cast<std::uint64_t>(value)));
        } else {
            std::snprintf(number, sizeof number, " %.9g\n", value);
        }
        text_ += number;
    }
    std::string finish() { return std::move(text_) + "# EOF\n"; }

  private:
    std::string text_;
};

// Label values escape backslash, double quote and newline.
std::string label(std::string_view key, std::string_view value) {
    std::string text(key);
    text += "=\"";
    for (const char c : value) {
        if (c == '\\' || c == '"') {
            text += '\\';
            text += c;
        } else if (c == '\n') {
            text += "\\n";
        } else {
            text += c;
        }
    }
    return text + '"';
}

constexpr std::string_view type_names[] = {"method_call", "method_return", "error", "signal"};
constexpr std::string_view denial_names[] = {"send_denied", "receive_denied", "core_denied"};
constexpr std::string_view quota_names[] = {"outgoing_queue", "pending_replies", "core_limit",
                                            "connections_per_user", "match_rules"};

}  // namespace

std::string render_openmetrics(const bus::BusSnapshot& snapshot) {
    Exposition out;
    const bus::BusCounters& counters = snapshot.counters;

    out.family("connections", "gauge", "Connections that said Hello (and monitors), by endpoint.");
    for (const bus::BusSnapshot::Endpoint& endpoint : snapshot.endpoints) {
        out.sample("connections", label("endpoint", endpoint.address),
                   static_cast<double>(endpoint.connections));
    }
    out.family("connections_by_user", "gauge", "Connections that said Hello, by uid.");
    std::map<std::uint32_t, std::size_t> by_user;
    std::size_t match_rules = 0;
    std::uint64_t queued = 0;
    std::uint64_t queued_max = 0;
    for (const bus::BusSnapshot::Connection& connection : snapshot.connections) {
        ++by_user[connection.uid];
        match_rules += connection.match_rules.size();
        queued += connection.queued_bytes;
        queued_max = std::max(queued_max, connection.queued_bytes);
    }
    for (const auto& [uid, count] : by_user) {
        out.sample("connections_by_user", label("uid", std::to_string(uid)), static_cast<double>(count));
    }
    out.family("incomplete_connections", "gauge", "Connections still authenticating.");
    out.sample("incomplete_connections", "", static_cast<double>(snapshot.incomplete_connections));
    out.family("connections_accepted", "counter", "Connections accepted since the bus started.");
    out.sample("connections_accepted_total", "", static_cast<double>(counters.connections_accepted));

    std::size_t owned = 0;
    std::size_t queued_owners = 0;
    std::size_t activatable = 0;
    for (const bus::BusSnapshot::Name& name : snapshot.names) {
        owned += !name.owner.empty();
        queued_owners += name.queue.size();
        activatable += name.activatable && name.owner.empty();
    }
    out.family("names", "gauge",
               "Well-known names: owned, waiting in owner queues, activatable without owner.");
    out.sample("names", label("state", "owned"), static_cast<double>(owned));
    out.sample("names", label("state", "queued"), static_cast<double>(queued_owners));
    out.sample("names", label("state", "activatable"), static_cast<double>(activatable));
    out.family("match_rules", "gauge", "Match rules installed by connections and monitors.");
    out.sample("match_rules", "", static_cast<double>(match_rules));

    out.family("messages_routed", "counter", "Messages the bus routed, by type.");
    for (std::size_t i = 0; i < bus::BusCounters::type_count; ++i) {
        out.sample("messages_routed_total", label("type", type_names[i]),
                   static_cast<double>(counters.messages[i]));
    }
    out.family("bytes_routed", "counter", "Bytes of the messages the bus routed, by type.");
    for (std::size_t i = 0; i < bus::BusCounters::type_count; ++i) {
        out.sample("bytes_routed_total", label("type", type_names[i]),
                   static_cast<double>(counters.bytes[i]));
    }
    out.family("policy_denials", "counter", "Messages refused by the policy, by reason.");
    for (std::size_t i = 0; i < bus::BusCounters::denial_count; ++i) {
        out.sample("policy_denials_total", label("reason", denial_names[i]),
                   static_cast<double>(counters.denials[i]));
    }
    out.family("quota_hits", "counter", "Requests refused or connections dropped at a limit, by limit.");
    for (std::size_t i = 0; i < bus::BusCounters::quota_count; ++i) {
        out.sample("quota_hits_total", label("limit", quota_names[i]),
                   static_cast<double>(counters.quota_hits[i]));
    }
    out.family("outgoing_queued_bytes", "gauge", "Bytes written by the bus and not yet read by clients.");
    out.sample("outgoing_queued_bytes", "", static_cast<double>(queued));
    out.family("outgoing_queued_bytes_max", "gauge",
               "The longest outgoing queue of one connection, in bytes.");
    out.sample("outgoing_queued_bytes_max", "", static_cast<double>(queued_max));
    out.family("activation_starts", "counter", "Service activations started.");
    out.sample("activation_starts_total", "", static_cast<double>(counters.activation_starts));
    out.family("activation_failures", "counter", "Service activations that failed.");
    out.sample("activation_failures_total", "", static_cast<double>(counters.activation_failures));
    out.family("monitor_events_dropped", "counter",
               "Messages web monitors lost because they read too slowly.");
    out.sample("monitor_events_dropped_total", "", static_cast<double>(snapshot.monitor_events_dropped));

    out.family("routing_latency_seconds", "histogram",
               "Time from a message's arrival to its queueing on its receivers (measured while the web "
               "interface is on).");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= latency_buckets.size(); ++i) {
        cumulative += counters.latency[i];
        char bound[32];
        if (i < latency_buckets.size()) {
            std::snprintf(bound, sizeof bound, "%g", latency_buckets[i]);
        } else {
            std::snprintf(bound, sizeof bound, "+Inf");
        }
        out.sample("routing_latency_seconds_bucket", label("le", bound), static_cast<double>(cumulative));
    }
    out.sample("routing_latency_seconds_count", "", static_cast<double>(counters.latency_count));
    out.sample("routing_latency_seconds_sum", "", counters.latency_sum);
    return out.finish();
}

}  // namespace busgate::web
