// Quota: per-user budgets for what sits in receive queues (bytes, fds, messages), with dbus-broker's fairness
// rule (kdbus-semantics.md section 4.3): everything queued for a connection is charged to the receiving
// user; a sending user ("actor") other than the receiving user itself may take a charge c only if
//     (share + c) * (n + 1) - share <= remaining
// where share is what that actor already holds of this user, n the number of actors holding a share
// (counting this one) and remaining what is left of the user's budget. Each remote user thus gets between
// 1/n and 1/n^2 of the budget. Charges to oneself are bounded by `remaining` only.
// Invariants: a charge is all or nothing across the resources; remaining + sum of shares == maximum for each
// resource. A user's record stays while it has connections (so that steady traffic allocates nothing) and is
// dropped by forget_user once it has none and nothing is charged.
#pragma once

#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>

#include "busgate/core/result.h"

namespace busgate::core {

// Users are uids on the default endpoint; a custom endpoint's connections share one anonymous user per
// endpoint (kdbus), see user_key_for_endpoint.
using UserKey = std::uint64_t;

enum class QuotaResource : unsigned { bytes = 0, fds = 1, messages = 2 };
inline constexpr std::size_t quota_resource_count = 3;

struct QuotaLimits {
    // bus1's defaults for in-flight bytes and fds; messages as bus1's slices.
    std::uint64_t bytes = 16 * 1024 * 1024;
    std::uint64_t fds = 4096;
    std::uint64_t messages = 16384;
};

using QuotaAmounts = std::array<std::uint64_t, quota_resource_count>;

// What one queued item holds; give it back with QuotaRegistry::discharge.
struct QuotaCharge {
    UserKey user = 0;
    UserKey actor = 0;
    QuotaAmounts amounts{};
    bool active = false;
};

class QuotaRegistry {
  public:
    explicit QuotaRegistry(QuotaLimits limits = {}) : limits_(limits) {}

    // quota_exceeded when any resource would break the rule; nothing is charged then.
    Result<QuotaCharge> charge(UserKey user, UserKey actor, const QuotaAmounts& amounts);
    void discharge(QuotaCharge& charge);
    // Drops the record of a user that has nothing charged (its last connection left).
    void forget_user(UserKey user);

    std::uint64_t remaining(UserKey user, QuotaResource resource) const;
    std::uint64_t share(UserKey user, UserKey actor, QuotaResource resource) const;
    std::size_t actor_count(UserKey user) const;
    std::size_t user_count() const { return users_.size(); }
    const QuotaLimits& limits() const { return limits_; }

  private:
    struct Usage {
        QuotaAmounts share{};
    };
    struct User {
        QuotaAmounts remaining{};
        boost::unordered_flat_map<UserKey, Usage> usages;
    };

    QuotaLimits limits_;
    boost::unordered_flat_map<UserKey, User> users_;
};

}  // namespace busgate::core
