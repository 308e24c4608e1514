// Header rewriting on the routing path: the bus stamps SENDER on every message it forwards and
// drops what a client may not forge, without touching the body. The new header is written to a
// separate buffer so the body can go out straight from the client's bytes (gathered write).
#pragma once

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

}  // namespace busgate::marshal
