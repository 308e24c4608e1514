#include "busgate/marshal/names.h"

#include <array>
#include <cstddef>
#include <cstdint>

#include "busgate/marshal/types.h"

namespace busgate::marshal {
namespace {

// The character classes of D-Bus names, one table lookup a character: names are checked in every
// header of every message.
namespace char_class {
constexpr std::uint8_t initial = 1;      // [A-Za-z_]
constexpr std::uint8_t name = 2;         // [A-Za-z0-9_]
constexpr std::uint8_t bus_initial = 4;  // [A-Za-z_-]
constexpr std::uint8_t bus = 8;          // [A-Za-z0-9_-]
}  // namespace char_class

constexpr std::array<std::uint8_t, 256> char_classes = [] {
    std::array<std::uint8_t, 256> classes{};
    const std::uint8_t all =
        char_class::initial | char_class::name | char_class::bus_initial | char_class::bus;
    for (int c = 'A'; c <= 'Z'; ++c) {
        classes[c] = all;
        classes[c - 'A' + 'a'] = all;
    }
    classes['_'] = all;
    for (int c = '0'; c <= '9'; ++c) {
        classes[c] = char_class::name | char_class::bus;
    }
    classes['-'] = char_class::bus_initial | char_class::bus;
    return classes;
}();

bool in_class(unsigned char c, std::uint8_t wanted) {
    return (char_classes[c] & wanted) != 0;
}
bool is_initial_name_char(unsigned char c) {
    return in_class(c, char_class::initial);
}
bool is_name_char(unsigned char c) {
    return in_class(c, char_class::name);
}
bool is_initial_bus_name_char(unsigned char c) {
    return in_class(c, char_class::bus_initial);
}
bool is_bus_name_char(unsigned char c) {
    return in_class(c, char_class::bus);
}

// Dot-separated elements, each starting with an initial character; `min_elements` 1 or 2.
template <bool (*Initial)(unsigned char), bool (*Subsequent)(unsigned char)>
bool is_dotted_name(std::string_view name, int min_elements) {
    if (name.empty() || name.size() > limit::name_length) {
        return false;
    }
    int elements = 1;
    bool at_element_start = true;
    for (unsigned char c : name) {
        if (c == '.') {
            if (at_element_start) {
                return false;
            }
            ++elements;
            at_element_start = true;
        } else if (at_element_start ? !Initial(c) : !Subsequent(c)) {
            return false;
        } else {
            at_element_start = false;
        }
    }
    return !at_element_start && elements >= min_elements;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* end = p + text.size();
    while (p < end) {
        unsigned char lead = *p;
        if (lead < 0x80) {
            if (lead == 0) {
                return false;
            }
            ++p;
            continue;
        }
        std::size_t length;
        std::uint32_t code_point;
        if ((lead & 0xe0) == 0xc0) {
            length = 2;
            code_point = lead & 0x1f;
        } else if ((lead & 0xf0) == 0xe0) {
            length = 3;
            code_point = lead & 0x0f;
        } else if ((lead & 0xf8) == 0xf0) {
            length = 4;
            code_point = lead & 0x07;
        } else {
            return false;
        }
        if (static_cast<std::size_t>(end - p) < length) {
            return false;
        }
        for (std::size_t i = 1; i < length; ++i) {
            if ((p[i] & 0xc0) != 0x80) {
                return false;
            }
            code_point = (code_point << 6) | (p[i] & 0x3f);
        }
        static constexpr std::uint32_t smallest[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (code_point < smallest[length] || code_point > 0x10ffff || (code_point & 0xfffff800) == 0xd800) {
            return false;
        }
        p += length;
    }
    return true;
}

bool is_valid_object_path(std::string_view path) {
    if (path.empty() || path.front() != '/') {
        return false;
    }
    if (path.size() == 1) {
        return true;
    }
    bool after_slash = true;
    for (std::size_t i = 1; i < path.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(path[i]);
        if (c == '/') {
            if (after_slash) {
                return false;
            }
            after_slash = true;
        } else if (!is_name_char(c)) {
            return false;
        } else {
            after_slash = false;
        }
    }
    return !after_slash;
}

bool is_valid_interface_name(std::string_view name) {
    return is_dotted_name<is_initial_name_char, is_name_char>(name, 2);
}

bool is_valid_error_name(std::string_view name) {
    return is_valid_interface_name(name);
}

bool is_valid_member_name(std::string_view name) {
    if (name.empty() || name.size() > limit::name_length || !is_initial_name_char(name.front())) {
        return false;
    }
    for (unsigned char c : name.substr(1)) {
        if (!is_name_char(c)) {
            return false;
        }
    }
    return true;
}

bool is_valid_bus_name(std::string_view name) {
    if (!is_unique_name(name)) {
        return is_dotted_name<is_initial_bus_name_char, is_bus_name_char>(name, 2);
    }
    if (name.size() > limit::name_length) {
        return false;
    }
    // dbus-daemon accepts any run of bus-name characters and non-empty dot-separated elements after
    // the colon, without requiring a dot; elements may begin with a digit.
    for (std::size_t i = 1; i < name.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        if (c == '.') {
            if (i + 1 == name.size() || !is_bus_name_char(static_cast<unsigned char>(name[i + 1]))) {
                return false;
            }
            ++i;
        } else if (!is_bus_name_char(c)) {
            return false;
        }
    }
    return true;
}

bool is_valid_bus_namespace(std::string_view name) {
    return !is_unique_name(name) && is_dotted_name<is_initial_bus_name_char, is_bus_name_char>(name, 1);
}

}  // namespace busgate::marshal
