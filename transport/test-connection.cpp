// Connection over a real socketpair: the limits on fds that a client can park in the bus (pending for an
// incomplete message, queued out).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "busgate/marshal/writer.h"
#include "transport/connection.h"
#include "transport/test_socket_pair.h"

using namespace busgate;
using namespace busgate::transport;
using busgate::transport::testing::SocketPair;
using busgate::util::UniqueFd;

namespace {

std::string hex(const std::string& text) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : text) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

void send_with_fds(int socket, const void* data, std::size_t size, int fd, std::size_t count) {
    iovec vector{const_cast<void*>(data), size};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * count));
    msghdr header{};
    header.msg_iov = &vector;
    header.msg_iovlen = 1;
    header.msg_control = control.data();
    header.msg_controllen = control.size();
    cmsghdr* message = CMSG_FIRSTHDR(&header);
    message->cmsg_level = SOL_SOCKET;
    message->cmsg_type = SCM_RIGHTS;
    message->cmsg_len = CMSG_LEN(sizeof(int) * count);
    for (std::size_t i = 0; i < count; ++i) {
        std::memcpy(CMSG_DATA(message) + i * sizeof(int), &fd, sizeof fd);
    }
    ASSERT_EQ(::sendmsg(socket, &header, 0), static_cast<ssize_t>(size));
}

// A client past authentication with fd passing negotiated, and its peer's end.
struct AuthenticatedClient {
    SocketPair pair;
    std::unique_ptr<Connection> client;
    explicit AuthenticatedClient(ConnectionLimits limits) {
        const int fd = pair.bus.get();
        client = std::make_unique<Connection>(std::move(pair.bus), read_peer_credentials(fd),
                                              SaslOptions{.guid = "0123456789abcdef0123456789abcdef",
                                                          .mechanisms = {"EXTERNAL"},
                                                          .unix_fd_possible = true,
                                                          .server_uid = ::getuid()},
                                              limits);
        const std::string script = std::string(1, '\0') + "AUTH EXTERNAL " + hex(std::to_string(::getuid())) +
                                   "\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n";
        EXPECT_EQ(::write(pair.peer.get(), script.data(), script.size()),
                  static_cast<ssize_t>(script.size()));
        std::vector<IncomingMessage> messages;
        std::string reason;
        EXPECT_TRUE(client->read(messages, reason)) << reason;
        EXPECT_TRUE(client->authenticated());
        EXPECT_TRUE(client->unix_fds_allowed());
    }
};

std::vector<std::uint8_t> call_with_fds(std::uint32_t fds) {
    return busgate::marshal::build_message(
        {.path = "/a", .member = "M", .destination = "org.freedesktop.DBus", .unix_fds = fds});
}

}  // namespace

TEST(Connection, APeerThatClosesWithOutputUnreadHungUp) {
    AuthenticatedClient authenticated({});
    ASSERT_TRUE(authenticated.client->flush());  // the SASL answers wait, unread, at the peer
    authenticated.pair.peer.reset();             // closing with unread input resets the connection
    std::vector<IncomingMessage> messages;
    std::string reason;
    EXPECT_FALSE(authenticated.client->read(messages, reason));
    EXPECT_EQ(reason, peer_hung_up);  // the normal end of a connection, which the bus does not log
}

TEST(Connection, FdsWaitingForTheirMessageAreTimedAndReleased) {
    AuthenticatedClient authenticated({.max_message_unix_fds = 16});
    Connection& client = *authenticated.client;
    const std::vector<std::uint8_t> message = call_with_fds(2);
    const util::UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    send_with_fds(authenticated.pair.peer.get(), message.data(), 10, null.get(), 2);
    std::vector<IncomingMessage> messages;
    std::string reason;
    ASSERT_TRUE(client.read(messages, reason)) << reason;
    EXPECT_TRUE(messages.empty());
    EXPECT_NE(client.pending_fds_since(), 0u);
    ASSERT_EQ(::write(authenticated.pair.peer.get(), message.data() + 10, message.size() - 10),
              static_cast<ssize_t>(message.size() - 10));
    ASSERT_TRUE(client.read(messages, reason)) << reason;
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0].fds.size(), 2u);
    EXPECT_EQ(client.pending_fds_since(), 0u);
}

TEST(Connection, MoreFdsThanOneMessageMayCarryDisconnect) {
    AuthenticatedClient authenticated({.max_message_unix_fds = 16});
    const std::vector<std::uint8_t> message = call_with_fds(16);
    const util::UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    send_with_fds(authenticated.pair.peer.get(), message.data(), 10, null.get(), 17);
    std::vector<IncomingMessage> messages;
    std::string reason;
    EXPECT_FALSE(authenticated.client->read(messages, reason));
    EXPECT_NE(reason.find("file descriptors"), std::string::npos) << reason;
}

TEST(Connection, QueuedFdsCountAgainstTheOutgoingLimit) {
    AuthenticatedClient authenticated({.max_outgoing_unix_fds = 3});
    const std::vector<std::uint8_t> bytes = call_with_fds(2);
    const auto payload = [&bytes] {
        std::vector<util::UniqueFd> fds;
        fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        return busgate::core::MessagePayload::make(std::span<const std::uint8_t>(bytes), std::move(fds));
    };
    EXPECT_TRUE(authenticated.client->send(payload()));
    EXPECT_FALSE(authenticated.client->send(payload()));  // 4 fds queued > 3
    ASSERT_TRUE(authenticated.client->flush());
    EXPECT_TRUE(authenticated.client->send(payload()));  // the first left the queue
}
