// MatchIndex: every connection's matches, and the index broadcast delivery uses to find candidate receivers.
// Owns, per connection, its message matches (sender filter + bloom mask + the gateway's cookie) and its
// notification matches. Identical masks of all connections are stored once ("shared masks"); each shared mask
// sits in exactly one bucket, keyed by one of its set bits (the one broadcasts carry least often, as
// observed, with the message-type bits counted as hot; ties go to the shorter bucket), or in the wildcard
// bucket when the mask is empty. A filter can only cover a mask whose bits it contains, so a broadcast visits
// just the buckets of the filter's set bits plus the wildcard bucket, never every connection. Invariants: a
// shared mask lives while at least one match uses it; removing a cookie removes all of that connection's
// matches carrying it (kdbus MATCH_REMOVE).
#pragma once

#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "busgate/core/bloom.h"
#include "busgate/core/name_registry.h"
#include "busgate/core/result.h"
#include "busgate/core/types.h"

namespace busgate::core {

// Matches data messages (broadcasts). An empty mask and no sender filter matches every broadcast.
struct MessageMatch {
    std::uint64_t cookie = 0;
    ConnectionId sender_id = any_connection;
    std::string sender_name;  // non-empty: the sender must be the primary owner of this name at send time
    BloomMask mask;
};

// Matches one type of notification. Unused fields stay "any".
struct NotificationMatch {
    std::uint64_t cookie = 0;
    NotificationType type = NotificationType::name_change;
    ConnectionId id = any_connection;      // ID_ADD / ID_REMOVE: the connection
    ConnectionId old_id = any_connection;  // NAME_*: previous owner (0 for NAME_ADD)
    ConnectionId new_id = any_connection;  // NAME_*: new owner (0 for NAME_REMOVE)
    std::string name;                      // NAME_*: empty matches every name
};

class MatchIndex {
  public:
    struct Rule;
    // The rules of one mask, grouped by their sender filter: a broadcast visits the rules that take any
    // sender, those on its id and those on the names it is primary owner of, never another sender's.
    struct SenderRules {
        std::vector<Rule*> any;
        boost::unordered_flat_map<ConnectionId, std::vector<Rule*>> by_id;
        boost::unordered_flat_map<std::string, std::vector<Rule*>, StringHash, std::equal_to<>> by_name;

        void add(Rule* rule);
        void remove(Rule* rule);  // a group left empty is erased, so no map holds an empty list
        bool empty() const { return any.empty() && by_id.empty() && by_name.empty(); }
        template <typename Visit>
        void for_each(Visit&& visit) const;
        // The rules a broadcast from `sender` may match, by sender filter; `names` says what it owns.
        template <typename Visit>
        void for_each_from(ConnectionId sender, const NameRegistry& names, Visit&& visit) const;

      private:
        template <typename Visit>
        static void visit_all(const std::vector<Rule*>& rules, Visit& visit) {
            for (const Rule* rule : rules) {
                visit(*rule);
            }
        }
    };
    struct SharedMask {
        BloomMask mask;
        int bucket = -1;        // the set bit it is filed under; -1: wildcard bucket
        std::size_t slot = 0;   // its position in that bucket
        std::size_t order = 0;  // its position in the re-filing rotation
        SenderRules rules;
    };
    struct Rule {
        ConnectionId owner = 0;
        std::uint64_t cookie = 0;
        ConnectionId sender_id = any_connection;
        std::string sender_name;
        SharedMask* shared = nullptr;
    };

    explicit MatchIndex(std::size_t max_matches_per_connection = 256);
    ~MatchIndex();
    MatchIndex(const MatchIndex&) = delete;
    MatchIndex& operator=(const MatchIndex&) = delete;

    Status add(ConnectionId owner, MessageMatch match);
    Status add(ConnectionId owner, NotificationMatch match);
    Status remove(ConnectionId owner, std::uint64_t cookie);
    void remove_all(ConnectionId owner);

    // Calls visit(const Rule&) for every message rule whose mask `filter` covers. Each rule is visited at
    // most once.
    template <typename Visit>
    void for_each_candidate(const BloomFilter& filter, Visit&& visit) const {
        for_each_covered(filter, [&](const SenderRules& rules) { rules.for_each(visit); });
    }
    // The same, skipping the rules whose sender filter names another connection or a name `sender` is not
    // primary owner of in `names`. What is visited still has its sender filter for the caller to check.
    template <typename Visit>
    void for_each_candidate(const BloomFilter& filter, ConnectionId sender, const NameRegistry& names,
                            Visit&& visit) const {
        for_each_covered(filter,
                         [&](const SenderRules& rules) { rules.for_each_from(sender, names, visit); });
    }

    // Tells the index which bits broadcasts carry, so that masks get filed under bits that are rarely set.
    // Each call also re-examines a few masks in rotation and moves those filed under a hot bit to a colder
    // one, so re-filing costs a little per broadcast instead of a stall.
    void observe(const BloomFilter& filter);

    // Calls visit(ConnectionId, const NotificationMatch&) for every notification match of `type`.
    template <typename Visit>
    void for_each_notification_match(NotificationType type, Visit&& visit) const {
        auto found = notification_subscribers_.find(type);
        if (found == notification_subscribers_.end()) {
            return;
        }
        for (const auto& [owner, count] : found->second) {
            const auto& matches = connections_.find(owner)->second.notification_rules;
            for (const auto& match : matches) {
                if (match.type == type) {
                    visit(owner, match);
                }
            }
        }
    }

    // Whether any broadcast could reach anyone: without message matches a sender need not build a filter.
    bool has_message_rules() const { return !masks_.empty() || !wildcard_.rules.empty(); }
    std::size_t match_count(ConnectionId owner) const;
    std::size_t shared_mask_count() const { return masks_.size(); }
    std::size_t rule_count() const;
    // How many shared masks a broadcast with this filter has to test (for tests and benchmarks).
    std::size_t masks_visited(const BloomFilter& filter) const;

  private:
    struct ConnectionMatches {
        std::vector<std::unique_ptr<Rule>> rules;
        std::vector<NotificationMatch> notification_rules;
    };
    // The mask is copied into the bucket so that a broadcast scans contiguous memory.
    struct BucketEntry {
        BloomBits::Words mask;
        SharedMask* shared;
    };

    // Calls visit(const SenderRules&) for the wildcard bucket and every shared mask `filter` covers.
    template <typename Visit>
    void for_each_covered(const BloomFilter& filter, Visit&& visit) const {
        visit(wildcard_.rules);
        const auto& words = filter.words();
        for (unsigned w = 0; w < bloom_word_count; ++w) {
            for (std::uint64_t word = words[w]; word != 0; word &= word - 1) {
                const unsigned bit = w * 64 + static_cast<unsigned>(__builtin_ctzll(word));
                for (const BucketEntry& entry : buckets_[bit]) {
                    std::uint64_t missing = 0;
                    for (unsigned i = 0; i < bloom_word_count; ++i) {
                        missing |= entry.mask[i] & ~words[i];
                    }
                    if (missing == 0) {
                        visit(entry.shared->rules);
                    }
                }
            }
        }
    }

    SharedMask* acquire_shared(const BloomMask& mask);
    void release_shared(Rule* rule);
    unsigned coldest_bit(const BloomMask& mask) const;
    void file(SharedMask& shared, unsigned bit);
    void unfile(SharedMask& shared);
    void refile(SharedMask& shared);

    std::size_t max_matches_;
    boost::unordered_flat_map<ConnectionId, ConnectionMatches> connections_;
    boost::unordered_flat_map<BloomBits, std::unique_ptr<SharedMask>, BloomBitsHash> masks_;
    std::array<std::vector<BucketEntry>, bloom_bit_count> buckets_;
    SharedMask wildcard_;
    boost::unordered_flat_map<NotificationType, boost::unordered_flat_map<ConnectionId, std::size_t>>
        notification_subscribers_;

    // How often each bit was set in recent broadcast filters (halved at every re-filing), and the bits of
    // "message-type:<t>", which nearly every broadcast carries and which count as hot before any traffic.
    std::array<std::uint32_t, bloom_bit_count> heat_{};
    BloomBits type_bits_;
    std::uint32_t observed_ = 0;
    std::vector<SharedMask*> rotation_;
    std::size_t rotation_cursor_ = 0;
};

template <typename Visit>
void MatchIndex::SenderRules::for_each(Visit&& visit) const {
    visit_all(any, visit);
    for (const auto& [id, rules] : by_id) {
        visit_all(rules, visit);
    }
    for (const auto& [name, rules] : by_name) {
        visit_all(rules, visit);
    }
}

template <typename Visit>
void MatchIndex::SenderRules::for_each_from(ConnectionId sender, const NameRegistry& names,
                                            Visit&& visit) const {
    visit_all(any, visit);
    if (auto found = by_id.find(sender); found != by_id.end()) {
        visit_all(found->second, visit);
    }
    if (by_name.empty()) {
        return;
    }
    // Walk the smaller side: the names on rules here, or the names the sender owns.
    if (by_name.size() <= names.membership_count(sender)) {
        for (const auto& [name, rules] : by_name) {
            if (names.is_primary(sender, name)) {
                visit_all(rules, visit);
            }
        }
        return;
    }
    names.for_each_owned(sender, [&](const NameEntry& entry) {
        if (!entry.owned_by(sender)) {
            return;  // the activator of a name is not its owner
        }
        if (auto found = by_name.find(entry.name); found != by_name.end()) {
            visit_all(found->second, visit);
        }
    });
}

}  // namespace busgate::core
