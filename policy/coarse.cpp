// Folding <allow own/send_destination> rules into core policy entries (see coarse.h for the guarantee).
#include "busgate/policy/coarse.h"

#include <cstdint>
#include <map>
#include <set>

namespace busgate::policy {

namespace {

using Grants = std::set<std::pair<core::Grantee, std::uint32_t>>;

struct NameGrants {
    Grants own, talk;
};

struct Collected {
    std::map<std::string, NameGrants> exact, subtree;
    NameGrants any;
};

// A send rule that no method call can match adds no TALK: the core checks TALK for calls only.
bool can_match_method_call(const Rule& rule) {
    return (rule.message_type == RuleMessageType::any || rule.message_type == RuleMessageType::method_call) &&
           rule.broadcast != Tristate::yes;
}

void collect(const std::vector<Rule>& rules, core::Grantee grantee, std::uint32_t id, Collected& out) {
    const std::pair<core::Grantee, std::uint32_t> who{grantee, grantee == core::Grantee::world ? 0 : id};
    for (const Rule& rule : rules) {
        if (!rule.allow) {
            continue;  // a deny only narrows what the allows grant
        }
        const bool own = rule.kind == RuleKind::own;
        if (!own && !(rule.kind == RuleKind::send && can_match_method_call(rule))) {
            continue;
        }
        auto grant = [&](NameGrants& grants) { (own ? grants.own : grants.talk).insert(who); };
        if (!rule.name) {
            grant(out.any);  // own="*", or a send rule for any destination
        } else if (rule.name_is_prefix) {
            // A prefix of one element ("org") is valid, as for kdbus's "org.*".
            if (core::is_valid_well_known_name(*rule.name + ".x")) {
                grant(out.subtree[*rule.name]);
            }
        } else if (!own && rule.name->starts_with(':')) {
            grant(out.any);  // a unique name: a connection the core's name policy cannot single out
        } else if (core::is_valid_well_known_name(*rule.name)) {
            grant(out.exact[*rule.name]);
        }
        // Anything else matches no name a connection can own, nor any destination a call can have.
    }
}

core::PolicyEntry entry_of(std::string name, const NameGrants& grants, bool subtree) {
    core::PolicyEntry entry;
    entry.name = std::move(name);
    entry.subtree = subtree;
    for (const auto& [grantee, id] : grants.own) {
        entry.grants.push_back(core::PolicyGrant{grantee, id, core::Access::own});
    }
    for (const auto& [grantee, id] : grants.talk) {
        entry.grants.push_back(core::PolicyGrant{grantee, id, core::Access::talk});
    }
    return entry;
}

}  // namespace

CoarsePolicy compile_coarse(const PolicyRules& rules) {
    Collected collected;
    // Default, mandatory and console rules may apply to anyone: they grant to the world.
    collect(rules.default_rules, core::Grantee::world, 0, collected);
    collect(rules.mandatory_rules, core::Grantee::world, 0, collected);
    collect(rules.at_console_rules, core::Grantee::world, 0, collected);
    collect(rules.not_at_console_rules, core::Grantee::world, 0, collected);
    for (const auto& [uid, list] : rules.user_rules) {
        collect(list, core::Grantee::user, uid, collected);
    }
    for (const auto& [gid, list] : rules.group_rules) {
        collect(list, core::Grantee::group, gid, collected);
    }

    CoarsePolicy out;
    for (const auto& [name, grants] : collected.exact) {
        out.entries.push_back(entry_of(name, grants, false));
    }
    for (const auto& [name, grants] : collected.subtree) {
        out.entries.push_back(entry_of(name, grants, true));
    }
    core::PolicyEntry any = entry_of(std::string(core::any_name), collected.any, false);
    // dbus1 has no visibility policy: every name is visible to everyone.
    any.grants.push_back(core::PolicyGrant{core::Grantee::world, 0, core::Access::see});
    out.entries.push_back(std::move(any));
    return out;
}

}  // namespace busgate::policy
