// Coarse name policy for the core: the XML rules folded into kdbus-style policy entries (SEE < TALK < OWN
// granted to a user, a group or the world per well-known name), in the core's own PolicyEntry type.
// The one rule: these entries are an over-approximation. Whenever dbus-daemon could allow a connection to own
// or talk to a name, the entries grant it; they may grant more (deny rules, interfaces, members, ordering and
// the console are not expressible in kdbus policy). The gateway's exact check (Policy/ClientPolicy) stays
// authoritative; the core's check is a cheap first gate that never refuses what dbus-daemon would accept.
#pragma once

#include <vector>

#include "busgate/core/policy_database.h"
#include "busgate/policy/configuration.h"

namespace busgate::policy {

struct CoarsePolicy {
    std::vector<core::PolicyEntry> entries;  // one per exact name the rules mention, sorted by name
    // Rules that a per-name entry cannot carry: own="*", own_prefix, send_destination="*" or absent,
    // send_destination_prefix. When set, the core cannot be the only gate for that access.
    bool own_wildcards = false;
    bool talk_wildcards = false;
};

CoarsePolicy compile_coarse(const PolicyRules& rules);

}  // namespace busgate::policy
