// Header rewriting on the routing path: the bus stamps SENDER on every message it forwards and
// drops what a client may not forge, without touching the body. The new header is written to a
// separate buffer so the body can go out straight from the client's bytes (gathered write).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "busgate/marshal/message.h"

namespace busgate::marshal {

// Replaces `out` with a header equal to `header`'s except that SENDER is `sender` and, as
// dbus-daemon does, header fields unknown to this version are removed. `out` ends 8-aligned, so
// `out` followed by body_of(message, header) is the complete message to deliver.
void rewrite_header_with_sender(std::span<const std::uint8_t> message, const MessageHeader& header,
                                std::string_view sender, std::vector<std::uint8_t>& out);

// Stamping without a copy, for the common message: one that carries no SENDER and no field unknown to
// this version (the rewrite above would keep every field as it is). The SENDER field goes first in the
// field array, which moves the fixed header back and nothing else: the other fields and the body stay
// where the message was read.
bool stampable_in_front(const MessageHeader& header);
// The bytes stamp_sender_in_front needs in front of the message: the SENDER field, padded to 8.
std::size_t sender_field_room(std::string_view sender);
// Writes the stamped message's fixed header sender_field_room(sender) bytes before `message` (whose
// header is `header`, stampable_in_front), then the SENDER field; returns where the stamped message
// starts. The bytes from `message` + 16 on are not touched.
std::uint8_t* stamp_sender_in_front(std::uint8_t* message, const MessageHeader& header,
                                    std::string_view sender);

}  // namespace busgate::marshal
