// Acceptor over real listening sockets: what it hands over, the incomplete-connection cap (the oldest
// goes), the authentication deadline, and the pause when no descriptor is left (and its two ends: a
// moment passing, a connection closing).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "busgate/util/clock.h"
#include "transport/acceptor.h"

using namespace busgate;
using namespace busgate::transport;

namespace {

// A unix listener on an abstract name the kernel picks.
Listener abstract_listener() {
    Listener listener;
    listener.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    EXPECT_EQ(::bind(listener.fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(sa_family_t)), 0);
    EXPECT_EQ(::listen(listener.fd.get(), 16), 0);
    listener.is_unix = true;
    listener.connectable = "unix:abstract=test";
    return listener;
}

// True once the other end closed `socket` (reads end of file).
bool hung_up(int socket) {
    char byte;
    return ::recv(socket, &byte, 1, MSG_DONTWAIT) == 0;
}

// No descriptor can be opened while this lives: the soft limit is lowered to the lowest free one,
// so every number below it is taken. Restored on destruction, also when an assertion fails.
class OutOfDescriptors {
  public:
    OutOfDescriptors() {
        ::getrlimit(RLIMIT_NOFILE, &saved_);
        const int lowest_free = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        ::close(lowest_free);
        rlimit lowered = saved_;
        lowered.rlim_cur = static_cast<rlim_t>(lowest_free);
        ::setrlimit(RLIMIT_NOFILE, &lowered);
    }
    ~OutOfDescriptors() { restore(); }
    void restore() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

  private:
    rlimit saved_{};
};

class AcceptorTest : public ::testing::Test {
  protected:
    void start(AcceptorOptions options) {
        acceptor_ = std::make_unique<Acceptor>(
            loop_, std::move(options),
            Acceptor::Handlers{
                .admit = [this](const Listener&) { return admit_; },
                .accepted =
                    [this](const Listener& listener, std::unique_ptr<Connection> connection) {
                        through_.push_back(listener.connectable);
                        const int fd = connection->fd();
                        connections_[fd] = std::move(connection);
                    },
                .drop =
                    [this](int fd, std::string_view reason) {
                        dropped_.emplace_back(fd, std::string(reason));
                        connections_.erase(fd);
                        acceptor_->closed(fd);
                    },
                .deadline_changed = [this] { ++deadline_changes_; },
            });
        acceptor_->add(abstract_listener());
    }

    // A client connected to `listener` (the bus's own when none is given), not yet accepted.
    util::UniqueFd connect(const Listener* listener = nullptr) {
        const int listening = (listener ? *listener : acceptor_->listeners().front()).fd.get();
        sockaddr_un address{};
        socklen_t length = sizeof address;
        EXPECT_EQ(::getsockname(listening, reinterpret_cast<sockaddr*>(&address), &length), 0);
        util::UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&address), length), 0);
        return client;
    }

    // Runs the loop until something is accepted or `timeout_ms` passed.
    void accept_pending(int timeout_ms = 200) {
        const std::size_t before = through_.size();
        const std::uint64_t give_up =
            util::monotonic_ns() + static_cast<std::uint64_t>(timeout_ms) * 1'000'000;
        while (through_.size() == before && util::monotonic_ns() < give_up) {
            loop_.run_once(10);
        }
    }

    int only_connection() const {
        EXPECT_EQ(connections_.size(), 1u);
        return connections_.empty() ? -1 : connections_.begin()->first;
    }

    EventLoop loop_;
    std::unique_ptr<Acceptor> acceptor_;
    std::map<int, std::unique_ptr<Connection>> connections_;
    std::vector<std::string> through_;  // the listener of each accepted connection
    std::vector<std::pair<int, std::string>> dropped_;
    bool admit_ = true;
    int deadline_changes_ = 0;
};

}  // namespace

TEST_F(AcceptorTest, HandsOverAConnectionWithThePeersCredentials) {
    start({});
    const util::UniqueFd client = connect();
    accept_pending();
    ASSERT_EQ(through_, std::vector<std::string>{"unix:abstract=test"});
    const Connection& connection = *connections_.begin()->second;
    EXPECT_EQ(connection.credentials().uid, ::getuid());
    EXPECT_EQ(connection.credentials().pid, ::getpid());
    EXPECT_FALSE(connection.authenticated());
    EXPECT_EQ(acceptor_->incomplete_count(), 1u);
}

TEST_F(AcceptorTest, ARefusedConnectionIsClosedAndCostsNoOtherItsPlace) {
    start({.max_incomplete_connections = 1});
    const util::UniqueFd first = connect();
    accept_pending();
    admit_ = false;
    const util::UniqueFd refused = connect();
    for (int i = 0; i < 5; ++i) {
        loop_.run_once(10);
    }
    EXPECT_EQ(through_.size(), 1u);
    EXPECT_TRUE(dropped_.empty());
    EXPECT_TRUE(hung_up(refused.get()));
    EXPECT_FALSE(hung_up(first.get()));
    EXPECT_EQ(acceptor_->incomplete_count(), 1u);
}

TEST_F(AcceptorTest, DropsTheOldestIncompleteToTakeOneMore) {
    start({.max_incomplete_connections = 2});
    const util::UniqueFd oldest = connect();
    accept_pending();
    const int oldest_fd = only_connection();
    const util::UniqueFd second = connect();
    accept_pending();
    const util::UniqueFd third = connect();
    accept_pending();
    ASSERT_EQ(through_.size(), 3u);
    ASSERT_EQ(dropped_.size(), 1u);
    EXPECT_EQ(dropped_[0], std::make_pair(oldest_fd, std::string("too many incomplete connections")));
    EXPECT_TRUE(hung_up(oldest.get()));
    EXPECT_FALSE(hung_up(second.get()));
    EXPECT_FALSE(hung_up(third.get()));
    EXPECT_EQ(acceptor_->incomplete_count(), 2u);
}

TEST_F(AcceptorTest, ACompletedConnectionNoLongerCountsOrTimesOut) {
    start({.max_incomplete_connections = 1, .auth_timeout_ns = 1'000'000'000});
    const util::UniqueFd first = connect();
    accept_pending();
    acceptor_->completed(only_connection());
    EXPECT_EQ(acceptor_->incomplete_count(), 0u);
    EXPECT_EQ(acceptor_->next_deadline(), std::nullopt);
    const util::UniqueFd second = connect();
    accept_pending();
    EXPECT_EQ(through_.size(), 2u);
    EXPECT_TRUE(dropped_.empty());
    acceptor_->expire(util::monotonic_ns() + 10'000'000'000);
    ASSERT_EQ(dropped_.size(), 1u);  // the second, still incomplete; the first stays
    EXPECT_FALSE(hung_up(first.get()));
    EXPECT_TRUE(hung_up(second.get()));
}

TEST_F(AcceptorTest, DropsWhoDoNotAuthenticateInTime) {
    start({.auth_timeout_ns = 1'000'000'000});
    const std::uint64_t before = util::monotonic_ns();
    const util::UniqueFd client = connect();
    accept_pending();
    const std::uint64_t after = util::monotonic_ns();
    const int fd = only_connection();
    const std::optional<std::uint64_t> deadline = acceptor_->next_deadline();
    ASSERT_TRUE(deadline);
    EXPECT_GE(*deadline, before + 1'000'000'000);
    EXPECT_LE(*deadline, after + 1'000'000'000);
    acceptor_->expire(*deadline - 1);
    EXPECT_TRUE(dropped_.empty());
    acceptor_->expire(*deadline);
    ASSERT_EQ(dropped_.size(), 1u);
    EXPECT_EQ(dropped_[0], std::make_pair(fd, std::string("authentication timed out")));
    EXPECT_TRUE(hung_up(client.get()));
    EXPECT_EQ(acceptor_->incomplete_count(), 0u);
    EXPECT_EQ(acceptor_->next_deadline(), std::nullopt);
}

// Out of descriptors, every listener (a watched container endpoint's too) stops being watched: it is
// level-triggered, and accepting on would fail and wake the loop again at once. 100 ms later it resumes.
TEST_F(AcceptorTest, PausesWhenOutOfDescriptorsAndResumesAfterAMoment) {
    start({});
    const Listener endpoint = abstract_listener();
    acceptor_->watch(endpoint);
    std::optional<std::uint64_t> resume_at;
    const util::UniqueFd client = connect();
    {
        OutOfDescriptors exhausted;
        loop_.run_once(100);
        EXPECT_TRUE(acceptor_->paused());
        EXPECT_EQ(deadline_changes_, 1);
        resume_at = acceptor_->next_deadline();
        exhausted.restore();
        // Descriptors are free again, but nobody said so: still paused, neither listener is tried.
        const util::UniqueFd through_endpoint = connect(&endpoint);
        for (int i = 0; i < 3; ++i) {
            loop_.run_once(10);
        }
        EXPECT_TRUE(through_.empty());
        EXPECT_EQ(deadline_changes_, 1);
        ASSERT_TRUE(resume_at);
        acceptor_->expire(*resume_at - 1);
        EXPECT_TRUE(acceptor_->paused());
        acceptor_->expire(*resume_at);
        EXPECT_FALSE(acceptor_->paused());
        for (int i = 0; i < 10 && through_.size() < 2; ++i) {
            loop_.run_once(10);
        }
        EXPECT_EQ(through_.size(), 2u);
    }
    acceptor_->unwatch(endpoint.fd.get());
}

TEST_F(AcceptorTest, AClosedConnectionResumesAcceptingAtOnce) {
    start({});
    const util::UniqueFd first = connect();
    accept_pending();
    const int first_fd = only_connection();
    const util::UniqueFd second = connect();
    OutOfDescriptors exhausted;
    loop_.run_once(100);
    ASSERT_TRUE(acceptor_->paused());
    exhausted.restore();
    connections_.erase(first_fd);
    acceptor_->closed(first_fd);
    EXPECT_FALSE(acceptor_->paused());
    accept_pending();
    EXPECT_EQ(through_.size(), 2u);
}

TEST_F(AcceptorTest, CloseStopsListeningAndRemovesTheSocketFile) {
    start({});
    const std::filesystem::path directory =
        std::filesystem::temp_directory_path() / ("busgate-test-acceptor-" + std::to_string(::getpid()));
    std::filesystem::create_directories(directory);
    const std::string path = (directory / "socket").string();
    ListenResult result = listen_on({.transport = "unix", .parameters = {{"path", path}}}, {});
    ASSERT_TRUE(result.error.empty()) << result.error;
    for (Listener& listener : result.listeners) {
        acceptor_->add(std::move(listener));
    }
    EXPECT_TRUE(std::filesystem::exists(path));
    acceptor_->close();
    EXPECT_TRUE(acceptor_->listeners().empty());
    EXPECT_FALSE(std::filesystem::exists(path));
    std::filesystem::remove_all(directory);
}
