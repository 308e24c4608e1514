// WebHub: the only thing the bus thread and the HTTP/WebSocket thread share: the bus's observer
// (bus/observer.h). The bus thread answers requests the web thread posts (a snapshot of names,
// connections, rules and counters; a policy check) when an eventfd wakes it; it copies routed messages
// into every monitor subscriber's bounded queue. The rule: the bus
// thread never waits for the web thread — a full subscriber queue drops the event and counts it.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bus/observer.h"
#include "busgate/util/unique_fd.h"

namespace busgate::web {

using bus::BusCounters;
using bus::BusSnapshot;
using bus::latency_buckets;
using bus::PolicyCheckRequest;
using bus::PolicyCheckResult;

// One message as routed, for live monitors.
struct MonitorEvent {
    std::uint64_t realtime_ns = 0;
    std::vector<std::uint8_t> bytes;  // SENDER stamped, as receivers get it
};

class MonitorSubscriber {
  public:
    explicit MonitorSubscriber(std::size_t capacity) : capacity_(capacity) {}
    // Bus thread: never blocks on the reader.
    void push(const std::shared_ptr<const MonitorEvent>& event);
    // Web thread: everything queued so far, and how many events were lost since the last call.
    std::vector<std::shared_ptr<const MonitorEvent>> take(std::uint64_t& dropped);
    std::uint64_t dropped_total() const { return dropped_total_.load(std::memory_order_relaxed); }

  private:
    std::mutex mutex_;
    std::deque<std::shared_ptr<const MonitorEvent>> queue_;
    std::size_t capacity_;
    std::uint64_t dropped_ = 0;
    std::atomic<std::uint64_t> dropped_total_{0};
};

class WebHub final : public bus::BusObserver {
  public:
    WebHub();
    WebHub(const WebHub&) = delete;
    WebHub& operator=(const WebHub&) = delete;

    // Web thread: runs `task` on the bus thread soon. Tasks must not block; they pass their answers back
    // through the web thread's own queue (asio::post).
    void post_to_bus(std::function<void()> task);
    // Bus thread: the fd to watch, and the tasks to run when it is readable.
    int wake_fd() const override { return wake_.get(); }
    void run_posted() override;
    // When the web thread is gone: the tasks it left may hold its sessions, which must not outlive it.
    void discard_tasks();

    // Monitors.
    std::shared_ptr<MonitorSubscriber> subscribe(std::size_t capacity);
    void unsubscribe(const std::shared_ptr<MonitorSubscriber>& subscriber);
    // The bus thread's one check per routed message when the server is on.
    bool watching() const override { return subscribers_count_.load(std::memory_order_relaxed) > 0; }
    void routed(std::span<const std::uint8_t> bytes) override;
    // Events lost by subscribers that left, plus those of subscribers still here.
    std::uint64_t dropped_total();

  private:
    util::UniqueFd wake_;
    std::mutex tasks_mutex_;
    std::vector<std::function<void()>> tasks_;
    std::mutex subscribers_mutex_;
    std::vector<std::shared_ptr<MonitorSubscriber>> subscribers_;
    std::atomic<std::size_t> subscribers_count_{0};
    std::uint64_t dropped_by_departed_ = 0;
};

}  // namespace busgate::web
