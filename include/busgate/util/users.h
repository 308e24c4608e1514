// The user and group database (passwd, group and the account's group list, through NSS), read with the
// reentrant calls only: the bus looks accounts up from several places (SASL, policy, at_console, the user
// switch), and the non-reentrant getpwnam family shares one static buffer that any of them may overwrite.
// Every buffer grows until the entry fits, so an account with a long GECOS field or a group with thousands
// of members is found like any other. An account or group that does not exist, or a database that cannot be
// read, gives nullopt.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace busgate::util {

struct User {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;  // the primary group
    std::string home;
    std::string shell;
};

struct Group {
    std::string name;
    gid_t gid = 0;
};

std::optional<User> user_by_name(std::string_view name);
std::optional<User> user_by_uid(uid_t uid);
std::optional<Group> group_by_name(std::string_view name);
std::optional<Group> group_by_gid(gid_t gid);

// Every group the account is in, its primary group first: the list initgroups would give it.
std::optional<std::vector<gid_t>> groups_of(const User& user);

}  // namespace busgate::util
