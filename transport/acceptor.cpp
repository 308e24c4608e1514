#include "transport/acceptor.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "busgate/util/clock.h"
#include "transport/peer_credentials.h"

namespace busgate::transport {

Acceptor::Acceptor(EventLoop& loop, AcceptorOptions options, Handlers handlers)
    : loop_(loop), options_(std::move(options)), handlers_(std::move(handlers)) {}

Acceptor::~Acceptor() {
    close();
    std::vector<int> left;
    for (const auto& [fd, listener] : watched_) {
        left.push_back(fd);
    }
    for (const int fd : left) {
        unwatch(fd);
    }
}

void Acceptor::add(Listener listener) {
    watch(listeners_.emplace_back(std::move(listener)));
}

void Acceptor::watch(const Listener& listener) {
    const int fd = listener.fd.get();
    watched_[fd] = &listener;
    if (listener.foreign) {
        auto foreign = std::make_unique<ForeignAccept>();
        foreign->listener = fd;
        foreign->ready = util::UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        foreign->stop = util::UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        const int ready = foreign->ready.get();
        loop_.add(ready, EPOLLIN, [this, fd](std::uint32_t) { take_foreign(fd); });
        foreign->thread = std::thread(&ForeignAccept::run, foreign.get());
        foreign_[fd] = std::move(foreign);
        return;
    }
    // A listener added during a pause waits for the resume with the others.
    loop_.add(fd, paused() ? 0u : std::uint32_t{EPOLLIN}, [this, fd](std::uint32_t) { accept(fd); });
}

void Acceptor::unwatch(int listener_fd) {
    if (watched_.erase(listener_fd) == 0) {
        return;
    }
    const auto found = foreign_.find(listener_fd);
    if (found == foreign_.end()) {
        loop_.remove(listener_fd);
        return;
    }
    ForeignAccept& foreign = *found->second;
    const std::uint64_t one = 1;
    (void)!::write(foreign.stop.get(), &one, sizeof one);
    // A thread inside a blocking accept (the socket's owner cleared O_NONBLOCK) is woken by the shutdown:
    // the listener is going away anyway.
    ::shutdown(listener_fd, SHUT_RDWR);
    foreign.thread.join();
    loop_.remove(foreign.ready.get());
    foreign_.erase(found);  // the sockets it accepted and nobody took are closed
}

void Acceptor::ForeignAccept::run() {
    for (;;) {
        pollfd polled[2] = {{listener, POLLIN, 0}, {stop.get(), POLLIN, 0}};
        if (::poll(polled, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        if (polled[1].revents != 0 || (polled[0].revents & (POLLERR | POLLHUP | POLLNVAL))) {
            return;  // told to stop, or the socket was shut down: nothing more will come
        }
        util::UniqueFd socket(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!socket) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                ::poll(&polled[1], 1,
                       static_cast<int>(pause_ns / 1'000'000));  // out of fds: wait, as pause()
            } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                return;
            }
            continue;
        }
        {
            const std::lock_guard guard(lock);
            accepted.push_back(std::move(socket));
        }
        const std::uint64_t one = 1;
        (void)!::write(ready.get(), &one, sizeof one);
    }
}

void Acceptor::take_foreign(int listener_fd) {
    const auto found = foreign_.find(listener_fd);
    const auto listener = watched_.find(listener_fd);
    if (found == foreign_.end() || listener == watched_.end()) {
        return;
    }
    std::uint64_t count = 0;
    (void)!::read(found->second->ready.get(), &count, sizeof count);
    std::vector<util::UniqueFd> sockets;
    {
        const std::lock_guard guard(found->second->lock);
        sockets.swap(found->second->accepted);
    }
    for (util::UniqueFd& socket : sockets) {
        // Looked up again for every connection: a handler may have stopped this listener.
        const auto still = watched_.find(listener_fd);
        if (still == watched_.end()) {
            return;
        }
        take(*still->second, std::move(socket));
    }
}

void Acceptor::close() {
    for (Listener& listener : listeners_) {
        unwatch(listener.fd.get());
        if (!listener.unlink_path.empty()) {
            ::unlink(listener.unlink_path.c_str());
        }
        if (!listener.nonce_file.empty()) {
            ::unlink(listener.nonce_file.c_str());
            ::rmdir(std::filesystem::path(listener.nonce_file).parent_path().c_str());
        }
    }
    listeners_.clear();
}

void Acceptor::accept(int listener_fd) {
    for (;;) {
        // Looked up again for every connection: a handler may have stopped this listener.
        const auto found = watched_.find(listener_fd);
        if (found == watched_.end()) {
            return;
        }
        const Listener& listener = *found->second;
        util::UniqueFd socket(::accept4(listener_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!socket) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                pause();
            }
            return;
        }
        take(listener, std::move(socket));
    }
}

void Acceptor::take(const Listener& listener, util::UniqueFd socket) {
    PeerCredentials credentials = listener.is_unix ? read_peer_credentials(socket.get()) : PeerCredentials{};
    if (handlers_.admit && !handlers_.admit(listener)) {
        return;
    }
    if (incomplete_.size() >= options_.max_incomplete_connections && !by_deadline_.empty()) {
        drop(by_deadline_.begin()->second, "too many incomplete connections");
    }
    SaslOptions sasl = options_.sasl;
    sasl.unix_fd_possible = listener.is_unix;
    auto connection = std::make_unique<Connection>(std::move(socket), std::move(credentials), std::move(sasl),
                                                   options_.limits, listener.nonce);
    const std::uint64_t deadline = util::monotonic_ns() + options_.auth_timeout_ns;
    incomplete_[connection->fd()] = deadline;
    by_deadline_.emplace(deadline, connection->fd());
    handlers_.accepted(listener, std::move(connection));
}

void Acceptor::completed(int fd) {
    forget(fd);
}

void Acceptor::closed(int fd) {
    forget(fd);
    if (paused()) {
        resume();
    }
}

std::optional<std::uint64_t> Acceptor::next_deadline() const {
    std::optional<std::uint64_t> deadline;
    if (!by_deadline_.empty()) {
        deadline = by_deadline_.begin()->first;
    }
    if (paused() && (!deadline || resume_at_ < *deadline)) {
        deadline = resume_at_;
    }
    return deadline;
}

void Acceptor::expire(std::uint64_t now) {
    if (paused() && resume_at_ <= now) {
        resume();
    }
    std::vector<int> late;
    for (const auto& [deadline, fd] : by_deadline_) {
        if (deadline > now) {
            break;
        }
        late.push_back(fd);
    }
    for (const int fd : late) {
        if (incomplete_.contains(fd)) {  // an earlier drop may have closed it already
            drop(fd, "authentication timed out");
        }
    }
}

void Acceptor::pause() {
    for (const auto& [fd, listener] : watched_) {
        if (!foreign_.contains(fd)) {  // a foreign listener's thread pauses itself
            loop_.modify(fd, 0);
        }
    }
    resume_at_ = util::monotonic_ns() + pause_ns;
    if (handlers_.deadline_changed) {
        handlers_.deadline_changed();
    }
}

void Acceptor::resume() {
    resume_at_ = 0;
    for (const auto& [fd, listener] : watched_) {
        if (!foreign_.contains(fd)) {
            loop_.modify(fd, EPOLLIN);
        }
    }
}

bool Acceptor::forget(int fd) {
    const auto found = incomplete_.find(fd);
    if (found == incomplete_.end()) {
        return false;
    }
    by_deadline_.erase({found->second, fd});
    incomplete_.erase(found);
    return true;
}

void Acceptor::drop(int fd, std::string_view reason) {
    handlers_.drop(fd, reason);
    // The owner calls closed(fd); forgetting here as well keeps the count right if it did not.
    forget(fd);
}

}  // namespace busgate::transport
