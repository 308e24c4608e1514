// inotify on the service directories, so that a service file dropped in is activatable at once (dbus-daemon
// reloads on the same events).
#pragma once

#include "bus/service_spawner.h"
#include "transport/event_loop.h"

namespace busgate::launch {

class DirectoryWatcher final : public bus::DirectoryWatcher {
  public:
    explicit DirectoryWatcher(transport::EventLoop& loop) : loop_(loop) {}
    ~DirectoryWatcher() override { clear(); }
    DirectoryWatcher(const DirectoryWatcher&) = delete;
    DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

    bool watch(const std::vector<std::string>& directories, std::function<void()> on_change) override;
    void clear() override;

  private:
    transport::EventLoop& loop_;
    util::UniqueFd inotify_;
    std::function<void()> on_change_;
};

}  // namespace busgate::launch
