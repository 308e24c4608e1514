#include "transport/peer_credentials.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace busgate::transport {
namespace {

// SO_PEERPIDFD's value on every architecture; older libc headers lack the name.
constexpr int so_peerpidfd = 77;

}  // namespace

PeerCredentials read_peer_credentials(int socket) {
    PeerCredentials credentials;
    ucred peer{};
    socklen_t length = sizeof peer;
    if (::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 && length == sizeof peer) {
        credentials.uid = peer.uid;
        credentials.gid = peer.gid;
        credentials.pid = peer.pid;
    }
    // A failed call leaves `length` as it was: the groups are then unknown (none), never the zeroed
    // buffer, which would read as membership of group 0.
    std::vector<gid_t> groups(64);
    length = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    int status = ::getsockopt(socket, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &length);
    if (status != 0 && errno == ERANGE) {
        groups.resize(length / sizeof(gid_t));
        status = ::getsockopt(socket, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &length);
    }
    groups.resize(status == 0 ? length / sizeof(gid_t) : 0);
    credentials.groups = std::move(groups);
    // SELinux labels with MLS ranges can outgrow a small buffer; the kernel says how much it needs.
    std::string label(256, '\0');
    length = static_cast<socklen_t>(label.size());
    status = ::getsockopt(socket, SOL_SOCKET, SO_PEERSEC, label.data(), &length);
    if (status != 0 && errno == ERANGE && length > label.size()) {
        label.resize(length);
        status = ::getsockopt(socket, SOL_SOCKET, SO_PEERSEC, label.data(), &length);
    }
    if (status == 0) {
        credentials.security_label.assign(label.data(), strnlen(label.data(), length));
    }
    return credentials;
}

util::UniqueFd peer_pidfd(int socket) {
    int pidfd = -1;
    socklen_t length = sizeof pidfd;
    if (::getsockopt(socket, SOL_SOCKET, so_peerpidfd, &pidfd, &length) != 0 || length != sizeof pidfd) {
        return {};
    }
    return util::UniqueFd(pidfd);
}

}  // namespace busgate::transport
