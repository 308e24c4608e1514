// Error codes of the core and a small Result<T> that carries either a value or one Error.
// Invariant: the core never throws on the message path; every failure is a returned Error, and an Error
// concerns the one command that produced it, never the bus as a whole.
#pragma once

#include <cassert>
#include <string_view>
#include <utility>
#include <variant>

namespace busgate::core {

enum class Error {
    invalid_argument,     // malformed command (bad flags, empty cookie with expect-reply, ...)
    invalid_name,         // not a valid well-known name
    permission_denied,    // policy (SEE/TALK/OWN) refused the command
    not_supported,        // command not allowed for this kind of connection (activator sends, ...)
    no_such_connection,   // unknown or invisible connection id
    no_such_endpoint,     // unknown endpoint id
    name_has_no_owner,    // destination name unknown, or invisible from the caller's endpoint
    destination_changed,  // name is owned by another connection than the pinned destination id
    activation_disabled,  // only an activator holds the name and the message says no auto start
    fds_not_accepted,     // receiver did not declare that it accepts fds
    too_many_fds,         // more fds than a message may carry
    message_too_large,    // payload exceeds the per-message limit
    quota_exceeded,       // the sending user's share of the receiving user's budget is used up
    queue_full,           // the receiving connection's own queue limit is reached
    too_many_pending_replies,
    unexpected_reply,     // a reply without an outstanding call it answers
    name_limit_reached,   // the connection owns or queues too many names
    match_limit_reached,  // the connection has too many matches
    no_such_match,        // remove_match with a cookie that has no entry
    connection_limit_reached,
    already_exists,  // policy entry held by another holder, second activator, ...
};

// A short English description, for logs and for the gateway's error messages.
std::string_view describe(Error error);

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : state_(std::in_place_index<1>, error) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<0>(state_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(state_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(state_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    Error error() const {
        assert(!ok());
        return std::get<1>(state_);
    }

  private:
    std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : failed_(true), error_(error) {}

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    Error error() const {
        assert(failed_);
        return error_;
    }

  private:
    bool failed_ = false;
    Error error_ = Error::invalid_argument;
};

using Status = Result<void>;

}  // namespace busgate::core
