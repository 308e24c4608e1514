// Messages as the core sees them: an opaque, immutable, refcounted payload (the bytes the gateway will write
// out, plus passed fds) and the routing metadata the gateway extracts from the dbus1 header. The core never
// looks inside the bytes. One payload is shared by every receiver of a broadcast.
// QueueItem is what a receiver dequeues: a data message or a kernel-style notification, stamped with the
// global sequence number that orders everything on the bus.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "busgate/core/bloom.h"
#include "busgate/core/types.h"
#include "busgate/util/byte_buffer.h"
#include "busgate/util/unique_fd.h"

namespace busgate::core {

// The bus's gateway may derive from it to keep what it parsed of the bytes beside them (bus::RoutedMessage).
struct MessagePayload {
    // A ByteBuffer rather than a vector: what a client sent becomes the payload without a copy (the bus
    // stamps SENDER in the buffer's headroom).
    util::ByteBuffer bytes;
    std::vector<util::UniqueFd> fds;

    static std::shared_ptr<const MessagePayload> make(std::span<const std::uint8_t> bytes,
                                                      std::vector<util::UniqueFd> fds = {}) {
        auto payload = std::make_shared<MessagePayload>();
        payload->bytes.assign(bytes);
        payload->fds = std::move(fds);
        return payload;
    }
};

using PayloadRef = std::shared_ptr<const MessagePayload>;

// What the gateway hands to Bus::send.
//   unicast by id:     destination_id = N, destination_name empty
//   unicast by name:   destination_name = "org.foo"; destination_id 0, or N to send only if N still owns it
//   broadcast:         destination_id = broadcast_destination, flags has message_flag::signal, bloom set
//   reply:             reply_cookie != 0 (and no expect_reply), destination_id = the caller
// A unicast signal needs no match at the receiver (dbus1 semantics, unlike kdbus) but is silently dropped
// unless the receiver may TALK to the sender.
struct OutgoingMessage {
    PayloadRef payload;
    ConnectionId destination_id = 0;
    std::string_view destination_name;
    std::uint64_t cookie = 0;        // the sender's serial
    std::uint64_t reply_cookie = 0;  // the serial this answers, 0 if not a reply
    std::uint64_t flags = 0;         // message_flag::*
    Timestamp timeout = 0;           // absolute deadline for the reply when expect_reply; 0 = none
    BloomFilter bloom;               // broadcasts only
};

// A small list of the match cookies that selected a broadcast or notification for this receiver; most
// deliveries match one rule, so a few are stored inline.
class MatchCookies {
  public:
    void push_back(std::uint64_t cookie) {
        if (size_ < inline_.size() && overflow_.empty()) {
            inline_[size_++] = cookie;
            return;
        }
        if (overflow_.empty()) {
            overflow_.assign(inline_.begin(), inline_.begin() + size_);
        }
        overflow_.push_back(cookie);
        ++size_;
    }
    void clear() {
        size_ = 0;
        overflow_.clear();
    }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    std::span<const std::uint64_t> view() const {
        return overflow_.empty() ? std::span<const std::uint64_t>(inline_.data(), size_)
                                 : std::span<const std::uint64_t>(overflow_);
    }
    bool contains(std::uint64_t cookie) const {
        for (auto c : view()) {
            if (c == cookie) {
                return true;
            }
        }
        return false;
    }

  private:
    std::array<std::uint64_t, 3> inline_{};
    std::size_t size_ = 0;
    std::vector<std::uint64_t> overflow_;
};

struct Notification {
    NotificationType type = NotificationType::id_add;
    // NAME_*: name and both sides (id 0 on the missing side). Flags are name_flag::* (activator,
    // in_queue...).
    std::string name;
    ConnectionId old_id = 0;
    std::uint64_t old_flags = 0;
    ConnectionId new_id = 0;
    std::uint64_t new_flags = 0;
    // ID_*: the connection and its hello flags.
    ConnectionId id = 0;
    std::uint64_t id_flags = 0;
    // REPLY_*: the cookie of the call that will get no reply (also in QueueItem::reply_cookie).
};

struct QueueItem {
    enum class Kind { message, notification };

    Kind kind = Kind::message;
    std::uint64_t sequence = 0;  // global order: equal for all receivers of one broadcast
    ConnectionId sender = kernel_connection;
    ConnectionId destination = 0;  // the receiver, or broadcast_destination for broadcasts
    std::uint64_t cookie = 0;
    std::uint64_t reply_cookie = 0;
    std::uint64_t flags = 0;
    PayloadRef payload;
    // Broadcasts and broadcast notifications: the cookies of this receiver's matches that selected it. Empty
    // for unicast, and for name notifications delivered because the receiver itself gained or lost the name.
    MatchCookies matched;
    Notification notification;  // kind == notification

    std::size_t byte_count() const { return payload ? payload->bytes.size() : 0; }
    std::size_t fd_count() const { return payload ? payload->fds.size() : 0; }
};

}  // namespace busgate::core
