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

// One header field: a text (path, names, signature) or, for type::uint32, a number. An empty text or a zero
// number is left out of the header.
struct FieldValue {
    HeaderField code;
    char type;
    std::string_view text;
    std::uint32_t number = 0;
};

// The header's fields, a(yv), written straight into a message reserved for them: the bus builds every reply,
// error and signal of its driver this way, and the general writer costs several times as much per field.
class HeaderFields {
  public:
    HeaderFields(std::vector<std::uint8_t>& out, ByteOrder order) : out_(out), order_(order) {}

    // The most a field adds: padding to 8, code and variant signature, a length, the text and its NUL.
    static std::size_t bound(const FieldValue& field) { return 7 + 4 + 4 + field.text.size() + 1; }

    void field(const FieldValue& field) {
        if (field.type == type::uint32 ? field.number == 0 : field.text.empty()) {
            return;
        }
        pad(8);  // each (yv) struct
        const std::uint8_t start[4] = {static_cast<std::uint8_t>(field.code), 1,
                                       static_cast<std::uint8_t>(field.type), 0};
        out_.insert(out_.end(), start, start + 4);
        if (field.type == type::uint32) {
            uint32(field.number);
            return;
        }
        if (field.type == type::signature) {
            out_.push_back(static_cast<std::uint8_t>(field.text.size()));
        } else {
            pad(4);
            uint32(static_cast<std::uint32_t>(field.text.size()));
        }
        out_.insert(out_.end(), field.text.begin(), field.text.end());
        out_.push_back(0);
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
    std::vector<std::uint8_t>& out_;
    ByteOrder order_;
};

}  // namespace

std::vector<std::uint8_t> build_message(const MessageSpec& spec, const BodyWriter& body) {
    const ByteOrder order = body.byte_order();
    const FieldValue fields[] = {
        {HeaderField::path, type::object_path, spec.path},
        {HeaderField::interface, type::string, spec.interface},
        {HeaderField::member, type::string, spec.member},
        {HeaderField::error_name, type::string, spec.error_name},
        {HeaderField::reply_serial, type::uint32, {}, spec.reply_serial},
        {HeaderField::destination, type::string, spec.destination},
        {HeaderField::sender, type::string, spec.sender},
        {HeaderField::signature, type::signature, body.written_signature()},
        {HeaderField::unix_fds, type::uint32, {}, spec.unix_fds},
    };
    // The fixed header, the fields, padding to 8 and the body: one allocation for the whole message.
    std::size_t bound = 16 + 7 + body.data().size();
    for (const FieldValue& field : fields) {
        bound += HeaderFields::bound(field);
    }
    std::vector<std::uint8_t> message;
    message.reserve(bound);
    message.push_back(static_cast<std::uint8_t>(order));
    message.push_back(static_cast<std::uint8_t>(spec.type));
    message.push_back(spec.flags);
    message.push_back(protocol_version);
    HeaderFields writer(message, order);
    writer.uint32(static_cast<std::uint32_t>(body.data().size()));
    writer.uint32(spec.serial);
    writer.uint32(0);  // the fields' length, once known
    for (const FieldValue& field : fields) {
        writer.field(field);
    }
    wire::store(message.data() + 12, static_cast<std::uint32_t>(message.size() - 16), order);
    writer.pad(8);
    message.insert(message.end(), body.data().begin(), body.data().end());
    return message;
}

std::vector<std::uint8_t> build_message(const MessageSpec& spec, ByteOrder byte_order) {
    return build_message(spec, BodyWriter(byte_order));
}

}  // namespace busgate::marshal
