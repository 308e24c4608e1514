#include "busgate/core/result.h"

namespace busgate::core {

std::string_view describe(Error error) {
    switch (error) {
        case Error::invalid_argument:
            return "invalid argument";
        case Error::invalid_name:
            return "invalid bus name";
        case Error::permission_denied:
            return "permission denied by bus policy";
        case Error::not_supported:
            return "operation not supported for this connection";
        case Error::no_such_connection:
            return "no such connection";
        case Error::no_such_endpoint:
            return "no such endpoint";
        case Error::name_has_no_owner:
            return "name has no owner";
        case Error::destination_changed:
            return "name is owned by a different connection";
        case Error::activation_disabled:
            return "name is only activatable and the message forbids auto start";
        case Error::fds_not_accepted:
            return "receiver does not accept file descriptors";
        case Error::too_many_fds:
            return "too many file descriptors in one message";
        case Error::message_too_large:
            return "message too large";
        case Error::quota_exceeded:
            return "sender exceeded its quota on the receiver";
        case Error::queue_full:
            return "receiver's queue is full";
        case Error::too_many_pending_replies:
            return "too many pending replies";
        case Error::unexpected_reply:
            return "reply does not answer an outstanding call";
        case Error::name_limit_reached:
            return "connection owns too many names";
        case Error::match_limit_reached:
            return "connection has too many matches";
        case Error::no_such_match:
            return "no match with this cookie";
        case Error::connection_limit_reached:
            return "user has too many connections";
        case Error::already_exists:
            return "already exists";
    }
    return "unknown error";
}

}  // namespace busgate::core
