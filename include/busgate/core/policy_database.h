// PolicyDatabase: kdbus's coarse name policy. Owns entries "name" or "prefix.*" -> grants of SEE < TALK < OWN
// to a user, a group or the world, each entry held by one owner (a policy holder's connection id, or 0 for an
// endpoint's own rules). Two kinds of entry go beyond kdbus, so that a dbus1 policy can be folded onto the
// core without refusing what it allows: a subtree entry (dbus1's own_prefix and send_destination_prefix: the
// name and every name below it, at any depth) and the "*" entry (every name; for TALK also every connection,
// nameless ones included, as a dbus1 rule without a destination allows).
// Invariants: one owner per (name, kind of entry); an owner's rules are replaced as a whole or not at all; a
// wildcard "a.b.*" covers exactly one more element ("a.b.c", not "a.b.c.d"); the exact entry, when present,
// hides the wildcard one (kdbus), while subtree and "*" entries only ever add to what a name is granted.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "busgate/core/result.h"
#include "busgate/core/types.h"

namespace busgate::core {

enum class Access : std::uint8_t { see = 0, talk = 1, own = 2 };
enum class Grantee : std::uint8_t { user = 1, group = 2, world = 3 };

struct PolicyGrant {
    Grantee grantee = Grantee::world;
    std::uint32_t id = 0;  // uid or gid; ignored for world
    Access access = Access::see;
};

// The name of the entry that covers every name (and, for TALK, every connection).
inline constexpr std::string_view any_name = "*";

struct PolicyEntry {
    std::string name;  // a well-known name, a prefix ending in ".*", or any_name
    std::vector<PolicyGrant> grants;
    // The name and every name below it ("a.b" covers "a.b", "a.b.c", "a.b.c.d"); `name` is then a plain
    // prefix of one or more elements, without ".*".
    bool subtree = false;
};

// kdbus name validity: two or more '.'-separated elements of [A-Za-z0-9_-], none starting with a digit,
// at most 255 characters.
bool is_valid_well_known_name(std::string_view name);

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const;
};

class PolicyDatabase {
  public:
    // Replaces every entry of `owner` with `entries`, atomically: on error nothing changes. Fails with
    // invalid_name for a malformed name, invalid_argument for a wildcard, subtree or "*" entry when
    // `allow_wildcards` is false, already_exists when another owner holds the same name.
    Status replace(std::uint64_t owner, std::span<const PolicyEntry> entries, bool allow_wildcards = true);
    void remove_owner(std::uint64_t owner);

    // The highest access `credentials` get on `name`, or nothing (below SEE).
    std::optional<Access> query(const Credentials& credentials, std::string_view name) const;
    bool allows(const Credentials& credentials, std::string_view name, Access needed) const {
        auto granted = query(credentials, name);
        return granted && *granted >= needed;
    }
    // What the "*" entry alone grants: access to every name and every connection, whatever it owns.
    bool allows_any(const Credentials& credentials, Access needed) const;
    std::size_t size() const { return exact_.size() + wildcard_.size() + subtree_.size() + (any_ ? 1 : 0); }

  private:
    struct Entry {
        std::uint64_t owner = 0;
        std::vector<PolicyGrant> grants;
    };
    using Table = boost::unordered_flat_map<std::string, Entry, StringHash, std::equal_to<>>;

    Table exact_;
    Table wildcard_;  // keyed by the prefix without ".*"
    Table subtree_;   // keyed by the prefix
    std::optional<Entry> any_;
};

}  // namespace busgate::core
