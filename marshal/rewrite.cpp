#include "busgate/marshal/rewrite.h"

#include <cstring>

#include "wire.h"

namespace busgate::marshal {

void rewrite_header_with_sender(std::span<const std::uint8_t> message, const MessageHeader& header,
                                std::string_view sender, std::vector<std::uint8_t>& out) {
    out.clear();
    out.insert(out.end(), message.begin(), message.begin() + minimum_header_size);

    // Each known field starts 8-aligned and its value is aligned relative to that start, so the
    // bytes of a field can be copied unchanged to any 8-aligned place.
    for (std::uint8_t code = 1; code <= last_known_header_field; ++code) {
        if (code == static_cast<std::uint8_t>(HeaderField::sender) || !(header.present & (1u << code))) {
            continue;
        }
        const FieldLocation& field = header.locations[code];
        out.resize(align_up(out.size(), 8), 0);
        out.insert(out.end(), message.begin() + field.offset, message.begin() + field.offset + field.size);
    }

    out.resize(align_up(out.size(), 8), 0);
    const std::uint8_t sender_field[4] = {static_cast<std::uint8_t>(HeaderField::sender), 1, type::string, 0};
    out.insert(out.end(), std::begin(sender_field), std::end(sender_field));
    std::uint8_t length[4];
    wire::store(length, static_cast<std::uint32_t>(sender.size()), header.byte_order);
    out.insert(out.end(), std::begin(length), std::end(length));
    out.insert(out.end(), sender.begin(), sender.end());
    out.push_back(0);

    const auto fields_length = static_cast<std::uint32_t>(out.size() - minimum_header_size);
    wire::store(out.data() + 12, fields_length, header.byte_order);
    out.resize(align_up(out.size(), 8), 0);
}

}  // namespace busgate::marshal
