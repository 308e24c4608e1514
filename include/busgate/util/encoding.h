// Small codecs the authentication protocol and addresses share: lower-case hex, dbus-daemon's
// lenient hex decoding, and random bytes from the kernel.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace busgate::util {

std::string hex_encode(std::string_view bytes);
// Decodes until the first non-hex character (`consumed` tells where); like dbus-daemon it accepts an
// odd number of digits, the last one filling a high nibble.
std::string hex_decode(std::string_view hex, std::size_t& consumed);
// `count` bytes from getrandom(2).
std::string random_bytes(std::size_t count);

}  // namespace busgate::util
