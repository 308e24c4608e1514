// Building messages: BodyWriter marshals values in either byte order and records the signature of
// what it wrote; build_message() puts a header in front. Both are for messages the bus itself sends
// (driver replies, signals, errors) and for tests; the bus never re-marshals what a client sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "busgate/marshal/types.h"

namespace busgate::marshal {

class BodyWriter {
  public:
    explicit BodyWriter(ByteOrder byte_order = native_byte_order) : byte_order_(byte_order) {}

    BodyWriter& byte(std::uint8_t value);
    BodyWriter& boolean(bool value);
    BodyWriter& int16(std::int16_t value);
    BodyWriter& uint16(std::uint16_t value);
    BodyWriter& int32(std::int32_t value);
    BodyWriter& uint32(std::uint32_t value);
    BodyWriter& int64(std::int64_t value);
    BodyWriter& uint64(std::uint64_t value);
    BodyWriter& double_(double value);
    BodyWriter& unix_fd(std::uint32_t index);
    BodyWriter& string(std::string_view value);
    BodyWriter& object_path(std::string_view value);
    BodyWriter& signature(std::string_view value);

    // Containers nest; every open_* needs its close_*. An array's element type is given up front
    // so that empty arrays carry it too.
    BodyWriter& open_array(std::string_view element_signature);
    BodyWriter& close_array();
    BodyWriter& open_struct();
    BodyWriter& close_struct();
    BodyWriter& open_dict_entry();
    BodyWriter& close_dict_entry();
    BodyWriter& open_variant(std::string_view contained_signature);
    BodyWriter& close_variant();

    // Signature of the complete values written at top level so far.
    const std::string& written_signature() const { return signature_; }
    const std::vector<std::uint8_t>& data() const { return data_; }
    ByteOrder byte_order() const { return byte_order_; }

  private:
    struct OpenContainer {
        char kind;
        std::size_t length_offset;  // arrays: where the length goes
        std::size_t start;          // arrays: first element byte
    };

    template <typename T>
    BodyWriter& fixed(char code, T value);
    BodyWriter& text(char code, std::string_view value);
    void pad_to(std::size_t alignment);
    void record(std::string_view codes);

    ByteOrder byte_order_;
    std::vector<std::uint8_t> data_;
    std::string signature_;
    std::vector<OpenContainer> open_;
    int unrecorded_ = 0;  // > 0 inside arrays and variants, whose types were recorded when opened
};

// The header of a message to build. Empty strings and zero serials are left out of the header.
struct MessageSpec {
    MessageType type = MessageType::method_call;
    std::uint8_t flags = 0;
    std::uint32_t serial = 1;
    std::string_view path;
    std::string_view interface;
    std::string_view member;
    std::string_view error_name;
    std::string_view destination;
    std::string_view sender;
    std::uint32_t reply_serial = 0;
    std::uint32_t unix_fds = 0;
};

// A complete message in the body's byte order, with SIGNATURE taken from the body.
std::vector<std::uint8_t> build_message(const MessageSpec& spec, const BodyWriter& body);
std::vector<std::uint8_t> build_message(const MessageSpec& spec, ByteOrder byte_order = native_byte_order);

}  // namespace busgate::marshal
