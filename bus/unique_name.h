// Unique names: how a core connection id reads on the wire. dbus-daemon numbers its connections ":1.0",
// ":1.1", ... in the order they connect; the core numbers its ordinary connections 1, 2, ... (0 is "none"),
// so ":1.N" is connection N + 1. The bus's own connections (driver, activators) have no unique name.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "busgate/core/types.h"

namespace busgate::bus {

// ":1.0" for core id 1.
std::string unique_name_of(core::ConnectionId id);

// The connection a unique name of this bus stands for; nullopt for a name no connection of this bus can
// have (":1.05", ":2.3", ":452345.34", a well-known name).
std::optional<core::ConnectionId> connection_id_of(std::string_view unique_name);

// As connection_id_of, with 0 for "none".
inline core::ConnectionId id_of_unique_name(std::string_view name) {
    return connection_id_of(name).value_or(0);
}

}  // namespace busgate::bus
