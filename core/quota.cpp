#include "busgate/core/quota.h"

namespace busgate::core {
namespace {

// dbus-broker's user_charge_check with A(users) = users + 1, overflow meaning "no".
bool fair_share_allows(std::uint64_t remaining, std::uint64_t users, std::uint64_t share,
                       std::uint64_t charge) {
    std::uint64_t limit = 0;
    if (__builtin_add_overflow(share, charge, &limit)) {
        return false;
    }
    if (__builtin_mul_overflow(limit, users + 1, &limit)) {
        return false;
    }
    if (__builtin_sub_overflow(limit, share, &limit)) {
        return false;
    }
    return limit <= remaining;
}

}  // namespace

Result<QuotaCharge> QuotaRegistry::charge(UserKey user_key, UserKey actor, const QuotaAmounts& amounts) {
    auto [it, created] = users_.try_emplace(user_key);
    User& user = it->second;
    if (created) {
        user.remaining = {limits_.bytes, limits_.fds, limits_.messages};
    }
    // One lookup: the actor's record is made now and dropped again if the charge is refused.
    auto [usage, new_actor] = user.usages.try_emplace(actor);
    const QuotaAmounts& share = usage->second.share;  // zero for a new actor
    // n counts the actors holding a share, this one included.
    const std::uint64_t users = user.usages.size();

    bool allowed = true;
    for (std::size_t r = 0; r < quota_resource_count && allowed; ++r) {
        if (amounts[r] == 0) {
            continue;
        }
        if (actor == user_key) {
            allowed = amounts[r] <= user.remaining[r];
        } else {
            allowed = fair_share_allows(user.remaining[r], users, share[r], amounts[r]);
        }
    }
    if (!allowed) {
        if (new_actor) {
            user.usages.erase(usage);
        }
        if (created) {
            users_.erase(it);
        }
        return Error::quota_exceeded;
    }
    auto& record = usage->second;
    for (std::size_t r = 0; r < quota_resource_count; ++r) {
        user.remaining[r] -= amounts[r];
        record.share[r] += amounts[r];
    }
    return QuotaCharge{user_key, actor, amounts, true};
}

void QuotaRegistry::discharge(QuotaCharge& charge) {
    if (!charge.active) {
        return;
    }
    charge.active = false;
    auto it = users_.find(charge.user);
    if (it == users_.end()) {
        return;
    }
    User& user = it->second;
    auto usage = user.usages.find(charge.actor);
    for (std::size_t r = 0; r < quota_resource_count; ++r) {
        user.remaining[r] += charge.amounts[r];
        if (usage != user.usages.end()) {
            usage->second.share[r] -= charge.amounts[r];
        }
    }
    if (usage != user.usages.end() && usage->second.share == QuotaAmounts{}) {
        user.usages.erase(usage);
    }
}

void QuotaRegistry::forget_user(UserKey user) {
    auto it = users_.find(user);
    if (it != users_.end() && it->second.usages.empty()) {
        users_.erase(it);
    }
}

std::uint64_t QuotaRegistry::remaining(UserKey user, QuotaResource resource) const {
    auto it = users_.find(user);
    const auto index = static_cast<std::size_t>(resource);
    if (it == users_.end()) {
        return QuotaAmounts{limits_.bytes, limits_.fds, limits_.messages}[index];
    }
    return it->second.remaining[index];
}

std::uint64_t QuotaRegistry::share(UserKey user, UserKey actor, QuotaResource resource) const {
    auto it = users_.find(user);
    if (it == users_.end()) {
        return 0;
    }
    auto usage = it->second.usages.find(actor);
    return usage == it->second.usages.end() ? 0 : usage->second.share[static_cast<std::size_t>(resource)];
}

std::size_t QuotaRegistry::actor_count(UserKey user) const {
    auto it = users_.find(user);
    return it == users_.end() ? 0 : it->second.usages.size();
}

}  // namespace busgate::core
