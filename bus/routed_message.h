// RoutedMessage: a message on its way through the bus. It is the one payload every receiver is written
// from (a client's message with SENDER stamped, or one the bus built), and it keeps its parsed header
// beside the bytes, so the checks at egress (bloom re-check, receive policy, endpoint rules) read the
// header once per message, not once per receiver.
//
// Every payload bus/ hands to the core is a RoutedMessage (they are made only here), so what the core
// gives back is one: routed() recovers it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "busgate/core/message.h"
#include "busgate/marshal/message.h"
#include "busgate/marshal/writer.h"
#include "busgate/policy/policy.h"
#include "busgate/util/unique_fd.h"
#include "transport/connection.h"

namespace busgate::bus {

// `message` as the bus routes it: SENDER stamped, unknown header fields dropped, body unchanged.
std::vector<std::uint8_t> stamped_message(const transport::IncomingMessage& message, std::string_view sender);

class RoutedMessage final : public core::MessagePayload {
  public:
    using Ref = std::shared_ptr<const RoutedMessage>;

    // What `message` becomes on the bus: its header rewritten with SENDER `sender` (unknown fields
    // dropped), its body as the client sent it; its fds move into the payload, and so, most of the time,
    // do its bytes (`message.header` stays valid while the payload lives).
    static Ref stamped(transport::IncomingMessage& message, std::string_view sender);
    // A message the bus built itself.
    static Ref built(const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                     std::vector<util::UniqueFd> fds = {});
    // A copy for a monitor or eavesdropper, with its own duplicates of `fds`.
    static Ref copy(std::span<const std::uint8_t> bytes, std::span<const util::UniqueFd> fds);

    std::span<const std::uint8_t> wire() const { return bytes; }
    // The header, parsed on first use (the bytes were validated when they arrived or were built); null
    // only if they do not parse, which no message the bus accepted does.
    const marshal::MessageHeader* header() const;
    // How the policy of generation `generation` sees this message, once kept: a broadcast's receivers
    // all check the same prepared view, so its names are looked up once per message, not per receiver.
    const policy::PreparedMessage* prepared(std::uint64_t generation) const {
        return prepared_ && prepared_generation_ == generation ? &*prepared_ : nullptr;
    }
    const policy::PreparedMessage& keep_prepared(std::uint64_t generation, policy::PreparedMessage view) const {
        prepared_generation_ = generation;
        return prepared_.emplace(std::move(view));
    }

    RoutedMessage() = default;
    RoutedMessage(const RoutedMessage&) = delete;  // the header's views point into `bytes`
    RoutedMessage& operator=(const RoutedMessage&) = delete;

  private:
    mutable std::optional<marshal::MessageHeader> header_;
    mutable bool parsed_ = false;
    mutable std::optional<policy::PreparedMessage> prepared_;
    mutable std::uint64_t prepared_generation_ = 0;
};

inline const RoutedMessage& routed(const core::MessagePayload& payload) {
    return static_cast<const RoutedMessage&>(payload);
}

}  // namespace busgate::bus
