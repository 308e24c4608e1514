#include "busgate/marshal/reader.h"

#include <bit>

#include "busgate/marshal/signature.h"
#include "wire.h"

namespace busgate::marshal {

BodyReader::BodyReader(std::span<const std::uint8_t> data, std::size_t offset, std::size_t end,
                       std::string_view signature, ByteOrder byte_order)
    : data_(data), offset_(offset), end_(end <= data.size() ? end : data.size()), byte_order_(byte_order) {
    frames_.push_back({signature, 0, 0, end_});
}

BodyReader::BodyReader(std::span<const std::uint8_t> message, const MessageHeader& header)
    : BodyReader(message, header.body_offset, std::size_t{header.body_offset} + header.body_length,
                 header.signature, header.byte_order) {}

char BodyReader::peek() const {
    if (failed_) {
        return 0;
    }
    const Frame& frame = frames_.back();
    if (frame.kind == type::array) {
        return offset_ < frame.end ? frame.signature.front() : 0;
    }
    return frame.position < frame.signature.size() ? frame.signature[frame.position] : 0;
}

std::string_view BodyReader::peek_signature() const {
    if (peek() == 0) {
        return {};
    }
    const Frame& frame = frames_.back();
    return frame.kind == type::array ? frame.signature : complete_type_at(frame.signature, frame.position);
}

bool BodyReader::fail() {
    failed_ = true;
    return false;
}

bool BodyReader::align(std::size_t alignment) {
    const std::size_t aligned = align_up(offset_, alignment);
    if (aligned > end_) {
        return fail();
    }
    offset_ = aligned;
    return true;
}

bool BodyReader::expect(char code) {
    return peek() == code || fail();
}

void BodyReader::advance() {
    Frame& frame = frames_.back();
    if (frame.kind != type::array) {
        frame.position = complete_type_end(frame.signature, frame.position);
    }
}

template <typename T>
std::optional<T> BodyReader::read_fixed(char code) {
    if (!expect(code) || !align(sizeof(T)) || end_ - offset_ < sizeof(T)) {
        fail();
        return std::nullopt;
    }
    const T value = wire::load<T>(data_.data() + offset_, byte_order_);
    offset_ += sizeof(T);
    advance();
    return value;
}

std::optional<std::uint8_t> BodyReader::read_byte() {
    return read_fixed<std::uint8_t>(type::byte);
}
std::optional<bool> BodyReader::read_boolean() {
    const auto value = read_fixed<std::uint32_t>(type::boolean);
    return value ? std::optional<bool>(*value != 0) : std::nullopt;
}
std::optional<std::int16_t> BodyReader::read_int16() {
    return read_fixed<std::int16_t>(type::int16);
}
std::optional<std::uint16_t> BodyReader::read_uint16() {
    return read_fixed<std::uint16_t>(type::uint16);
}
std::optional<std::int32_t> BodyReader::read_int32() {
    return read_fixed<std::int32_t>(type::int32);
}
std::optional<std::uint32_t> BodyReader::read_uint32() {
    return read_fixed<std::uint32_t>(type::uint32);
}
std::optional<std::int64_t> BodyReader::read_int64() {
    return read_fixed<std::int64_t>(type::int64);
}
std::optional<std::uint64_t> BodyReader::read_uint64() {
    return read_fixed<std::uint64_t>(type::uint64);
}
std::optional<double> BodyReader::read_double() {
    return read_fixed<double>(type::double_);
}
std::optional<std::uint32_t> BodyReader::read_unix_fd() {
    return read_fixed<std::uint32_t>(type::unix_fd);
}

std::optional<std::string_view> BodyReader::take_text(char code) {
    std::size_t length;
    if (code == type::signature) {
        if (offset_ >= end_) {
            fail();
            return std::nullopt;
        }
        length = data_[offset_++];
    } else {
        if (!align(4) || end_ - offset_ < 4) {
            fail();
            return std::nullopt;
        }
        length = wire::load_u32(data_.data() + offset_, byte_order_);
        offset_ += 4;
    }
    if (length >= end_ - offset_) {  // the text and its nul
        fail();
        return std::nullopt;
    }
    const std::string_view text(reinterpret_cast<const char*>(data_.data() + offset_), length);
    offset_ += length + 1;
    return text;
}

std::optional<std::string_view> BodyReader::read_text(char code) {
    if (!expect(code)) {
        return std::nullopt;
    }
    auto text = take_text(code);
    if (text) {
        advance();
    }
    return text;
}

std::optional<std::string_view> BodyReader::read_string() {
    return read_text(type::string);
}
std::optional<std::string_view> BodyReader::read_object_path() {
    return read_text(type::object_path);
}
std::optional<std::string_view> BodyReader::read_signature() {
    return read_text(type::signature);
}

bool BodyReader::enter() {
    const char code = peek();
    const std::string_view complete = peek_signature();
    const std::size_t parent_end = frames_.back().kind == type::array ? frames_.back().end : end_;
    switch (code) {
        case type::array: {
            if (!align(4) || end_ - offset_ < 4) {
                return fail();
            }
            const std::size_t length = wire::load_u32(data_.data() + offset_, byte_order_);
            offset_ += 4;
            const std::string_view element = complete.substr(1);
            if (!align(alignment_of(element.front())) || length > end_ - offset_) {
                return fail();
            }
            advance();
            frames_.push_back({element, 0, type::array, offset_ + length});
            return true;
        }
        case type::struct_begin:
        case type::dict_entry_begin:
            if (!align(8)) {
                return fail();
            }
            advance();
            frames_.push_back({complete.substr(1, complete.size() - 2), 0, code, parent_end});
            return true;
        case type::variant: {
            const auto contained = take_text(type::signature);
            if (!contained || !is_single_complete_type(*contained) ||
                !align(alignment_of(contained->front()))) {
                return fail();
            }
            advance();
            frames_.push_back({*contained, 0, type::variant, parent_end});
            return true;
        }
        default:
            return fail();
    }
}

bool BodyReader::leave() {
    if (frames_.size() < 2 || failed_) {
        return fail();
    }
    if (frames_.back().kind == type::array) {
        offset_ = frames_.back().end;
    } else {
        while (!at_end()) {
            if (!skip()) {
                return false;
            }
        }
    }
    frames_.pop_back();
    return true;
}

bool BodyReader::skip() {
    switch (peek()) {
        case type::byte:
            return read_byte().has_value();
        case type::int16:
        case type::uint16:
            return read_fixed<std::uint16_t>(peek()).has_value();
        case type::boolean:
        case type::int32:
        case type::uint32:
        case type::unix_fd:
            return read_fixed<std::uint32_t>(peek()).has_value();
        case type::int64:
        case type::uint64:
        case type::double_:
            return read_fixed<std::uint64_t>(peek()).has_value();
        case type::string:
        case type::object_path:
        case type::signature:
            return read_text(peek()).has_value();
        case type::array:
        case type::struct_begin:
        case type::dict_entry_begin:
        case type::variant:
            return enter() && leave();
        default:
            return fail();
    }
}

}  // namespace busgate::marshal
