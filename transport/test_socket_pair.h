// Test-only: a connected pair of Unix stream sockets, one end playing the bus and the other its client,
// for transport/'s tests that need a real kernel socket (credentials, fd passing) without a listener.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "busgate/util/unique_fd.h"

namespace busgate::transport::testing {

struct SocketPair {
    util::UniqueFd bus;
    util::UniqueFd peer;
    SocketPair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        bus.reset(fds[0]);
        peer.reset(fds[1]);
    }
};

}  // namespace busgate::transport::testing
