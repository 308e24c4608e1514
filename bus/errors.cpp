#include "bus/errors.h"

#include <array>

#include "bus/match_rule.h"

namespace busgate::bus {
namespace {

constexpr std::array<std::string_view, static_cast<std::size_t>(BusError::selinux_context_unknown) + 1>
    names = {
        "org.freedesktop.DBus.Error.Failed",
        "org.freedesktop.DBus.Error.NoMemory",
        "org.freedesktop.DBus.Error.InvalidArgs",
        "org.freedesktop.DBus.Error.AccessDenied",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.UnknownMethod",
        "org.freedesktop.DBus.Error.UnknownInterface",
        "org.freedesktop.DBus.Error.UnknownProperty",
        "org.freedesktop.DBus.Error.PropertyReadOnly",
        "org.freedesktop.DBus.Error.LimitsExceeded",
        "org.freedesktop.DBus.Error.NotSupported",
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.MatchRuleNotFound",
        "org.freedesktop.DBus.Error.MatchRuleInvalid",
        "org.freedesktop.DBus.Error.AdtAuditDataUnknown",
        "org.freedesktop.DBus.Error.SELinuxSecurityContextUnknown",
};

}  // namespace

std::string_view name_of(BusError error) {
    return names[static_cast<std::size_t>(error)];
}

// dbus-daemon's complaint about a message it will not deliver: "WHY, N matched rules; type=... ".
std::string complaint(std::string_view why, std::size_t matched_rules, const marshal::MessageHeader& header,
                      std::string_view sender, bool requested_reply) {
    const auto text = [](std::string_view value) {
        return value.empty() ? std::string("(unset)") : std::string(value);
    };
    return std::string(why) + ", " + std::to_string(matched_rules) + " matched rules; type=\"" +
           std::string(message_type_name(header.type)) + "\", sender=\"" + std::string(sender) +
           "\" interface=\"" + text(header.interface) + "\" member=\"" + text(header.member) +
           "\" error name=\"" + text(header.error_name) + "\" requested_reply=\"" +
           (requested_reply ? "1" : "0") + "\" destination=\"" + text(header.destination) + "\"";
}

std::string rejection_text(const policy::RouteDecision& decision, const marshal::MessageHeader& header,
                           std::string_view sender) {
    return complaint(decision.verdict == policy::Verdict::send_denied ? "Rejected send message"
                                                                      : "Rejected receive message",
                     decision.decision.matched_rules, header, sender, decision.requested_reply);
}

SendRefusal refusal_of(core::Error error, const marshal::MessageHeader& header, std::string_view sender) {
    const std::string destination(header.destination);
    switch (error) {
        case core::Error::name_has_no_owner:
        case core::Error::no_such_connection:
        case core::Error::activation_disabled:
            if (header.flags & marshal::flag::no_auto_start) {
                return {BusError::name_has_no_owner, "Name \"" + destination + "\" does not exist"};
            }
            return {BusError::service_unknown,
                    "The name " + destination + " was not provided by any .service files"};
        case core::Error::permission_denied:
            return {BusError::access_denied, "Rejected send message, 0 matched rules; type=\"" +
                                                 std::string(message_type_name(header.type)) +
                                                 "\", sender=\"" + std::string(sender) +
                                                 "\", destination=\"" + destination + "\""};
        case core::Error::fds_not_accepted:
            return {
                BusError::not_supported,
                "Tried to send message with Unix file descriptors to a client that doesn't support that."};
        case core::Error::queue_full:
            return {BusError::limits_exceeded,
                    complaint("Rejected: destination has a full message queue", 0, header, sender, false)};
        case core::Error::too_many_pending_replies:
            return {BusError::limits_exceeded,
                    "The maximum number of pending replies per connection has been reached"};
        case core::Error::unexpected_reply:
            // Refused as dbus-broker refuses it; told as dbus-daemon tells a reply its policy denies.
            return {BusError::access_denied, complaint("Rejected send message", 0, header, sender, false) +
                                                 " (the reply answers no call awaiting it)"};
        default:
            return {BusError::limits_exceeded, std::string(core::describe(error))};
    }
}

}  // namespace busgate::bus
