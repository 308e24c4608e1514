// busgate-check-config FILE...: loads each configuration as busgate (and dbus-daemon) would. Prints
// "FILE:LINE: problem" for the first error and exits 1, or a short summary and exits 0. Warnings (unknown
// users, broken files in an <includedir>) go to stderr and do not fail the check.
#include <cstddef>
#include <cstdio>
#include <string>

#include "busgate/policy/configuration.h"
#include "busgate/policy/policy.h"

using namespace busgate::policy;

namespace {

std::size_t count_rules(const PolicyRules& rules) {
    std::size_t count = rules.default_rules.size() + rules.mandatory_rules.size() +
                        rules.at_console_rules.size() + rules.not_at_console_rules.size();
    for (const auto& [uid, list] : rules.user_rules) {
        count += list.size();
    }
    for (const auto& [gid, list] : rules.group_rules) {
        count += list.size();
    }
    return count;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; ++i) {
        try {
            const Configuration config = load_configuration(argv[i]);
            for (const auto& warning : config.warnings) {
                std::fprintf(stderr, "%s:%d: warning: %s\n", warning.file.c_str(), warning.line,
                             warning.message.c_str());
            }
            const Policy policy(config.policy);
            std::printf(
                "%s: ok: type %s, %zu listen address(es), %zu file(s), %zu rule(s), %zu service dir(s)\n",
                argv[i], config.type ? config.type->c_str() : "(none)", config.listen.size(),
                config.files.size(), count_rules(config.policy), config.servicedirs.size());
        } catch (const ConfigError& error) {
            std::printf("%s\n", error.describe().c_str());
            return 1;
        }
    }
    return 0;
}
