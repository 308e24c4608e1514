// The dbus1 type system and protocol constants: type codes, alignment, message types, flags,
// header fields and the limits of the specification. Everything else in marshal/ is written in
// these terms.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace busgate::marshal {

enum class ByteOrder : std::uint8_t { little = 'l', big = 'B' };

inline constexpr ByteOrder native_byte_order =
    std::endian::native == std::endian::little ? ByteOrder::little : ByteOrder::big;

// Type codes as they appear in signatures.
namespace type {
inline constexpr char byte = 'y';
inline constexpr char boolean = 'b';
inline constexpr char int16 = 'n';
inline constexpr char uint16 = 'q';
inline constexpr char int32 = 'i';
inline constexpr char uint32 = 'u';
inline constexpr char int64 = 'x';
inline constexpr char uint64 = 't';
inline constexpr char double_ = 'd';
inline constexpr char string = 's';
inline constexpr char object_path = 'o';
inline constexpr char signature = 'g';
inline constexpr char unix_fd = 'h';
inline constexpr char array = 'a';
inline constexpr char variant = 'v';
inline constexpr char struct_begin = '(';
inline constexpr char struct_end = ')';
inline constexpr char dict_entry_begin = '{';
inline constexpr char dict_entry_end = '}';
}  // namespace type

// Basic types may be dict keys; fixed types have a size equal to their alignment.
bool is_basic_type(char code);
bool is_fixed_type(char code);
bool is_string_like_type(char code);  // s, o, g
// Alignment of a value whose complete type starts with `code`; 0 for codes that are not types.
std::size_t alignment_of(char code);

enum class MessageType : std::uint8_t {
    invalid = 0,
    method_call = 1,
    method_return = 2,
    error = 3,
    signal = 4,
};

namespace flag {
inline constexpr std::uint8_t no_reply_expected = 0x1;
inline constexpr std::uint8_t no_auto_start = 0x2;
inline constexpr std::uint8_t allow_interactive_authorization = 0x4;
}  // namespace flag

enum class HeaderField : std::uint8_t {
    invalid = 0,
    path = 1,
    interface = 2,
    member = 3,
    error_name = 4,
    reply_serial = 5,
    destination = 6,
    sender = 7,
    signature = 8,
    unix_fds = 9,
};
inline constexpr std::uint8_t last_known_header_field = 9;

// The type code each known header field must carry in its variant; 0 for unknown codes.
char header_field_type(std::uint8_t code);

inline constexpr std::uint8_t protocol_version = 1;

// Limits of the specification (and of dbus-daemon, which enforces exactly these).
namespace limit {
inline constexpr std::size_t signature_length = 255;
inline constexpr std::size_t name_length = 255;
inline constexpr int array_depth = 32;
inline constexpr int struct_depth = 32;
inline constexpr int total_depth = 64;  // arrays, structs and variants together, at run time
inline constexpr std::size_t array_length = 64u * 1024 * 1024;
inline constexpr std::size_t message_length = 128u * 1024 * 1024;
}  // namespace limit

// Size of the fixed part of every header: endianness, type, flags, version, body length, serial.
inline constexpr std::size_t fixed_header_size = 12;
// The fixed part plus the length of the header-field array: enough to know a message's total size.
inline constexpr std::size_t minimum_header_size = 16;

inline constexpr std::size_t align_up(std::size_t offset, std::size_t alignment) {
    return (offset + alignment - 1) & ~(alignment - 1);
}

}  // namespace busgate::marshal
