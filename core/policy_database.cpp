#include "busgate/core/policy_database.h"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "siphash.h"

namespace busgate::core {
namespace {

bool is_element_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

constexpr std::string_view wildcard_suffix = ".*";

}  // namespace

bool is_valid_well_known_name(std::string_view name) {
    if (name.empty() || name.size() > 255) {
        return false;
    }
    unsigned elements = 0;
    std::size_t start = 0;
    for (;;) {
        std::size_t end = name.find('.', start);
        std::string_view element = name.substr(start, end == std::string_view::npos ? end : end - start);
        if (element.empty() || (element[0] >= '0' && element[0] <= '9')) {
            return false;
        }
        if (!std::all_of(element.begin(), element.end(), is_element_char)) {
            return false;
        }
        ++elements;
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }
    return elements >= 2;
}

namespace {

// A client chooses the names in these tables (RequestName, AddMatch sender=): with an unkeyed hash it could
// compute names that all collide with a victim's and make every lookup of that name scan them all. So the
// tables hash with SipHash-1-3 under a key drawn once per process.
std::array<std::uint8_t, 16> process_key() {
    std::array<std::uint8_t, 16> key{};
    if (::getrandom(key.data(), key.size(), 0) != static_cast<ssize_t>(key.size())) {
        // No entropy source (a very early boot): the clock and an address still differ between runs.
        const std::uint64_t words[2] = {
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()),
            reinterpret_cast<std::uintptr_t>(&key) ^ 0x9e3779b97f4a7c15ULL};
        std::memcpy(key.data(), words, key.size());
    }
    return key;
}

}  // namespace

std::size_t StringHash::operator()(std::string_view text) const {
    static const std::array<std::uint8_t, 16> key = process_key();
    return static_cast<std::size_t>(siphash13(key, text));
}

namespace {

enum class EntryKind : std::uint8_t { exact, wildcard, subtree, any };

EntryKind kind_of(const PolicyEntry& entry) {
    if (entry.name == any_name) {
        return EntryKind::any;
    }
    if (entry.subtree) {
        return EntryKind::subtree;
    }
    return std::string_view(entry.name).ends_with(wildcard_suffix) ? EntryKind::wildcard : EntryKind::exact;
}

// The key an entry is stored under: the name without ".*" for a wildcard.
std::string_view key_of(const PolicyEntry& entry, EntryKind kind) {
    std::string_view name = entry.name;
    if (kind == EntryKind::wildcard) {
        name.remove_suffix(wildcard_suffix.size());
    }
    return name;
}

bool grant_applies(const PolicyGrant& grant, const Credentials& credentials) {
    switch (grant.grantee) {
        case Grantee::user:
            return grant.id == credentials.uid;
        case Grantee::group:
            return grant.id == credentials.gid ||
                   std::find(credentials.groups.begin(), credentials.groups.end(), grant.id) !=
                       credentials.groups.end();
        case Grantee::world:
            return true;
    }
    return false;
}

void raise_to(std::optional<Access>& best, const std::vector<PolicyGrant>& grants,
              const Credentials& credentials) {
    for (const auto& grant : grants) {
        if ((!best || grant.access > *best) && grant_applies(grant, credentials)) {
            best = grant.access;
            if (*best == Access::own) {
                return;
            }
        }
    }
}

}  // namespace

Status PolicyDatabase::replace(std::uint64_t owner, std::span<const PolicyEntry> entries,
                               bool allow_wildcards) {
    // Validate everything first, so that a failure leaves the database untouched.
    for (const auto& entry : entries) {
        const EntryKind kind = kind_of(entry);
        if (kind != EntryKind::exact && !allow_wildcards) {
            return Error::invalid_argument;
        }
        if (kind == EntryKind::any) {
            if (any_ && any_->owner != owner) {
                return Error::already_exists;
            }
            continue;
        }
        const std::string_view name = key_of(entry, kind);
        // A prefix may be a single element ("org.*", or the subtree "org"); a plain name needs two.
        const bool prefix = kind == EntryKind::wildcard || kind == EntryKind::subtree;
        if (!is_valid_well_known_name(name) &&
            !(prefix && is_valid_well_known_name(std::string(name) + ".x"))) {
            return Error::invalid_name;
        }
        const Table& table = kind == EntryKind::exact      ? exact_
                             : kind == EntryKind::wildcard ? wildcard_
                                                           : subtree_;
        auto found = table.find(name);
        if (found != table.end() && found->second.owner != owner) {
            return Error::already_exists;
        }
    }
    remove_owner(owner);
    for (const auto& entry : entries) {
        const EntryKind kind = kind_of(entry);
        Entry* stored = nullptr;
        if (kind == EntryKind::any) {
            if (!any_) {
                any_ = Entry{owner, {}};
            }
            stored = &*any_;
        } else {
            Table& table = kind == EntryKind::exact      ? exact_
                           : kind == EntryKind::wildcard ? wildcard_
                                                         : subtree_;
            stored = &table.try_emplace(std::string(key_of(entry, kind)), Entry{owner, {}}).first->second;
        }
        // Duplicate names within one upload merge their grants.
        stored->grants.insert(stored->grants.end(), entry.grants.begin(), entry.grants.end());
    }
    return {};
}

void PolicyDatabase::remove_owner(std::uint64_t owner) {
    auto by_owner = [owner](const auto& element) { return element.second.owner == owner; };
    boost::unordered::erase_if(exact_, by_owner);
    boost::unordered::erase_if(wildcard_, by_owner);
    boost::unordered::erase_if(subtree_, by_owner);
    if (any_ && any_->owner == owner) {
        any_.reset();
    }
}

std::optional<Access> PolicyDatabase::query(const Credentials& credentials, std::string_view name) const {
    std::optional<Access> best;
    if (auto found = exact_.find(name); found != exact_.end()) {
        raise_to(best, found->second.grants, credentials);
    } else if (auto dot = name.rfind('.'); dot != std::string_view::npos) {
        if (auto prefix = wildcard_.find(name.substr(0, dot)); prefix != wildcard_.end()) {
            raise_to(best, prefix->second.grants, credentials);
        }
    }
    if (!subtree_.empty()) {
        // Every prefix that ends at an element boundary, the whole name included.
        for (std::size_t end = name.find('.'); best != Access::own; end = name.find('.', end + 1)) {
            if (auto found = subtree_.find(name.substr(0, end)); found != subtree_.end()) {
                raise_to(best, found->second.grants, credentials);
            }
            if (end == std::string_view::npos) {
                break;
            }
        }
    }
    if (any_) {
        raise_to(best, any_->grants, credentials);
    }
    return best;
}

bool PolicyDatabase::allows_any(const Credentials& credentials, Access needed) const {
    if (!any_) {
        return false;
    }
    std::optional<Access> granted;
    raise_to(granted, any_->grants, credentials);
    return granted && *granted >= needed;
}

}  // namespace busgate::core
