// org.busgate.Endpoints1: busgate's own interface for container endpoints, beside the endpoints
// themselves. Every method is privileged (the bus's uid or root on the bus's own sockets); the driver's
// dispatch checks that from the table before a handler runs.
#include "bus/endpoints_interface.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cstdint>

#include "bus/endpoints.h"
#include "busgate/marshal/names.h"

namespace busgate::bus {
namespace {

using marshal::BodyReader;
using marshal::BodyWriter;
using Peer = Driver::Peer;

Driver::Outcome add_endpoint(Driver& driver, Peer& peer, const transport::IncomingMessage& call,
                             BodyReader& reader) {
    EndpointSpec spec;
    std::string problem;
    util::UniqueFd socket;
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
    const core::Connection* creator = driver.daemon().core().connection(peer.id);
    const auto address = driver.daemon().endpoints().add(
        std::move(spec), creator ? creator->credentials().uid : ~0u, peer.id, problem, std::move(socket));
    if (!address) {
        return Refusal{problem.find("most endpoints") != std::string::npos ? BusError::limits_exceeded
                                                                           : BusError::invalid_args,
                       "Cannot add the endpoint: " + problem};
    }
    BodyWriter body;
    body.string(*address);
    driver.reply(peer, call, body);
    return Driver::handled;
}

Driver::Outcome list_endpoints(Driver& driver, Peer& peer, const transport::IncomingMessage& call,
                               BodyReader&) {
    BodyWriter body;
    body.open_array("(sssbuu)");
    for (const auto& [name, endpoint] : driver.daemon().endpoints().all()) {
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

Driver::Outcome stop_listening(Driver& driver, Peer& peer, const transport::IncomingMessage& call,
                               BodyReader& reader) {
    const std::string name(*reader.read_string());
    if (!driver.daemon().endpoints().stop_listening(name)) {
        return Refusal{BusError::invalid_args, "No endpoint named \"" + name + "\""};
    }
    driver.reply(peer, call, BodyWriter());
    return Driver::handled;
}

Driver::Outcome remove_endpoint(Driver& driver, Peer& peer, const transport::IncomingMessage& call,
                                BodyReader& reader) {
    const std::string name(*reader.read_string());
    if (!driver.daemon().endpoints().remove(name)) {
        return Refusal{BusError::invalid_args, "No endpoint named \"" + name + "\""};
    }
    driver.daemon().deliver();  // its connections' NameOwnerChanged (and what they cause) come first
    driver.reply(peer, call, BodyWriter());
    return Driver::handled;
}

constexpr Driver::Method endpoints_methods[] = {
    {"AddEndpoint", "a{sv}", "s", Driver::privileged, &add_endpoint},
    {"ListEndpoints", "", "a(sssbuu)", Driver::privileged, &list_endpoints},
    {"StopListening", "s", "", Driver::privileged, &stop_listening},
    {"RemoveEndpoint", "s", "", Driver::privileged, &remove_endpoint},
};

}  // namespace

const Driver::Interface endpoints_interface_table = {endpoints_interface_name, false, "", endpoints_methods};

}  // namespace busgate::bus
