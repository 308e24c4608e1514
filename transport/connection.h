// Connection: one dbus1 socket connection's transport. Owns the socket, runs the authentication
// conversation, frames and validates incoming messages (collecting passed fds), and writes queued
// messages with gathered I/O, fds attached to the first byte of their message. It knows nothing of
// names or routing: the daemon takes framed messages out and puts payloads in.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "busgate/core/message.h"
#include "busgate/marshal/message.h"
#include "busgate/util/byte_buffer.h"
#include "busgate/util/unique_fd.h"
#include "transport/peer_credentials.h"
#include "transport/sasl.h"

namespace busgate::transport {

using util::ByteBuffer;
using util::UniqueFd;

// A complete, validated message as it arrived, with its fds.
// Free bytes kept in front of every framed message: room for the bus's SENDER field (a unique name of
// up to 23 characters), so that stamping it moves no body.
inline constexpr std::size_t message_headroom = 32;

struct IncomingMessage {
    ByteBuffer bytes;               // with message_headroom in front
    marshal::MessageHeader header;  // views into `bytes`
    std::vector<util::UniqueFd> fds;
};

// The reason read() gives when the peer closed its end: the normal end of a connection.
inline constexpr std::string_view peer_hung_up = "connection closed by peer";

struct ConnectionLimits {
    std::size_t max_message_size = 128u * 1024 * 1024;
    std::size_t max_message_unix_fds = 1024;
    std::size_t max_outgoing_bytes = 128u * 1024 * 1024;
    std::size_t max_outgoing_unix_fds = 1024 * 1024;
    // fds received for a message that has not arrived completely may be held this long (dbus-daemon's
    // pending_fd_timeout); the daemon enforces it through pending_fds_since().
    std::uint64_t pending_fd_timeout_ns = 150'000'000'000;
};

class Connection {
  public:
    Connection(util::UniqueFd socket, PeerCredentials credentials, SaslOptions sasl, ConnectionLimits limits,
               std::string nonce = {});

    // A connection authenticated before (a restart hands it over): no SASL, the outcome it had, and the
    // bytes the last process had read but not framed, and had queued but not written.
    static std::unique_ptr<Connection> resumed(util::UniqueFd socket, PeerCredentials credentials,
                                               SaslOutcome authentication, ConnectionLimits limits,
                                               std::span<const std::uint8_t> unread_input = {},
                                               std::span<const std::uint8_t> unwritten_output = {});

    int fd() const { return socket_.get(); }
    const PeerCredentials& credentials() const { return credentials_; }
    bool authenticated() const { return !sasl_; }
    bool unix_fds_allowed() const { return authentication_.unix_fd_negotiated; }
    // Valid once authenticated.
    const SaslOutcome& authentication() const { return authentication_; }

    // Reads what the socket has and appends every complete message to `messages`. Returns false
    // when the connection must be closed (peer hung up, failed authentication, invalid message);
    // `reason` then says why.
    bool read(std::vector<IncomingMessage>& messages, std::string& reason);

    // When the fds now held for an incomplete message first arrived (CLOCK_MONOTONIC ns); 0 if none.
    std::uint64_t pending_fds_since() const { return pending_fds_since_; }
    const ConnectionLimits& limits() const { return limits_; }

    // Whether `payload` fits under the outgoing limits now (an empty queue takes anything).
    bool can_take(const core::MessagePayload& payload) const;
    // Queues a message for sending. Returns false if the outgoing limit (bytes or fds) is exceeded.
    bool send(core::PayloadRef payload);
    void send_bytes(std::string bytes);  // authentication replies
    // Writes as much as the socket takes. Returns false on a fatal error.
    bool flush();
    bool has_output() const { return output_head_ < output_.size(); }
    // For a restart, byte-exact: what was read but is no complete message yet, and what is queued but
    // not written, from its first unwritten byte.
    std::span<const std::uint8_t> unread_input() const { return {input_.data(), input_.size()}; }
    std::vector<std::uint8_t> unwritten_output() const;
    // Descriptors the bus holds for this connection: received for a message not complete yet, or queued
    // with a message not written yet.
    bool holds_descriptors() const;
    std::size_t queued_bytes() const { return queued_bytes_; }

  private:
    struct OutgoingFrame {
        core::PayloadRef payload;
        std::string text;  // authentication lines, when payload is null
        std::size_t offset = 0;
        std::size_t size() const { return payload ? payload->bytes.size() : text.size(); }
        // The bytes still to write.
        const void* rest() const {
            return payload ? static_cast<const void*>(payload->bytes.data() + offset)
                           : static_cast<const void*>(text.data() + offset);
        }
    };

    void drop_written_frames();
    // The fds a recvmsg brought, kept until the message that carries them is framed.
    void take_fds(msghdr& header);
    // Bytes before BEGIN: the nonce (nonce-tcp), then SASL. False with `reason` when the peer must go;
    // once authenticated, what followed BEGIN is in input_.
    bool authenticate(std::span<const std::uint8_t> fresh, std::string& reason);
    // Frames every complete message of `bytes`; keeps the unfinished rest in input_. When `owner`
    // holds exactly one message (a large one read in parts) it becomes that message's buffer.
    bool frame_messages(std::span<const std::uint8_t> bytes, std::vector<IncomingMessage>& messages,
                        std::string& reason, ByteBuffer* owner = nullptr);

    util::UniqueFd socket_;
    PeerCredentials credentials_;
    // The exchange until BEGIN, then freed: an idle connection keeps only its outcome.
    std::unique_ptr<SaslServer> sasl_;
    SaslOutcome authentication_;
    ConnectionLimits limits_;
    std::string nonce_;  // nonce-tcp: bytes still expected before authentication
    ByteBuffer input_;   // an unfinished message; empty (and unallocated) between messages
    // Vectors, not deques: a deque allocates its first block up front, which every idle connection
    // would carry.
    std::vector<util::UniqueFd> received_fds_;
    std::vector<OutgoingFrame> output_;
    std::size_t output_head_ = 0;  // first frame not yet written
    std::size_t queued_bytes_ = 0;
    std::size_t queued_fds_ = 0;
    std::uint64_t pending_fds_since_ = 0;
    bool large_send_buffer_ = false;  // SO_SNDBUF raised once a large message went out
};

}  // namespace busgate::transport
