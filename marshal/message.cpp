#include "busgate/marshal/message.h"

#include "busgate/marshal/names.h"
#include "busgate/marshal/signature.h"
#include "wire.h"

namespace busgate::marshal {
namespace {

// Walks values by signature the way dbus-daemon's validator does, over [base, end) with alignment
// counted from base.
class ValueValidator {
  public:
    ValueValidator(const std::uint8_t* base, const std::uint8_t* end, ByteOrder byte_order)
        : base_(base), end_(end), byte_order_(byte_order) {}

    // Validates one value of each complete type in `signature` (only the first if !all_types).
    Validity walk(std::string_view signature, const std::uint8_t*& p, int depth, bool all_types) const {
        if (depth > limit::total_depth) {
            return Validity::nested_too_deeply;
        }
        std::size_t position = 0;
        while (position < signature.size()) {
            const std::size_t type_end = complete_type_end(signature, position);
            if (p == end_) {
                return Validity::not_enough_data;
            }
            const Validity validity = value(signature, position, type_end, p, depth);
            if (validity != Validity::valid) {
                return validity;
            }
            if (p > end_) {
                return Validity::not_enough_data;
            }
            if (!all_types) {
                break;
            }
            position = type_end;
        }
        return Validity::valid;
    }

    // Skips zero padding up to `alignment`; false if a padding byte is not zero.
    bool skip_padding(const std::uint8_t*& p, std::size_t alignment) const {
        const std::uint8_t* aligned = base_ + align_up(static_cast<std::size_t>(p - base_), alignment);
        for (; p < aligned; ++p) {
            if (*p != 0) {
                return false;
            }
        }
        return true;
    }

    const std::uint8_t* aligned(const std::uint8_t* p, std::size_t alignment) const {
        return base_ + align_up(static_cast<std::size_t>(p - base_), alignment);
    }

    std::uint32_t load_u32(const std::uint8_t* p) const { return wire::load_u32(p, byte_order_); }

  private:
    Validity value(std::string_view signature, std::size_t position, std::size_t type_end,
                   const std::uint8_t*& p, int depth) const {
        const char code = signature[position];
        switch (code) {
            case type::byte:
                ++p;
                return Validity::valid;

            case type::boolean:
            case type::int16:
            case type::uint16:
            case type::int32:
            case type::uint32:
            case type::unix_fd:
            case type::int64:
            case type::uint64:
            case type::double_: {
                const std::size_t size = alignment_of(code);
                const std::uint8_t* a = aligned(p, size);
                if (a >= end_ || static_cast<std::size_t>(end_ - a) < size) {
                    return Validity::not_enough_data;
                }
                if (!skip_padding(p, size)) {
                    return Validity::alignment_padding_not_nul;
                }
                if (code == type::boolean && load_u32(p) > 1) {
                    return Validity::boolean_not_zero_or_one;
                }
                p += size;
                return Validity::valid;
            }

            case type::array:
            case type::string:
            case type::object_path:
                return sized_value(signature, position, type_end, p, depth);

            case type::signature: {
                const std::uint32_t length = *p++;
                if (std::size_t{length} + 1 > static_cast<std::size_t>(end_ - p)) {
                    return Validity::signature_length_out_of_bounds;
                }
                const std::string_view text(reinterpret_cast<const char*>(p), length);
                if (const Validity validity = validate_signature(text); validity != Validity::valid) {
                    return validity;
                }
                p += length;
                if (*p != 0) {
                    return Validity::signature_missing_nul;
                }
                ++p;
                return Validity::valid;
            }

            case type::variant: {
                const std::uint32_t length = *p++;
                if (std::size_t{length} + 1 > static_cast<std::size_t>(end_ - p)) {
                    return Validity::variant_signature_length_out_of_bounds;
                }
                const std::string_view contained(reinterpret_cast<const char*>(p), length);
                if (validate_signature(contained) != Validity::valid) {
                    return Validity::variant_signature_bad;
                }
                p += length;
                if (*p != 0) {
                    return Validity::variant_signature_missing_nul;
                }
                ++p;
                if (contained.empty()) {
                    return Validity::variant_signature_empty;
                }
                if (aligned(p, alignment_of(contained.front())) > end_) {
                    return Validity::not_enough_data;
                }
                if (!skip_padding(p, alignment_of(contained.front()))) {
                    return Validity::alignment_padding_not_nul;
                }
                if (const Validity validity = walk(contained, p, depth + 1, false);
                    validity != Validity::valid) {
                    return validity;
                }
                if (complete_type_end(contained, 0) != contained.size()) {
                    return Validity::variant_signature_specifies_multiple_values;
                }
                return Validity::valid;
            }

            case type::struct_begin:
            case type::dict_entry_begin: {
                if (aligned(p, 8) > end_) {
                    return Validity::not_enough_data;
                }
                if (!skip_padding(p, 8)) {
                    return Validity::alignment_padding_not_nul;
                }
                const std::string_view fields = signature.substr(position + 1, type_end - position - 2);
                return walk(fields, p, depth + 1, true);
            }

            default:
                return Validity::unknown_typecode;
        }
    }

    // Strings, object paths and arrays: a 32-bit length, then the data.
    Validity sized_value(std::string_view signature, std::size_t position, std::size_t type_end,
                         const std::uint8_t*& p, int depth) const {
        const char code = signature[position];
        const std::uint8_t* a = aligned(p, 4);
        if (a > end_ || end_ - a < 4) {
            return Validity::not_enough_data;
        }
        if (!skip_padding(p, 4)) {
            return Validity::alignment_padding_not_nul;
        }
        const std::uint32_t length = load_u32(p);
        p += 4;

        std::string_view element;
        if (code == type::array) {
            element = signature.substr(position + 1, type_end - position - 1);
            if (aligned(p, alignment_of(element.front())) > end_) {
                return Validity::not_enough_data;
            }
            if (!skip_padding(p, alignment_of(element.front()))) {
                return Validity::alignment_padding_not_nul;
            }
        }
        if (length > static_cast<std::size_t>(end_ - p)) {
            return Validity::length_out_of_bounds;
        }

        if (code == type::array) {
            if (length == 0) {
                return Validity::valid;
            }
            if (length > limit::array_length) {
                return Validity::array_length_exceeds_maximum;
            }
            const std::uint8_t* array_end = p + length;
            const char element_code = element.front();
            if (is_fixed_type(element_code)) {
                const std::size_t size = alignment_of(element_code);
                if (length % size != 0) {
                    return Validity::array_length_incorrect;
                }
                if (element_code == type::boolean) {
                    for (; p < array_end; p += size) {
                        if (load_u32(p) > 1) {
                            return Validity::boolean_not_zero_or_one;
                        }
                    }
                }
                p = array_end;
            } else {
                while (p < array_end) {
                    if (const Validity validity = walk(element, p, depth + 1, false);
                        validity != Validity::valid) {
                        return validity;
                    }
                }
            }
            return p == array_end ? Validity::valid : Validity::array_length_incorrect;
        }

        const std::string_view text(reinterpret_cast<const char*>(p), length);
        if (code == type::object_path ? !is_valid_object_path(text) : !is_valid_utf8(text)) {
            return code == type::object_path ? Validity::bad_path : Validity::bad_utf8_in_string;
        }
        p += length;
        if (p == end_) {
            return Validity::not_enough_data;
        }
        if (*p != 0) {
            return Validity::string_missing_nul;
        }
        ++p;
        return Validity::valid;
    }

    const std::uint8_t* base_;
    const std::uint8_t* end_;
    ByteOrder byte_order_;
};

// What each known header field's string must be, and the reason given when it is not.
struct FieldRule {
    bool (*is_valid)(std::string_view);
    Validity invalid;
};

constexpr FieldRule field_rules[last_known_header_field + 1] = {
    {nullptr, Validity::valid},                          // invalid
    {is_valid_object_path, Validity::bad_path},          // path
    {is_valid_interface_name, Validity::bad_interface},  // interface
    {is_valid_member_name, Validity::bad_member},        // member
    {is_valid_error_name, Validity::bad_error_name},     // error_name
    {nullptr, Validity::valid},                          // reply_serial
    {is_valid_bus_name, Validity::bad_destination},      // destination
    {is_valid_bus_name, Validity::bad_sender},           // sender
    {nullptr, Validity::valid},                          // signature (validated as a value)
    {nullptr, Validity::valid},                          // unix_fds
};

std::string_view* string_field(MessageHeader& header, std::uint8_t code) {
    switch (static_cast<HeaderField>(code)) {
        case HeaderField::path:
            return &header.path;
        case HeaderField::interface:
            return &header.interface;
        case HeaderField::member:
            return &header.member;
        case HeaderField::error_name:
            return &header.error_name;
        case HeaderField::destination:
            return &header.destination;
        case HeaderField::sender:
            return &header.sender;
        case HeaderField::signature:
            return &header.signature;
        default:
            return nullptr;
    }
}

// Parses one known field whose variant carries exactly its expected type; `p` is just past the code.
Validity parse_known_field(const ValueValidator& validator, std::uint8_t code, const std::uint8_t*& p,
                           const std::uint8_t* end, MessageHeader& header) {
    const char expected = header_field_type(code);
    const bool exact_type =
        end - p >= 3 && p[0] == 1 && p[1] == static_cast<std::uint8_t>(expected) && p[2] == 0;
    if (!exact_type) {
        // Report why the variant is broken, or that it is well formed but of the wrong type.
        const Validity validity = validator.walk("v", p, 1, false);
        return validity == Validity::valid ? Validity::header_field_has_wrong_type : validity;
    }
    p += 3;
    if (expected == type::uint32) {
        if (validator.aligned(p, 4) + 4 > end) {
            return Validity::not_enough_data;
        }
        if (!validator.skip_padding(p, 4)) {
            return Validity::alignment_padding_not_nul;
        }
        const std::uint32_t value = validator.load_u32(p);
        p += 4;
        if (static_cast<HeaderField>(code) == HeaderField::reply_serial) {
            if (value == 0) {
                return Validity::bad_serial;
            }
            header.reply_serial = value;
        } else {
            header.unix_fds = value;
        }
        return Validity::valid;
    }

    std::string_view value;
    if (expected == type::signature) {
        const std::uint8_t* value_start = p;
        if (const Validity validity = validator.walk("g", p, 1, false); validity != Validity::valid) {
            return validity;
        }
        value = std::string_view(reinterpret_cast<const char*>(value_start + 1), *value_start);
    } else {
        // A string or object path. Every field rule (name or path grammar) is stricter than
        // UTF-8, so the text is checked once, by the rule.
        const std::uint8_t* length_at = validator.aligned(p, 4);
        if (length_at > end || end - length_at < 4) {
            return Validity::not_enough_data;
        }
        if (!validator.skip_padding(p, 4)) {
            return Validity::alignment_padding_not_nul;
        }
        const std::uint32_t length = validator.load_u32(p);
        p += 4;
        if (length > static_cast<std::size_t>(end - p)) {
            return Validity::length_out_of_bounds;
        }
        value = std::string_view(reinterpret_cast<const char*>(p), length);
        p += length;
        if (p == end) {
            return Validity::not_enough_data;
        }
        if (*p++ != 0) {
            return Validity::string_missing_nul;
        }
    }
    const FieldRule& rule = field_rules[code];
    if (rule.is_valid && !rule.is_valid(value)) {
        return rule.invalid;
    }
    *string_field(header, code) = value;
    return Validity::valid;
}

Validity check_required_fields(const MessageHeader& header) {
    switch (header.type) {
        case MessageType::method_call:
            if (!header.has(HeaderField::path)) {
                return Validity::missing_path;
            }
            if (!header.has(HeaderField::member)) {
                return Validity::missing_member;
            }
            break;
        case MessageType::signal:
            if (!header.has(HeaderField::path)) {
                return Validity::missing_path;
            }
            if (!header.has(HeaderField::interface)) {
                return Validity::missing_interface;
            }
            if (!header.has(HeaderField::member)) {
                return Validity::missing_member;
            }
            break;
        case MessageType::error:
            if (!header.has(HeaderField::error_name)) {
                return Validity::missing_error_name;
            }
            if (!header.has(HeaderField::reply_serial)) {
                return Validity::missing_reply_serial;
            }
            break;
        case MessageType::method_return:
            if (!header.has(HeaderField::reply_serial)) {
                return Validity::missing_reply_serial;
            }
            break;
        default:  // unknown types are valid and carry no required fields
            break;
    }
    return Validity::valid;
}

}  // namespace

FrameSize frame_size(std::span<const std::uint8_t> prefix, std::size_t max_message_length) {
    if (prefix.size() < minimum_header_size) {
        return {Validity::not_enough_data, 0};
    }
    const auto byte_order = static_cast<ByteOrder>(prefix[0]);
    if (byte_order != ByteOrder::little && byte_order != ByteOrder::big) {
        return {Validity::bad_byte_order, 0};
    }
    const std::size_t body_length = wire::load_u32(&prefix[4], byte_order);
    const std::size_t fields_length = wire::load_u32(&prefix[12], byte_order);
    if (fields_length > max_message_length) {
        return {Validity::insane_fields_array_length, 0};
    }
    if (body_length > max_message_length) {
        return {Validity::insane_body_length, 0};
    }
    const std::size_t total = align_up(minimum_header_size + fields_length, 8) + body_length;
    if (total > max_message_length) {
        return {Validity::message_too_long, 0};
    }
    return {Validity::valid, total};
}

namespace {

// The 16 fixed bytes (at least minimum_header_size must be there), into a fresh header.
void read_fixed_header(std::span<const std::uint8_t> message, MessageHeader& header) {
    header = MessageHeader{};
    header.byte_order = static_cast<ByteOrder>(message[0]);
    header.raw_type = message[1];
    header.type = static_cast<MessageType>(message[1]);
    header.flags = message[2];
    header.body_length = wire::load_u32(&message[4], header.byte_order);
    header.serial = wire::load_u32(&message[8], header.byte_order);
    header.fields_length = wire::load_u32(&message[12], header.byte_order);
    header.body_offset = static_cast<std::uint32_t>(align_up(minimum_header_size + header.fields_length, 8));
}

}  // namespace

Validity parse_header(std::span<const std::uint8_t> message, MessageHeader& header,
                      std::size_t max_message_length) {
    const FrameSize frame = frame_size(message, max_message_length);
    if (frame.validity != Validity::valid) {
        return frame.validity;
    }
    if (frame.total > message.size()) {
        return Validity::not_enough_data;
    }
    if (frame.total < message.size()) {
        return Validity::too_much_data;
    }

    read_fixed_header(message, header);

    if (message[3] != protocol_version) {
        return Validity::bad_protocol_version;
    }
    if (header.raw_type == static_cast<std::uint8_t>(MessageType::invalid)) {
        return Validity::bad_message_type;
    }
    if (header.serial == 0) {
        return Validity::bad_serial;
    }
    if (header.fields_length > limit::array_length) {
        return Validity::array_length_exceeds_maximum;
    }

    const std::uint8_t* base = message.data();
    const std::uint8_t* fields_end = base + minimum_header_size + header.fields_length;
    const ValueValidator validator(base, fields_end, header.byte_order);
    const std::uint8_t* p = base + minimum_header_size;
    while (p < fields_end) {
        if (validator.aligned(p, 8) >= fields_end) {
            return Validity::not_enough_data;
        }
        if (!validator.skip_padding(p, 8)) {
            return Validity::alignment_padding_not_nul;
        }
        const std::uint8_t* field_start = p;
        const std::uint8_t code = *p++;
        if (p == fields_end) {
            return Validity::not_enough_data;
        }
        if (code == static_cast<std::uint8_t>(HeaderField::invalid)) {
            return Validity::header_field_code;
        }
        if (code > last_known_header_field) {
            if (const Validity validity = validator.walk("v", p, 1, false); validity != Validity::valid) {
                return validity;
            }
            header.unknown_fields = true;
            continue;
        }
        if (header.present & (1u << code)) {
            return Validity::header_field_appears_twice;
        }
        if (const Validity validity = parse_known_field(validator, code, p, fields_end, header);
            validity != Validity::valid) {
            return validity;
        }
        header.present |= static_cast<std::uint16_t>(1u << code);
        header.locations[code] = {static_cast<std::uint32_t>(field_start - base),
                                  static_cast<std::uint32_t>(p - field_start)};
    }
    if (p != fields_end) {
        return Validity::array_length_incorrect;
    }
    for (const std::uint8_t* pad = fields_end; pad < base + header.body_offset; ++pad) {
        if (*pad != 0) {
            return Validity::alignment_padding_not_nul;
        }
    }

    if (header.has(HeaderField::interface) && header.interface == local_interface) {
        return Validity::uses_local_interface;
    }
    if (header.has(HeaderField::path) && header.path == local_path) {
        return Validity::uses_local_path;
    }
    return check_required_fields(header);
}

Validity parse_validated_header(std::span<const std::uint8_t> message, MessageHeader& header) {
    if (message.size() < minimum_header_size) {
        return parse_header(message, header);
    }
    read_fixed_header(message, header);
    const std::uint8_t* base = message.data();
    const std::size_t fields_end = minimum_header_size + header.fields_length;
    if (fields_end > message.size()) {
        return parse_header(message, header);
    }
    std::size_t p = minimum_header_size;
    while (p < fields_end) {
        p = align_up(p, 8);
        const std::size_t field_start = p;
        // Known fields in their one variant type; anything else (unknown codes kept as sent) is
        // left to the full parser.
        if (fields_end - p < 4 || base[p] == 0 || base[p] > last_known_header_field || base[p + 1] != 1 ||
            base[p + 3] != 0 || base[p + 2] != static_cast<std::uint8_t>(header_field_type(base[p]))) {
            return parse_header(message, header);
        }
        const std::uint8_t code = base[p];
        const char type = static_cast<char>(base[p + 2]);
        p += 4;
        std::string_view text;
        std::uint32_t number = 0;
        if (type == type::uint32) {
            p = align_up(p, 4);
            number = wire::load_u32(base + p, header.byte_order);
            p += 4;
        } else if (type == type::signature) {
            const std::size_t length = base[p];
            text = std::string_view(reinterpret_cast<const char*>(base + p + 1), length);
            p += 1 + length + 1;
        } else {
            p = align_up(p, 4);
            const std::size_t length = wire::load_u32(base + p, header.byte_order);
            text = std::string_view(reinterpret_cast<const char*>(base + p + 4), length);
            p += 4 + length + 1;
        }
        switch (static_cast<HeaderField>(code)) {
            case HeaderField::path:
                header.path = text;
                break;
            case HeaderField::interface:
                header.interface = text;
                break;
            case HeaderField::member:
                header.member = text;
                break;
            case HeaderField::error_name:
                header.error_name = text;
                break;
            case HeaderField::reply_serial:
                header.reply_serial = number;
                break;
            case HeaderField::destination:
                header.destination = text;
                break;
            case HeaderField::sender:
                header.sender = text;
                break;
            case HeaderField::signature:
                header.signature = text;
                break;
            case HeaderField::unix_fds:
                header.unix_fds = number;
                break;
            case HeaderField::invalid:
                break;
        }
        header.present |= static_cast<std::uint16_t>(1u << code);
        header.locations[code] = {static_cast<std::uint32_t>(field_start),
                                  static_cast<std::uint32_t>(p - field_start)};
    }
    return Validity::valid;
}

Validity validate_values(std::span<const std::uint8_t> data, std::size_t offset, std::size_t end,
                         std::string_view signature, ByteOrder byte_order) {
    const ValueValidator validator(data.data(), data.data() + end, byte_order);
    const std::uint8_t* p = data.data() + offset;
    if (const Validity validity = validator.walk(signature, p, 0, true); validity != Validity::valid) {
        return validity;
    }
    return p == data.data() + end ? Validity::valid : Validity::too_much_data;
}

Validity validate_body(std::span<const std::uint8_t> message, const MessageHeader& header) {
    return validate_values(message, header.body_offset, header.body_offset + header.body_length,
                           header.signature, header.byte_order);
}

Validity parse_message(std::span<const std::uint8_t> message, MessageHeader& header,
                       std::size_t max_message_length) {
    if (const Validity validity = parse_header(message, header, max_message_length);
        validity != Validity::valid) {
        return validity;
    }
    return validate_body(message, header);
}

}  // namespace busgate::marshal
