#include "busgate/core/policy_database.h"

#include <algorithm>

namespace busgate::core {
namespace {

bool is_element_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

constexpr std::string_view wildcard_suffix = ".*";

}  // namespace

bool is_valid_well_known_name(std::string_view name) {
    if (name.empty() || name.size() > 255)
        return false;
    unsigned elements = 0;
    size_t start = 0;
    for (;;) {
        size_t end = name.find('.', start);
        std::string_view element = name.substr(start, end == std::string_view::npos ? end : end - start);
        if (element.empty() || (element[0] >= '0' && element[0] <= '9'))
            return false;
        if (!std::all_of(element.begin(), element.end(), is_element_char))
            return false;
        ++elements;
        if (end == std::string_view::npos)
            break;
        start = end + 1;
    }
    return elements >= 2;
}

size_t StringHash::operator()(std::string_view text) const {
    // FNV-1a, then mixed: boost's open addressing wants well-spread low bits.
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : text) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return static_cast<size_t>(h);
}

Status PolicyDatabase::replace(uint64_t owner, std::span<const PolicyEntry> entries, bool allow_wildcards) {
    // Validate everything first, so that a failure leaves the database untouched.
    for (const auto& entry : entries) {
        std::string_view name = entry.name;
        const bool wildcard = name.ends_with(wildcard_suffix);
        if (wildcard) {
            if (!allow_wildcards)
                return Error::invalid_argument;
            name.remove_suffix(wildcard_suffix.size());
        }
        // A wildcard prefix may be a single element ("org.*"); a plain name needs two.
        if (!is_valid_well_known_name(name) &&
            !(wildcard && is_valid_well_known_name(std::string(name) + ".x")))
            return Error::invalid_name;
        const Table& table = wildcard ? wildcard_ : exact_;
        auto found = table.find(name);
        if (found != table.end() && found->second.owner != owner)
            return Error::already_exists;
    }
    remove_owner(owner);
    for (const auto& entry : entries) {
        std::string_view name = entry.name;
        const bool wildcard = name.ends_with(wildcard_suffix);
        if (wildcard)
            name.remove_suffix(wildcard_suffix.size());
        Table& table = wildcard ? wildcard_ : exact_;
        auto [it, inserted] = table.try_emplace(std::string(name), Entry{owner, {}});
        // Duplicate names within one upload merge their grants.
        it->second.grants.insert(it->second.grants.end(), entry.grants.begin(), entry.grants.end());
    }
    return {};
}

void PolicyDatabase::remove_owner(uint64_t owner) {
    auto by_owner = [owner](const auto& element) { return element.second.owner == owner; };
    boost::unordered::erase_if(exact_, by_owner);
    boost::unordered::erase_if(wildcard_, by_owner);
}

std::optional<Access> PolicyDatabase::query(const Credentials& credentials, std::string_view name) const {
    const Entry* entry = nullptr;
    if (auto found = exact_.find(name); found != exact_.end()) {
        entry = &found->second;
    } else if (auto dot = name.rfind('.'); dot != std::string_view::npos) {
        if (auto prefix = wildcard_.find(name.substr(0, dot)); prefix != wildcard_.end())
            entry = &prefix->second;
    }
    if (!entry)
        return std::nullopt;
    std::optional<Access> best;
    for (const auto& grant : entry->grants) {
        bool applies = false;
        switch (grant.grantee) {
            case Grantee::user:
                applies = grant.id == credentials.uid;
                break;
            case Grantee::group:
                applies = grant.id == credentials.gid ||
                          std::find(credentials.groups.begin(), credentials.groups.end(), grant.id) !=
                              credentials.groups.end();
                break;
            case Grantee::world:
                applies = true;
                break;
        }
        if (applies && (!best || grant.access > *best)) {
            best = grant.access;
            if (*best == Access::own)
                break;
        }
    }
    return best;
}

}  // namespace busgate::core
