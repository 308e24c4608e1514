// BodyReader walks the values of a message body (or any marshalled data) by signature, returning
// views into the caller's buffer. It is meant for data that passed validation, but never reads out
// of bounds on data that did not: a failed read returns nothing and leaves the reader failed().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "busgate/marshal/message.h"
#include "busgate/marshal/types.h"

namespace busgate::marshal {

class BodyReader {
  public:
    // Values of `signature` in [offset, end) of `data`, aligned relative to data.begin().
    BodyReader(std::span<const std::uint8_t> data, std::size_t offset, std::size_t end,
               std::string_view signature, ByteOrder byte_order);
    // The body of a parsed message.
    BodyReader(std::span<const std::uint8_t> message, const MessageHeader& header);

    // Type code of the next value in the current container, or 0 at its end.
    char peek() const;
    // The complete type of the next value ("a{sv}", "s", ...); empty at the end.
    std::string_view peek_signature() const;
    bool at_end() const { return peek() == 0; }
    bool failed() const { return failed_; }

    std::optional<std::uint8_t> read_byte();
    std::optional<bool> read_boolean();
    std::optional<std::int16_t> read_int16();
    std::optional<std::uint16_t> read_uint16();
    std::optional<std::int32_t> read_int32();
    std::optional<std::uint32_t> read_uint32();
    std::optional<std::int64_t> read_int64();
    std::optional<std::uint64_t> read_uint64();
    std::optional<double> read_double();
    std::optional<std::uint32_t> read_unix_fd();  // the index into the message's fds
    std::optional<std::string_view> read_string();
    std::optional<std::string_view> read_object_path();
    std::optional<std::string_view> read_signature();

    // Steps into the array, struct, dict entry or variant that comes next.
    bool enter();
    // Steps out of the current container, skipping what is left of it.
    bool leave();
    // Skips the next value, whatever its type.
    bool skip();
    // The signature of the current container's contents (a variant's or struct's types, an
    // array's element type); the whole signature at top level.
    std::string_view container_signature() const { return frames_.back().signature; }
    std::size_t depth() const { return frames_.size() - 1; }

  private:
    struct Frame {
        std::string_view signature;
        std::size_t position = 0;  // into signature; unused in arrays, which repeat one element type
        char kind = 0;             // 0 (top level), 'a', '(', '{' or 'v'
        std::size_t end = 0;       // arrays: offset just past the last element
    };

    template <typename T>
    std::optional<T> read_fixed(char code);
    std::optional<std::string_view> read_text(char code);
    std::optional<std::string_view> take_text(char code);  // without type check or advancing
    bool align(std::size_t alignment);
    bool expect(char code);
    void advance();
    bool fail();

    std::span<const std::uint8_t> data_;
    std::size_t offset_;
    std::size_t end_;
    ByteOrder byte_order_;
    bool failed_ = false;
    std::vector<Frame> frames_;
};

}  // namespace busgate::marshal
