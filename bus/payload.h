// Payloads the bus makes itself: from bytes it built, and copies for monitors and eavesdroppers.
#pragma once

#include <fcntl.h>

#include <cstdint>
#include <span>
#include <vector>

#include "busgate/core/message.h"
#include "busgate/util/unique_fd.h"

namespace busgate::bus {

inline core::PayloadRef payload_of(const std::vector<std::uint8_t>& bytes,
                                   std::vector<util::UniqueFd> fds = {}) {
    const auto* begin = reinterpret_cast<const std::byte*>(bytes.data());
    return core::MessagePayload::make(std::span<const std::byte>(begin, bytes.size()), std::move(fds));
}

// A copy of a message for a monitor or eavesdropper, with its own duplicates of the message's fds.
inline core::PayloadRef copy_of(std::span<const std::uint8_t> bytes, std::span<const util::UniqueFd> fds) {
    std::vector<util::UniqueFd> duplicates;
    for (const util::UniqueFd& fd : fds) {
        duplicates.emplace_back(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    }
    return payload_of(std::vector<std::uint8_t>(bytes.begin(), bytes.end()), std::move(duplicates));
}

// A payload's bytes as the parsers and sockets take them.
inline std::span<const std::uint8_t> bytes_of(const core::MessagePayload& payload) {
    return {reinterpret_cast<const std::uint8_t*>(payload.bytes.data()), payload.bytes.size()};
}

}  // namespace busgate::bus
