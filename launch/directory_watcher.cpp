#include "launch/directory_watcher.h"

#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstdint>

namespace busgate::launch {

bool DirectoryWatcher::watch(const std::vector<std::string>& directories, std::function<void()> on_change) {
    clear();
    inotify_ = util::UniqueFd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_) {
        return false;
    }
    bool watching = false;
    for (const std::string& directory : directories) {
        if (::inotify_add_watch(inotify_.get(), directory.c_str(),
                                IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                    IN_DELETE_SELF | IN_MOVE_SELF) >= 0) {
            watching = true;
        }
    }
    if (!watching) {
        inotify_.reset();
        return false;
    }
    on_change_ = std::move(on_change);
    loop_.add(inotify_.get(), EPOLLIN, [this](std::uint32_t) {
        alignas(inotify_event) char events[4096];
        while (::read(inotify_.get(), events, sizeof(events)) > 0) {
        }
        // The reaction may watch anew (a directory appeared), which replaces on_change_ while it runs.
        const std::function<void()> reaction = on_change_;
        reaction();
    });
    return true;
}

void DirectoryWatcher::clear() {
    if (inotify_) {
        loop_.remove(inotify_.get());
        inotify_.reset();
    }
    on_change_ = nullptr;
}

}  // namespace busgate::launch
