// The bus's one error table: every error the bus itself sends, by code, with its D-Bus name, and the one
// place where a refusal of the core (core::Error) becomes what dbus-daemon would tell the sender.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "busgate/core/result.h"
#include "busgate/marshal/message.h"
#include "busgate/policy/policy.h"

namespace busgate::bus {

enum class BusError : std::uint8_t {
    failed,
    no_memory,
    invalid_args,
    access_denied,
    name_has_no_owner,
    service_unknown,
    unknown_method,
    unknown_interface,
    unknown_property,
    property_read_only,
    limits_exceeded,
    not_supported,
    no_reply,
    match_rule_not_found,
    match_rule_invalid,
    adt_audit_data_unknown,
    selinux_context_unknown,
    timed_out,
    // Activation's failures to start a service (dbus-daemon's Spawn.* family).
    spawn_exec_failed,
    spawn_fork_failed,
    spawn_child_exited,
    spawn_child_signaled,
    spawn_file_invalid,
    spawn_failed_to_setup,
    spawn_config_invalid,
    spawn_service_not_valid,
    spawn_service_not_found,
    spawn_permissions_invalid,
};

// org.freedesktop.DBus.Error.*, as dbus-daemon names it.
std::string_view name_of(BusError error);

// What the bus answers instead of a method return: an error of the table and dbus-daemon's text for it.
struct Refusal {
    BusError error;
    std::string text;
    bool operator==(const Refusal&) const = default;
};

// dbus-daemon's complaint about a message it will not deliver: "WHY, N matched rules; type=... ".
std::string complaint(std::string_view why, std::size_t matched_rules, const marshal::MessageHeader& header,
                      std::string_view sender, bool requested_reply);

// dbus-daemon's AccessDenied text for a message its policy refused.
std::string rejection_text(const policy::RouteDecision& decision, const marshal::MessageHeader& header,
                           std::string_view sender);

// What the sender of `header` (unique name `sender`) is told when the core refused to send it.
Refusal refusal_of(core::Error error, const marshal::MessageHeader& header, std::string_view sender);

}  // namespace busgate::bus
