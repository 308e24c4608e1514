#include "busgate/core/match_index.h"

#include <algorithm>

namespace busgate::core {

namespace {

constexpr std::uint32_t heat_halving_interval = 4096;
constexpr unsigned masks_refiled_per_broadcast = 4;

void erase_rule(std::vector<MatchIndex::Rule*>& rules, MatchIndex::Rule* rule) {
    rules.erase(std::find(rules.begin(), rules.end(), rule));
}

}  // namespace

MatchIndex::MatchIndex(std::size_t max_matches_per_connection) : max_matches_(max_matches_per_connection) {
    for (auto type : {"signal", "method_call", "method_return", "error"}) {
        type_bits_.add_element("message-type", type);
    }
}

MatchIndex::~MatchIndex() = default;

std::size_t MatchIndex::match_count(ConnectionId owner) const {
    auto found = connections_.find(owner);
    if (found == connections_.end()) {
        return 0;
    }
    return found->second.rules.size() + found->second.notification_rules.size();
}

std::size_t MatchIndex::rule_count() const {
    std::size_t count = 0;
    for (const auto& [owner, matches] : connections_) {
        count += matches.rules.size();
    }
    return count;
}

std::size_t MatchIndex::masks_visited(const BloomFilter& filter) const {
    std::size_t visited = 0;
    for (unsigned bit = 0; bit < bloom_bit_count; ++bit) {
        if (filter.test(bit)) {
            visited += buckets_[bit].size();
        }
    }
    return visited;
}

unsigned MatchIndex::coldest_bit(const BloomMask& mask) const {
    // Expected cost of filing under a bit = how often broadcasts carry it; among equals, the shorter bucket.
    const std::uint64_t type_heat = std::max<std::uint64_t>(observed_, 1);
    unsigned best = 0;
    std::uint64_t best_heat = UINT64_MAX;
    std::size_t best_size = SIZE_MAX;
    const auto& words = mask.words();
    for (unsigned w = 0; w < bloom_word_count; ++w) {
        for (std::uint64_t word = words[w]; word != 0; word &= word - 1) {
            const unsigned bit = w * 64 + static_cast<unsigned>(__builtin_ctzll(word));
            const std::uint64_t heat = heat_[bit] + (type_bits_.test(bit) ? type_heat : 0);
            const std::size_t size = buckets_[bit].size();
            if (heat < best_heat || (heat == best_heat && size < best_size)) {
                best = bit;
                best_heat = heat;
                best_size = size;
            }
        }
    }
    return best;
}

void MatchIndex::file(SharedMask& shared, unsigned bit) {
    auto& bucket = buckets_[bit];
    shared.bucket = static_cast<int>(bit);
    shared.slot = bucket.size();
    bucket.push_back({shared.mask.words(), &shared});
}

void MatchIndex::unfile(SharedMask& shared) {
    auto& bucket = buckets_[static_cast<std::size_t>(shared.bucket)];
    if (shared.slot + 1 != bucket.size()) {
        bucket[shared.slot] = bucket.back();
        bucket[shared.slot].shared->slot = shared.slot;
    }
    bucket.pop_back();
    shared.bucket = -1;
}

void MatchIndex::observe(const BloomFilter& filter) {
    const auto& words = filter.words();
    for (unsigned w = 0; w < bloom_word_count; ++w) {
        for (std::uint64_t word = words[w]; word != 0; word &= word - 1) {
            ++heat_[w * 64 + static_cast<unsigned>(__builtin_ctzll(word))];
        }
    }
    if (++observed_ >= heat_halving_interval) {
        for (auto& heat : heat_) {
            heat /= 2;
        }
        observed_ /= 2;
    }
    for (unsigned i = 0; i < masks_refiled_per_broadcast && !rotation_.empty(); ++i) {
        if (rotation_cursor_ >= rotation_.size()) {
            rotation_cursor_ = 0;
        }
        refile(*rotation_[rotation_cursor_++]);
    }
}

void MatchIndex::refile(SharedMask& shared) {
    const unsigned current = static_cast<unsigned>(shared.bucket);
    const unsigned best = coldest_bit(shared.mask);
    // Move only for a clear gain, so that masks do not oscillate between similar bits.
    const std::uint64_t type_heat = std::max<std::uint64_t>(observed_, 1);
    const std::uint64_t current_heat = heat_[current] + (type_bits_.test(current) ? type_heat : 0);
    const std::uint64_t best_heat = heat_[best] + (type_bits_.test(best) ? type_heat : 0);
    if (best != current && best_heat * 2 < current_heat) {
        unfile(shared);
        file(shared, best);
    }
}

MatchIndex::SharedMask* MatchIndex::acquire_shared(const BloomMask& mask) {
    if (mask.empty()) {
        return &wildcard_;
    }
    auto found = masks_.find(static_cast<const BloomBits&>(mask));
    if (found != masks_.end()) {
        return found->second.get();
    }
    auto shared = std::make_unique<SharedMask>();
    shared->mask = mask;
    file(*shared, coldest_bit(mask));
    shared->order = rotation_.size();
    rotation_.push_back(shared.get());
    SharedMask* result = shared.get();
    masks_.emplace(static_cast<const BloomBits&>(mask), std::move(shared));
    return result;
}

void MatchIndex::SenderRules::add(Rule* rule) {
    if (rule->sender_id != any_connection) {
        by_id[rule->sender_id].push_back(rule);
    } else if (!rule->sender_name.empty()) {
        by_name[rule->sender_name].push_back(rule);
    } else {
        any.push_back(rule);
    }
}

void MatchIndex::SenderRules::remove(Rule* rule) {
    if (rule->sender_id != any_connection) {
        auto found = by_id.find(rule->sender_id);
        erase_rule(found->second, rule);
        if (found->second.empty()) {
            by_id.erase(found);
        }
    } else if (!rule->sender_name.empty()) {
        auto found = by_name.find(rule->sender_name);
        erase_rule(found->second, rule);
        if (found->second.empty()) {
            by_name.erase(found);
        }
    } else {
        erase_rule(any, rule);
    }
}

void MatchIndex::release_shared(Rule* rule) {
    SharedMask* shared = rule->shared;
    shared->rules.remove(rule);
    if (!shared->rules.empty() || shared == &wildcard_) {
        return;
    }
    unfile(*shared);
    rotation_[shared->order] = rotation_.back();
    rotation_[shared->order]->order = shared->order;
    rotation_.pop_back();
    masks_.erase(static_cast<const BloomBits&>(shared->mask));
}

Status MatchIndex::add(ConnectionId owner, MessageMatch match) {
    if (match_count(owner) >= max_matches_) {
        return Error::match_limit_reached;
    }
    auto rule = std::make_unique<Rule>();
    rule->owner = owner;
    rule->cookie = match.cookie;
    rule->sender_id = match.sender_id;
    rule->sender_name = std::move(match.sender_name);
    rule->shared = acquire_shared(match.mask);
    rule->shared->rules.add(rule.get());
    connections_[owner].rules.push_back(std::move(rule));
    return {};
}

Status MatchIndex::add(ConnectionId owner, NotificationMatch match) {
    if (match_count(owner) >= max_matches_) {
        return Error::match_limit_reached;
    }
    ++notification_subscribers_[match.type][owner];
    connections_[owner].notification_rules.push_back(std::move(match));
    return {};
}

Status MatchIndex::remove(ConnectionId owner, std::uint64_t cookie) {
    auto found = connections_.find(owner);
    if (found == connections_.end()) {
        return Error::no_such_match;
    }
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
            if (--subscribers[owner] == 0) {
                subscribers.erase(owner);
            }
            it = matches.notification_rules.erase(it);
            removed = true;
        } else {
            ++it;
        }
    }
    if (matches.rules.empty() && matches.notification_rules.empty()) {
        connections_.erase(found);
    }
    return removed ? Status{} : Status{Error::no_such_match};
}

void MatchIndex::remove_all(ConnectionId owner) {
    auto found = connections_.find(owner);
    if (found == connections_.end()) {
        return;
    }
    for (auto& rule : found->second.rules) {
        release_shared(rule.get());
    }
    for (const auto& match : found->second.notification_rules) {
        notification_subscribers_[match.type].erase(owner);
    }
    connections_.erase(found);
}

}  // namespace busgate::core
