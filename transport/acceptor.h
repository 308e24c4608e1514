// Acceptor: the listening side of the bus. It watches the listeners in the event loop, accepts what
// they have pending, reads each peer's credentials and hands the owner a new, unauthenticated
// Connection. It keeps dbus-daemon's limits on that side:
//  - out of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM) it stops watching every listener until a
//    connection closes or 100 ms pass: listeners are level-triggered, so watching on would spin;
//  - at most max_incomplete_connections are incomplete at once (accepted, not yet told completed();
//    dbus-daemon counts until Hello, not until the end of authentication): to take one more, the
//    oldest is dropped;
//  - each incomplete connection has auth_timeout to complete.
// The owner decides what a connection becomes and closes it; the acceptor only names the connections
// to drop (through `drop`), and must hear of every close (closed()) to keep its count.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "transport/address.h"
#include "transport/connection.h"
#include "transport/event_loop.h"
#include "transport/sasl.h"

namespace busgate::transport {

struct AcceptorOptions {
    SaslOptions sasl;  // for every connection; unix_fd_possible only where the listener is a unix socket
    ConnectionLimits limits;
    std::size_t max_incomplete_connections = 64;
    std::uint64_t auth_timeout_ns = 30'000'000'000;
};

class Acceptor {
  public:
    struct Handlers {
        // Whether a connection through `listener` is taken at all; asked before room is made for it, so
        // a refused one costs no other connection its place. Unset: every one is taken.
        std::function<bool(const Listener& listener)> admit;
        // A new connection, already counted as incomplete. The owner watches its socket from now on.
        std::function<void(const Listener& listener, std::unique_ptr<Connection> connection)> accepted;
        // The owner must close the connection on socket `fd` for `reason` (and call closed(fd)).
        std::function<void(int fd, std::string_view reason)> drop;
        // next_deadline() changed outside expire() (accepting paused): the owner re-arms its timer.
        std::function<void()> deadline_changed;
    };

    // How long accepting stays paused when no descriptor is left, unless a connection closes first.
    static constexpr std::uint64_t pause_ns = 100'000'000;

    Acceptor(EventLoop& loop, AcceptorOptions options, Handlers handlers);
    ~Acceptor();
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    // Keeps one of the bus's own listeners and watches it until close().
    void add(Listener listener);
    // Watches a listener that stays its caller's (a container endpoint's) until unwatch(); it must
    // outlive the watching.
    void watch(const Listener& listener);
    void unwatch(int listener_fd);
    // Stops watching the bus's own listeners and removes their socket and nonce files.
    void close();
    // The bus's own listeners, in the order they were added.
    const std::deque<Listener>& listeners() const { return listeners_; }

    // The connection on socket `fd` is complete (it said Hello): no longer counted or timed.
    void completed(int fd);
    // The owner closed the connection on socket `fd`: a descriptor is free again, so accepting resumes.
    void closed(int fd);

    std::size_t incomplete_count() const { return incomplete_.size(); }
    bool paused() const { return resume_at_ != 0; }
    // The earliest authentication deadline or the end of a pause.
    std::optional<std::uint64_t> next_deadline() const;
    // Resumes a pause that is over and drops the connections whose authentication time ran out.
    void expire(std::uint64_t now);

  private:
    // A foreign listener's accepting thread: it waits and accepts, so that a socket made blocking (or shut
    // down) by the one who passed it stalls that thread alone, never the bus; the loop takes what it
    // accepted through `ready` (an eventfd).
    struct ForeignAccept {
        int listener = -1;
        util::UniqueFd ready;  // readable when `accepted` has sockets
        util::UniqueFd stop;   // written to end the thread
        std::mutex lock;
        std::vector<util::UniqueFd> accepted;
        std::thread thread;
        void run();
    };

    void accept(int listener_fd);
    void take_foreign(int listener_fd);
    // The loop's side of one accepted socket: credentials, admission, the authentication deadline.
    void take(const Listener& listener, util::UniqueFd socket);
    void pause();
    void resume();
    // Forgets `fd` as incomplete; false if it was not.
    bool forget(int fd);
    void drop(int fd, std::string_view reason);

    EventLoop& loop_;
    AcceptorOptions options_;
    Handlers handlers_;
    std::deque<Listener> listeners_;  // a deque: the loop's callbacks and watched_ point into it
    boost::unordered_flat_map<int, std::unique_ptr<ForeignAccept>> foreign_;  // by listening fd
    boost::unordered_flat_map<int, const Listener*> watched_;  // by listening fd, own and others'
    // Incomplete connections: socket fd -> authentication deadline, and the same ordered by deadline,
    // which is also the order they were accepted in (the timeout is one for all).
    boost::unordered_flat_map<int, std::uint64_t> incomplete_;
    std::set<std::pair<std::uint64_t, int>> by_deadline_;
    std::uint64_t resume_at_ = 0;  // nonzero while paused
};

}  // namespace busgate::transport
