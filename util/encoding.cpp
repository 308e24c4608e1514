#include "busgate/util/encoding.h"

#include <sys/random.h>

#include <cerrno>

namespace busgate::util {

std::string hex_encode(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        hex.push_back(digits[c >> 4]);
        hex.push_back(digits[c & 0xf]);
    }
    return hex;
}

std::string hex_decode(std::string_view hex, std::size_t& consumed) {
    std::string bytes;
    bool high = true;
    consumed = 0;
    for (char c : hex) {
        int value;
        if (c >= '0' && c <= '9') {
            value = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            value = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            value = c - 'A' + 10;
        } else {
            break;
        }
        if (high) {
            bytes.push_back(static_cast<char>(value << 4));
        } else {
            bytes.back() = static_cast<char>(bytes.back() | value);
        }
        high = !high;
        ++consumed;
    }
    return bytes;
}

std::string random_bytes(std::size_t count) {
    std::string raw(count, '\0');
    std::size_t filled = 0;
    while (filled < count) {
        const ssize_t n = getrandom(raw.data() + filled, count - filled, 0);
        if (n > 0) {
            filled += static_cast<std::size_t>(n);
        } else if (errno != EINTR) {
            break;  // cannot happen for requests this small once the pool is initialised
        }
    }
    return raw;
}

}  // namespace busgate::util
