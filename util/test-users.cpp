// The user and group database against the machine's own accounts, and against a database of crafted
// entries too large for any fixed buffer (bind-mounted over /etc/passwd and /etc/group in a child with a
// mount namespace of its own, so nothing outside it sees them).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "busgate/util/users.h"

using namespace busgate::util;

namespace {

TEST(Users, RootResolvesBothWays) {
    const auto by_name = user_by_name("root");
    ASSERT_TRUE(by_name);
    EXPECT_EQ(by_name->uid, 0u);
    EXPECT_EQ(by_name->gid, 0u);
    EXPECT_FALSE(by_name->home.empty());
    const auto by_uid = user_by_uid(0);
    ASSERT_TRUE(by_uid);
    EXPECT_EQ(by_uid->name, "root");
    EXPECT_EQ(by_uid->home, by_name->home);
    EXPECT_EQ(by_uid->shell, by_name->shell);

    const auto group = group_by_name("root");
    ASSERT_TRUE(group);
    EXPECT_EQ(group->gid, 0u);
    const auto by_gid = group_by_gid(0);
    ASSERT_TRUE(by_gid);
    EXPECT_EQ(by_gid->name, "root");
}

TEST(Users, CurrentUserResolvesBothWays) {
    const auto self = user_by_uid(::getuid());
    ASSERT_TRUE(self) << "the test runs as an account the database knows";
    EXPECT_EQ(self->uid, ::getuid());
    const auto again = user_by_name(self->name);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->uid, self->uid);
    EXPECT_EQ(again->gid, self->gid);
    EXPECT_EQ(again->home, self->home);

    const auto groups = groups_of(*self);
    ASSERT_TRUE(groups);
    ASSERT_FALSE(groups->empty());
    EXPECT_EQ(groups->front(), self->gid);
    const auto primary = group_by_gid(self->gid);
    ASSERT_TRUE(primary);
    const auto primary_by_name = group_by_name(primary->name);
    ASSERT_TRUE(primary_by_name);
    EXPECT_EQ(primary_by_name->gid, self->gid);
}

TEST(Users, UnknownNamesAndIdsAreNotFound) {
    EXPECT_FALSE(user_by_name("busgate-no-such-account"));
    EXPECT_FALSE(user_by_name(""));
    EXPECT_FALSE(group_by_name("busgate-no-such-group"));
    // An id no account has: the largest ones below (uid_t)-1, which means "no id" to the kernel.
    uid_t unused = static_cast<uid_t>(-2);
    while (user_by_uid(unused) || group_by_gid(static_cast<gid_t>(unused))) {
        --unused;
    }
    EXPECT_FALSE(user_by_uid(unused));
    EXPECT_FALSE(group_by_gid(static_cast<gid_t>(unused)));
}

// Runs `check` in a child whose /etc/passwd and /etc/group are the given texts; returns what the child
// found wrong (empty when all was well), or skips when the machine allows no private mount namespace.
std::string with_database(const std::string& passwd_text, const std::string& group_text,
                          std::string (*check)()) {
    const std::filesystem::path directory =
        std::filesystem::temp_directory_path() / ("busgate-test-users-" + std::to_string(::getpid()));
    std::filesystem::create_directories(directory);
    std::ofstream(directory / "passwd") << passwd_text;
    std::ofstream(directory / "group") << group_text;
    int report[2];
    if (::pipe(report) != 0) {
        return "pipe failed";
    }
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(report[0]);
        std::string problem;
        // As root a mount namespace is enough; as anyone else a user namespace brings the right to mount.
        if (::unshare(CLONE_NEWNS) != 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
            problem = "skip";
        } else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
                   ::mount((directory / "passwd").c_str(), "/etc/passwd", nullptr, MS_BIND, nullptr) != 0 ||
                   ::mount((directory / "group").c_str(), "/etc/group", nullptr, MS_BIND, nullptr) != 0) {
            problem = "skip";
        } else {
            problem = check();
        }
        (void)!::write(report[1], problem.data(), problem.size());
        ::_exit(0);
    }
    ::close(report[1]);
    std::string problem;
    char chunk[4096];
    for (ssize_t got; (got = ::read(report[0], chunk, sizeof(chunk))) > 0;) {
        problem.append(chunk, static_cast<std::size_t>(got));
    }
    ::close(report[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    std::filesystem::remove_all(directory);
    if (!WIFEXITED(status)) {
        return "the child did not exit";
    }
    return problem;
}

constexpr int many_groups = 3000;
constexpr int crowd_size = 20000;

std::string check_large_entries() {
    std::string problems;
    const auto user = user_by_name("busgate-many");
    if (!user || user->uid != 4242 || user->gid != 4242 || user->home != "/home/many" ||
        user->shell != "/bin/sh") {
        return "busgate-many not found by name with its fields\n";
    }
    if (const auto by_uid = user_by_uid(4242); !by_uid || by_uid->name != "busgate-many") {
        problems += "uid 4242 not found\n";
    }
    const auto groups = groups_of(*user);
    if (!groups || groups->size() != many_groups + 1 || groups->front() != 4242) {
        problems += "group list of busgate-many: " + std::to_string(groups ? groups->size() : 0) +
                    " groups, not " + std::to_string(many_groups + 1) + "\n";
    } else if (std::find(groups->begin(), groups->end(), static_cast<gid_t>(50000 + many_groups - 1)) ==
               groups->end()) {
        problems += "the last group is missing from the list\n";
    }
    if (const auto crowd = group_by_name("crowd"); !crowd || crowd->gid != 4243) {
        problems += "the group with many members not found by name\n";
    }
    if (const auto crowd = group_by_gid(4243); !crowd || crowd->name != "crowd") {
        problems += "the group with many members not found by gid\n";
    }
    return problems;
}

TEST(Users, EntriesLargerThanAnyFixedBufferAndLongGroupLists) {
    // A GECOS field of 200 KB (glibc suggests 1 KB buffers), a group with 20000 members and 3000 groups.
    std::string passwd_text = "root:x:0:0:root:/root:/bin/sh\n";
    passwd_text += "busgate-many:x:4242:4242:" + std::string(200'000, 'g') + ":/home/many:/bin/sh\n";
    std::string group_text = "root:x:0:\nbusgate-many:x:4242:\ncrowd:x:4243:";
    for (int member = 0; member < crowd_size; ++member) {
        group_text += (member ? ",member" : "member") + std::to_string(member);
    }
    group_text += "\n";
    for (int index = 0; index < many_groups; ++index) {
        group_text += "g" + std::to_string(index) + ":x:" + std::to_string(50000 + index) + ":busgate-many\n";
    }
    const std::string problems = with_database(passwd_text, group_text, check_large_entries);
    if (problems == "skip") {
        GTEST_SKIP() << "no private mount namespace on this machine";
    }
    EXPECT_EQ(problems, "");
}

}  // namespace
