#include "busgate/marshal/rewrite.h"

#include <cstddef>
#include <cstring>

#include "wire.h"

namespace busgate::marshal {
namespace {

// Appending by resize and memcpy instead of vector::insert: at -O3 GCC 12 follows insert's reallocation path
// into a freshly cleared vector and reports it as out of bounds (-Warray-bounds, -Wstringop-overflow), a
// false positive that breaks release builds with warnings as errors.
void append(std::vector<std::uint8_t>& out, const std::uint8_t* data, std::size_t size) {
    const std::size_t at = out.size();
    out.resize(at + size);
    if (size != 0) {
        std::memcpy(out.data() + at, data, size);
    }
}

}  // namespace

void rewrite_header_with_sender(std::span<const std::uint8_t> message, const MessageHeader& header,
                                std::string_view sender, std::vector<std::uint8_t>& out) {
    out.clear();
    append(out, message.data(), minimum_header_size);

    // Each known field starts 8-aligned and its value is aligned relative to that start, so the
    // bytes of a field can be copied unchanged to any 8-aligned place.
    for (std::uint8_t code = 1; code <= last_known_header_field; ++code) {
        if (code == static_cast<std::uint8_t>(HeaderField::sender) || !(header.present & (1u << code))) {
            continue;
        }
        const FieldLocation& field = header.locations[code];
        out.resize(align_up(out.size(), 8), 0);
        append(out, message.data() + field.offset, field.size);
    }

    out.resize(align_up(out.size(), 8), 0);
    const std::uint8_t sender_field[4] = {static_cast<std::uint8_t>(HeaderField::sender), 1, type::string, 0};
    append(out, sender_field, sizeof sender_field);
    std::uint8_t length[4];
    wire::store(length, static_cast<std::uint32_t>(sender.size()), header.byte_order);
    append(out, length, sizeof length);
    append(out, reinterpret_cast<const std::uint8_t*>(sender.data()), sender.size());
    out.push_back(0);

    const auto fields_length = static_cast<std::uint32_t>(out.size() - minimum_header_size);
    wire::store(out.data() + 12, fields_length, header.byte_order);
    out.resize(align_up(out.size(), 8), 0);
}

bool stampable_in_front(const MessageHeader& header) {
    // The parser reads the fields one after the other, each at the 8-aligned end of the one before, up
    // to the array's end: only a field it skipped (an unknown code) leaves the known ones not tiling it.
    return !header.has(HeaderField::sender) && !header.unknown_fields;
}

std::size_t sender_field_room(std::string_view sender) {
    // code, signature "s", length, the name and its NUL
    return align_up(8 + sender.size() + 1, 8);
}

std::uint8_t* stamp_sender_in_front(std::uint8_t* message, const MessageHeader& header,
                                    std::string_view sender) {
    const std::size_t room = sender_field_room(sender);
    std::uint8_t* const stamped = message - room;
    std::memmove(stamped, message, minimum_header_size);
    wire::store(stamped + 12, static_cast<std::uint32_t>(header.fields_length + room), header.byte_order);
    std::uint8_t* field = stamped + minimum_header_size;
    const std::uint8_t code_and_signature[4] = {static_cast<std::uint8_t>(HeaderField::sender), 1,
                                                type::string, 0};
    std::memcpy(field, code_and_signature, sizeof code_and_signature);
    wire::store(field + 4, static_cast<std::uint32_t>(sender.size()), header.byte_order);
    std::memcpy(field + 8, sender.data(), sender.size());
    std::memset(field + 8 + sender.size(), 0, room - 8 - sender.size());  // the NUL and the padding
    return stamped;
}

}  // namespace busgate::marshal
