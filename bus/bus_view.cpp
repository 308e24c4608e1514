// The bus's read-only view for observers (bus/observer.h): snapshots of the bus and policy checks,
// computed on the bus thread on request, so an observer's thread never reads bus state.
#include <sys/epoll.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>

#include "bus/bus_daemon.h"
#include "busgate/marshal/names.h"
#include "busgate/util/users.h"

namespace busgate::bus {
namespace {

constexpr std::string_view bus_name = "org.freedesktop.DBus";

std::string xml_escaped(std::string_view text) {
    std::string escaped;
    for (const char c : text) {
        switch (c) {
            case '&':
                escaped += "&amp;";
                break;
            case '<':
                escaped += "&lt;";
                break;
            case '>':
                escaped += "&gt;";
                break;
            case '"':
                escaped += "&quot;";
                break;
            default:
                escaped += c;
        }
    }
    return escaped;
}

// A rule written back as the XML element it came from (after dbus-daemon's normalisation).
std::string rule_as_xml(const policy::Rule& rule) {
    std::string xml = rule.allow ? "<allow" : "<deny";
    const auto attribute = [&xml](std::string_view key, std::string_view value) {
        xml += ' ';
        xml += key;
        xml += "=\"" + xml_escaped(value) + "\"";
    };
    const bool send = rule.kind == policy::RuleKind::send;
    switch (rule.kind) {
        case policy::RuleKind::own:
            attribute(rule.name_is_prefix ? "own_prefix" : "own", rule.name.value_or("*"));
            break;
        case policy::RuleKind::user:
            attribute("user", rule.id ? std::to_string(*rule.id) : "*");
            break;
        case policy::RuleKind::group:
            attribute("group", rule.id ? std::to_string(*rule.id) : "*");
            break;
        case policy::RuleKind::send:
        case policy::RuleKind::receive: {
            const std::string prefix = send ? "send_" : "receive_";
            if (rule.message_type != policy::RuleMessageType::any) {
                attribute(prefix + "type",
                          message_type_name(static_cast<marshal::MessageType>(rule.message_type)));
            }
            if (rule.name) {
                attribute(send ? (rule.name_is_prefix ? "send_destination_prefix" : "send_destination")
                               : "receive_sender",
                          *rule.name);
            }
            if (rule.path) {
                attribute(prefix + "path", *rule.path);
            }
            if (rule.interface) {
                attribute(prefix + "interface", *rule.interface);
            }
            if (rule.member) {
                attribute(prefix + "member", *rule.member);
            }
            if (rule.error) {
                attribute(prefix + "error", *rule.error);
            }
            if (send && rule.broadcast != policy::Tristate::any) {
                attribute("send_broadcast", rule.broadcast == policy::Tristate::yes ? "true" : "false");
            }
            if (rule.eavesdrop) {
                attribute("eavesdrop", "true");
            }
            if (rule.requested_reply != rule.allow) {
                attribute(prefix + "requested_reply", rule.requested_reply ? "true" : "false");
            }
            if (rule.min_fds != 0) {
                attribute("min_fds", std::to_string(rule.min_fds));
            }
            if (rule.max_fds != policy::Rule::max_message_unix_fds) {
                attribute("max_fds", std::to_string(rule.max_fds));
            }
            if (rule.log) {
                attribute("log", "true");
            }
            break;
        }
    }
    return xml + "/>";
}

std::string location_of(const policy::Rule& rule) {
    return rule.where.file + ":" + std::to_string(rule.where.line);
}

std::optional<marshal::MessageType> message_type_named(std::string_view name) {
    for (const auto type : {marshal::MessageType::method_call, marshal::MessageType::method_return,
                            marshal::MessageType::error, marshal::MessageType::signal}) {
        if (message_type_name(type) == name) {
            return type;
        }
    }
    return std::nullopt;
}

}  // namespace

void BusDaemon::attach_observer(std::shared_ptr<BusObserver> observer) {
    observer_ = std::move(observer);
    loop_.add(observer_->wake_fd(), EPOLLIN, [this](std::uint32_t) {
        observer_->run_posted();
        deliver();
    });
}

BusSnapshot BusDaemon::snapshot() {
    BusSnapshot snapshot;
    std::map<std::string, BusSnapshot::Name> names;
    for (const core::ListEntry& entry : bus_.list(
             driver_id_, core::list_flag::names | core::list_flag::queued | core::list_flag::activators)) {
        if (entry.name.empty()) {
            continue;
        }
        BusSnapshot::Name& name = names[entry.name];
        name.name = entry.name;
        if (entry.name_flags & core::name_flag::activator) {
            name.activatable = true;
        } else if (entry.name_flags & core::name_flag::in_queue) {
            name.queue.push_back(unique_name_of(entry.id));
        } else {
            name.owner = unique_name_of(entry.id);
        }
    }
    for (auto& [key, name] : names) {
        snapshot.names.push_back(std::move(name));
    }
    std::map<std::string, std::size_t> per_endpoint;
    peers_.for_each([&](const Peer& peer) {
        if (!peer.registered() && !peer.monitor) {
            return;
        }
        ++per_endpoint[peer.listener_address];
        BusSnapshot::Connection connection;
        connection.unique_name = peer.unique_name;
        connection.endpoint = peer.listener_address;
        connection.monitor = peer.monitor;
        connection.queued_bytes = peer.connection->queued_bytes();
        if (const core::Connection* core_connection =
                peer.registered() ? bus_.connection(peer.id) : nullptr) {
            const core::Credentials& credentials = core_connection->credentials();
            connection.uid = credentials.uid;
            connection.gid = credentials.gid;
            connection.pid = credentials.pid;
            connection.security_label = credentials.security_label;
            connection.names = bus_.owned_names(peer.id);
        } else {
            const transport::PeerCredentials& credentials = peer.connection->credentials();
            connection.uid = credentials.uid.value_or(~0u);
            connection.gid = credentials.gid.value_or(~0u);
            connection.pid = credentials.pid;
        }
        for (const InstalledMatch& installed : peer.matches) {
            connection.match_rules.push_back(installed.rule.to_string());
        }
        for (const MatchRule& rule : peer.monitor_rules) {
            connection.match_rules.push_back(rule.to_string());
        }
        snapshot.connections.push_back(std::move(connection));
    });
    std::ranges::sort(snapshot.connections, [](const auto& a, const auto& b) {
        return id_of_unique_name(a.unique_name) < id_of_unique_name(b.unique_name);
    });
    std::string_view previous;
    for (const transport::Listener& listener : acceptor_.listeners()) {
        if (listener.connectable == previous) {
            continue;
        }
        previous = listener.connectable;
        snapshot.endpoints.push_back({listener.connectable, per_endpoint[listener.connectable]});
    }
    if (options_.policy) {
        const policy::PolicyRules& rules = *options_.policy;
        const auto add = [&snapshot](const std::string& context, const std::vector<policy::Rule>& list) {
            for (const policy::Rule& rule : list) {
                snapshot.policy.push_back({context, rule_as_xml(rule), location_of(rule)});
            }
        };
        add("default", rules.default_rules);
        for (const auto& [gid, list] : rules.group_rules) {
            add("group=" + std::to_string(gid), list);
        }
        for (const auto& [uid, list] : rules.user_rules) {
            add("user=" + std::to_string(uid), list);
        }
        add("at_console=true", rules.at_console_rules);
        add("at_console=false", rules.not_at_console_rules);
        add("mandatory", rules.mandatory_rules);
    }
    const core::BusLimits& core_limits = options_.core.limits;
    snapshot.limits = {
        {"max_message_size", options_.client.max_message_size},
        {"max_message_unix_fds", options_.client.max_message_unix_fds},
        {"max_outgoing_bytes", options_.client.max_outgoing_bytes},
        {"max_incomplete_connections", options_.max_incomplete_connections},
        {"max_completed_connections", options_.max_completed_connections},
        {"max_connections_per_user", options_.max_connections_per_user},
        {"max_match_rules_per_connection", options_.max_match_rules_per_connection},
        {"max_names_per_connection", core_limits.max_names_per_connection + 1},
        {"max_replies_per_connection", core_limits.max_pending_replies_per_connection},
        {"max_pending_service_starts", options_.max_pending_service_starts},
        {"service_start_timeout_ms", options_.service_start_timeout_ns / 1'000'000},
        {"auth_timeout_ms", options_.auth_timeout_ns / 1'000'000},
        {"reply_timeout_ms", options_.reply_timeout_ns.value_or(0) / 1'000'000},
    };
    snapshot.incomplete_connections = acceptor_.incomplete_count();
    snapshot.counters = counters_;
    return snapshot;
}

PolicyCheckResult BusDaemon::check_policy(const PolicyCheckRequest& request) {
    PolicyCheckResult result;
    const auto type = message_type_named(request.type);
    if (!type) {
        result.error = "unknown message type \"" + request.type + "\"";
        return result;
    }
    Peer* sender = nullptr;
    if (!request.sender.empty()) {
        sender = peers_.find(id_of_unique_name(request.sender));
        if (sender == nullptr) {
            result.error = "no connection " + request.sender;
            return result;
        }
    } else if (!request.uid) {
        result.error = "give a sender (unique name) or a uid";
        return result;
    }
    Peer* recipient = nullptr;
    if (!request.destination.empty() && request.destination != bus_name) {
        const core::ConnectionId target = marshal::is_unique_name(request.destination)
                                              ? id_of_unique_name(request.destination)
                                              : [this, &request]() -> core::ConnectionId {
            const auto owner = bus_.name_owner(driver_id_, request.destination);
            return owner ? *owner : 0;
        }();
        recipient = peers_.find(target);
        if (recipient != nullptr) {
            result.recipient = recipient->unique_name;
        }
    } else if (request.destination == bus_name) {
        result.recipient = std::string(bus_name);
    }
    if (!policy_) {
        result.allowed = true;
        result.verdict = "allowed";
        return result;
    }
    policy::ClientPolicy uid_policy;
    policy::PeerNames uid_names;
    const std::string sender_name = sender ? sender->unique_name : std::string(":1.0");
    if (sender == nullptr) {
        std::vector<std::uint32_t> groups;
        if (const auto user = util::user_by_uid(*request.uid)) {
            groups.push_back(user->gid);
        }
        uid_policy = policy_->for_connection({.uid = *request.uid, .groups = std::move(groups)});
        const std::string names[] = {sender_name};
        uid_names = policy_->prepare_names(std::span<const std::string>(names));
    }
    const auto field = [](const std::string& value) {
        return value.empty() ? std::nullopt : std::optional<std::string_view>(value);
    };
    const policy::MessageInfo info{.type = *type,
                                   .path = field(request.path),
                                   .interface = field(request.interface),
                                   .member = field(request.member),
                                   .error_name = field(request.error_name),
                                   .destination = field(request.destination),
                                   .sender = sender_name,
                                   .has_reply_serial = *type == marshal::MessageType::method_return ||
                                                       *type == marshal::MessageType::error};
    const policy::PreparedMessage prepared = policy_->prepare(info);
    policy::Route route;
    route.sender = sender ? &sender->policy : &uid_policy;
    route.sender_names = sender ? &names_of(*sender) : &uid_names;
    if (recipient != nullptr) {
        route.recipient = &recipient->policy;
        route.recipient_names = &names_of(*recipient);
    }
    const policy::RouteDecision decision = policy_->check_route(prepared, route);
    result.allowed = decision.verdict == policy::Verdict::allowed;
    result.verdict = decision.verdict == policy::Verdict::allowed       ? "allowed"
                     : decision.verdict == policy::Verdict::send_denied ? "send_denied"
                                                                        : "receive_denied";
    result.matched_rules = decision.decision.matched_rules;
    if (const policy::Rule* rule = decision.decision.rule) {
        result.rule = rule_as_xml(*rule);
        result.where = location_of(*rule);
    }
    return result;
}

}  // namespace busgate::bus
