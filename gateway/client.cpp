#include "client.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace busgate::gateway {
namespace {

constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t max_fds_per_read = 253;  // SCM_MAX_FD
constexpr int max_iovecs = 64;

}  // namespace

PeerCredentials read_peer_credentials(int fd) {
    PeerCredentials credentials;
    ucred peer{};
    socklen_t length = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 && length == sizeof peer) {
        credentials.uid = peer.uid;
        credentials.gid = peer.gid;
        credentials.pid = peer.pid;
    }
    std::vector<gid_t> groups(64);
    length = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &length) != 0 && errno == ERANGE) {
        groups.resize(length / sizeof(gid_t));
        ::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &length);
    }
    groups.resize(length / sizeof(gid_t));
    credentials.groups = std::move(groups);
    char label[256];
    length = sizeof label;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERSEC, label, &length) == 0) {
        credentials.security_label.assign(label, strnlen(label, length));
    }
    return credentials;
}

Client::Client(UniqueFd socket, PeerCredentials credentials, SaslOptions sasl, ClientLimits limits,
               std::string nonce)
    : socket_(std::move(socket)),
      credentials_(credentials),
      sasl_(std::move(sasl), credentials),
      limits_(limits),
      nonce_(std::move(nonce)) {}

bool Client::read(std::vector<IncomingMessage>& messages, std::string& reason) {
    // Compact, then make room for one chunk (or the rest of a large message).
    if (input_start_ > 0) {
        input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(input_start_));
        input_start_ = 0;
    }
    const std::size_t used = input_.size();
    input_.resize(used + read_chunk);

    iovec vector{input_.data() + used, read_chunk};
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
        reason = std::string("read failed: ") + std::strerror(errno);
        return false;
    }
    input_.resize(used + static_cast<std::size_t>(received));
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
    if ((header.msg_flags & MSG_CTRUNC) != 0) {
        reason = "too many file descriptors in one read";
        return false;
    }
    if (received == 0) {
        reason = "connection closed by peer";
        return false;
    }
    if (!received_fds_.empty() && !sasl_.unix_fd_negotiated()) {
        reason = "file descriptors passed without negotiating them";
        return false;
    }

    if (!authenticated()) {
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
        sasl_.receive(bytes);
        input_.clear();
        if (std::string reply = sasl_.take_output(); !reply.empty()) {
            send_bytes(std::move(reply));
        }
        if (sasl_.state() == SaslServer::State::need_disconnect) {
            reason = "authentication failed";
            return false;
        }
        if (!authenticated()) {
            return true;
        }
        const std::string_view rest = sasl_.unused_bytes();
        input_.assign(rest.begin(), rest.end());
    }
    return frame_messages(messages, reason);
}

bool Client::frame_messages(std::vector<IncomingMessage>& messages, std::string& reason) {
    while (input_.size() - input_start_ >= marshal::minimum_header_size) {
        const std::span<const std::uint8_t> available(input_.data() + input_start_,
                                                      input_.size() - input_start_);
        const marshal::FrameSize frame = marshal::frame_size(available, limits_.max_message_size);
        if (frame.validity != marshal::Validity::valid) {
            reason = std::string("invalid message: ") + std::string(marshal::describe(frame.validity));
            return false;
        }
        if (available.size() < frame.total) {
            break;
        }
        IncomingMessage message;
        message.bytes.assign(available.begin(), available.begin() + static_cast<std::ptrdiff_t>(frame.total));
        input_start_ += frame.total;
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
        for (std::size_t i = 0; i < fd_count; ++i) {
            message.fds.push_back(std::move(received_fds_.front()));
            received_fds_.pop_front();
        }
        messages.push_back(std::move(message));
    }
    return true;
}

bool Client::send(core::PayloadRef payload) {
    const std::size_t size = payload->bytes.size();
    if (queued_bytes_ + size > limits_.max_outgoing_bytes) {
        return false;
    }
    queued_bytes_ += size;
    output_.push_back({std::move(payload), {}, 0});
    return true;
}

void Client::send_bytes(std::string bytes) {
    queued_bytes_ += bytes.size();
    output_.push_back({nullptr, std::move(bytes), 0});
}

bool Client::flush() {
    while (!output_.empty()) {
        // A frame with fds goes out on its own so the fds travel with its first byte.
        const OutgoingFrame& head = output_.front();
        const bool head_has_fds = head.payload && !head.payload->fds.empty() && head.offset == 0;
        iovec vectors[max_iovecs];
        int count = 0;
        for (const OutgoingFrame& frame : output_) {
            if (count == max_iovecs ||
                (count > 0 && (head_has_fds || (frame.payload && !frame.payload->fds.empty())))) {
                break;
            }
            vectors[count].iov_base = const_cast<std::byte*>(frame.data() + frame.offset);
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
        while (written > 0 && !output_.empty()) {
            OutgoingFrame& frame = output_.front();
            const std::size_t left = frame.size() - frame.offset;
            const std::size_t taken = std::min(left, static_cast<std::size_t>(written));
            frame.offset += taken;
            written -= static_cast<ssize_t>(taken);
            if (frame.offset == frame.size()) {
                queued_bytes_ -= frame.size();
                output_.pop_front();
            }
        }
    }
    return true;
}

}  // namespace busgate::gateway
