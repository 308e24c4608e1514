// The hand-off between the bus thread and the web thread (see web_hub.h).
#include "web/web_hub.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

namespace busgate::web {

void MonitorSubscriber::push(const std::shared_ptr<const MonitorEvent>& event) {
    const std::lock_guard lock(mutex_);
    if (queue_.size() >= capacity_) {
        ++dropped_;
        dropped_total_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    queue_.push_back(event);
}

std::vector<std::shared_ptr<const MonitorEvent>> MonitorSubscriber::take(std::uint64_t& dropped) {
    const std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<const MonitorEvent>> events(queue_.begin(), queue_.end());
    queue_.clear();
    dropped = std::exchange(dropped_, 0);
    return events;
}

WebHub::WebHub() : wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

void WebHub::post_to_bus(std::function<void()> task) {
    {
        const std::lock_guard lock(tasks_mutex_);
        tasks_.push_back(std::move(task));
    }
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
}

void WebHub::run_posted() {
    std::uint64_t count = 0;
    (void)!::read(wake_.get(), &count, sizeof count);
    std::vector<std::function<void()>> tasks;
    {
        const std::lock_guard lock(tasks_mutex_);
        tasks.swap(tasks_);
    }
    for (auto& task : tasks) {
        task();
    }
}

void WebHub::discard_tasks() {
    std::vector<std::function<void()>> tasks;
    const std::lock_guard lock(tasks_mutex_);
    tasks.swap(tasks_);
}

std::shared_ptr<MonitorSubscriber> WebHub::subscribe(std::size_t capacity) {
    auto subscriber = std::make_shared<MonitorSubscriber>(capacity);
    const std::lock_guard lock(subscribers_mutex_);
    subscribers_.push_back(subscriber);
    subscribers_count_.store(subscribers_.size(), std::memory_order_relaxed);
    return subscriber;
}

void WebHub::unsubscribe(const std::shared_ptr<MonitorSubscriber>& subscriber) {
    const std::lock_guard lock(subscribers_mutex_);
    if (std::erase(subscribers_, subscriber) > 0) {
        dropped_by_departed_ += subscriber->dropped_total();
    }
    subscribers_count_.store(subscribers_.size(), std::memory_order_relaxed);
}

void WebHub::routed(std::span<const std::uint8_t> bytes) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    auto event = std::make_shared<MonitorEvent>();
    event->realtime_ns =
        static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
    event->bytes.assign(bytes.begin(), bytes.end());
    const std::shared_ptr<const MonitorEvent> shared = std::move(event);
    const std::lock_guard lock(subscribers_mutex_);
    for (const auto& subscriber : subscribers_) {
        subscriber->push(shared);
    }
}

std::uint64_t WebHub::dropped_total() {
    const std::lock_guard lock(subscribers_mutex_);
    std::uint64_t total = dropped_by_departed_;
    for (const auto& subscriber : subscribers_) {
        total += subscriber->dropped_total();
    }
    return total;
}

}  // namespace busgate::web
