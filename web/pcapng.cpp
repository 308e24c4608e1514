// pcapng blocks (see pcapng.h), written little-endian (readers take either order from the byte-order magic).
#include "web/pcapng.h"

namespace busgate::web {
namespace {

void put32(std::string& out, std::uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8) {
        out += static_cast<char>((value >> shift) & 0xff);
    }
}

void put16(std::string& out, std::uint16_t value) {
    out += static_cast<char>(value & 0xff);
    out += static_cast<char>(value >> 8);
}

constexpr std::uint32_t section_header_block = 0x0A0D0D0A;
constexpr std::uint32_t interface_description_block = 1;
constexpr std::uint32_t enhanced_packet_block = 6;
constexpr std::uint32_t max_message_size = 128 * 1024 * 1024;  // DBUS_MAXIMUM_MESSAGE_LENGTH, as busctl

}  // namespace

std::string pcapng_header() {
    std::string out;
    put32(out, section_header_block);
    put32(out, 28);
    put32(out, 0x1A2B3C4D);  // byte-order magic
    put16(out, 1);           // version 1.0
    put16(out, 0);
    put32(out, 0xffffffff);  // section length unknown (-1)
    put32(out, 0xffffffff);
    put32(out, 28);

    put32(out, interface_description_block);
    put32(out, 20);
    put16(out, linktype_dbus);
    put16(out, 0);
    put32(out, max_message_size);  // snap length
    put32(out, 20);
    return out;
}

std::string pcapng_packet(std::uint64_t realtime_ns, std::span<const std::uint8_t> message) {
    const std::uint64_t microseconds = realtime_ns / 1000;
    const auto length = static_cast<std::uint32_t>(message.size());
    const std::uint32_t padded = (length + 3) & ~3u;
    const std::uint32_t total = 32 + padded;
    std::string out;
    out.reserve(total);
    put32(out, enhanced_packet_block);
    put32(out, total);
    put32(out, 0);  // interface 0
    put32(out, static_cast<std::uint32_t>(microseconds >> 32));
    put32(out, static_cast<std::uint32_t>(microseconds));
    put32(out, length);  // captured
    put32(out, length);  // original
    out.append(reinterpret_cast<const char*>(message.data()), message.size());
    out.append(padded - length, '\0');
    put32(out, total);
    return out;
}

}  // namespace busgate::web
