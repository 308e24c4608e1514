// The driver's methods about connections: credentials, match rules, monitors and statistics.
#include <fcntl.h>
#include <sys/socket.h>

#include <cstdint>

#include "bus/driver.h"
#include "bus/endpoints.h"
#include "bus/errors.h"
#include "busgate/marshal/protocol.h"

namespace busgate::bus {
namespace {

using marshal::BodyReader;
using marshal::BodyWriter;
using marshal::bus_name;

void add_uint32(BodyWriter& body, std::string_view key, std::uint32_t value) {
    body.open_dict_entry().string(key).open_variant("u").uint32(value).close_variant().close_dict_entry();
}

}  // namespace

Driver::Outcome Driver::get_connection_unix_user(Peer& peer, const transport::IncomingMessage& call,
                                                 BodyReader& reader) {
    const std::string name(*reader.read_string());
    const core::Connection* connection = connection_for(peer, name, true);
    if (connection == nullptr) {
        return no_such_name("UID", name);
    }
    BodyWriter body;
    body.uint32(connection->credentials().uid);
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::get_connection_unix_process_id(Peer& peer, const transport::IncomingMessage& call,
                                                       BodyReader& reader) {
    const std::string name(*reader.read_string());
    const core::Connection* connection = connection_for(peer, name, true);
    if (connection == nullptr) {
        return no_such_name("PID", name);
    }
    BodyWriter body;
    body.uint32(static_cast<std::uint32_t>(connection->credentials().pid));
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::get_connection_credentials(Peer& peer, const transport::IncomingMessage& call,
                                                   BodyReader& reader) {
    const std::string name(*reader.read_string());
    const core::Connection* connection = connection_for(peer, name, true);
    if (connection == nullptr) {
        return no_such_name("credentials", name);
    }
    const core::Credentials& credentials = connection->credentials();
    BodyWriter body;
    body.open_array("{sv}");
    body.open_dict_entry()
        .string("UnixUserID")
        .open_variant("u")
        .uint32(credentials.uid)
        .close_variant()
        .close_dict_entry();
    // As dbus-daemon: the primary group and the supplementary ones (SO_PEERGROUPS leaves the primary out).
    std::vector<std::uint32_t> groups = credentials.groups;
    if (credentials.gid != ~0u) {
        groups.push_back(credentials.gid);
    }
    std::sort(groups.begin(), groups.end());
    groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
    if (!groups.empty() && connection->id() != daemon_.driver_id()) {
        body.open_dict_entry().string("UnixGroupIDs").open_variant("au").open_array("u");
        for (const std::uint32_t gid : groups) {
            body.uint32(gid);
        }
        body.close_array().close_variant().close_dict_entry();
    }
    if (credentials.pid > 0) {
        body.open_dict_entry()
            .string("ProcessID")
            .open_variant("u")
            .uint32(static_cast<std::uint32_t>(credentials.pid));
        body.close_variant().close_dict_entry();
    }
    // busgate: which container endpoint the connection came through (absent for the bus's own sockets).
    if (const Endpoints::Endpoint* endpoint = daemon_.endpoints().find(connection->endpoint())) {
        body.open_dict_entry().string("EndpointName").open_variant("s").string(endpoint->spec.name);
        body.close_variant().close_dict_entry();
        if (!endpoint->spec.type.empty()) {
            body.open_dict_entry().string("EndpointType").open_variant("s").string(endpoint->spec.type);
            body.close_variant().close_dict_entry();
        }
        // Who made it: a service can tell a root-made sandbox from one any user made for itself.
        body.open_dict_entry()
            .string("EndpointCreatorUnixUserID")
            .open_variant("u")
            .uint32(static_cast<std::uint32_t>(endpoint->creator_uid));
        body.close_variant().close_dict_entry();
    }
    // ProcessFD (dbus-daemon 1.15): a pidfd of the process, for callers that can receive fds.
    std::vector<util::UniqueFd> fds;
    // Taken from the socket only now (the kernel keeps the process as it was when it connected, so the pidfd
    // cannot name a later process with the same pid): a connection costs the bus one descriptor, not two.
    const Peer* target = daemon_.peers().find(connection->id());
    if (target != nullptr && peer.connection->unix_fds_allowed()) {
        if (util::UniqueFd copy = transport::peer_pidfd(target->connection->fd()); copy) {
            body.open_dict_entry()
                .string("ProcessFD")
                .open_variant("h")
                .unix_fd(0)
                .close_variant()
                .close_dict_entry();
            fds.push_back(std::move(copy));
        }
    }
    if (!credentials.security_label.empty()) {
        // dbus-daemon sends the label with its trailing nul, as an array of bytes.
        body.open_dict_entry().string("LinuxSecurityLabel").open_variant("ay").open_array("y");
        for (const char c : credentials.security_label) {
            body.byte(static_cast<std::uint8_t>(c));
        }
        body.byte(0).close_array().close_variant().close_dict_entry();
    }
    body.close_array();
    daemon_.send_from_bus({.type = marshal::MessageType::method_return,
                           .destination = peer.unique_name,
                           .reply_serial = call.header.serial},
                          body, std::move(fds));
    return handled;
}

Driver::Outcome Driver::get_adt_audit_session_data(Peer& peer, const transport::IncomingMessage&,
                                                   BodyReader& reader) {
    const std::string name(*reader.read_string());
    if (name != bus_name && connection_for(peer, name) == nullptr) {
        return no_such_name("audit session data", name);
    }
    return Refusal{BusError::adt_audit_data_unknown,
                   "Could not determine audit session data for '" + name + "'"};
}

Driver::Outcome Driver::get_connection_selinux_security_context(Peer& peer, const transport::IncomingMessage&,
                                                                BodyReader& reader) {
    const std::string name(*reader.read_string());
    if (name != bus_name && connection_for(peer, name) == nullptr) {
        return no_such_name("security context", name);
    }
    return Refusal{BusError::selinux_context_unknown,
                   "Could not determine security context for '" + name + "'"};
}

Driver::Outcome Driver::add_match(Peer& peer, const transport::IncomingMessage& call, BodyReader& reader) {
    const ParsedMatchRule parsed = parse_match_rule(*reader.read_string());
    if (!parsed.ok()) {
        return Refusal{parsed.error_name, parsed.error_message};
    }
    // Eavesdropping takes privilege whatever the policy says, as in dbus-daemon 1.14; and nobody eavesdrops
    // through a container endpoint (xdg-dbus-proxy refuses the rule too).
    if (parsed.rule->eavesdrop) {
        if (Outcome refusal = privilege_refusal(peer, "AddMatch")) {
            return refusal;
        }
    }
    if (peer.matches.size() >= daemon_.options().max_match_rules_per_connection) {
        ++daemon_.counters().quota_hits[BusCounters::match_rules];
        return Refusal{
            BusError::limits_exceeded,
            "Connection \"" + peer.unique_name +
                "\" is not allowed to add more match rules (increase limits in configuration file if "
                "required; max_match_rules_per_connection=" +
                std::to_string(daemon_.options().max_match_rules_per_connection) + ")"};
    }
    if (!daemon_.install_match(peer, *parsed.rule)) {
        return Refusal{BusError::limits_exceeded,
                       "Connection \"" + peer.unique_name + "\" is not allowed to add more match rules"};
    }
    reply(peer, call, BodyWriter());
    return handled;
}

Driver::Outcome Driver::remove_match(Peer& peer, const transport::IncomingMessage& call, BodyReader& reader) {
    const ParsedMatchRule parsed = parse_match_rule(*reader.read_string());
    if (!parsed.ok()) {
        return Refusal{parsed.error_name, parsed.error_message};
    }
    // dbus-daemon removes the most recently added equal rule.
    for (auto it = peer.matches.rbegin(); it != peer.matches.rend(); ++it) {
        if (it->rule == *parsed.rule) {
            if (it->in_core) {
                (void)daemon_.core().remove_match(peer.id, it->cookie);
            }
            if (it->rule.eavesdrop) {
                daemon_.peers().eavesdrop_rule_removed(peer);
            }
            peer.remove_match(static_cast<std::size_t>(std::next(it).base() - peer.matches.begin()));
            reply(peer, call, BodyWriter());
            return handled;
        }
    }
    return Refusal{BusError::match_rule_not_found, "The given match rule wasn't found and can't be removed"};
}

Driver::Outcome Driver::become_monitor(Peer& peer, const transport::IncomingMessage& call,
                                       BodyReader& reader) {
    std::vector<std::string_view> texts;
    reader.enter();
    while (!reader.at_end()) {
        texts.push_back(*reader.read_string());
    }
    reader.leave();
    if (*reader.read_uint32() != 0) {
        return Refusal{BusError::invalid_args, "BecomeMonitor does not support any flags yet"};
    }
    if (texts.empty()) {
        texts.push_back("");  // no rules: everything
    }
    std::vector<MatchRule> rules;
    for (const std::string_view text : texts) {
        ParsedMatchRule parsed = parse_match_rule(text);
        if (!parsed.ok()) {
            return Refusal{parsed.error_name, parsed.error_message};
        }
        rules.push_back(std::move(*parsed.rule));
    }
    reply(peer, call, BodyWriter());
    daemon_.become_monitor(peer, std::move(rules));
    return handled;
}

Driver::Outcome Driver::get_stats(Peer& peer, const transport::IncomingMessage& call, BodyReader&) {
    std::uint32_t match_rules = 0;
    for (const auto& [id, other] : daemon_.peers().by_id()) {
        match_rules += static_cast<std::uint32_t>(other->matches.size());
    }
    BodyWriter body;
    body.open_array("{sv}");
    add_uint32(body, "Serial", daemon_.last_serial());
    add_uint32(body, "ActiveConnections", static_cast<std::uint32_t>(daemon_.peers().by_id().size()));
    add_uint32(body, "IncompleteConnections", static_cast<std::uint32_t>(daemon_.incomplete_count()));
    add_uint32(body, "MatchRules", match_rules);
    add_uint32(body, "BusNames",
               static_cast<std::uint32_t>(daemon_.core().list(peer.id, core::list_flag::names).size()));
    body.close_array();
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::get_connection_stats(Peer& peer, const transport::IncomingMessage& call,
                                             BodyReader& reader) {
    const std::string name(*reader.read_string());
    if (name == bus_name) {
        return Refusal{BusError::invalid_args,
                       "GetConnectionStats is not meaningful for the message bus \"" + name + "\" itself"};
    }
    const core::Connection* connection = connection_for(peer, name);
    const Peer* target = connection != nullptr ? daemon_.peers().find(connection->id()) : nullptr;
    if (target == nullptr) {
        return no_such_name("statistics", name);
    }
    BodyWriter body;
    body.open_array("{sv}");
    add_uint32(body, "Serial", daemon_.last_serial());
    body.open_dict_entry().string("UniqueName").open_variant("s").string(target->unique_name);
    body.close_variant().close_dict_entry();
    add_uint32(body, "MatchRules", static_cast<std::uint32_t>(target->matches.size()));
    add_uint32(body, "OutgoingBytes", static_cast<std::uint32_t>(target->connection->queued_bytes()));
    body.close_array();
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::get_all_match_rules(Peer& peer, const transport::IncomingMessage& call, BodyReader&) {
    BodyWriter body;
    body.open_array("{sas}");
    for (const auto& [id, other] : daemon_.peers().by_id()) {
        body.open_dict_entry().string(other->unique_name).open_array("s");
        for (const auto& installed : other->matches) {
            body.string(installed.rule.to_string());
        }
        body.close_array().close_dict_entry();
    }
    body.close_array();
    reply(peer, call, body);
    return handled;
}

}  // namespace busgate::bus
