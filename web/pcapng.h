// pcapng files of D-Bus traffic, as `busctl capture` writes them: one section, one interface of link type
// 231 (LINKTYPE_DBUS: each packet is one complete message), timestamps in microseconds. Wireshark and
// Bustle read them.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace busgate::web {

inline constexpr std::uint16_t linktype_dbus = 231;

// The section header and interface description blocks that open a file.
std::string pcapng_header();
// One enhanced packet block.
std::string pcapng_packet(std::uint64_t realtime_ns, std::span<const std::uint8_t> message);

}  // namespace busgate::web
