// Connection: one peer of the bus as the core knows it: its never-reused id, the credentials and hello flags
// it connected with, its endpoint, the user its resources are charged to, and its receive queue.
// Invariants: id, credentials, flags and endpoint never change after hello; only the Bus mutates a
// connection (its queue, its readable mark, the callers it remembers).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "busgate/core/quota.h"
#include "busgate/core/receive_queue.h"
#include "busgate/core/types.h"
#include "busgate/util/unique_fd.h"

namespace busgate::core {

class Bus;

class Connection {
  public:
    Connection(ConnectionId id, Credentials credentials, util::UniqueFd pidfd, std::uint64_t flags,
               EndpointId endpoint, bool privileged, UserKey user, std::string description)
        : id_(id),
          credentials_(std::move(credentials)),
          pidfd_(std::move(pidfd)),
          flags_(flags),
          endpoint_(endpoint),
          privileged_(privileged),
          user_(user),
          description_(std::move(description)) {}

    ConnectionId id() const { return id_; }
    const Credentials& credentials() const { return credentials_; }
    int pidfd() const { return pidfd_.get(); }  // -1 when the gateway had none
    std::uint64_t flags() const { return flags_; }
    EndpointId endpoint() const { return endpoint_; }
    bool privileged() const { return privileged_; }
    UserKey user() const { return user_; }
    const std::string& description() const { return description_; }

    bool is_ordinary() const { return !(flags_ & (hello_flag::activator | hello_flag::policy_holder)); }
    bool is_activator() const { return flags_ & hello_flag::activator; }
    bool is_policy_holder() const { return flags_ & hello_flag::policy_holder; }
    bool accepts_fds() const { return flags_ & hello_flag::accept_fds; }

    // A connection of a custom endpoint may see the peers that called it (xdg-dbus-proxy gives a caller SEE):
    // the most recent `max_remembered_callers` of them.
    static constexpr std::size_t max_remembered_callers = 256;
    bool was_called_by(ConnectionId caller) const {
        return std::find(callers_.begin(), callers_.end(), caller) != callers_.end();
    }

    const QueueCounters& queue_counters() const { return queue_.counters(); }
    std::size_t queued() const { return queue_.size(); }

  private:
    friend class Bus;

    ConnectionId id_;
    Credentials credentials_;
    util::UniqueFd pidfd_;
    std::uint64_t flags_;
    EndpointId endpoint_;
    bool privileged_;
    UserKey user_;
    std::string description_;

    ReceiveQueue queue_;
    bool readable_listed_ = false;
    // Fan-out bookkeeping: the sequence of the delivery this connection was last collected for, and the
    // cookies of its matches that selected it.
    std::uint64_t fanout_stamp_ = 0;
    MatchCookies fanout_cookies_;
    std::vector<ConnectionId> callers_;  // oldest first; only for a connection of a custom endpoint
};

}  // namespace busgate::core
