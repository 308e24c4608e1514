// A zero-copy view of one dbus1 message in a caller-owned buffer: the fixed header, all header
// fields, and the body. parse_message() validates everything dbus-daemon validates before it routes
// a message (header, required fields, names, and the body against its signature); the views stay
// valid as long as the buffer does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "busgate/marshal/types.h"
#include "busgate/marshal/validity.h"

namespace busgate::marshal {

struct FieldLocation {
    std::uint32_t offset = 0;  // of the field's struct in the message, 8-aligned
    std::uint32_t size = 0;    // up to the end of its value, without trailing padding
};

struct MessageHeader {
    ByteOrder byte_order = native_byte_order;
    MessageType type = MessageType::invalid;
    std::uint8_t raw_type = 0;  // the type byte as sent: unknown types are valid and kept
    std::uint8_t flags = 0;
    std::uint32_t body_length = 0;
    std::uint32_t serial = 0;
    std::uint32_t fields_length = 0;  // of the header-field array, in bytes
    std::uint32_t body_offset = 0;    // 8-aligned end of the header

    std::string_view path;
    std::string_view interface;
    std::string_view member;
    std::string_view error_name;
    std::string_view destination;
    std::string_view sender;
    std::string_view signature;
    std::uint32_t reply_serial = 0;
    std::uint32_t unix_fds = 0;

    std::uint16_t present = 0;  // bit n set if known field n was present
    bool unknown_fields = false;  // a field with a code this version does not know was skipped
    FieldLocation locations[last_known_header_field + 1] = {};

    bool has(HeaderField field) const { return present & (1u << static_cast<unsigned>(field)); }
    bool expects_reply() const {
        return type == MessageType::method_call && !(flags & flag::no_reply_expected);
    }
    std::size_t total_size() const { return std::size_t{body_offset} + body_length; }
};

struct FrameSize {
    Validity validity = Validity::valid;
    std::size_t total = 0;  // bytes of the whole message once validity is valid
};

// From the first minimum_header_size bytes, the size of the whole message, rejecting lengths
// beyond `max_message_length` (dbus-daemon's max_message_size) before reading them.
FrameSize frame_size(std::span<const std::uint8_t> prefix,
                     std::size_t max_message_length = limit::message_length);

// Parses the header of a message that parse_header already accepted (the bus's own copy of it),
// without validating it again: one shared message is looked at once per receiver. Falls back to
// parse_header for anything unusual (unknown fields).
Validity parse_validated_header(std::span<const std::uint8_t> message, MessageHeader& header);

// Validates and parses the header of a complete message (`message` holds exactly one message).
Validity parse_header(std::span<const std::uint8_t> message, MessageHeader& header,
                      std::size_t max_message_length = limit::message_length);

// Validates the body of a message whose header parsed.
Validity validate_body(std::span<const std::uint8_t> message, const MessageHeader& header);

// parse_header + validate_body: everything dbus-daemon checks before routing.
Validity parse_message(std::span<const std::uint8_t> message, MessageHeader& header,
                       std::size_t max_message_length = limit::message_length);

// Validates values of `signature` (assumed valid) filling [offset, end) of `data`, with alignment
// counted from data.begin(). Used for bodies and for values embedded elsewhere.
Validity validate_values(std::span<const std::uint8_t> data, std::size_t offset, std::size_t end,
                         std::string_view signature, ByteOrder byte_order);

inline std::span<const std::uint8_t> body_of(std::span<const std::uint8_t> message,
                                             const MessageHeader& header) {
    return message.subspan(header.body_offset, header.body_length);
}

}  // namespace busgate::marshal
