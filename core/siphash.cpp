#include "siphash.h"

#include <bit>
#include <cstring>

namespace busgate::core {
namespace {

std::uint64_t load_le64(const std::uint8_t* p) {
    if constexpr (std::endian::native == std::endian::little) {
        std::uint64_t word;
        std::memcpy(&word, p, sizeof word);  // one load; the byte loop below is not folded into one
        return word;
    } else {
        std::uint64_t word = 0;
        for (int i = 7; i >= 0; --i) {
            word = (word << 8) | p[i];
        }
        return word;
    }
}

inline void sip_round(std::uint64_t& v0, std::uint64_t& v1, std::uint64_t& v2, std::uint64_t& v3) {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
}

}  // namespace

SipHash24::SipHash24(const std::array<std::uint8_t, 16>& key) {
    const std::uint64_t k0 = load_le64(key.data());
    const std::uint64_t k1 = load_le64(key.data() + 8);
    v0_ = 0x736f6d6570736575ULL ^ k0;
    v1_ = 0x646f72616e646f6dULL ^ k1;
    v2_ = 0x6c7967656e657261ULL ^ k0;
    v3_ = 0x7465646279746573ULL ^ k1;
}

void SipHash24::compress(std::uint64_t word) {
    v3_ ^= word;
    sip_round(v0_, v1_, v2_, v3_);
    sip_round(v0_, v1_, v2_, v3_);
    v0_ ^= word;
}

void SipHash24::update(std::string_view bytes) {
    length_ += bytes.size();
    auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
    std::size_t n = bytes.size();
    while (n > 0 && pending_bytes_ != 0) {
        pending_ |= std::uint64_t{*p++} << (8 * pending_bytes_);
        --n;
        if (++pending_bytes_ == 8) {
            compress(pending_);
            pending_ = 0;
            pending_bytes_ = 0;
        }
    }
    for (; n >= 8; n -= 8, p += 8) {
        compress(load_le64(p));
    }
    for (std::size_t i = 0; i < n; ++i) {
        pending_ |= std::uint64_t{p[i]} << (8 * i);
    }
    pending_bytes_ = static_cast<unsigned>(n) + pending_bytes_;
}

std::uint64_t siphash13(const std::array<std::uint8_t, 16>& key, std::string_view bytes) {
    const std::uint64_t k0 = load_le64(key.data());
    const std::uint64_t k1 = load_le64(key.data() + 8);
    std::uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    std::uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    std::uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    std::uint64_t v3 = 0x7465646279746573ULL ^ k1;
    auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
    std::size_t n = bytes.size();
    for (; n >= 8; n -= 8, p += 8) {
        const std::uint64_t word = load_le64(p);
        v3 ^= word;
        sip_round(v0, v1, v2, v3);
        v0 ^= word;
    }
    std::uint64_t last = std::uint64_t{bytes.size()} << 56;
    for (std::size_t i = 0; i < n; ++i) {
        last |= std::uint64_t{p[i]} << (8 * i);
    }
    v3 ^= last;
    sip_round(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (int i = 0; i < 3; ++i) {
        sip_round(v0, v1, v2, v3);
    }
    return v0 ^ v1 ^ v2 ^ v3;
}

std::uint64_t SipHash24::finish() const {
    std::uint64_t v0 = v0_, v1 = v1_, v2 = v2_, v3 = v3_;
    const std::uint64_t last = pending_ | (length_ << 56);
    v3 ^= last;
    sip_round(v0, v1, v2, v3);
    sip_round(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) {
        sip_round(v0, v1, v2, v3);
    }
    return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace busgate::core
