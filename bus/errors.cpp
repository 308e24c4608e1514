#include "bus/errors.h"

#include "bus/match_rule.h"

namespace busgate::bus {

// A switch rather than an array: the compiler (-Wswitch) refuses a code added without its name.
std::string_view name_of(BusError error) {
    switch (error) {
        case BusError::failed:
            return "org.freedesktop.DBus.Error.Failed";
        case BusError::no_memory:
            return "org.freedesktop.DBus.Error.NoMemory";
        case BusError::invalid_args:
            return "org.freedesktop.DBus.Error.InvalidArgs";
        case BusError::access_denied:
            return "org.freedesktop.DBus.Error.AccessDenied";
        case BusError::name_has_no_owner:
            return "org.freedesktop.DBus.Error.NameHasNoOwner";
        case BusError::service_unknown:
            return "org.freedesktop.DBus.Error.ServiceUnknown";
        case BusError::unknown_method:
            return "org.freedesktop.DBus.Error.UnknownMethod";
        case BusError::unknown_interface:
            return "org.freedesktop.DBus.Error.UnknownInterface";
        case BusError::unknown_property:
            return "org.freedesktop.DBus.Error.UnknownProperty";
        case BusError::property_read_only:
            return "org.freedesktop.DBus.Error.PropertyReadOnly";
        case BusError::limits_exceeded:
            return "org.freedesktop.DBus.Error.LimitsExceeded";
        case BusError::not_supported:
            return "org.freedesktop.DBus.Error.NotSupported";
        case BusError::no_reply:
            return "org.freedesktop.DBus.Error.NoReply";
        case BusError::match_rule_not_found:
            return "org.freedesktop.DBus.Error.MatchRuleNotFound";
        case BusError::match_rule_invalid:
            return "org.freedesktop.DBus.Error.MatchRuleInvalid";
        case BusError::adt_audit_data_unknown:
            return "org.freedesktop.DBus.Error.AdtAuditDataUnknown";
        case BusError::selinux_context_unknown:
            return "org.freedesktop.DBus.Error.SELinuxSecurityContextUnknown";
        case BusError::timed_out:
            return "org.freedesktop.DBus.Error.TimedOut";
        case BusError::spawn_exec_failed:
            return "org.freedesktop.DBus.Error.Spawn.ExecFailed";
        case BusError::spawn_fork_failed:
            return "org.freedesktop.DBus.Error.Spawn.ForkFailed";
        case BusError::spawn_child_exited:
            return "org.freedesktop.DBus.Error.Spawn.ChildExited";
        case BusError::spawn_child_signaled:
            return "org.freedesktop.DBus.Error.Spawn.ChildSignaled";
        case BusError::spawn_file_invalid:
            return "org.freedesktop.DBus.Error.Spawn.FileInvalid";
        case BusError::spawn_failed_to_setup:
            return "org.freedesktop.DBus.Error.Spawn.FailedToSetup";
        case BusError::spawn_config_invalid:
            return "org.freedesktop.DBus.Error.Spawn.ConfigInvalid";
        case BusError::spawn_service_not_valid:
            return "org.freedesktop.DBus.Error.Spawn.ServiceNotValid";
        case BusError::spawn_service_not_found:
            return "org.freedesktop.DBus.Error.Spawn.ServiceNotFound";
        case BusError::spawn_permissions_invalid:
            return "org.freedesktop.DBus.Error.Spawn.PermissionsInvalid";
    }
    return "org.freedesktop.DBus.Error.Failed";
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

Refusal refusal_of(core::Error error, const marshal::MessageHeader& header, std::string_view sender) {
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
