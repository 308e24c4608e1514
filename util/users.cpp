#include "busgate/util/users.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>

namespace busgate::util {
namespace {

// Far above any real entry; a database that keeps answering ERANGE beyond this is broken, not large.
constexpr std::size_t largest_buffer = 64 * 1024 * 1024;

std::size_t first_buffer_size(int name) {
    const long suggested = ::sysconf(name);
    return suggested > 0 ? static_cast<std::size_t>(suggested) : 1024;
}

// Runs one *_r lookup, doubling the buffer while the entry does not fit. `lookup` returns the call's error
// number and sets `found` to null when there is no such entry.
template <typename Entry, typename Lookup>
std::optional<Entry> look_up(int size_name, Lookup lookup, std::vector<char>& buffer) {
    buffer.resize(first_buffer_size(size_name));
    for (;;) {
        Entry entry{};
        Entry* found = nullptr;
        const int error = lookup(&entry, buffer.data(), buffer.size(), &found);
        if (error == 0) {
            return found != nullptr ? std::optional<Entry>(entry) : std::nullopt;
        }
        if (error == EINTR) {
            continue;
        }
        if (error != ERANGE || buffer.size() >= largest_buffer) {
            return std::nullopt;
        }
        buffer.resize(buffer.size() * 2);
    }
}

std::optional<User> user_of(const std::optional<passwd>& entry) {
    if (!entry) {
        return std::nullopt;
    }
    return User{.name = entry->pw_name != nullptr ? entry->pw_name : "",
                .uid = entry->pw_uid,
                .gid = entry->pw_gid,
                .home = entry->pw_dir != nullptr ? entry->pw_dir : "",
                .shell = entry->pw_shell != nullptr ? entry->pw_shell : ""};
}

std::optional<Group> group_of(const std::optional<group>& entry) {
    if (!entry) {
        return std::nullopt;
    }
    return Group{.name = entry->gr_name != nullptr ? entry->gr_name : "", .gid = entry->gr_gid};
}

}  // namespace

std::optional<User> user_by_name(std::string_view name) {
    const std::string key(name);
    std::vector<char> buffer;
    return user_of(look_up<passwd>(
        _SC_GETPW_R_SIZE_MAX,
        [&](passwd* entry, char* data, std::size_t size, passwd** found) {
            return ::getpwnam_r(key.c_str(), entry, data, size, found);
        },
        buffer));
}

std::optional<User> user_by_uid(uid_t uid) {
    std::vector<char> buffer;
    return user_of(look_up<passwd>(
        _SC_GETPW_R_SIZE_MAX,
        [&](passwd* entry, char* data, std::size_t size, passwd** found) {
            return ::getpwuid_r(uid, entry, data, size, found);
        },
        buffer));
}

std::optional<Group> group_by_name(std::string_view name) {
    const std::string key(name);
    std::vector<char> buffer;
    return group_of(look_up<group>(
        _SC_GETGR_R_SIZE_MAX,
        [&](group* entry, char* data, std::size_t size, group** found) {
            return ::getgrnam_r(key.c_str(), entry, data, size, found);
        },
        buffer));
}

std::optional<Group> group_by_gid(gid_t gid) {
    std::vector<char> buffer;
    return group_of(look_up<group>(
        _SC_GETGR_R_SIZE_MAX,
        [&](group* entry, char* data, std::size_t size, group** found) {
            return ::getgrgid_r(gid, entry, data, size, found);
        },
        buffer));
}

std::optional<std::vector<gid_t>> groups_of(const User& user) {
    std::vector<gid_t> groups(64);
    for (;;) {
        int count = static_cast<int>(groups.size());
        if (::getgrouplist(user.name.c_str(), user.gid, groups.data(), &count) >= 0) {
            groups.resize(static_cast<std::size_t>(count));
            return groups;
        }
        // Too small: glibc says how many there are; grow at least twofold in case the list grows meanwhile.
        const std::size_t wanted = std::max(static_cast<std::size_t>(std::max(count, 0)), groups.size() * 2);
        if (wanted > largest_buffer / sizeof(gid_t)) {
            return std::nullopt;
        }
        groups.resize(wanted);
    }
}

}  // namespace busgate::util
