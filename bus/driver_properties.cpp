// The driver's properties and its introspection data.
#include <algorithm>
#include <cstddef>

#include "bus/driver.h"
#include "bus/errors.h"
#include "busgate/marshal/protocol.h"
#include "busgate/marshal/signature.h"

namespace busgate::bus {
namespace {

using marshal::BodyReader;
using marshal::BodyWriter;
using marshal::bus_interface;
using marshal::bus_path;

// The bus's interfaces property, as dbus-daemon 1.14 lists it.
const std::vector<std::string_view> extra_interfaces = {"org.freedesktop.DBus.Monitoring",
                                                        "org.freedesktop.DBus.Debug.Stats"};

std::string interface_not_found(std::string_view interface) {
    return "Interface \"" + std::string(interface) + "\" not found";
}

}  // namespace

std::vector<std::string_view> Driver::daemon_features() const {
    std::vector<std::string_view> features = {"ActivatableServicesChanged", "HeaderFiltering"};
    if (daemon_.options().systemd_activation) {
        features.push_back("SystemdActivation");
    }
    return features;
}

bool Driver::has_interface(std::string_view name) {
    return std::any_of(std::begin(interfaces), std::end(interfaces),
                       [name](const Interface* interface) { return interface->name == name; });
}

std::optional<std::vector<std::string_view>> Driver::property(std::string_view interface,
                                                              std::string_view name) const {
    if (interface != bus_interface) {
        return std::nullopt;
    }
    if (name == "Features") {
        return daemon_features();
    }
    if (name == "Interfaces") {
        return extra_interfaces;
    }
    return std::nullopt;
}

Driver::Outcome Driver::properties_get(Peer& peer, const transport::IncomingMessage& call,
                                       BodyReader& reader) {
    const std::string interface(*reader.read_string());
    const std::string name(*reader.read_string());
    if (!has_interface(interface)) {
        return Refusal{BusError::unknown_interface, interface_not_found(interface)};
    }
    const auto values = property(interface, name);
    if (!values) {
        return Refusal{BusError::unknown_property, "Property \"" + interface + "." + name + "\" not found"};
    }
    BodyWriter body;
    body.open_variant("as").open_array("s");
    for (std::string_view value : *values) {
        body.string(value);
    }
    body.close_array().close_variant();
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::properties_get_all(Peer& peer, const transport::IncomingMessage& call,
                                           BodyReader& reader) {
    const std::string interface(*reader.read_string());
    if (!has_interface(interface)) {
        return Refusal{BusError::unknown_interface, interface_not_found(interface)};
    }
    BodyWriter body;
    body.open_array("{sv}");
    for (const std::string_view name : {"Features", "Interfaces"}) {
        const auto values = property(interface, name);
        if (!values) {
            continue;
        }
        body.open_dict_entry().string(name).open_variant("as").open_array("s");
        for (std::string_view value : *values) {
            body.string(value);
        }
        body.close_array().close_variant().close_dict_entry();
    }
    body.close_array();
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::properties_set(Peer&, const transport::IncomingMessage&, BodyReader& reader) {
    const std::string interface(*reader.read_string());
    const std::string name(*reader.read_string());
    if (!has_interface(interface)) {
        return Refusal{BusError::unknown_interface, interface_not_found(interface)};
    }
    if (property(interface, name)) {
        return Refusal{BusError::property_read_only,
                       "Property '" + interface + "." + name + "' cannot be set"};
    }
    return Refusal{BusError::unknown_property, "Property \"" + interface + "." + name + "\" not found"};
}

std::string Driver::introspection_xml(std::string_view path) {
    const bool canonical_path = path == bus_path;
    std::string xml =
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
        "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n"
        "<node>\n";
    const auto arguments = [&xml](std::string_view signature, const char* direction) {
        for (std::size_t at = 0; at < signature.size();) {
            const std::size_t end = marshal::complete_type_end(signature, at);
            xml += "      <arg direction=\"" + std::string(direction) + "\" type=\"" +
                   std::string(signature.substr(at, end - at)) + "\"/>\n";
            at = end;
        }
    };
    for (const Interface* interface : interfaces) {
        if (!canonical_path && !interface->any_path) {
            continue;
        }
        xml += "  <interface name=\"" + std::string(interface->name) + "\">\n";
        for (const Method& method : interface->methods) {
            xml += "    <method name=\"" + std::string(method.member) + "\">\n";
            arguments(method.in_signature, "in");
            arguments(method.out_signature, "out");
            xml += "    </method>\n";
        }
        xml += interface->introspection;
        xml += "  </interface>\n";
    }
    // Make the driver's object path discoverable from its ancestors.
    if (path == "/") {
        xml += "  <node name=\"org/freedesktop/DBus\"/>\n";
    } else if (path == "/org") {
        xml += "  <node name=\"freedesktop/DBus\"/>\n";
    } else if (path == "/org/freedesktop") {
        xml += "  <node name=\"DBus\"/>\n";
    }
    xml += "</node>\n";
    return xml;
}

}  // namespace busgate::bus
