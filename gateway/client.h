// Client: one dbus1 socket connection's transport. Owns the socket, runs the authentication
// conversation, frames and validates incoming messages (collecting passed fds), and writes queued
// messages with gathered I/O, fds attached to the first byte of their message. It knows nothing of
// names or routing: the daemon takes framed messages out and puts payloads in.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "busgate/core/message.h"
#include "busgate/core/unique_fd.h"
#include "busgate/marshal/message.h"
#include "sasl.h"

namespace busgate::gateway {

using core::UniqueFd;

// A growable byte buffer that, unlike std::vector, leaves new bytes uninitialized (recvmsg is about
// to overwrite them) and copies with memcpy. A span of its bytes is what the parsers take.
class ByteBuffer {
  public:
    ByteBuffer() = default;
    ByteBuffer(ByteBuffer&& other) noexcept { *this = std::move(other); }
    ByteBuffer& operator=(ByteBuffer&& other) noexcept {
        data_ = std::move(other.data_);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
        return *this;
    }

    std::uint8_t* data() { return data_.get(); }
    const std::uint8_t* data() const { return data_.get(); }
    std::uint8_t* begin() { return data(); }
    std::uint8_t* end() { return data() + size_; }
    const std::uint8_t* begin() const { return data(); }
    const std::uint8_t* end() const { return data() + size_; }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return capacity_; }
    bool empty() const { return size_ == 0; }
    void clear() { size_ = 0; }

    // Grows to `size` bytes; bytes beyond the old size are uninitialized.
    void resize(std::size_t size) {
        reserve(size);
        size_ = size;
    }
    void append(std::span<const std::uint8_t> bytes) {
        if (bytes.empty()) {
            return;
        }
        reserve(std::max(size_ + bytes.size(), 2 * capacity_));
        std::memcpy(data_.get() + size_, bytes.data(), bytes.size());
        size_ += bytes.size();
    }
    // Replaces the contents; `bytes` may lie within this buffer.
    void assign(std::span<const std::uint8_t> bytes) {
        if (bytes.size() > capacity_) {
            ByteBuffer fresh;
            fresh.reserve(bytes.size());
            std::memcpy(fresh.data(), bytes.data(), bytes.size());
            fresh.size_ = bytes.size();
            *this = std::move(fresh);
            return;
        }
        if (!bytes.empty()) {
            std::memmove(data_.get(), bytes.data(), bytes.size());
        }
        size_ = bytes.size();
    }
    void reserve(std::size_t capacity) {
        if (capacity <= capacity_) {
            return;
        }
        auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
        if (size_ > 0) {
            std::memcpy(fresh.get(), data_.get(), size_);
        }
        data_ = std::move(fresh);
        capacity_ = capacity;
    }

  private:
    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

// A complete, validated message as it arrived, with its fds.
struct IncomingMessage {
    ByteBuffer bytes;
    marshal::MessageHeader header;  // views into `bytes`
    std::vector<UniqueFd> fds;
};

struct ClientLimits {
    std::size_t max_message_size = 128u * 1024 * 1024;
    std::size_t max_message_unix_fds = 1024;
    std::size_t max_outgoing_bytes = 128u * 1024 * 1024;
    std::size_t max_outgoing_unix_fds = 1024 * 1024;
    // fds received for a message that has not arrived completely may be held this long (dbus-daemon's
    // pending_fd_timeout); the daemon enforces it through pending_fds_since().
    std::uint64_t pending_fd_timeout_ns = 150'000'000'000;
};

class Client {
  public:
    Client(UniqueFd socket, PeerCredentials credentials, SaslOptions sasl, ClientLimits limits,
           std::string nonce = {});

    int fd() const { return socket_.get(); }
    const PeerCredentials& credentials() const { return credentials_; }
    bool authenticated() const { return sasl_.state() == SaslServer::State::authenticated; }
    bool unix_fds_allowed() const { return sasl_.unix_fd_negotiated(); }
    const SaslServer& sasl() const { return sasl_; }

    // Reads what the socket has and appends every complete message to `messages`. Returns false
    // when the connection must be closed (peer hung up, failed authentication, invalid message);
    // `reason` then says why.
    bool read(std::vector<IncomingMessage>& messages, std::string& reason);

    // When the fds now held for an incomplete message first arrived (CLOCK_MONOTONIC ns); 0 if none.
    std::uint64_t pending_fds_since() const { return pending_fds_since_; }
    const ClientLimits& limits() const { return limits_; }

    // Whether `payload` fits under the outgoing limits now (an empty queue takes anything).
    bool can_take(const core::MessagePayload& payload) const;
    // Queues a message for sending. Returns false if the outgoing limit (bytes or fds) is exceeded.
    bool send(core::PayloadRef payload);
    void send_bytes(std::string bytes);  // authentication replies
    // Writes as much as the socket takes. Returns false on a fatal error.
    bool flush();
    bool has_output() const { return output_head_ < output_.size(); }
    std::size_t queued_bytes() const { return queued_bytes_; }

  private:
    struct OutgoingFrame {
        core::PayloadRef payload;
        std::string text;  // authentication lines, when payload is null
        std::size_t offset = 0;
        std::size_t size() const { return payload ? payload->bytes.size() : text.size(); }
        const std::byte* data() const {
            return payload ? payload->bytes.data() : reinterpret_cast<const std::byte*>(text.data());
        }
    };

    void drop_written_frames();
    // Frames every complete message of `bytes`; keeps the unfinished rest in input_. When `owner`
    // holds exactly one message (a large one read in parts) it becomes that message's buffer.
    bool frame_messages(std::span<const std::uint8_t> bytes, std::vector<IncomingMessage>& messages,
                        std::string& reason, ByteBuffer* owner = nullptr);

    UniqueFd socket_;
    PeerCredentials credentials_;
    SaslServer sasl_;
    ClientLimits limits_;
    std::string nonce_;  // nonce-tcp: bytes still expected before authentication
    ByteBuffer input_;   // an unfinished message; empty (and unallocated) between messages
    // Vectors, not deques: a deque allocates its first block up front, which every idle connection
    // would carry.
    std::vector<UniqueFd> received_fds_;
    std::vector<OutgoingFrame> output_;
    std::size_t output_head_ = 0;  // first frame not yet written
    std::size_t queued_bytes_ = 0;
    std::size_t queued_fds_ = 0;
    std::uint64_t pending_fds_since_ = 0;
    bool large_send_buffer_ = false;  // SO_SNDBUF raised once a large message went out
};

// What the kernel says about the peer of a connected unix socket (uid, gid, pid, groups, label).
PeerCredentials read_peer_credentials(int fd);

}  // namespace busgate::gateway
