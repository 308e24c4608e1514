#include "busgate/core/match_index.h"

#include <algorithm>

namespace busgate::core {

MatchIndex::~MatchIndex() = default;

size_t MatchIndex::match_count(ConnectionId owner) const {
    auto found = connections_.find(owner);
    if (found == connections_.end())
        return 0;
    return found->second.rules.size() + found->second.notification_rules.size();
}

size_t MatchIndex::rule_count() const {
    size_t count = 0;
    for (const auto& [owner, matches] : connections_)
        count += matches.rules.size();
    return count;
}

MatchIndex::SharedMask* MatchIndex::acquire_shared(const BloomMask& mask) {
    if (mask.empty())
        return &wildcard_;
    auto found = masks_.find(static_cast<const BloomBits&>(mask));
    if (found != masks_.end())
        return found->second.get();
    auto shared = std::make_unique<SharedMask>();
    shared->mask = mask;
    // File it under the set bit whose bucket is least full, so that buckets stay short.
    size_t best_size = SIZE_MAX;
    for (unsigned bit = 0; bit < bloom_bit_count; ++bit) {
        if (mask.test(bit) && buckets_[bit].size() < best_size) {
            best_size = buckets_[bit].size();
            shared->bucket = static_cast<int>(bit);
        }
    }
    buckets_[static_cast<size_t>(shared->bucket)].push_back(shared.get());
    SharedMask* result = shared.get();
    masks_.emplace(static_cast<const BloomBits&>(mask), std::move(shared));
    return result;
}

void MatchIndex::release_shared(Rule* rule) {
    SharedMask* shared = rule->shared;
    auto& rules = shared->rules;
    rules.erase(std::find(rules.begin(), rules.end(), rule));
    if (!rules.empty() || shared == &wildcard_)
        return;
    auto& bucket = buckets_[static_cast<size_t>(shared->bucket)];
    bucket.erase(std::find(bucket.begin(), bucket.end(), shared));
    masks_.erase(static_cast<const BloomBits&>(shared->mask));
}

Status MatchIndex::add(ConnectionId owner, MessageMatch match) {
    if (match_count(owner) >= max_matches_)
        return Error::match_limit_reached;
    auto rule = std::make_unique<Rule>();
    rule->owner = owner;
    rule->cookie = match.cookie;
    rule->sender_id = match.sender_id;
    rule->sender_name = std::move(match.sender_name);
    rule->shared = acquire_shared(match.mask);
    rule->shared->rules.push_back(rule.get());
    connections_[owner].rules.push_back(std::move(rule));
    return {};
}

Status MatchIndex::add(ConnectionId owner, NotificationMatch match) {
    if (match_count(owner) >= max_matches_)
        return Error::match_limit_reached;
    ++notification_subscribers_[match.type][owner];
    connections_[owner].notification_rules.push_back(std::move(match));
    return {};
}

Status MatchIndex::remove(ConnectionId owner, uint64_t cookie) {
    auto found = connections_.find(owner);
    if (found == connections_.end())
        return Error::no_such_match;
    auto& matches = found->second;
    bool removed = false;
    for (auto it = matches.rules.begin(); it != matches.rules.end();) {
        if ((*it)->cookie == cookie) {
            release_shared(it->get());
            it = matches.rules.erase(it);
            removed = true;
        } else {
            ++it;
        }
    }
    for (auto it = matches.notification_rules.begin(); it != matches.notification_rules.end();) {
        if (it->cookie == cookie) {
            auto& subscribers = notification_subscribers_[it->type];
            if (--subscribers[owner] == 0)
                subscribers.erase(owner);
            it = matches.notification_rules.erase(it);
            removed = true;
        } else {
            ++it;
        }
    }
    if (matches.rules.empty() && matches.notification_rules.empty())
        connections_.erase(found);
    return removed ? Status{} : Status{Error::no_such_match};
}

void MatchIndex::remove_all(ConnectionId owner) {
    auto found = connections_.find(owner);
    if (found == connections_.end())
        return;
    for (auto& rule : found->second.rules)
        release_shared(rule.get());
    for (const auto& match : found->second.notification_rules)
        notification_subscribers_[match.type].erase(owner);
    connections_.erase(found);
}

}  // namespace busgate::core
