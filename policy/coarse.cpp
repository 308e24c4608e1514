// Folding <allow own/send_destination> rules into core policy entries (see coarse.h for the guarantee).
#include "busgate/policy/coarse.h"

#include <map>
#include <set>

namespace busgate::policy {

namespace {

using Grants = std::set<std::pair<core::Grantee, uint32_t>>;

struct NameGrants {
    Grants own, talk;
};

void collect(const std::vector<Rule>& rules, core::Grantee grantee, uint32_t id,
             std::map<std::string, NameGrants>& names, CoarsePolicy& out) {
    for (const Rule& rule : rules) {
        if (!rule.allow)
            continue;
        const bool own = rule.kind == RuleKind::own;
        const bool talk = rule.kind == RuleKind::send;
        if (!own && !talk)
            continue;
        if (!rule.name || rule.name_is_prefix) {
            (own ? out.own_wildcards : out.talk_wildcards) = true;
            continue;
        }
        if (!core::is_valid_well_known_name(*rule.name))
            continue;  // unique names and invalid names have no kdbus policy entry
        auto& grants = names[*rule.name];
        (own ? grants.own : grants.talk).insert({grantee, id});
    }
}

}  // namespace

CoarsePolicy compile_coarse(const PolicyRules& rules) {
    CoarsePolicy out;
    std::map<std::string, NameGrants> names;
    // Default, mandatory and console rules may apply to anyone: they grant to the world.
    collect(rules.default_rules, core::Grantee::world, 0, names, out);
    collect(rules.mandatory_rules, core::Grantee::world, 0, names, out);
    collect(rules.at_console_rules, core::Grantee::world, 0, names, out);
    collect(rules.not_at_console_rules, core::Grantee::world, 0, names, out);
    for (const auto& [uid, list] : rules.user_rules)
        collect(list, core::Grantee::user, uid, names, out);
    for (const auto& [gid, list] : rules.group_rules)
        collect(list, core::Grantee::group, gid, names, out);

    for (const auto& [name, grants] : names) {
        core::PolicyEntry entry;
        entry.name = name;
        auto add = [&](const Grants& set, core::Access access) {
            for (const auto& [grantee, id] : set)
                entry.grants.push_back(
                    core::PolicyGrant{grantee, grantee == core::Grantee::world ? 0 : id, access});
        };
        add(grants.own, core::Access::own);
        add(grants.talk, core::Access::talk);
        // dbus1 has no visibility policy: every name is visible to everyone.
        entry.grants.push_back(core::PolicyGrant{core::Grantee::world, 0, core::Access::see});
        out.entries.push_back(std::move(entry));
    }
    return out;
}

}  // namespace busgate::policy
