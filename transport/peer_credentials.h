// What the kernel says about the process at the other end of a connected unix socket: SO_PEERCRED,
// SO_PEERGROUPS, SO_PEERSEC and SO_PEERPIDFD are read here and nowhere else. The kernel records them
// when the peer connects, so they describe that process even after it changed its ids or exited.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "busgate/util/unique_fd.h"

namespace busgate::transport {

struct PeerCredentials {
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    pid_t pid = 0;
    std::vector<gid_t> groups;
    std::string security_label;
};

// uid, gid, pid, supplementary groups and security label; what the kernel cannot tell stays unset.
PeerCredentials read_peer_credentials(int socket);

// A pidfd of the peer's process (SO_PEERPIDFD, Linux 6.5), or none. Taken only when asked, not at
// accept: the kernel pins the process the socket connected from, so the pidfd cannot name a later
// process that reused the pid, and a connection nobody asks about costs the bus no second descriptor.
util::UniqueFd peer_pidfd(int socket);

}  // namespace busgate::transport
