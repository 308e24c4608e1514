#include "transport/acceptor.h"

#include <sys/epoll.h>
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
    for (const auto& [fd, listener] : watched_) {
        loop_.remove(fd);
    }
}

void Acceptor::add(Listener listener) {
    watch(listeners_.emplace_back(std::move(listener)));
}

void Acceptor::watch(const Listener& listener) {
    const int fd = listener.fd.get();
    watched_[fd] = &listener;
    // A listener added during a pause waits for the resume with the others.
    loop_.add(fd, paused() ? 0u : std::uint32_t{EPOLLIN}, [this, fd](std::uint32_t) { accept(fd); });
}

void Acceptor::unwatch(int listener_fd) {
    if (watched_.erase(listener_fd) > 0) {
        loop_.remove(listener_fd);
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
        PeerCredentials credentials =
            listener.is_unix ? read_peer_credentials(socket.get()) : PeerCredentials{};
        if (handlers_.admit && !handlers_.admit(listener)) {
            continue;
        }
        if (incomplete_.size() >= options_.max_incomplete_connections && !by_deadline_.empty()) {
            drop(by_deadline_.begin()->second, "too many incomplete connections");
        }
        SaslOptions sasl = options_.sasl;
        sasl.unix_fd_possible = listener.is_unix;
        auto connection = std::make_unique<Connection>(std::move(socket), std::move(credentials),
                                                       std::move(sasl), options_.limits, listener.nonce);
        const std::uint64_t deadline = util::monotonic_ns() + options_.auth_timeout_ns;
        incomplete_[connection->fd()] = deadline;
        by_deadline_.emplace(deadline, connection->fd());
        handlers_.accepted(listener, std::move(connection));
    }
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
        loop_.modify(fd, 0);
    }
    resume_at_ = util::monotonic_ns() + pause_ns;
    if (handlers_.deadline_changed) {
        handlers_.deadline_changed();
    }
}

void Acceptor::resume() {
    resume_at_ = 0;
    for (const auto& [fd, listener] : watched_) {
        loop_.modify(fd, EPOLLIN);
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
