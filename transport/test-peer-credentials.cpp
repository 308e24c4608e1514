// Peer credentials as the kernel gives them: of the process that connected (not of whoever reads
// them), and a pidfd that names that process and no later one with its pid.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "transport/peer_credentials.h"
#include "transport/test_socket_pair.h"

using namespace busgate;
using namespace busgate::transport;
using busgate::transport::testing::SocketPair;

namespace {

// The process a pidfd refers to, from the "Pid:" line the kernel shows for it (-1 once it exited).
std::optional<long> pid_of_pidfd(int pidfd) {
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(pidfd));
    for (std::string line; std::getline(info, line);) {
        if (line.starts_with("Pid:")) {
            return std::stol(line.substr(4));
        }
    }
    return std::nullopt;
}

// SO_PEERPIDFD came with Linux 6.5; an older kernel answers ENOPROTOOPT, and then there is no pidfd to test.
bool kernel_has_peer_pidfd() {
    SocketPair pair;
    int pidfd = -1;
    socklen_t length = sizeof pidfd;
    if (::getsockopt(pair.bus.get(), SOL_SOCKET, 77, &pidfd, &length) != 0) {
        return errno != ENOPROTOOPT;
    }
    ::close(pidfd);
    return true;
}

std::vector<gid_t> sorted(std::vector<gid_t> groups) {
    std::ranges::sort(groups);
    return groups;
}

}  // namespace

TEST(PeerCredentials, AreTheConnectingProcesss) {
    SocketPair pair;
    const PeerCredentials credentials = read_peer_credentials(pair.bus.get());
    EXPECT_EQ(credentials.uid, ::getuid());
    EXPECT_EQ(credentials.gid, ::getgid());
    EXPECT_EQ(credentials.pid, ::getpid());
    std::vector<gid_t> groups(static_cast<std::size_t>(::getgroups(0, nullptr)));
    groups.resize(static_cast<std::size_t>(::getgroups(static_cast<int>(groups.size()), groups.data())));
    EXPECT_EQ(sorted(credentials.groups), sorted(groups));
}

TEST(PeerCredentials, NoneOnAPipeMeansNoGroups) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const PeerCredentials credentials = read_peer_credentials(fds[0]);
    EXPECT_FALSE(peer_pidfd(fds[0]));
    ::close(fds[0]);
    ::close(fds[1]);
    EXPECT_FALSE(credentials.uid);
    EXPECT_FALSE(credentials.gid);
    EXPECT_EQ(credentials.pid, 0);
    EXPECT_TRUE(credentials.groups.empty());  // never a zeroed buffer, which would be group 0
}

TEST(PeerCredentials, PidfdOfASocketpairNamesThisProcess) {
    if (!kernel_has_peer_pidfd()) {
        GTEST_SKIP() << "no SO_PEERPIDFD before Linux 6.5";
    }
    SocketPair pair;
    const util::UniqueFd pidfd = peer_pidfd(pair.bus.get());
    ASSERT_TRUE(pidfd);
    EXPECT_EQ(pid_of_pidfd(pidfd.get()), ::getpid());
}

// Another process connects to our listener: its pid and pidfd, not ours; once it is gone the pidfd
// names no process, so a later one with the same pid cannot be mistaken for it.
TEST(PeerCredentials, AreThoseOfTheConnectingProcessEvenAfterItExits) {
    if (!kernel_has_peer_pidfd()) {
        GTEST_SKIP() << "no SO_PEERPIDFD before Linux 6.5";
    }
    util::UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    socklen_t length = sizeof(sa_family_t);  // autobind: the kernel picks an abstract name
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), length), 0);
    ASSERT_EQ(::listen(listener.get(), 1), 0);
    length = sizeof address;
    ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
    int hold[2];
    ASSERT_EQ(::pipe(hold), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(hold[1]);
        const int socket = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (::connect(socket, reinterpret_cast<sockaddr*>(&address), length) != 0) {
            ::_exit(1);
        }
        char byte;
        (void)::read(hold[0], &byte, 1);  // until the parent has looked
        ::_exit(0);
    }
    ::close(hold[0]);
    const util::UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(accepted);
    const PeerCredentials credentials = read_peer_credentials(accepted.get());
    const util::UniqueFd pidfd = peer_pidfd(accepted.get());
    const std::optional<long> while_alive = pidfd ? pid_of_pidfd(pidfd.get()) : std::nullopt;
    ::close(hold[1]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(credentials.pid, child);
    EXPECT_EQ(credentials.uid, ::getuid());
    ASSERT_TRUE(pidfd);
    EXPECT_EQ(while_alive, child);
    EXPECT_EQ(pid_of_pidfd(pidfd.get()), -1);
}
