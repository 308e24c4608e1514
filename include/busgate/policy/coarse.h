// Coarse name policy for the core: the XML rules folded into kdbus-style policy entries (SEE < TALK < OWN
// granted to a user, a group or the world per well-known name, per dbus1 prefix, or on "*"), in the core's
// own PolicyEntry type, for the daemon's policy holder to upload.
// The one rule: these entries are an over-approximation. Whenever dbus-daemon could allow a connection to own
// a name or to call a connection, the entries grant it; they may grant more (deny rules, interfaces, members,
// paths, fd counts and ordering narrow what dbus-daemon allows and are left out). The gateway's exact check
// (Policy/ClientPolicy) stays authoritative and runs first; the core's check is the backstop that refuses
// what no rule could allow, and never what dbus-daemon would accept.
// Mapping:
//  - default, mandatory and at_console (true or false) contexts grant to the world, user= to the uid,
//    group= to the gid (the core matches a connection's gid and supplementary groups, the same set the
//    gateway gives ClientPolicy);
//  - <allow own="N"> is OWN on N, own_prefix="N" OWN on the subtree N, own="*" OWN on "*";
//  - <allow send_destination="N"> is TALK on N, send_destination_prefix="N" TALK on the subtree N; a send
//    rule without a destination, with "*", or naming a unique name is TALK on "*" (every connection). Only
//    rules that can match a method call count: the core then runs with signals_need_talk false (signals are
//    decided by receive rules the core cannot express) and replies need no TALK;
//  - a rule whose name no valid bus name can match (one element, a digit after a dot) grants nothing;
//  - every name is visible to everyone (dbus1 has no SEE): "*" always carries a world SEE.
#pragma once

#include <vector>

#include "busgate/core/policy_database.h"
#include "busgate/policy/configuration.h"

namespace busgate::policy {

struct CoarsePolicy {
    // Exact names first, then subtrees (each group sorted by name), then "*"; every entry is one the core's
    // PolicyDatabase accepts from a policy holder.
    std::vector<core::PolicyEntry> entries;
};

CoarsePolicy compile_coarse(const PolicyRules& rules);

}  // namespace busgate::policy
