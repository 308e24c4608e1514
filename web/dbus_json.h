// Messages as JSON for the web monitor: header fields, and the body in Cockpit's dbus-json3 mapping
// (numbers and strings as themselves, byte arrays as base64, dictionaries as objects keyed by the key's
// text, structs and other arrays as arrays, variants as {"t": signature, "v": value}).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <span>
#include <string_view>

#include "bus/observer.h"
#include "busgate/marshal/message.h"

namespace busgate::web {

// The body's values as a JSON array; null if the body cannot be read.
boost::json::value body_to_json(std::span<const std::uint8_t> message, const marshal::MessageHeader& header);

// {"type", "serial", "flags", "sender", "destination", "path", "interface", "member", "error_name",
//  "reply_serial", "signature", and "body" if `with_body`}; fields the message lacks are left out.
boost::json::object message_to_json(std::span<const std::uint8_t> message,
                                    const marshal::MessageHeader& header, bool with_body);

// GET /api/<route>: the part of a bus snapshot the route names (names, connections, ...), or null.
boost::json::value snapshot_route(const bus::BusSnapshot& snapshot, std::string_view route);

}  // namespace busgate::web
