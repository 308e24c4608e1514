#include "busgate/core/bloom.h"

#include <bit>

#include "siphash.h"

namespace busgate::core {
namespace {

using Key = std::array<std::uint8_t, 16>;

// systemd's bus-bloom.c hash_keys[], in key order.
constexpr std::array<Key, 8> hash_keys = {{
    {0xb9, 0x66, 0x0b, 0xf0, 0x46, 0x70, 0x47, 0xc1, 0x88, 0x75, 0xc4, 0x9c, 0x54, 0xb9, 0xbd, 0x15},
    {0xaa, 0xa1, 0x54, 0xa2, 0xe0, 0x71, 0x4b, 0x39, 0xbf, 0xe1, 0xdd, 0x2e, 0x9f, 0xc5, 0x4a, 0x3b},
    {0x63, 0xfd, 0xae, 0xbe, 0xcd, 0x82, 0x48, 0x12, 0xa1, 0x6e, 0x41, 0x26, 0xcb, 0xfa, 0xa0, 0xc8},
    {0x23, 0xbe, 0x45, 0x29, 0x32, 0xd2, 0x46, 0x2d, 0x82, 0x03, 0x52, 0x28, 0xfe, 0x37, 0x17, 0xf5},
    {0x56, 0x3b, 0xbf, 0xee, 0x5a, 0x4f, 0x43, 0x39, 0xaf, 0xaa, 0x94, 0x08, 0xdf, 0xf0, 0xfc, 0x10},
    {0x31, 0x80, 0xc8, 0x73, 0xc7, 0xea, 0x46, 0xd3, 0xaa, 0x25, 0x75, 0x0f, 0x9e, 0x4c, 0x09, 0x29},
    {0x7d, 0xf7, 0x18, 0x4b, 0x7b, 0xa4, 0x44, 0xd5, 0x85, 0x3c, 0x06, 0xe0, 0x65, 0x53, 0x96, 0x6d},
    {0xf2, 0x77, 0xe9, 0x6f, 0x93, 0xb5, 0x4e, 0x71, 0x9a, 0x0c, 0x34, 0x88, 0x39, 0x25, 0xbf, 0x35},
}};

// Bytes per bit index: ceil(floor(log2 m) / 8).
constexpr unsigned bytes_per_index = (std::bit_width(bloom_bit_count) - 1 + 7) / 8;
static_assert(bytes_per_index * bloom_hash_count <= hash_keys.size() * 8);
static_assert(std::has_single_bit(bloom_bit_count));

// The element is the concatenation of `pieces`; hashing them in turn avoids building the string.
template <std::size_t N>
std::array<unsigned, bloom_hash_count> element_bits(const std::array<std::string_view, N>& pieces) {
    std::array<unsigned, bloom_hash_count> bits{};
    std::uint64_t hash = 0;
    unsigned available = 0;
    unsigned next_key = 0;
    for (unsigned i = 0; i < bloom_hash_count; ++i) {
        std::uint64_t p = 0;
        for (unsigned d = 0; d < bytes_per_index; ++d) {
            if (available == 0) {
                SipHash24 state(hash_keys[next_key++]);
                for (auto piece : pieces) {
                    state.update(piece);
                }
                hash = state.finish();
                available = 8;
            }
            // Output bytes in little-endian order of the hash value.
            p = (p << 8) | ((hash >> (8 * (8 - available))) & 0xff);
            --available;
        }
        bits[i] = static_cast<unsigned>(p & (bloom_bit_count - 1));
    }
    return bits;
}

// "arg<index><suffix>" into a caller-owned buffer.
class ArgumentKey {
  public:
    ArgumentKey(unsigned index, std::string_view suffix) {
        auto* out = buffer_.data();
        for (char c : std::string_view("arg")) {
            *out++ = c;
        }
        if (index >= 10) {
            *out++ = static_cast<char>('0' + index / 10);
        }
        *out++ = static_cast<char>('0' + index % 10);
        for (char c : suffix) {
            *out++ = c;
        }
        length_ = static_cast<std::size_t>(out - buffer_.data());
    }
    std::string_view view() const { return {buffer_.data(), length_}; }

  private:
    std::array<char, 32> buffer_{};
    std::size_t length_ = 0;
};

}  // namespace

std::array<unsigned, bloom_hash_count> bloom_element_bits(std::string_view element) {
    return element_bits(std::array<std::string_view, 1>{element});
}

bool BloomBits::empty() const {
    for (auto word : words_) {
        if (word != 0) {
            return false;
        }
    }
    return true;
}

unsigned BloomBits::popcount() const {
    unsigned count = 0;
    for (auto word : words_) {
        count += static_cast<unsigned>(std::popcount(word));
    }
    return count;
}

void BloomBits::add_element(std::string_view key, std::string_view value) {
    for (auto bit : element_bits(std::array<std::string_view, 3>{key, ":", value})) {
        set(bit);
    }
}

void BloomBits::add_prefixes(std::string_view key, std::string_view value, char separator) {
    add_element(key, value);
    std::string_view rest = value;
    for (;;) {
        auto position = rest.rfind(separator);
        if (position == std::string_view::npos) {
            break;
        }
        add_element(key, rest.substr(0, position + 1));
        if (position == 0) {
            break;
        }
        rest = rest.substr(0, position);
        add_element(key, rest);
    }
}

void BloomFilter::add_path(std::string_view path) {
    add_element("path", path);
    add_prefixes("path-slash-prefix", path, '/');
}

bool BloomFilter::add_argument(unsigned index, std::string_view value) {
    if (index > bloom_max_argument) {
        return false;
    }
    add_element(ArgumentKey(index, "").view(), value);
    add_prefixes(ArgumentKey(index, "-dot-prefix").view(), value, '.');
    add_prefixes(ArgumentKey(index, "-slash-prefix").view(), value, '/');
    return true;
}

bool BloomFilter::add_argument_array_element(unsigned index, std::string_view element) {
    if (index > bloom_max_argument) {
        return false;
    }
    add_element(ArgumentKey(index, "-has").view(), element);
    return true;
}

bool BloomFilter::covers(const BloomMask& mask) const {
    std::uint64_t missing = 0;
    for (std::size_t i = 0; i < bloom_word_count; ++i) {
        missing |= mask.words()[i] & ~words()[i];
    }
    return missing == 0;
}

bool BloomMask::add_argument(unsigned index, std::string_view value) {
    if (index > bloom_max_argument) {
        return false;
    }
    add_element(ArgumentKey(index, "").view(), value);
    return true;
}

bool BloomMask::add_argument_has(unsigned index, std::string_view element) {
    if (index > bloom_max_argument) {
        return false;
    }
    add_element(ArgumentKey(index, "-has").view(), element);
    return true;
}

bool BloomMask::add_argument_namespace(unsigned index, std::string_view prefix) {
    if (index > bloom_max_argument) {
        return false;
    }
    add_element(ArgumentKey(index, "-dot-prefix").view(), prefix);
    return true;
}

std::size_t BloomBitsHash::operator()(const BloomBits& bits) const {
    std::uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (auto word : bits.words()) {
        h ^= word + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    }
    return static_cast<std::size_t>(h);
}

}  // namespace busgate::core
