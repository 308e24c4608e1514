// EventLoop: the bus thread's epoll loop. Sources are file descriptors with a callback, plus one
// timer (the earliest deadline the bus asks for) and the signals the daemon handles, both delivered
// as fds (timerfd, signalfd) so everything is one epoll_wait. Callbacks run on the loop's thread;
// removing a source from inside any callback is safe.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "busgate/util/unique_fd.h"

namespace busgate::transport {

class EventLoop {
  public:
    using Callback = std::function<void(std::uint32_t events)>;

    EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Watches `fd` for `events` (EPOLLIN, EPOLLOUT...). The loop does not own the fd.
    bool add(int fd, std::uint32_t events, Callback callback);
    bool modify(int fd, std::uint32_t events);  // free when `events` are those already watched
    void remove(int fd);

    // Calls `callback` once `deadline` (util::monotonic_ns()) is reached; a later call replaces it. It
    // may run early, at a deadline set before that has not passed yet: `callback` checks what is due.
    void set_timer(std::optional<std::uint64_t> deadline, std::function<void()> callback);
    // Blocks `signals` and calls `callback(signal)` when one arrives.
    bool watch_signals(const std::vector<int>& signals, std::function<void(int)> callback);
    // Runs before each wait: the place to flush work queued by callbacks.
    void set_idle(std::function<void()> callback) { idle_ = std::move(callback); }

    // Runs until quit().
    void run();
    void quit() { running_ = false; }
    // One wait of at most `timeout_ms` and its callbacks; for tests.
    void run_once(int timeout_ms);

  private:
    util::UniqueFd epoll_;
    util::UniqueFd timer_;
    util::UniqueFd signals_;
    std::function<void()> timer_callback_;
    std::function<void(int)> signal_callback_;
    std::function<void()> idle_;
    struct Source {
        // Shared so a callback that removes its own source stays alive while it runs.
        std::shared_ptr<Callback> callback;
        std::uint32_t events = 0;  // as registered, so that an unchanged modify costs no syscall
    };
    boost::unordered_flat_map<int, Source> sources_;
    std::optional<std::uint64_t> timer_deadline_;  // as armed, so that re-arming the same costs nothing
    bool running_ = false;
};

}  // namespace busgate::transport
