// Validation of the strings the protocol gives meaning to: UTF-8 text, object paths, interface,
// member, error and bus names. The rules are dbus-daemon's, which in two places are looser than the
// specification's prose: a unique name needs no dot after the colon, and noncharacters are valid UTF-8.
#pragma once

#include <string_view>

namespace busgate::marshal {

// Valid UTF-8 without NUL, surrogates, overlong forms or code points past U+10FFFF.
bool is_valid_utf8(std::string_view text);
bool is_valid_object_path(std::string_view path);
bool is_valid_interface_name(std::string_view name);
bool is_valid_member_name(std::string_view name);
bool is_valid_error_name(std::string_view name);
// A unique (":1.42") or well-known ("org.example.Name") bus name.
bool is_valid_bus_name(std::string_view name);
// Like a well-known bus name, but a single element is enough (arg0namespace, own_prefix).
bool is_valid_bus_namespace(std::string_view name);
inline bool is_unique_name(std::string_view name) {
    return !name.empty() && name.front() == ':';
}

inline constexpr std::string_view local_interface = "org.freedesktop.DBus.Local";
inline constexpr std::string_view local_path = "/org/freedesktop/DBus/Local";

}  // namespace busgate::marshal
