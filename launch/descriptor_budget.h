// The bus's descriptor budget at start (transport/fd_limit.h has the rules).
#pragma once

namespace busgate::policy {
struct Limits;
}
namespace busgate::bus {
struct DaemonOptions;
}

namespace busgate::launch {

// At start, before listening: raises the limit, fits the daemon's connection limits to it (a limit equal
// to dbus-daemon's default counts as not configured) and says on stderr what it lowered or cannot meet.
void budget_descriptors(bus::DaemonOptions& options, const policy::Limits& configured);

}  // namespace busgate::launch
