#include "transport/event_loop.h"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <ctime>

namespace busgate::transport {

EventLoop::EventLoop()
    : epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      timer_(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
    add(timer_.get(), EPOLLIN, [this](std::uint32_t) {
        std::uint64_t expirations;
        while (::read(timer_.get(), &expirations, sizeof expirations) > 0) {
        }
        timer_deadline_.reset();  // fired: the next set_timer must arm it again
        if (timer_callback_) {
            timer_callback_();
        }
    });
}

bool EventLoop::add(int fd, std::uint32_t events, Callback callback) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
        return false;
    }
    sources_[fd] = Source{std::make_shared<Callback>(std::move(callback)), events};
    return true;
}

bool EventLoop::modify(int fd, std::uint32_t events) {
    // Every flush asks for the events it needs; most of the time nothing changes.
    const auto found = sources_.find(fd);
    if (found != sources_.end() && found->second.events == events) {
        return true;
    }
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
        return false;
    }
    if (found != sources_.end()) {
        found->second.events = events;
    }
    return true;
}

void EventLoop::remove(int fd) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    sources_.erase(fd);
}

void EventLoop::set_timer(std::optional<std::uint64_t> deadline, std::function<void()> callback) {
    timer_callback_ = std::move(callback);
    // An armed deadline that is earlier stays: firing early costs one wake-up, re-arming costs a
    // syscall at every change (every accept moves the authentication deadline).
    if (deadline == timer_deadline_ || (timer_deadline_ && (!deadline || *deadline > *timer_deadline_))) {
        return;
    }
    timer_deadline_ = deadline;
    itimerspec spec{};
    if (deadline) {
        // A deadline in the past still fires: timerfd treats 0 as "disarm", so use 1 ns.
        const std::uint64_t at = *deadline == 0 ? 1 : *deadline;
        spec.it_value.tv_sec = static_cast<time_t>(at / 1'000'000'000u);
        spec.it_value.tv_nsec = static_cast<long>(at % 1'000'000'000u);
    }
    ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

bool EventLoop::watch_signals(const std::vector<int>& signals, std::function<void(int)> callback) {
    sigset_t set;
    sigemptyset(&set);
    for (int signal : signals) {
        sigaddset(&set, signal);
    }
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) {
        return false;
    }
    signals_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    signal_callback_ = std::move(callback);
    return add(signals_.get(), EPOLLIN, [this](std::uint32_t) {
        signalfd_siginfo info{};
        while (::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
            signal_callback_(static_cast<int>(info.ssi_signo));
        }
    });
}

void EventLoop::run_once(int timeout_ms) {
    if (idle_) {
        idle_();
    }
    epoll_event events[64];
    const int count = ::epoll_wait(epoll_.get(), events, 64, timeout_ms);
    for (int i = 0; i < count; ++i) {
        const auto found = sources_.find(events[i].data.fd);
        if (found == sources_.end()) {
            continue;  // removed by an earlier callback of this round
        }
        const std::shared_ptr<Callback> callback = found->second.callback;
        (*callback)(events[i].events);
    }
}

void EventLoop::run() {
    running_ = true;
    while (running_) {
        run_once(-1);
    }
}

}  // namespace busgate::transport
