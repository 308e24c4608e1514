// D-Bus values to JSON in the dbus-json3 mapping (see dbus_json.h).
#include "web/dbus_json.h"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <cstddef>
#include <string>

#include "bus/match_rule.h"
#include "busgate/marshal/reader.h"
#include "busgate/marshal/types.h"

namespace busgate::web {
namespace {

namespace json = boost::json;
using marshal::BodyReader;

constexpr std::size_t max_depth = 64;  // the D-Bus limit on nesting

std::string base64(std::span<const std::uint8_t> bytes) {
    std::string text(boost::beast::detail::base64::encoded_size(bytes.size()), '\0');
    text.resize(boost::beast::detail::base64::encode(text.data(), bytes.data(), bytes.size()));
    return text;
}

std::optional<json::value> read_value(BodyReader& reader, std::size_t depth);

// A dictionary key as an object key: strings as they are, numbers and booleans as their text.
std::optional<std::string> key_text(const json::value& key) {
    if (key.is_string()) {
        return std::string(key.as_string());
    }
    if (key.is_bool()) {
        return key.as_bool() ? "true" : "false";
    }
    if (key.is_int64()) {
        return std::to_string(key.as_int64());
    }
    if (key.is_uint64()) {
        return std::to_string(key.as_uint64());
    }
    if (key.is_double()) {
        return json::serialize(key);
    }
    return std::nullopt;
}

std::optional<json::value> read_container(BodyReader& reader, char code, std::string_view signature,
                                          std::size_t depth) {
    if (depth > max_depth || !reader.enter()) {
        return std::nullopt;
    }
    json::value result;
    if (code == marshal::type::variant) {
        const std::string contained(reader.container_signature());
        auto value = read_value(reader, depth + 1);
        if (!value) {
            return std::nullopt;
        }
        result = json::object{{"t", contained}, {"v", std::move(*value)}};
    } else if (code == marshal::type::array && signature == "ay") {
        std::vector<std::uint8_t> bytes;
        while (!reader.at_end()) {
            const auto byte = reader.read_byte();
            if (!byte) {
                return std::nullopt;
            }
            bytes.push_back(*byte);
        }
        result = json::string(base64(bytes));
    } else if (code == marshal::type::array && signature.size() > 1 && signature[1] == '{') {
        json::object object;
        while (!reader.at_end()) {
            if (!reader.enter()) {
                return std::nullopt;
            }
            auto key = read_value(reader, depth + 1);
            auto value = key ? read_value(reader, depth + 1) : std::nullopt;
            const auto text = key ? key_text(*key) : std::nullopt;
            if (!value || !text || !reader.leave()) {
                return std::nullopt;
            }
            object[*text] = std::move(*value);
        }
        result = std::move(object);
    } else {
        json::array array;
        while (!reader.at_end()) {
            auto value = read_value(reader, depth + 1);
            if (!value) {
                return std::nullopt;
            }
            array.push_back(std::move(*value));
        }
        result = std::move(array);
    }
    if (!reader.leave()) {
        return std::nullopt;
    }
    return result;
}

template <typename T>
std::optional<json::value> number(std::optional<T> value) {
    if (!value) {
        return std::nullopt;
    }
    return json::value(*value);
}

std::optional<json::value> text(std::optional<std::string_view> value) {
    if (!value) {
        return std::nullopt;
    }
    return json::value(json::string(*value));
}

std::optional<json::value> read_value(BodyReader& reader, std::size_t depth) {
    namespace type = marshal::type;
    const char code = reader.peek();
    switch (code) {
        case type::byte:
            return number(reader.read_byte());
        case type::boolean:
            return number(reader.read_boolean());
        case type::int16:
            return number(reader.read_int16());
        case type::uint16:
            return number(reader.read_uint16());
        case type::int32:
            return number(reader.read_int32());
        case type::uint32:
            return number(reader.read_uint32());
        case type::int64:
            return number(reader.read_int64());
        case type::uint64:
            return number(reader.read_uint64());
        case type::double_:
            return number(reader.read_double());
        case type::unix_fd:
            return number(reader.read_unix_fd());
        case type::string:
            return text(reader.read_string());
        case type::object_path:
            return text(reader.read_object_path());
        case type::signature:
            return text(reader.read_signature());
        case type::array:
        case type::struct_begin:
        case type::variant: {
            const std::string signature(reader.peek_signature());
            return read_container(reader, code, signature, depth);
        }
        default:
            return std::nullopt;
    }
}

}  // namespace

json::value body_to_json(std::span<const std::uint8_t> message, const marshal::MessageHeader& header) {
    if (header.body_offset + std::size_t{header.body_length} > message.size()) {
        return nullptr;
    }
    BodyReader reader(message, header);
    json::array values;
    while (!reader.at_end()) {
        auto value = read_value(reader, 0);
        if (!value) {
            return nullptr;
        }
        values.push_back(std::move(*value));
    }
    return values;
}

json::object message_to_json(std::span<const std::uint8_t> message, const marshal::MessageHeader& header,
                             bool with_body) {
    json::object object;
    object["type"] = bus::message_type_name(header.type);
    object["serial"] = header.serial;
    object["flags"] = header.flags;
    const auto field = [&](marshal::HeaderField code, std::string_view key, std::string_view value) {
        if (header.has(code)) {
            object[key] = value;
        }
    };
    field(marshal::HeaderField::sender, "sender", header.sender);
    field(marshal::HeaderField::destination, "destination", header.destination);
    field(marshal::HeaderField::path, "path", header.path);
    field(marshal::HeaderField::interface, "interface", header.interface);
    field(marshal::HeaderField::member, "member", header.member);
    field(marshal::HeaderField::error_name, "error_name", header.error_name);
    if (header.has(marshal::HeaderField::reply_serial)) {
        object["reply_serial"] = header.reply_serial;
    }
    object["signature"] = header.signature;
    if (with_body) {
        object["body"] = body_to_json(message, header);
    }
    return object;
}

boost::json::value snapshot_route(const bus::BusSnapshot& snapshot, std::string_view route) {
    if (route == "names") {
        boost::json::array names;
        for (const bus::BusSnapshot::Name& name : snapshot.names) {
            boost::json::array queue;
            for (const std::string& waiting : name.queue) {
                queue.emplace_back(waiting);
            }
            boost::json::object entry{
                {"name", name.name}, {"queue", std::move(queue)}, {"activatable", name.activatable}};
            entry["owner"] =
                name.owner.empty() ? boost::json::value(nullptr) : boost::json::value(name.owner);
            names.push_back(std::move(entry));
        }
        return names;
    }
    if (route == "connections") {
        boost::json::array connections;
        for (const bus::BusSnapshot::Connection& connection : snapshot.connections) {
            boost::json::array names(connection.names.begin(), connection.names.end());
            boost::json::array rules(connection.match_rules.begin(), connection.match_rules.end());
            connections.push_back(boost::json::object{{"unique_name", connection.unique_name},
                                                      {"endpoint", connection.endpoint},
                                                      {"uid", connection.uid},
                                                      {"gid", connection.gid},
                                                      {"pid", connection.pid},
                                                      {"security_label", connection.security_label},
                                                      {"names", std::move(names)},
                                                      {"match_rules", std::move(rules)},
                                                      {"queued_bytes", connection.queued_bytes},
                                                      {"monitor", connection.monitor}});
        }
        return connections;
    }
    if (route == "endpoints") {
        boost::json::array policy;
        for (const bus::BusSnapshot::Rule& rule : snapshot.policy) {
            policy.push_back(
                boost::json::object{{"context", rule.context}, {"rule", rule.text}, {"where", rule.where}});
        }
        boost::json::array endpoints;
        for (const bus::BusSnapshot::Endpoint& endpoint : snapshot.endpoints) {
            endpoints.push_back(boost::json::object{
                {"address", endpoint.address}, {"connections", endpoint.connections}, {"policy", policy}});
        }
        return endpoints;
    }
    if (route == "match-rules") {
        boost::json::object rules;
        for (const bus::BusSnapshot::Connection& connection : snapshot.connections) {
            rules[connection.unique_name] =
                boost::json::array(connection.match_rules.begin(), connection.match_rules.end());
        }
        return rules;
    }
    if (route == "limits") {
        boost::json::object limits;
        for (const auto& [name, value] : snapshot.limits) {
            limits[name] = value;
        }
        return limits;
    }
    return nullptr;
}

}  // namespace busgate::web
