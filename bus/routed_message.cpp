#include "bus/routed_message.h"

#include <fcntl.h>

#include <cstddef>

#include "busgate/marshal/rewrite.h"

namespace busgate::bus {

std::vector<std::uint8_t> stamped_message(const transport::IncomingMessage& message,
                                          std::string_view sender) {
    const auto body = marshal::body_of(message.bytes, message.header);
    std::vector<std::uint8_t> stamped;
    // The header grows by the SENDER field at most (code, signature, length, name, NUL, padding to 8).
    // Reserved once, so the header is written in place and the body appended without a zero fill first.
    stamped.reserve(std::size_t{message.header.body_offset} + sender.size() + 16 + body.size());
    marshal::rewrite_header_with_sender(message.bytes, message.header, sender, stamped);
    stamped.insert(stamped.end(), body.begin(), body.end());
    return stamped;
}

RoutedMessage::Ref RoutedMessage::stamped(transport::IncomingMessage& message, std::string_view sender) {
    auto routed = std::make_shared<RoutedMessage>();
    if (marshal::stampable_in_front(message.header) &&
        message.bytes.headroom() >= marshal::sender_field_room(sender)) {
        // The common case: the client's buffer becomes the payload, SENDER written in its headroom; the
        // body is never copied. `message.header`'s views still point at the fields, which did not move.
        marshal::stamp_sender_in_front(message.bytes.data(), message.header, sender);
        message.bytes.grow_front(marshal::sender_field_room(sender));
        routed->bytes = std::move(message.bytes);
    } else {
        routed->bytes.assign(stamped_message(message, sender));
    }
    routed->fds = std::move(message.fds);
    return routed;
}

RoutedMessage::Ref RoutedMessage::built(const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                                        std::vector<util::UniqueFd> fds) {
    auto routed = std::make_shared<RoutedMessage>();
    routed->bytes.assign(marshal::build_message(spec, body));
    routed->fds = std::move(fds);
    return routed;
}

RoutedMessage::Ref RoutedMessage::copy(std::span<const std::uint8_t> bytes,
                                       std::span<const util::UniqueFd> fds) {
    auto routed = std::make_shared<RoutedMessage>();
    routed->bytes.assign(bytes);
    for (const util::UniqueFd& fd : fds) {
        routed->fds.emplace_back(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    }
    return routed;
}

const marshal::MessageHeader* RoutedMessage::header() const {
    if (!parsed_) {
        parsed_ = true;
        marshal::MessageHeader header;
        if (marshal::parse_validated_header(bytes, header) == marshal::Validity::valid) {
            header_.emplace(header);
        }
    }
    return header_ ? &*header_ : nullptr;
}

}  // namespace busgate::bus
