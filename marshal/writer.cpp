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

void add_string_field(BodyWriter& fields, HeaderField code, char type_code, std::string_view value) {
    if (value.empty()) {
        return;
    }
    fields.open_struct().byte(static_cast<std::uint8_t>(code)).open_variant(std::string_view(&type_code, 1));
    if (type_code == type::object_path) {
        fields.object_path(value);
    } else if (type_code == type::signature) {
        fields.signature(value);
    } else {
        fields.string(value);
    }
    fields.close_variant().close_struct();
}

void add_uint32_field(BodyWriter& fields, HeaderField code, std::uint32_t value) {
    if (value != 0) {
        fields.open_struct().byte(static_cast<std::uint8_t>(code)).open_variant("u").uint32(value);
        fields.close_variant().close_struct();
    }
}

}  // namespace

std::vector<std::uint8_t> build_message(const MessageSpec& spec, const BodyWriter& body) {
    // The fixed header and the field array are marshalled as the values yyyyuua(yv).
    BodyWriter header(body.byte_order());
    // The fixed header, at most 8 fields of code, variant signature, length, text and padding, and the
    // body: one allocation for the whole message.
    const std::size_t texts = spec.path.size() + spec.interface.size() + spec.member.size() +
                              spec.error_name.size() + spec.destination.size() + spec.sender.size() +
                              body.written_signature().size();
    header.reserve(16 + 9 * 16 + texts + 8 + body.data().size(), 3);
    header.byte(static_cast<std::uint8_t>(body.byte_order()))
        .byte(static_cast<std::uint8_t>(spec.type))
        .byte(spec.flags)
        .byte(protocol_version)
        .uint32(static_cast<std::uint32_t>(body.data().size()))
        .uint32(spec.serial)
        .open_array("(yv)");
    add_string_field(header, HeaderField::path, type::object_path, spec.path);
    add_string_field(header, HeaderField::interface, type::string, spec.interface);
    add_string_field(header, HeaderField::member, type::string, spec.member);
    add_string_field(header, HeaderField::error_name, type::string, spec.error_name);
    add_uint32_field(header, HeaderField::reply_serial, spec.reply_serial);
    add_string_field(header, HeaderField::destination, type::string, spec.destination);
    add_string_field(header, HeaderField::sender, type::string, spec.sender);
    add_string_field(header, HeaderField::signature, type::signature, body.written_signature());
    add_uint32_field(header, HeaderField::unix_fds, spec.unix_fds);
    header.close_array();

    std::vector<std::uint8_t> message = std::move(header).release();
    message.resize(align_up(message.size(), 8), 0);
    message.insert(message.end(), body.data().begin(), body.data().end());
    return message;
}

std::vector<std::uint8_t> build_message(const MessageSpec& spec, ByteOrder byte_order) {
    return build_message(spec, BodyWriter(byte_order));
}

}  // namespace busgate::marshal
