// SipHash-2-4 (Aumasson and Bernstein), streaming: feed any number of pieces, then finish.
// Used by the bloom filter to hash "<key>:<value>" elements without building the string.
// Key halves and message words are read little-endian, so results do not depend on the host.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace busgate::core {

class SipHash24 {
  public:
    explicit SipHash24(const std::array<std::uint8_t, 16>& key);

    void update(std::string_view bytes);
    std::uint64_t finish() const;

    static std::uint64_t hash(const std::array<std::uint8_t, 16>& key, std::string_view bytes) {
        SipHash24 state(key);
        state.update(bytes);
        return state.finish();
    }

  private:
    void compress(std::uint64_t word);

    std::uint64_t v0_, v1_, v2_, v3_;
    std::uint64_t pending_ = 0;  // up to 7 bytes not yet compressed, little-endian
    unsigned pending_bytes_ = 0;
    std::uint64_t length_ = 0;
};

// SipHash-1-3 (one round per word, three at the end; the variant Rust's HashMap uses) of `bytes` in one
// call: for hash tables whose keys clients choose, keyed against collisions they could compute, and
// cheaper than SipHash-2-4.
std::uint64_t siphash13(const std::array<std::uint8_t, 16>& key, std::string_view bytes);

}  // namespace busgate::core
