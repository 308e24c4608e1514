// org.busgate.Endpoints1: busgate's own interface for container endpoints, beside the endpoints
// themselves. Who may do what is decided here, for every method:
//  - inside an endpoint: nothing (the driver's table refuses these methods before a handler runs);
//  - root and the bus's uid, on the bus's own sockets: everything, on every endpoint;
//  - any other user (Flatpak's proxy on the system bus): AddEndpoint on a listening socket it bound itself
//    (never a path: the bus creates no file for it), named "uid<UID>-...", gone when its creator's
//    connection closes, with at most max_connections_per_container connections, whose --log shows only
//    its own uid's messages; ListEndpoints, StopListening and RemoveEndpoint on its own endpoints only. This
//    grants nothing: every message through an endpoint still passes the XML policy for the connecting
//    client's own uid.
#include "bus/endpoints_interface.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "bus/endpoints.h"
#include "busgate/marshal/names.h"

namespace busgate::bus {
namespace {

using marshal::BodyReader;
using marshal::BodyWriter;
using Peer = Driver::Peer;

struct Caller {
    uid_t uid = ~0u;
    bool manages_all = false;  // root or the bus's uid, on the bus's own sockets
};

Caller caller_of(Driver& driver, const Peer& peer) {
    const core::Connection* connection = driver.daemon().core().connection(peer.id);
    Caller caller;
    caller.uid = connection ? connection->credentials().uid : ~0u;
    caller.manages_all = (caller.uid == 0 || caller.uid == driver.daemon().options().bus_uid) &&
                         peer.endpoint == core::default_endpoint;
    return caller;
}

// Far above what Flatpak passes for an app (tens of rules), far below what a message could carry.
constexpr std::size_t max_user_spec_bytes = 64 * 1024;
constexpr std::size_t max_user_spec_entries = 1024;

std::string name_prefix_of(uid_t uid) {
    return "uid" + std::to_string(uid) + "-";
}

// May `caller` see or change `endpoint`?
bool reaches(const Caller& caller, const Endpoints::Endpoint& endpoint) {
    return caller.manages_all || (endpoint.creator != 0 && endpoint.creator_uid == caller.uid);
}

// The refusal of a spec from a caller other than root and the bus's uid, or nothing; makes it go with
// its creator, and bounds its connections.
std::optional<Refusal> narrow_for_user(Driver& driver, const Caller& caller, EndpointSpec& spec,
                                       bool has_socket, bool max_connections_given) {
    if (!spec.path.empty() || !has_socket) {
        return Refusal{BusError::access_denied,
                       "Cannot add the endpoint: uid " + std::to_string(caller.uid) +
                           " may make an endpoint only on a listening socket of its own (\"Socket\"), not "
                           "on a path"};
    }
    if (const std::string prefix = name_prefix_of(caller.uid); !spec.name.starts_with(prefix)) {
        return Refusal{BusError::access_denied, "Cannot add the endpoint: an endpoint made by uid " +
                                                    std::to_string(caller.uid) +
                                                    " has a name beginning with \"" + prefix + "\""};
    }
    // What a user may make the bus hold and walk for each of its messages: at most this much of rules.
    std::size_t bytes = spec.type.size();
    std::size_t entries = 0;
    for (const auto* list : {&spec.see, &spec.talk, &spec.own}) {
        entries += list->size();
        for (const std::string& pattern : *list) {
            bytes += pattern.size();
        }
    }
    for (const auto* rules : {&spec.calls, &spec.broadcasts}) {
        entries += rules->size();
        for (const MethodRule& rule : *rules) {
            bytes += rule.name.size() + rule.interface.size() + rule.member.size() + rule.path.size();
        }
    }
    if (bytes > max_user_spec_bytes || entries > max_user_spec_entries) {
        return Refusal{BusError::limits_exceeded, "Cannot add the endpoint: an endpoint made by uid " +
                                                      std::to_string(caller.uid) + " has at most " +
                                                      std::to_string(max_user_spec_entries) + " rules of " +
                                                      std::to_string(max_user_spec_bytes) + " bytes in all"};
    }
    const std::size_t most = driver.daemon().options().max_connections_per_user_endpoint;
    if (max_connections_given && spec.max_connections > most) {
        return Refusal{BusError::limits_exceeded, "Cannot add the endpoint: an endpoint made by uid " +
                                                      std::to_string(caller.uid) + " takes at most " +
                                                      std::to_string(most) + " connections"};
    }
    if (!max_connections_given) {
        spec.max_connections = most;
    }
    spec.remove_with_creator = true;
    spec.log_only_uid = caller.uid;  // its --log shows no other user's messages
    return std::nullopt;
}

Driver::Outcome add_endpoint(Driver& driver, Peer& peer, const transport::IncomingMessage& call,
                             BodyReader& reader) {
    const Caller caller = caller_of(driver, peer);
    EndpointSpec spec;
    std::string problem;
    util::UniqueFd socket;
    bool max_connections_given = false;
    const auto strings = [&reader](std::vector<std::string>& into) {
        if (reader.peek_signature() != "as" || !reader.enter()) {
            return false;
        }
        while (!reader.at_end()) {
            const auto value = reader.read_string();
            if (!value) {
                return false;
            }
            into.emplace_back(*value);
        }
        return reader.leave();
    };
    const auto rules = [&](std::vector<MethodRule>& into) {
        std::vector<std::string> texts;
        if (!strings(texts)) {
            return false;
        }
        for (const std::string& text : texts) {
            auto rule = parse_method_rule(text, problem);
            if (!rule) {
                return false;
            }
            into.push_back(std::move(*rule));
        }
        return true;
    };
    reader.enter();
    while (!reader.at_end() && problem.empty()) {
        reader.enter();
        const std::string key(reader.read_string().value_or(""));
        reader.enter();
        bool ok = true;
        if (key == "Name" || key == "Type" || key == "Path") {
            const auto value = reader.read_string();
            ok = value.has_value();
            (key == "Name"   ? spec.name
             : key == "Type" ? spec.type
                             : spec.path) = std::string(value.value_or(""));
        } else if (key == "See") {
            ok = strings(spec.see);
        } else if (key == "Talk") {
            ok = strings(spec.talk);
        } else if (key == "Own") {
            ok = strings(spec.own);
        } else if (key == "Call") {
            ok = rules(spec.calls);
        } else if (key == "Broadcast") {
            ok = rules(spec.broadcasts);
        } else if (key == "MaxConnections") {
            const auto value = reader.read_uint32();
            ok = value.has_value();
            spec.max_connections = value.value_or(0);
            max_connections_given = true;
        } else if (key == "Socket") {
            // A listening socket the caller bound (busgate-dbus-proxy): the bus accepts on its own copy.
            const auto index = reader.read_unix_fd();
            ok = index.has_value() && *index < call.fds.size();
            if (ok) {
                socket = util::UniqueFd(::fcntl(call.fds[*index].get(), F_DUPFD_CLOEXEC, 3));
                ok = static_cast<bool>(socket);
            }
        } else if (key == "RemoveWithCreator") {
            const auto value = reader.read_boolean();
            ok = value.has_value();
            spec.remove_with_creator = value.value_or(false);
        } else if (key == "Log") {
            const auto value = reader.read_boolean();
            ok = value.has_value();
            spec.log = value.value_or(false);
        } else if (key == "SloppyNames") {
            const auto value = reader.read_boolean();
            ok = value.has_value();
            spec.sloppy_names = value.value_or(false);
        } else {
            problem = "unknown option \"" + key + "\"";
        }
        if (!ok && problem.empty()) {
            problem = "option \"" + key + "\" has the wrong type";
        }
        reader.leave();
        reader.leave();
    }
    if (!problem.empty()) {
        return Refusal{BusError::invalid_args, "Cannot add the endpoint: " + problem};
    }
    if (!caller.manages_all) {
        if (auto refusal =
                narrow_for_user(driver, caller, spec, static_cast<bool>(socket), max_connections_given)) {
            return *refusal;
        }
    }
    bool limited = false;
    const auto address = driver.daemon().endpoints().add(std::move(spec), caller.uid, peer.id, problem,
                                                         std::move(socket), &limited);
    if (!address) {
        return Refusal{limited ? BusError::limits_exceeded : BusError::invalid_args,
                       "Cannot add the endpoint: " + problem};
    }
    BodyWriter body;
    body.string(*address);
    driver.reply(peer, call, body);
    return Driver::handled;
}

Driver::Outcome list_endpoints(Driver& driver, Peer& peer, const transport::IncomingMessage& call,
                               BodyReader&) {
    const Caller caller = caller_of(driver, peer);
    BodyWriter body;
    body.open_array("(sssbuu)");
    for (const auto& [name, endpoint] : driver.daemon().endpoints().all()) {
        if (!reaches(caller, endpoint)) {
            continue;  // another user's endpoints do not exist for it
        }
        body.open_struct()
            .string(name)
            .string(endpoint.spec.type)
            .string(endpoint.address)
            .boolean(endpoint.listener.has_value())
            .uint32(static_cast<std::uint32_t>(endpoint.connections))
            .uint32(static_cast<std::uint32_t>(endpoint.spec.max_connections))
            .close_struct();
    }
    body.close_array();
    driver.reply(peer, call, body);
    return Driver::handled;
}

// Why `peer` may not change the endpoint `name`, or nothing. Another user's endpoint answers as a missing
// one: its name tells the caller nothing.
std::optional<Refusal> refusal_to_change(Driver& driver, const Peer& peer, const std::string& name) {
    const auto& all = driver.daemon().endpoints().all();
    const auto found = all.find(name);
    if (found == all.end() || !reaches(caller_of(driver, peer), found->second)) {
        return Refusal{BusError::invalid_args, "No endpoint named \"" + name + "\""};
    }
    return std::nullopt;
}

Driver::Outcome stop_listening(Driver& driver, Peer& peer, const transport::IncomingMessage& call,
                               BodyReader& reader) {
    const std::string name(*reader.read_string());
    if (auto refusal = refusal_to_change(driver, peer, name)) {
        return *refusal;
    }
    driver.daemon().endpoints().stop_listening(name);
    driver.reply(peer, call, BodyWriter());
    return Driver::handled;
}

Driver::Outcome remove_endpoint(Driver& driver, Peer& peer, const transport::IncomingMessage& call,
                                BodyReader& reader) {
    const std::string name(*reader.read_string());
    if (auto refusal = refusal_to_change(driver, peer, name)) {
        return *refusal;
    }
    driver.daemon().endpoints().remove(name);
    driver.daemon().deliver();  // its connections' NameOwnerChanged (and what they cause) come first
    driver.reply(peer, call, BodyWriter());
    return Driver::handled;
}

constexpr Driver::Method endpoints_methods[] = {
    {"AddEndpoint", "a{sv}", "s", 0, &add_endpoint},
    {"ListEndpoints", "", "a(sssbuu)", 0, &list_endpoints},
    {"StopListening", "s", "", 0, &stop_listening},
    {"RemoveEndpoint", "s", "", 0, &remove_endpoint},
};

}  // namespace

const Driver::Interface endpoints_interface_table = {endpoints_interface_name, false, "", endpoints_methods};

}  // namespace busgate::bus
