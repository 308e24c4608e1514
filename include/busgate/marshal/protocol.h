// Names and numbers the D-Bus specification fixes for the message bus itself.
#pragma once

#include <cstdint>
#include <string_view>

namespace busgate::marshal {

inline constexpr std::string_view bus_name = "org.freedesktop.DBus";
inline constexpr std::string_view bus_path = "/org/freedesktop/DBus";
inline constexpr std::string_view bus_interface = "org.freedesktop.DBus";
inline constexpr std::string_view peer_interface = "org.freedesktop.DBus.Peer";
inline constexpr std::string_view introspectable_interface = "org.freedesktop.DBus.Introspectable";
inline constexpr std::string_view properties_interface = "org.freedesktop.DBus.Properties";
inline constexpr std::string_view monitoring_interface = "org.freedesktop.DBus.Monitoring";
inline constexpr std::string_view stats_interface = "org.freedesktop.DBus.Debug.Stats";

// RequestName flags.
namespace request_name_flag {
inline constexpr std::uint32_t allow_replacement = 0x1;
inline constexpr std::uint32_t replace_existing = 0x2;
inline constexpr std::uint32_t do_not_queue = 0x4;
}  // namespace request_name_flag

}  // namespace busgate::marshal
