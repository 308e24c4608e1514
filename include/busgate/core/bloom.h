// Bloom filters (sender side) and bloom masks (match side) in kdbus's scheme: 512 bits, 8 hash functions,
// SipHash-2-4 with systemd's fixed keys, elements "<key>:<value>" with v221 prefix semantics and every
// leading string argument (not the v219-v228 first-argument-only bug).
// Invariant: a mask built from a match rule is a subset of the filter of every message the rule matches,
// so `filter.covers(mask)` has no false negatives; it may have false positives, and the gateway re-checks
// the exact rule.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace busgate::core {

inline constexpr std::size_t bloom_size_bytes = 64;  // m = 512 bits
inline constexpr unsigned bloom_hash_count = 8;      // k
inline constexpr std::size_t bloom_bit_count = bloom_size_bytes * 8;
inline constexpr std::size_t bloom_word_count = bloom_size_bytes / 8;
inline constexpr unsigned bloom_max_argument = 63;

// The k bit indices kdbus sets for one element string (no trailing NUL hashed).
std::array<unsigned, bloom_hash_count> bloom_element_bits(std::string_view element);

// A 512-bit set stored as host-endian u64 words, word i holding bits 64*i .. 64*i+63.
class BloomBits {
  public:
    using Words = std::array<std::uint64_t, bloom_word_count>;

    BloomBits() = default;
    explicit BloomBits(const Words& words) : words_(words) {}

    const Words& words() const { return words_; }
    bool test(unsigned bit) const { return (words_[bit >> 6] >> (bit & 63)) & 1; }
    void set(unsigned bit) { words_[bit >> 6] |= std::uint64_t{1} << (bit & 63); }
    bool empty() const;
    unsigned popcount() const;
    void clear() { words_ = {}; }

    // Hashes "<key>:<value>" into the set.
    void add_element(std::string_view key, std::string_view value);

    friend bool operator==(const BloomBits&, const BloomBits&) = default;

  protected:
    // The v221 prefix routine: "<key>:<value>", then repeatedly at the last separator the value cut after it
    // (separator kept) and cut before it, stopping once the separator is the first character.
    void add_prefixes(std::string_view key, std::string_view value, char separator);

  private:
    Words words_{};
};

class BloomMask;

// What a sender attaches to a broadcast (and unicast signal): built from the message's header and its
// leading string-like arguments.
class BloomFilter : public BloomBits {
  public:
    using BloomBits::BloomBits;

    // "method_call", "method_return", "error" or "signal".
    void add_message_type(std::string_view type) { add_element("message-type", type); }
    void add_interface(std::string_view interface) { add_element("interface", interface); }
    void add_member(std::string_view member) { add_element("member", member); }
    // path:<p>, and path-slash-prefix:<p> with all its slash prefixes.
    void add_path(std::string_view path);
    // A string, object path or signature argument number `index` (argN, argN-dot-prefix and
    // argN-slash-prefix). Returns false (and adds nothing) when index > 63.
    // Add every string-like argument at its own index, skipping other types rather than stopping at them:
    // dbus1's argN matches the Nth argument whatever precedes it, so a rule "arg1='x'" must pass the bloom
    // check for a signal of signature "us"; stopping at the first non-string argument (kdbus's "leading
    // arguments") would turn such rules into false negatives.
    bool add_argument(unsigned index, std::string_view value);
    // One element of a leading array-of-strings argument (argN-has). Returns false when index > 63.
    bool add_argument_array_element(unsigned index, std::string_view element);

    bool covers(const BloomMask& mask) const;
};

// What a receiver uploads for one match rule. argNpath and destination cannot be expressed and add nothing;
// an empty mask matches every filter.
class BloomMask : public BloomBits {
  public:
    using BloomBits::BloomBits;

    void add_message_type(std::string_view type) { add_element("message-type", type); }
    void add_interface(std::string_view interface) { add_element("interface", interface); }
    void add_member(std::string_view member) { add_element("member", member); }
    void add_path(std::string_view path) { add_element("path", path); }
    void add_path_namespace(std::string_view path) { add_element("path-slash-prefix", path); }
    bool add_argument(unsigned index, std::string_view value);             // argN=
    bool add_argument_has(unsigned index, std::string_view element);       // argNhas=
    bool add_argument_namespace(unsigned index, std::string_view prefix);  // argNnamespace=
};

struct BloomBitsHash {
    std::size_t operator()(const BloomBits& bits) const;
};

}  // namespace busgate::core
