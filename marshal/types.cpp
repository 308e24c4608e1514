#include "busgate/marshal/types.h"

namespace busgate::marshal {

bool is_basic_type(char code) {
    switch (code) {
        case type::byte:
        case type::boolean:
        case type::int16:
        case type::uint16:
        case type::int32:
        case type::uint32:
        case type::int64:
        case type::uint64:
        case type::double_:
        case type::string:
        case type::object_path:
        case type::signature:
        case type::unix_fd:
            return true;
        default:
            return false;
    }
}

bool is_fixed_type(char code) {
    return is_basic_type(code) && !is_string_like_type(code);
}

bool is_string_like_type(char code) {
    return code == type::string || code == type::object_path || code == type::signature;
}

std::size_t alignment_of(char code) {
    switch (code) {
        case type::byte:
        case type::signature:
        case type::variant:
            return 1;
        case type::int16:
        case type::uint16:
            return 2;
        case type::boolean:
        case type::int32:
        case type::uint32:
        case type::unix_fd:
        case type::string:
        case type::object_path:
        case type::array:
            return 4;
        case type::int64:
        case type::uint64:
        case type::double_:
        case type::struct_begin:
        case type::dict_entry_begin:
            return 8;
        default:
            return 0;
    }
}

char header_field_type(std::uint8_t code) {
    static constexpr char types[last_known_header_field + 1] = {
        0,                  // invalid
        type::object_path,  // path
        type::string,       // interface
        type::string,       // member
        type::string,       // error_name
        type::uint32,       // reply_serial
        type::string,       // destination
        type::string,       // sender
        type::signature,    // signature
        type::uint32,       // unix_fds
    };
    return code <= last_known_header_field ? types[code] : 0;
}

}  // namespace busgate::marshal
