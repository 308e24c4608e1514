// NameRegistry: well-known names, their owner queues and their activators.
// Owns, per name: the owner queue (front = primary owner, then the waiters in order) with each owner's saved
// flags, and at most one activator. Semantics follow late kdbus and dbus-daemon: a replaced primary owner
// that asked to queue becomes second in line, otherwise it loses the name; when the last real owner leaves,
// an activator takes the name back. Invariants: an entry exists only while it has an owner or an activator; a
// connection appears at most once in a name's queue; every ownership change is reported as a NameChange, in
// the order it happened; name ids are never reused (they tell queued messages which name they were sent to).
// The registry does not check policy or visibility; the Bus does that before calling it.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "busgate/core/policy_database.h"
#include "busgate/core/result.h"
#include "busgate/core/types.h"

namespace busgate::core {

struct NameOwner {
    ConnectionId id = 0;
    std::uint64_t flags = 0;  // name_flag::saved bits
};

struct NameEntry {
    std::string name;
    std::uint64_t name_id = 0;
    std::vector<NameOwner> owners;  // owners[0] is the primary owner
    ConnectionId activator = 0;     // 0: none

    // The connection messages to this name go to: the primary owner, else the activator, else 0.
    ConnectionId destination() const { return owners.empty() ? activator : owners.front().id; }
    bool only_activator() const { return owners.empty() && activator != 0; }
    bool owned_by(ConnectionId id) const { return !owners.empty() && owners.front().id == id; }
};

// One ownership change; the Bus turns it into a NAME_ADD / NAME_REMOVE / NAME_CHANGE notification.
struct NameChange {
    NotificationType type = NotificationType::name_add;
    std::string name;
    std::uint64_t name_id = 0;
    ConnectionId old_id = 0;
    std::uint64_t old_flags = 0;
    ConnectionId new_id = 0;
    std::uint64_t new_flags = 0;
    bool from_activator = false;  // the activator handed the name to a real owner: move its queued messages
    bool to_activator = false;    // the name went back to its activator: move the old owner's messages back
};

class NameRegistry {
  public:
    explicit NameRegistry(std::size_t max_names_per_connection = 256)
        : max_names_(max_names_per_connection) {}

    // Acquire (kdbus NAME_ACQUIRE; the dbus1 driver answers RequestName with it). `flags` are
    // name_flag::{replace_existing, allow_replacement, queue}.
    Result<AcquireResult> acquire(ConnectionId id, std::string_view name, std::uint64_t flags,
                                  std::vector<NameChange>& changes);
    // Release (kdbus NAME_RELEASE). The activator of a name cannot release it (it holds it until it
    // disconnects).
    ReleaseResult release(ConnectionId id, std::string_view name, std::vector<NameChange>& changes);
    // Makes `id` the activator of `name`: already_exists if it has one.
    Status attach_activator(ConnectionId id, std::string_view name, std::vector<NameChange>& changes);
    // Everything `id` owns, waits for or activates, released as on disconnect.
    void release_all(ConnectionId id, std::vector<NameChange>& changes);

    const NameEntry* find(std::string_view name) const;
    // The names `id` is primary owner of, and the name it is the activator of.
    template <typename Visit>
    void for_each_owned(ConnectionId id, Visit&& visit) const {
        if (auto found = memberships_.find(id); found != memberships_.end()) {
            for (const NameEntry* entry : found->second) {
                if (entry->destination() == id) {
                    visit(*entry);
                }
            }
        }
    }
    // Every name `id` owns, waits for or activates.
    template <typename Visit>
    void for_each_membership(ConnectionId id, Visit&& visit) const {
        if (auto found = memberships_.find(id); found != memberships_.end()) {
            for (const NameEntry* entry : found->second) {
                visit(*entry);
            }
        }
    }
    // Every entry, for listing.
    template <typename Visit>
    void for_each(Visit&& visit) const {
        for (const auto& [name, entry] : entries_) {
            visit(*entry);
        }
    }
    // How many names `id` owns, waits for or activates.
    std::size_t membership_count(ConnectionId id) const;
    bool is_primary(ConnectionId id, std::string_view name) const {
        const NameEntry* entry = find(name);
        return entry && entry->owned_by(id);
    }
    std::size_t size() const { return entries_.size(); }

  private:
    NameEntry& create(std::string_view name);
    void erase(NameEntry& entry);
    void add_membership(ConnectionId id, NameEntry& entry);
    void remove_membership(ConnectionId id, const NameEntry& entry);

    std::size_t max_names_;
    std::uint64_t next_name_id_ = 1;
    boost::unordered_flat_map<std::string, std::unique_ptr<NameEntry>, StringHash, std::equal_to<>> entries_;
    boost::unordered_flat_map<ConnectionId, std::vector<NameEntry*>> memberships_;
};

}  // namespace busgate::core
