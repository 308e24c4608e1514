// Randomized, fixed-seed runs of the Bus against the promises its header makes: every accepted call ends
// exactly once (reply, REPLY_TIMEOUT or REPLY_DEAD) while its caller lives; quotas and queue counters return
// to zero once everything is read; per-receiver order follows the global sequence.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>

#include "busgate/core/bus.h"

namespace busgate::core {
namespace {

constexpr std::string_view service_name = "org.example.Svc";

class BusModel {
  public:
    explicit BusModel(std::uint64_t seed) : rng_(seed), bus_(config()) {
        activator_ = hello(0, hello_flag::activator | hello_flag::accept_fds, std::string(service_name));
        for (int i = 0; i < 4; ++i) {
            callers_.push_back(hello(i % 2 ? 1000 : 0));
        }
        for (int i = 0; i < 3; ++i) {
            services_.push_back(hello(i % 2 ? 0 : 1000));
        }
    }

    void step() {
        const auto op = rng_() % 100;
        if (op < 30) {
            call();
        } else if (op < 55) {
            service_reads();
        } else if (op < 70) {
            service_answers();
        } else if (op < 80) {
            caller_reads(callers_[rng_() % callers_.size()]);
        } else if (op < 85) {
            advance_clock();
        } else if (op < 90) {
            acquire();
        } else if (op < 93) {
            release();
        } else if (op < 99) {
            replace_service();
        } else {
            replace_caller();
        }
    }

    void finish_and_check() {
        for (ConnectionId service : services_) {
            ASSERT_TRUE(bus_.bye(service).ok());
        }
        ASSERT_TRUE(bus_.bye(activator_).ok());
        bus_.expire(~Timestamp{0});
        for (ConnectionId caller : callers_) {
            caller_reads(caller);
        }
        std::size_t answered = 0;
        for (const auto& [call, outcomes] : outcomes_) {
            ASSERT_EQ(outcomes, 1) << "call " << call.second << " of " << call.first;
            ++answered;
        }
        EXPECT_GT(replies_, 100u);
        EXPECT_GT(timeouts_, 100u);
        EXPECT_GT(dead_, 100u);
        for (ConnectionId caller : callers_) {
            EXPECT_EQ(bus_.pending_replies(caller), 0u);
            EXPECT_EQ(bus_.connection(caller)->queue_counters().messages, 0u);
        }
        for (UserKey user : {UserKey{0}, UserKey{1000}}) {
            EXPECT_EQ(bus_.quotas().remaining(user, QuotaResource::bytes), config().limits.quota.bytes);
            EXPECT_EQ(bus_.quotas().remaining(user, QuotaResource::messages), config().limits.quota.messages);
            EXPECT_EQ(bus_.quotas().actor_count(user), 0u);
        }
        std::printf(
            "bus model: %zu answers (%zu replies, %zu timeouts, %zu dead), %zu calls of live callers checked "
            "exactly once; %zu sends refused by limits or quotas\n",
            replies_ + timeouts_ + dead_, replies_, timeouts_, dead_, answered, refused_);
    }

  private:
    static BusConfig config() {
        BusConfig config;
        config.owner_uid = 1000;
        config.limits.quota = {64 * 1024, 64, 48};
        config.limits.queue.max_messages = 24;
        config.limits.max_pending_replies_per_connection = 16;
        return config;
    }

    ConnectionId hello(std::uint32_t uid, std::uint64_t flags = hello_flag::accept_fds,
                       std::string name = {}) {
        HelloParams params;
        params.credentials.uid = uid;
        params.flags = flags;
        params.name = std::move(name);
        auto id = bus_.hello(std::move(params));
        EXPECT_TRUE(id.ok());
        return *id;
    }

    void call() {
        const ConnectionId caller = callers_[rng_() % callers_.size()];
        OutgoingMessage message;
        message.payload = MessagePayload::make(std::vector<std::uint8_t>(64 + rng_() % 2048));
        message.cookie = ++cookies_[caller];
        message.flags = message_flag::expect_reply;
        message.timeout = rng_() % 2 ? 0 : now_ + 1 + rng_() % 300;
        if (rng_() % 10 < 7) {
            message.destination_name = service_name;
        } else {
            message.destination_id = services_[rng_() % services_.size()];
        }
        auto sent = bus_.send(caller, std::move(message));
        if (sent.ok()) {
            outcomes_[{caller, cookies_[caller]}] = 0;
            return;
        }
        const Error e = sent.error();
        ASSERT_TRUE(e == Error::quota_exceeded || e == Error::queue_full ||
                    e == Error::too_many_pending_replies)
            << describe(e);
        ++refused_;
    }

    void service_reads() {
        const ConnectionId service = services_[rng_() % services_.size()];
        if (auto item = bus_.receive(service);
            item && item->kind == QueueItem::Kind::message && (item->flags & message_flag::expect_reply)) {
            to_answer_[service].emplace_back(item->sender, item->cookie);
        }
    }

    void service_answers() {
        const ConnectionId service = services_[rng_() % services_.size()];
        auto& queue = to_answer_[service];
        if (queue.empty()) {
            return;
        }
        const std::size_t index = rng_() % queue.size();
        const auto [caller, cookie] = queue[index];
        OutgoingMessage reply;
        reply.payload = MessagePayload::make(std::vector<std::uint8_t>(32));
        reply.destination_id = caller;
        reply.cookie = ++cookies_[service];
        reply.reply_cookie = cookie;
        auto sent = bus_.send(service, std::move(reply));
        if (!sent.ok()) {
            const Error e = sent.error();
            // Timed out already, or the caller left; or the caller's queue is full (retry later).
            ASSERT_TRUE(e == Error::unexpected_reply || e == Error::no_such_connection ||
                        e == Error::queue_full || e == Error::quota_exceeded)
                << describe(e);
            if (e == Error::queue_full || e == Error::quota_exceeded) {
                return;
            }
        }
        queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(index));
    }

    void caller_reads(ConnectionId caller) {
        std::uint64_t last_sequence = 0;
        while (auto item = bus_.receive(caller)) {
            EXPECT_GT(item->sequence, last_sequence);
            last_sequence = item->sequence;
            if (item->reply_cookie == 0) {
                continue;
            }
            auto found = outcomes_.find({caller, item->reply_cookie});
            ASSERT_NE(found, outcomes_.end()) << "answer to a call never accepted";
            ASSERT_EQ(++found->second, 1) << "second answer to call " << item->reply_cookie;
            if (item->kind == QueueItem::Kind::message) {
                ++replies_;
            } else if (item->notification.type == NotificationType::reply_timeout) {
                ++timeouts_;
            } else {
                ++dead_;
            }
        }
    }

    void advance_clock() {
        now_ += rng_() % 100;
        bus_.expire(now_);
    }

    void acquire() {
        static constexpr std::uint64_t choices[] = {
            0, name_flag::queue, name_flag::allow_replacement | name_flag::queue, name_flag::replace_existing,
            name_flag::allow_replacement};
        const ConnectionId service = services_[rng_() % services_.size()];
        ASSERT_TRUE(bus_.acquire_name(service, service_name, choices[rng_() % 5]).ok());
    }

    void release() {
        ASSERT_TRUE(bus_.release_name(services_[rng_() % services_.size()], service_name).ok());
    }

    void replace_service() {
        const std::size_t index = rng_() % services_.size();
        ASSERT_TRUE(bus_.bye(services_[index]).ok());
        to_answer_.erase(services_[index]);
        services_[index] = hello(index % 2 ? 0 : 1000);
    }

    void replace_caller() {
        const std::size_t index = rng_() % callers_.size();
        const ConnectionId gone = callers_[index];
        ASSERT_TRUE(bus_.bye(gone).ok());
        std::erase_if(outcomes_, [gone](const auto& entry) { return entry.first.first == gone; });
        callers_[index] = hello(index % 2 ? 1000 : 0);
    }

    std::mt19937_64 rng_;
    Bus bus_;
    ConnectionId activator_ = 0;
    std::vector<ConnectionId> callers_;
    std::vector<ConnectionId> services_;
    std::map<ConnectionId, std::uint64_t> cookies_;
    std::map<ConnectionId, std::vector<std::pair<ConnectionId, std::uint64_t>>> to_answer_;
    std::map<std::pair<ConnectionId, std::uint64_t>, int> outcomes_;
    Timestamp now_ = 1;
    std::size_t replies_ = 0, timeouts_ = 0, dead_ = 0, refused_ = 0;
};

TEST(BusProperty, EveryAcceptedCallEndsExactlyOnceAndAccountingReturnsToZero) {
    for (std::uint64_t seed : {1, 2, 3}) {
        SCOPED_TRACE(seed);
        BusModel model(seed);
        for (int i = 0; i < 20000; ++i) {
            model.step();
            if (::testing::Test::HasFatalFailure()) {
                return;
            }
        }
        model.finish_and_check();
    }
}

}  // namespace
}  // namespace busgate::core
