#include "busgate/core/name_registry.h"

#include <algorithm>

namespace busgate::core {
namespace {

std::size_t position_of(const NameEntry& entry, ConnectionId id) {
    for (std::size_t i = 0; i < entry.owners.size(); ++i) {
        if (entry.owners[i].id == id) {
            return i;
        }
    }
    return entry.owners.size();
}

}  // namespace

const NameEntry* NameRegistry::find(std::string_view name) const {
    auto found = entries_.find(name);
    return found == entries_.end() ? nullptr : found->second.get();
}

std::size_t NameRegistry::membership_count(ConnectionId id) const {
    auto found = memberships_.find(id);
    return found == memberships_.end() ? 0 : found->second.size();
}

NameEntry& NameRegistry::create(std::string_view name) {
    auto entry = std::make_unique<NameEntry>();
    entry->name = std::string(name);
    entry->name_id = next_name_id_++;
    NameEntry& result = *entry;
    entries_.emplace(result.name, std::move(entry));
    return result;
}

void NameRegistry::erase(NameEntry& entry) {
    std::string key = entry.name;
    entries_.erase(key);
}

void NameRegistry::add_membership(ConnectionId id, NameEntry& entry) {
    memberships_[id].push_back(&entry);
}

void NameRegistry::remove_membership(ConnectionId id, const NameEntry& entry) {
    auto found = memberships_.find(id);
    if (found == memberships_.end()) {
        return;
    }
    auto& list = found->second;
    list.erase(std::remove(list.begin(), list.end(), &entry), list.end());
    if (list.empty()) {
        memberships_.erase(found);
    }
}

Result<AcquireResult> NameRegistry::acquire(ConnectionId id, std::string_view name, std::uint64_t flags,
                                            std::vector<NameChange>& changes) {
    if (!is_valid_well_known_name(name)) {
        return Error::invalid_name;
    }
    const std::uint64_t saved = flags & name_flag::saved;
    auto found = entries_.find(name);
    NameEntry* entry = found == entries_.end() ? nullptr : found->second.get();
    const std::size_t position = entry ? position_of(*entry, id) : 0;
    const bool member = entry && position < entry->owners.size();

    if (member && position == 0) {
        entry->owners[0].flags = saved;
        return AcquireResult::already_owner;
    }
    if (!member && membership_count(id) >= max_names_) {
        return Error::name_limit_reached;
    }

    if (!entry || entry->owners.empty()) {
        if (!entry) {
            entry = &create(name);
        }
        entry->owners.push_back({id, saved});
        add_membership(id, *entry);
        if (entry->activator != 0) {
            changes.push_back({NotificationType::name_change, entry->name, entry->name_id, entry->activator,
                               name_flag::activator, id, saved, true, false});
        } else {
            changes.push_back({NotificationType::name_add, entry->name, entry->name_id, 0, 0, id, saved});
        }
        return AcquireResult::acquired;
    }

    const NameOwner primary = entry->owners.front();
    if ((flags & name_flag::replace_existing) && (primary.flags & name_flag::allow_replacement)) {
        if (member) {
            entry->owners.erase(entry->owners.begin() + static_cast<std::ptrdiff_t>(position));
        } else {
            add_membership(id, *entry);
        }
        // The old primary is now second in line if it asked to queue; otherwise it loses the name.
        entry->owners.insert(entry->owners.begin(), NameOwner{id, saved});
        if (!(primary.flags & name_flag::queue)) {
            entry->owners.erase(entry->owners.begin() + 1);
            remove_membership(primary.id, *entry);
        }
        changes.push_back({NotificationType::name_change, entry->name, entry->name_id, primary.id,
                           primary.flags, id, saved});
        return AcquireResult::acquired;
    }

    if (flags & name_flag::queue) {
        // One that wanted to replace the owner, and may not, waits first in line (dbus-daemon's order).
        if (flags & name_flag::replace_existing) {
            if (member) {
                entry->owners.erase(entry->owners.begin() + static_cast<std::ptrdiff_t>(position));
            } else {
                add_membership(id, *entry);
            }
            entry->owners.insert(entry->owners.begin() + 1, NameOwner{id, saved});
        } else if (member) {
            entry->owners[position].flags = saved;
        } else {
            entry->owners.push_back({id, saved});
            add_membership(id, *entry);
        }
        return AcquireResult::queued;
    }

    // Not allowed to replace and not willing to wait: a waiter that asks again this way leaves the queue.
    if (member) {
        entry->owners.erase(entry->owners.begin() + static_cast<std::ptrdiff_t>(position));
        remove_membership(id, *entry);
    }
    return AcquireResult::owned_elsewhere;
}

ReleaseResult NameRegistry::release(ConnectionId id, std::string_view name,
                                    std::vector<NameChange>& changes) {
    auto found = entries_.find(name);
    if (found == entries_.end() || found->second->owners.empty()) {
        return ReleaseResult::unowned;
    }
    NameEntry& entry = *found->second;
    const std::size_t position = position_of(entry, id);
    if (position == entry.owners.size()) {
        return ReleaseResult::not_owner;
    }

    const NameOwner leaving = entry.owners[position];
    entry.owners.erase(entry.owners.begin() + static_cast<std::ptrdiff_t>(position));
    remove_membership(id, entry);
    if (position != 0) {
        return ReleaseResult::released;
    }

    if (!entry.owners.empty()) {
        const NameOwner& next = entry.owners.front();
        changes.push_back({NotificationType::name_change, entry.name, entry.name_id, id, leaving.flags,
                           next.id, next.flags});
    } else if (entry.activator != 0) {
        changes.push_back({NotificationType::name_change, entry.name, entry.name_id, id, leaving.flags,
                           entry.activator, name_flag::activator, false, true});
    } else {
        changes.push_back(
            {NotificationType::name_remove, entry.name, entry.name_id, id, leaving.flags, 0, 0});
        erase(entry);
    }
    return ReleaseResult::released;
}

Status NameRegistry::attach_activator(ConnectionId id, std::string_view name,
                                      std::vector<NameChange>& changes) {
    if (!is_valid_well_known_name(name)) {
        return Error::invalid_name;
    }
    auto found = entries_.find(name);
    NameEntry* entry = found == entries_.end() ? nullptr : found->second.get();
    if (entry && entry->activator != 0) {
        return Error::already_exists;
    }
    if (!entry) {
        entry = &create(name);
    }
    entry->activator = id;
    add_membership(id, *entry);
    // A name that already has a real owner gets its activator silently.
    if (entry->owners.empty()) {
        changes.push_back(
            {NotificationType::name_add, entry->name, entry->name_id, 0, 0, id, name_flag::activator});
    }
    return {};
}

void NameRegistry::release_all(ConnectionId id, std::vector<NameChange>& changes) {
    auto found = memberships_.find(id);
    if (found == memberships_.end()) {
        return;
    }
    // Copy the names: releasing edits the membership list and may free entries.
    std::vector<std::string> names;
    for (const NameEntry* entry : found->second) {
        names.push_back(entry->name);
    }
    // Newest first, as dbus-daemon releases a departing connection's names.
    std::reverse(names.begin(), names.end());
    for (const auto& name : names) {
        auto it = entries_.find(name);
        if (it == entries_.end()) {
            continue;
        }
        NameEntry& entry = *it->second;
        if (entry.activator == id) {
            entry.activator = 0;
            remove_membership(id, entry);
            if (entry.owners.empty()) {
                changes.push_back({NotificationType::name_remove, entry.name, entry.name_id, id,
                                   name_flag::activator, 0, 0});
                erase(entry);
            }
        } else {
            (void)release(id, name, changes);
        }
    }
}

}  // namespace busgate::core
