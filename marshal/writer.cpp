#include "busgate/marshal/writer.h"

#include <cassert>
#include <cstring>

#include "wire.h"

namespace busgate::marshal {

void BodyWriter::pad_to(std::size_t alignment) {
    data_.resize(align_up(data_.size(), alignment), 0);
}

void BodyWriter::record(std::string_view codes) {
    if (unrecorded_ == 0) {
        signature_.append(codes);
    }
}

template <typename T>
BodyWriter& BodyWriter::fixed(char code, T value) {
    pad_to(sizeof(T));
    const std::size_t at = data_.size();
    data_.resize(at + sizeof(T));
    wire::store(data_.data() + at, value, byte_order_);
    record(std::string_view(&code, 1));
    return *this;
}

BodyWriter& BodyWriter::byte(std::uint8_t value) {
    return fixed(type::byte, value);
}
BodyWriter& BodyWriter::boolean(bool value) {
    return fixed(type::boolean, std::uint32_t{value});
}
BodyWriter& BodyWriter::int16(std::int16_t value) {
    return fixed(type::int16, value);
}
BodyWriter& BodyWriter::uint16(std::uint16_t value) {
    return fixed(type::uint16, value);
}
BodyWriter& BodyWriter::int32(std::int32_t value) {
    return fixed(type::int32, value);
}
BodyWriter& BodyWriter::uint32(std::uint32_t value) {
    return fixed(type::uint32, value);
}
BodyWriter& BodyWriter::int64(std::int64_t value) {
    return fixed(type::int64, value);
}
BodyWriter& BodyWriter::uint64(std::uint64_t value) {
    return fixed(type::uint64, value);
}
BodyWriter& BodyWriter::double_(double value) {
    return fixed(type::double_, value);
}
BodyWriter& BodyWriter::unix_fd(std::uint32_t index) {
    return fixed(type::unix_fd, index);
}

BodyWriter& BodyWriter::text(char code, std::string_view value) {
    if (code == type::signature) {
        data_.push_back(static_cast<std::uint8_t>(value.size()));
    } else {
        pad_to(4);
        const std::size_t at = data_.size();
        data_.resize(at + 4);
        wire::store(data_.data() + at, static_cast<std::uint32_t>(value.size()), byte_order_);
    }
    data_.insert(data_.end(), value.begin(), value.end());
    data_.push_back(0);
    record(std::string_view(&code, 1));
    return *this;
}

BodyWriter& BodyWriter::string(std::string_view value) {
    return text(type::string, value);
}
BodyWriter& BodyWriter::object_path(std::string_view value) {
    return text(type::object_path, value);
}
BodyWriter& BodyWriter::signature(std::string_view value) {
    return text(type::signature, value);
}

BodyWriter& BodyWriter::open_array(std::string_view element_signature) {
    pad_to(4);
    const std::size_t length_offset = data_.size();
    data_.resize(length_offset + 4);
    pad_to(alignment_of(element_signature.front()));
    record("a");
    record(element_signature);
    ++unrecorded_;
    open_.push_back({type::array, length_offset, data_.size()});
    return *this;
}

BodyWriter& BodyWriter::close_array() {
    assert(!open_.empty() && open_.back().kind == type::array);
    const OpenContainer array = open_.back();
    open_.pop_back();
    --unrecorded_;
    wire::store(data_.data() + array.length_offset, static_cast<std::uint32_t>(data_.size() - array.start),
                byte_order_);
    return *this;
}

BodyWriter& BodyWriter::open_struct() {
    pad_to(8);
    record("(");
    open_.push_back({type::struct_begin, 0, 0});
    return *this;
}

BodyWriter& BodyWriter::close_struct() {
    assert(!open_.empty() && open_.back().kind == type::struct_begin);
    open_.pop_back();
    record(")");
    return *this;
}

BodyWriter& BodyWriter::open_dict_entry() {
    pad_to(8);
    open_.push_back({type::dict_entry_begin, 0, 0});
    return *this;
}

BodyWriter& BodyWriter::close_dict_entry() {
    assert(!open_.empty() && open_.back().kind == type::dict_entry_begin);
    open_.pop_back();
    return *this;
}

BodyWriter& BodyWriter::open_variant(std::string_view contained_signature) {
    ++unrecorded_;
    text(type::signature, contained_signature);
    --unrecorded_;
    record("v");
    ++unrecorded_;
    open_.push_back({type::variant, 0, 0});
    return *this;
}

BodyWriter& BodyWriter::close_variant() {
    assert(!open_.empty() && open_.back().kind == type::variant);
    open_.pop_back();
    --unrecorded_;
    return *this;
}

namespace {

// The header's fields, a(yv), written straight into a message sized for them: the bus builds every reply,
// error and signal of its driver this way, and a general writer costs several times as much per field.
class HeaderFields {
  public:
    HeaderFields(std::vector<std::uint8_t>& out, ByteOrder order) : out_(out), order_(order) {}

    // The bytes `text` of type `type_code` adds, from a position aligned to 8.
    static std::size_t size_of(char type_code, std::string_view text) {
        if (text.empty()) {
            return 0;
        }
        // code, signature "x" (length, code, NUL), then: signature (length, text, NUL) or padding to 8
        // and a uint32 length, text, NUL.
        return type_code == type::signature ? 4 + 1 + text.size() + 1 : 4 + 4 + 4 + text.size() + 1;
    }
    static std::size_t size_of(std::uint32_t value) { return value == 0 ? 0 : 8; }

    void text(HeaderField code, char type_code, std::string_view value) {
        if (value.empty()) {
            return;
        }
        start(code, type_code);
        if (type_code == type::signature) {
            out_.push_back(static_cast<std::uint8_t>(value.size()));
        } else {
            pad(4);
            uint32(static_cast<std::uint32_t>(value.size()));
        }
        out_.insert(out_.end(), value.begin(), value.end());
        out_.push_back(0);
    }
    void number(HeaderField code, std::uint32_t value) {
        if (value != 0) {
            start(code, type::uint32);
            uint32(value);
        }
    }
    void uint32(std::uint32_t value) {
        std::uint8_t bytes[4];
        wire::store(bytes, value, order_);
        out_.insert(out_.end(), bytes, bytes + 4);
    }
    void pad(std::size_t alignment) {
        while (out_.size() % alignment != 0) {
            out_.push_back(0);
        }
    }

  private:
    void start(HeaderField code, char type_code) {
        pad(8);  // each (yv) struct
        const std::uint8_t bytes[4] = {static_cast<std::uint8_t>(code), 1, static_cast<std::uint8_t>(type_code), 0};
        out_.insert(out_.end(), bytes, bytes + 4);
    }

    std::vector<std::uint8_t>& out_;
    ByteOrder order_;
};

}  // namespace

std::vector<std::uint8_t> build_message(const MessageSpec& spec, const BodyWriter& body) {
    const ByteOrder order = body.byte_order();
    const std::string_view signature = body.written_signature();
    // Each field is at most 7 bytes of padding before it and its own size; then padding to 8 and the body.
    const std::size_t bound = 16 + 9 * 7 + HeaderFields::size_of(type::object_path, spec.path) +
                              HeaderFields::size_of(type::string, spec.interface) +
                              HeaderFields::size_of(type::string, spec.member) +
                              HeaderFields::size_of(type::string, spec.error_name) +
                              HeaderFields::size_of(spec.reply_serial) +
                              HeaderFields::size_of(type::string, spec.destination) +
                              HeaderFields::size_of(type::string, spec.sender) +
                              HeaderFields::size_of(type::signature, signature) +
                              HeaderFields::size_of(spec.unix_fds) + 7 + body.data().size();
    std::vector<std::uint8_t> message;
    message.reserve(bound);
    message.push_back(static_cast<std::uint8_t>(order));
    message.push_back(static_cast<std::uint8_t>(spec.type));
    message.push_back(spec.flags);
    message.push_back(protocol_version);
    HeaderFields fields(message, order);
    fields.uint32(static_cast<std::uint32_t>(body.data().size()));
    fields.uint32(spec.serial);
    fields.uint32(0);  // the fields' length, once known
    fields.text(HeaderField::path, type::object_path, spec.path);
    fields.text(HeaderField::interface, type::string, spec.interface);
    fields.text(HeaderField::member, type::string, spec.member);
    fields.text(HeaderField::error_name, type::string, spec.error_name);
    fields.number(HeaderField::reply_serial, spec.reply_serial);
    fields.text(HeaderField::destination, type::string, spec.destination);
    fields.text(HeaderField::sender, type::string, spec.sender);
    fields.text(HeaderField::signature, type::signature, signature);
    fields.number(HeaderField::unix_fds, spec.unix_fds);
    wire::store(message.data() + 12, static_cast<std::uint32_t>(message.size() - 16), order);
    fields.pad(8);
    message.insert(message.end(), body.data().begin(), body.data().end());
    return message;
}

std::vector<std::uint8_t> build_message(const MessageSpec& spec, ByteOrder byte_order) {
    return build_message(spec, BodyWriter(byte_order));
}

}  // namespace busgate::marshal
