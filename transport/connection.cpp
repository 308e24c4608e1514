#include "transport/connection.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "busgate/util/clock.h"

namespace busgate::transport {
namespace {

constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t max_direct_read = 4 * 1024 * 1024;
constexpr std::size_t max_fds_per_read = 253;  // SCM_MAX_FD
constexpr int max_iovecs = 64;
constexpr std::size_t max_kept_frames = 256;
constexpr std::size_t large_message = 128 * 1024;
constexpr std::size_t large_send_buffer = 2 * 1024 * 1024;

}  // namespace

Connection::Connection(util::UniqueFd socket, PeerCredentials credentials, SaslOptions sasl,
                       ConnectionLimits limits, std::string nonce)
    : socket_(std::move(socket)),
      credentials_(credentials),
      sasl_(std::make_unique<SaslServer>(std::move(sasl), credentials)),
      limits_(limits),
      nonce_(std::move(nonce)) {}

std::unique_ptr<Connection> Connection::resumed(util::UniqueFd socket, PeerCredentials credentials,
                                                SaslOutcome authentication, ConnectionLimits limits,
                                                std::span<const std::uint8_t> unread_input,
                                                std::span<const std::uint8_t> unwritten_output) {
    auto connection =
        std::make_unique<Connection>(std::move(socket), std::move(credentials), SaslOptions{}, limits);
    connection->sasl_.reset();
    connection->authentication_ = authentication;
    if (!unread_input.empty()) {
        connection->input_.assign(unread_input, message_headroom);
    }
    if (!unwritten_output.empty()) {
        connection->send_bytes(std::string(unwritten_output.begin(), unwritten_output.end()));
    }
    return connection;
}

std::vector<std::uint8_t> Connection::unwritten_output() const {
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = output_head_; i < output_.size(); ++i) {
        const auto* rest = static_cast<const std::uint8_t*>(output_[i].rest());
        bytes.insert(bytes.end(), rest, rest + (output_[i].size() - output_[i].offset));
    }
    return bytes;
}

bool Connection::holds_descriptors() const {
    if (!received_fds_.empty()) {
        return true;
    }
    for (std::size_t i = output_head_; i < output_.size(); ++i) {
        // A frame's descriptors went with its first byte.
        if (output_[i].payload && !output_[i].payload->fds.empty() && output_[i].offset == 0) {
            return true;
        }
    }
    return false;
}

bool Connection::read(std::vector<IncomingMessage>& messages, std::string& reason) {
    // Most reads go to one buffer shared by every connection (the bus has one thread), and a
    // connection keeps only the unfinished tail, so an idle connection holds no input buffer. The
    // rest of a message larger than the shared buffer is read straight into the connection's own.
    static thread_local const auto shared = std::make_unique_for_overwrite<std::uint8_t[]>(read_chunk);
    std::size_t expected = 0;
    if (input_.size() >= marshal::minimum_header_size) {
        expected = marshal::frame_size(input_, limits_.max_message_size).total;
    }
    const bool direct = authenticated() && expected > input_.size() + read_chunk / 2;
    const std::size_t used = input_.size();
    if (direct) {
        // Grow only as bytes arrive: a header's claimed length alone allocates little.
        input_.resize(std::min(expected, used + max_direct_read));  // not zero-filled, see ByteBuffer
    }
    iovec vector =
        direct ? iovec{input_.data() + used, input_.size() - used} : iovec{shared.get(), read_chunk};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_read)];
    msghdr header{};
    header.msg_iov = &vector;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof control;
    const ssize_t received = ::recvmsg(socket_.get(), &header, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (received < 0) {
        input_.resize(used);
        if (errno == EAGAIN || errno == EINTR) {
            return true;
        }
        // A peer that closes its socket with our output unread resets the connection: it hung up all the
        // same, which is nothing to log.
        reason = errno == ECONNRESET ? std::string(peer_hung_up)
                                     : std::string("read failed: ") + std::strerror(errno);
        return false;
    }
    if (direct) {
        input_.resize(used + static_cast<std::size_t>(received));
    }
    take_fds(header);
    if ((header.msg_flags & MSG_CTRUNC) != 0) {
        reason = "too many file descriptors in one read";
        return false;
    }
    if (received == 0) {
        reason = peer_hung_up;
        return false;
    }
    if (!received_fds_.empty() && !unix_fds_allowed()) {
        reason = "file descriptors passed without negotiating them";
        return false;
    }

    std::span<const std::uint8_t> fresh(shared.get(), direct ? 0 : static_cast<std::size_t>(received));
    if (!authenticated()) {
        if (!authenticate(fresh, reason)) {
            return false;
        }
        if (!authenticated()) {
            return true;
        }
        fresh = {};  // what followed BEGIN is in input_ now
    }
    if (input_.empty()) {
        if (!frame_messages(fresh, messages, reason)) {  // the common case: no copy of the tail before
            return false;
        }
    } else {
        input_.append(fresh);
        ByteBuffer pending = std::move(input_);
        if (!frame_messages(pending, messages, reason, &pending)) {
            return false;
        }
    }
    // What is left belongs to one incomplete message, which may carry at most max_message_unix_fds;
    // more is a client parking fds in the bus (dbus-daemon's loader refuses them too).
    if (received_fds_.size() > limits_.max_message_unix_fds) {
        reason = "too many file descriptors waiting for their message";
        return false;
    }
    if (received_fds_.empty()) {
        pending_fds_since_ = 0;
    } else if (pending_fds_since_ == 0) {
        pending_fds_since_ = util::monotonic_ns();
    }
    return true;
}

void Connection::take_fds(msghdr& header) {
    for (cmsghdr* message = CMSG_FIRSTHDR(&header); message != nullptr;
         message = CMSG_NXTHDR(&header, message)) {
        if (message->cmsg_level == SOL_SOCKET && message->cmsg_type == SCM_RIGHTS) {
            const std::size_t count = (message->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(message) + i * sizeof(int), sizeof fd);
                received_fds_.emplace_back(fd);
            }
        }
    }
}

bool Connection::authenticate(std::span<const std::uint8_t> fresh, std::string& reason) {
    input_.append(fresh);
    std::string_view bytes(reinterpret_cast<const char*>(input_.data()), input_.size());
    if (!nonce_.empty()) {
        const std::size_t take = std::min(nonce_.size(), bytes.size());
        if (bytes.substr(0, take) != std::string_view(nonce_).substr(0, take)) {
            reason = "wrong nonce";
            return false;
        }
        nonce_.erase(0, take);
        bytes.remove_prefix(take);
    }
    sasl_->receive(bytes);
    input_.clear();
    if (std::string reply = sasl_->take_output(); !reply.empty()) {
        send_bytes(std::move(reply));
    }
    if (sasl_->state() == SaslServer::State::need_disconnect) {
        reason = "authentication failed";
        return false;
    }
    if (sasl_->state() == SaslServer::State::authenticated) {
        const std::string_view rest = sasl_->unused_bytes();
        input_.assign({reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size()}, message_headroom);
        authentication_ = sasl_->outcome();
        sasl_.reset();
    }
    return true;
}

bool Connection::frame_messages(std::span<const std::uint8_t> bytes, std::vector<IncomingMessage>& messages,
                                std::string& reason, ByteBuffer* owner) {
    std::size_t start = 0;
    while (bytes.size() - start >= marshal::minimum_header_size) {
        const std::span<const std::uint8_t> available = bytes.subspan(start);
        const marshal::FrameSize frame = marshal::frame_size(available, limits_.max_message_size);
        if (frame.validity != marshal::Validity::valid) {
            reason = std::string("invalid message: ") + std::string(marshal::describe(frame.validity));
            return false;
        }
        if (available.size() < frame.total) {
            break;
        }
        IncomingMessage message;
        if (owner != nullptr && start == 0 && frame.total == bytes.size()) {
            message.bytes = std::move(*owner);  // a large message: no second copy
            bytes = message.bytes;
        } else {
            message.bytes.assign(available.first(frame.total), message_headroom);
        }
        start += frame.total;
        const marshal::Validity validity =
            marshal::parse_message(message.bytes, message.header, limits_.max_message_size);
        if (validity != marshal::Validity::valid) {
            reason = std::string("invalid message: ") + std::string(marshal::describe(validity));
            return false;
        }
        const std::size_t fd_count = message.header.unix_fds;
        if (fd_count > limits_.max_message_unix_fds) {
            reason = "message carries too many file descriptors";
            return false;
        }
        if (fd_count > received_fds_.size()) {
            reason = "message expects more file descriptors than were sent";
            return false;
        }
        if (fd_count > 0) {
            const auto taken = received_fds_.begin() + static_cast<std::ptrdiff_t>(fd_count);
            message.fds.assign(std::make_move_iterator(received_fds_.begin()),
                               std::make_move_iterator(taken));
            received_fds_.erase(received_fds_.begin(), taken);
        }
        messages.push_back(std::move(message));
    }
    // Only an unfinished message stays with the connection.
    input_.assign(bytes.subspan(start), message_headroom);  // it will be a message, moved out whole
    return true;
}

bool Connection::can_take(const core::MessagePayload& payload) const {
    return queued_bytes_ == 0 || (queued_bytes_ + payload.bytes.size() <= limits_.max_outgoing_bytes &&
                                  queued_fds_ + payload.fds.size() <= limits_.max_outgoing_unix_fds);
}

bool Connection::send(core::PayloadRef payload) {
    if (!can_take(*payload)) {
        return false;
    }
    const std::size_t size = payload->bytes.size();
    const std::size_t fds = payload->fds.size();
    queued_bytes_ += size;
    queued_fds_ += fds;
    if (size > large_message && !large_send_buffer_) {
        // The kernel's default (~200 KiB) splits a large message into several writes, each a
        // wake-up of the receiver and a return to epoll here. The kernel caps this at wmem_max.
        large_send_buffer_ = true;
        const int bytes = static_cast<int>(large_send_buffer);
        ::setsockopt(socket_.get(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    }
    drop_written_frames();
    output_.push_back({std::move(payload), {}, 0});
    return true;
}

void Connection::drop_written_frames() {
    // A reader that never quite catches up would otherwise keep every written frame's slot.
    if (output_head_ >= max_kept_frames && output_head_ * 2 >= output_.size()) {
        output_.erase(output_.begin(), output_.begin() + static_cast<std::ptrdiff_t>(output_head_));
        output_head_ = 0;
    }
}

void Connection::send_bytes(std::string bytes) {
    queued_bytes_ += bytes.size();
    drop_written_frames();
    output_.push_back({nullptr, std::move(bytes), 0});
}

bool Connection::flush() {
    while (has_output()) {
        // A frame with fds goes out on its own so the fds travel with its first byte.
        const OutgoingFrame& head = output_[output_head_];
        const bool head_has_fds = head.payload && !head.payload->fds.empty() && head.offset == 0;
        iovec vectors[max_iovecs];
        int count = 0;
        for (std::size_t index = output_head_; index < output_.size(); ++index) {
            const OutgoingFrame& frame = output_[index];
            if (count == max_iovecs ||
                (count > 0 && (head_has_fds || (frame.payload && !frame.payload->fds.empty())))) {
                break;
            }
            vectors[count].iov_base = const_cast<void*>(frame.rest());
            vectors[count].iov_len = frame.size() - frame.offset;
            ++count;
        }
        msghdr header{};
        header.msg_iov = vectors;
        header.msg_iovlen = static_cast<std::size_t>(count);
        std::vector<char> control;
        if (head_has_fds) {
            const std::size_t fd_count = head.payload->fds.size();
            control.resize(CMSG_SPACE(sizeof(int) * fd_count));
            header.msg_control = control.data();
            header.msg_controllen = control.size();
            cmsghdr* message = CMSG_FIRSTHDR(&header);
            message->cmsg_level = SOL_SOCKET;
            message->cmsg_type = SCM_RIGHTS;
            message->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
            for (std::size_t i = 0; i < fd_count; ++i) {
                const int fd = head.payload->fds[i].get();
                std::memcpy(CMSG_DATA(message) + i * sizeof(int), &fd, sizeof fd);
            }
        }
        ssize_t written = ::sendmsg(socket_.get(), &header, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return true;
            }
            return false;
        }
        while (written > 0 && has_output()) {
            OutgoingFrame& frame = output_[output_head_];
            const std::size_t left = frame.size() - frame.offset;
            const std::size_t taken = std::min(left, static_cast<std::size_t>(written));
            frame.offset += taken;
            written -= static_cast<ssize_t>(taken);
            if (frame.offset == frame.size()) {
                queued_bytes_ -= frame.size();
                queued_fds_ -= frame.payload ? frame.payload->fds.size() : 0;
                frame = OutgoingFrame{};  // the shared payload goes back at once
                ++output_head_;
            }
        }
        if (!has_output()) {
            // Keep a modest queue's storage for the next burst; give a large one back.
            if (output_.capacity() > max_kept_frames) {
                std::vector<OutgoingFrame>().swap(output_);
            }
            output_.clear();
            output_head_ = 0;
        }
    }
    return true;
}

}  // namespace busgate::transport
