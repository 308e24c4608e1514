// The over-approximation, as a property: whenever the exact XML check (ClientPolicy) lets a connection own a
// name or send a method call to a connection, the core, holding the compiled entries as the daemon's policy
// holder uploads them, lets it too. Checked on random configurations (fixed seed), on Debian's system.conf
// and session.conf, and on the dbus test suite's valid configurations.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>

#include "busgate/core/bus.h"
#include "busgate/policy/coarse.h"
#include "busgate/policy/policy.h"

using namespace busgate::policy;
namespace core = busgate::core;
namespace fs = std::filesystem;

namespace {

struct Client {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::vector<std::uint32_t> groups;
    bool at_console = false;
};

struct Pools {
    std::vector<std::string> names;  // candidate well-known names to own and to call
    std::vector<std::optional<std::string>> interfaces, members;
    std::vector<std::string> paths;
    std::vector<Client> clients;
};

struct Tally {
    std::size_t own_allowed = 0, own_checked = 0;
    std::size_t talk_allowed = 0, talk_checked = 0;
    std::size_t core_only =
        0;  // allowed by the core, refused by the exact check: the over-approximation's slack
};

std::string unique_name_of(core::ConnectionId id) {
    return ":1." + std::to_string(id - 1);
}

core::BusConfig daemon_like_config() {
    core::BusConfig config;
    config.owner_uid = 0;
    config.enforce_bus_policy = true;
    config.signals_need_talk = false;
    config.limits.max_connections_per_user = 1 << 20;
    return config;
}

core::ConnectionId hello(core::Bus& bus, const Client& client) {
    core::HelloParams params;
    params.credentials.uid = client.uid;
    params.credentials.gid = client.gid;
    params.credentials.groups = client.groups;
    auto id = bus.hello(std::move(params));
    EXPECT_TRUE(id.ok());
    return id.ok() ? *id : 0;
}

// The credentials the daemon gives ClientPolicy: the core's groups and the gid (bus_daemon assign_policy).
ClientPolicy exact_policy_of(const Policy& policy, const Client& client) {
    std::vector<std::uint32_t> groups = client.groups;
    groups.push_back(client.gid);
    return policy.for_connection(
        {.uid = client.uid, .groups = std::move(groups), .at_console = client.at_console});
}

void check_soundness(const PolicyRules& rules, const Pools& pools, std::mt19937& random, Tally& tally,
                     const std::string& label) {
    const Policy policy(rules);
    const CoarsePolicy coarse = compile_coarse(rules);

    core::Bus bus(daemon_like_config());
    core::HelloParams holder;
    holder.flags = core::hello_flag::policy_holder;
    holder.name = "org.busgate.Policy";
    holder.policy = coarse.entries;
    ASSERT_TRUE(bus.hello(std::move(holder)).ok()) << label << ": the core refused the compiled entries";

    // Receivers (root, so that they may own anything): one primary owner and one queued owner per name, and
    // one without a name. A second bus has an activator for every name and nothing else.
    struct Receiver {
        core::ConnectionId id = 0;
        std::string name;  // the well-known name, empty for the nameless one
        bool by_name = false;
        PeerNames names;
    };
    std::vector<Receiver> receivers;
    const Client root{0, 0, {}, false};
    std::vector<std::string> valid_names;
    for (const std::string& name : pools.names) {
        if (core::is_valid_well_known_name(name)) {
            valid_names.push_back(name);
        }
    }
    for (const std::string& name : valid_names) {
        for (bool queued : {false, true}) {
            Receiver receiver;
            receiver.id = hello(bus, root);
            receiver.name = name;
            receiver.by_name = !queued;
            ASSERT_TRUE(bus.acquire_name(receiver.id, name, core::name_flag::queue).ok());
            const std::vector<std::string> names{unique_name_of(receiver.id), name};
            receiver.names = policy.prepare_names(std::span<const std::string>(names));
            receivers.push_back(std::move(receiver));
        }
    }
    {
        Receiver nameless;
        nameless.id = hello(bus, root);
        const std::vector<std::string> names{unique_name_of(nameless.id)};
        nameless.names = policy.prepare_names(std::span<const std::string>(names));
        receivers.push_back(std::move(nameless));
    }
    core::Bus activation(daemon_like_config());
    {
        core::HelloParams second_holder;
        second_holder.flags = core::hello_flag::policy_holder;
        second_holder.name = "org.busgate.Policy";
        second_holder.policy = coarse.entries;
        ASSERT_TRUE(activation.hello(std::move(second_holder)).ok());
        for (const std::string& name : valid_names) {
            core::HelloParams activator;
            activator.flags = core::hello_flag::activator;
            activator.name = name;
            ASSERT_TRUE(activation.hello(std::move(activator)).ok());
        }
    }

    // By reference: MessageInfo holds views, which must point into the pools, not into a copy.
    auto pick = [&](const auto& pool) -> const auto& {
        return pool[std::uniform_int_distribution<std::size_t>(0, pool.size() - 1)(random)];
    };
    auto message_to = [&](std::string destination) {
        MessageInfo info;
        info.type = busgate::marshal::MessageType::method_call;
        info.path = pick(pools.paths);
        info.interface = pick(pools.interfaces);
        info.member = pick(pools.members);
        info.unix_fds = std::uniform_int_distribution<std::uint32_t>(0, 2)(random);
        // info.destination is set by the caller: a view into `destination` would dangle once the pair moves
        // (short strings live inside the string object).
        return std::pair{info, std::move(destination)};
    };
    auto call = [](core::Bus& on, core::ConnectionId from, core::ConnectionId to, std::string name) {
        core::OutgoingMessage message;
        message.payload = core::MessagePayload::make(std::vector<std::uint8_t>(8), {});
        message.destination_id = name.empty() ? to : 0;
        message.destination_name = std::move(name);
        message.cookie = 1;
        return on.send(from, std::move(message));
    };
    constexpr int messages_per_pair = 6;

    for (const Client& client : pools.clients) {
        const ClientPolicy exact = exact_policy_of(policy, client);
        const core::ConnectionId id = hello(bus, client);
        const core::ConnectionId activation_client = hello(activation, client);
        const std::string who = label + " uid " + std::to_string(client.uid) + " gid " +
                                std::to_string(client.gid) + (client.at_console ? " at console" : "");

        for (const std::string& name : valid_names) {
            ++tally.own_checked;
            const bool allowed = exact.check_can_own(name);
            tally.own_allowed += allowed;
            auto acquired = bus.acquire_name(id, name, 0);
            const bool core_allowed = acquired.ok() || acquired.error() != core::Error::permission_denied;
            if (allowed) {
                EXPECT_TRUE(core_allowed)
                    << who << ": the XML policy lets it own " << name << ", the core refuses";
            }
            tally.core_only += !allowed && core_allowed;
            if (acquired.ok()) {
                (void)bus.release_name(id, name);
            }
        }

        for (Receiver& receiver : receivers) {
            for (int i = 0; i < messages_per_pair; ++i) {
                auto [info, destination] =
                    message_to(receiver.by_name ? receiver.name : unique_name_of(receiver.id));
                info.destination = destination;
                const PreparedMessage prepared = policy.prepare(info);
                ++tally.talk_checked;
                const bool allowed = exact.check_can_send(prepared, &receiver.names, false).allowed;
                tally.talk_allowed += allowed;
                auto sent = call(bus, id, receiver.id, receiver.by_name ? receiver.name : std::string());
                const bool core_allowed = sent.ok() || sent.error() != core::Error::permission_denied;
                if (allowed) {
                    EXPECT_TRUE(core_allowed)
                        << who << ": the XML policy lets it call " << destination << " ("
                        << (receiver.name.empty() ? "no name" : receiver.name)
                        << (receiver.by_name ? "" : ", by unique name") << "), the core refuses";
                }
                tally.core_only += !allowed && core_allowed;
                while (bus.receive(receiver.id)) {
                }
            }
        }

        for (const std::string& name : valid_names) {
            for (int i = 0; i < messages_per_pair; ++i) {
                auto [info, destination] = message_to(name);
                info.destination = destination;
                ++tally.talk_checked;
                // No receiver yet: dbus-daemon checks the send rules against the destination name.
                const bool allowed = exact.check_can_send(policy.prepare(info), nullptr, false).allowed;
                tally.talk_allowed += allowed;
                auto sent = call(activation, activation_client, 0, name);
                const bool core_allowed = sent.ok() || sent.error() != core::Error::permission_denied;
                if (allowed) {
                    EXPECT_TRUE(core_allowed)
                        << who << ": the XML policy lets it activate " << name << ", the core refuses";
                }
                tally.core_only += !allowed && core_allowed;
            }
        }
        (void)bus.bye(id);
        (void)activation.bye(activation_client);
        if (::testing::Test::HasFailure()) {
            return;  // one configuration's failures are enough to read
        }
    }
}

// ------------------------------------------------------------------------------------ random configurations

const std::vector<std::string> rule_names = {"a.b", "a.b.c", "a.b.c.d", "a.bc", "x.y",  "x.y.z",
                                             "a",   "x",     "a.1b",    ":1.3", ":1.0", "q.r"};
const std::vector<std::string> prefix_names = {"a", "a.b", "a.b.c", "x", "a.bc", "q", "x.y.z", "a."};

std::string random_rule(std::mt19937& random) {
    auto chance = [&](int percent) { return std::uniform_int_distribution<int>(0, 99)(random) < percent; };
    auto pick = [&](const auto& pool) {
        return pool[std::uniform_int_distribution<std::size_t>(0, pool.size() - 1)(random)];
    };
    std::string rule = chance(65) ? "<allow" : "<deny";
    const int kind = std::uniform_int_distribution<int>(0, 9)(random);
    if (kind < 3) {
        if (chance(15)) {
            rule += " own=\"*\"";
        } else if (chance(35)) {
            rule += " own_prefix=\"" + pick(prefix_names) + "\"";
        } else {
            rule += " own=\"" + pick(rule_names) + "\"";
        }
    } else if (kind < 9) {
        std::string attributes;
        bool has_destination = false;
        const int destination = std::uniform_int_distribution<int>(0, 5)(random);
        if (destination <= 1) {
            attributes += " send_destination=\"" + pick(rule_names) + "\"";
            has_destination = true;
        } else if (destination == 2) {
            attributes += " send_destination_prefix=\"" + pick(prefix_names) + "\"";
            has_destination = true;
        } else if (destination == 3) {
            attributes += " send_destination=\"*\"";
        }
        if (chance(40)) {
            attributes +=
                " send_type=\"" +
                pick(std::vector<std::string>{"method_call", "signal", "method_return", "error", "*"}) + "\"";
        }
        const bool interface = chance(40);
        const bool path = chance(20);
        if (interface) {
            attributes += " send_interface=\"" + pick(std::vector<std::string>{"i.a", "i.b", "*"}) + "\"";
        }
        if (path) {
            attributes += " send_path=\"" + pick(std::vector<std::string>{"/a", "/b"}) + "\"";
        }
        if ((interface || path) && chance(40)) {
            attributes += " send_member=\"" + pick(std::vector<std::string>{"m", "n"}) + "\"";
        }
        if (chance(15)) {
            attributes +=
                has_destination || chance(50) ? " send_broadcast=\"false\"" : " send_broadcast=\"true\"";
        }
        if (chance(10)) {
            attributes += " min_fds=\"1\"";
        }
        if (chance(10)) {
            attributes += " max_fds=\"0\"";
        }
        if (chance(10)) {
            attributes += " send_requested_reply=\"false\"";
        }
        if (chance(10)) {
            attributes += " eavesdrop=\"true\"";
        }
        if (attributes.empty()) {
            attributes = " send_type=\"method_call\"";
        }
        rule += attributes;
    } else {
        rule += " receive_sender=\"" + pick(rule_names) + "\"";
    }
    return rule + "/>";
}

std::string random_configuration(std::mt19937& random) {
    const std::vector<std::string> contexts = {"context=\"default\"", "context=\"mandatory\"", "user=\"u0\"",
                                               "user=\"u1\"",         "group=\"g0\"",          "group=\"g1\"",
                                               "at_console=\"true\"", "at_console=\"false\""};
    std::string text = "<busconfig><listen>unix:path=/x</listen>";
    const int policies = std::uniform_int_distribution<int>(1, 4)(random);
    for (int p = 0; p < policies; ++p) {
        text += "<policy " +
                contexts[std::uniform_int_distribution<std::size_t>(0, contexts.size() - 1)(random)] + ">";
        const int rules = std::uniform_int_distribution<int>(1, 6)(random);
        for (int r = 0; r < rules; ++r) {
            text += random_rule(random);
        }
        text += "</policy>";
    }
    return text + "</busconfig>";
}

LoadOptions fake_users() {
    LoadOptions options;
    options.users = UserDatabase{[](std::string_view name) -> std::optional<std::uint32_t> {
                                     if (name.size() == 2 && name[0] == 'u') {
                                         return 1000 + std::uint32_t(name[1] - '0');
                                     }
                                     return std::nullopt;
                                 },
                                 [](std::string_view name) -> std::optional<std::uint32_t> {
                                     if (name.size() == 2 && name[0] == 'g') {
                                         return 2000 + std::uint32_t(name[1] - '0');
                                     }
                                     return std::nullopt;
                                 }};
    return options;
}

// ------------------------------------------------------------------------------------ real configurations

void add_rule_names(const std::vector<Rule>& rules, std::set<std::string>& names,
                    std::set<std::string>& interfaces, std::set<std::string>& members,
                    std::set<std::string>& paths) {
    for (const Rule& rule : rules) {
        if (rule.name && rule.name->front() != ':') {
            names.insert(*rule.name);
            names.insert(*rule.name + ".Sub");
            names.insert(*rule.name + ".Sub.Deeper");
            if (auto dot = rule.name->rfind('.'); dot != std::string::npos) {
                names.insert(rule.name->substr(0, dot));
            }
        }
        if (rule.interface) {
            interfaces.insert(*rule.interface);
        }
        if (rule.member) {
            members.insert(*rule.member);
        }
        if (rule.path) {
            paths.insert(*rule.path);
        }
    }
}

Pools pools_of(const PolicyRules& rules) {
    std::set<std::string> names{"com.example.Unmentioned", "org.freedesktop.Unmentioned"};
    std::set<std::string> interfaces, members, paths{"/"};
    auto add = [&](const std::vector<Rule>& list) {
        add_rule_names(list, names, interfaces, members, paths);
    };
    add(rules.default_rules);
    add(rules.mandatory_rules);
    add(rules.at_console_rules);
    add(rules.not_at_console_rules);
    for (const auto& [uid, list] : rules.user_rules) {
        add(list);
    }
    for (const auto& [gid, list] : rules.group_rules) {
        add(list);
    }
    Pools pools;
    pools.names.assign(names.begin(), names.end());
    pools.interfaces.push_back(std::nullopt);
    pools.interfaces.insert(pools.interfaces.end(), interfaces.begin(), interfaces.end());
    pools.members.push_back(std::nullopt);
    pools.members.insert(pools.members.end(), members.begin(), members.end());
    pools.paths.assign(paths.begin(), paths.end());
    constexpr std::uint32_t stranger = 4242;
    pools.clients.push_back({stranger, stranger, {}, false});
    pools.clients.push_back({stranger + 1, stranger + 1, {}, true});
    for (const auto& [uid, list] : rules.user_rules) {
        if (uid != 0) {  // root is privileged in the core: nothing to prove
            pools.clients.push_back({uid, stranger, {}, false});
        }
    }
    for (const auto& [gid, list] : rules.group_rules) {
        pools.clients.push_back({stranger + 2, gid, {}, false});
        pools.clients.push_back({stranger + 3, stranger, {gid}, false});
    }
    return pools;
}

void check_file(const fs::path& path, Tally& tally) {
    SCOPED_TRACE(path.string());
    Configuration configuration;
    try {
        LoadOptions options;
        options.require_listen = false;
        configuration = load_configuration(path.string(), options);
    } catch (const ConfigError& error) {
        FAIL() << error.describe();
    }
    std::mt19937 random(18);
    check_soundness(configuration.policy, pools_of(configuration.policy), random, tally,
                    path.filename().string());
}

void report(const char* what, const Tally& tally) {
    std::printf("%s: own %zu of %zu allowed, calls %zu of %zu allowed, %zu allowed by the core alone\n", what,
                tally.own_allowed, tally.own_checked, tally.talk_allowed, tally.talk_checked,
                tally.core_only);
}

}  // namespace

TEST(CoarseOverApproximation, RandomConfigurations) {
    std::mt19937 random(20261201);
    Pools pools;
    pools.names = {"a.b", "a.b.c", "a.b.c.d", "a.bc", "a.bc.d", "x.y", "x.y.z", "x.yz", "q.r", "a.b.e"};
    pools.interfaces = {std::nullopt, "i.a", "i.b", "i.c"};
    pools.members = {std::nullopt, "m", "n"};
    pools.paths = {"/a", "/b"};
    Tally tally;
    std::size_t parsed = 0;
    for (int round = 0; round < 2000; ++round) {
        const std::string text = random_configuration(random);
        Configuration configuration;
        try {
            configuration = parse_configuration(text, "/random.conf", fake_users());
        } catch (const ConfigError&) {
            continue;  // a combination dbus-daemon rejects too
        }
        ++parsed;
        pools.clients.clear();
        for (int c = 0; c < 6; ++c) {
            Client client;
            client.uid =
                1000 + std::uniform_int_distribution<std::uint32_t>(0, 4)(random);  // 1004: no policy
            client.gid = 2000 + std::uniform_int_distribution<std::uint32_t>(0, 4)(random);
            for (std::uint32_t gid = 2000; gid < 2004; ++gid) {
                if (std::uniform_int_distribution<int>(0, 3)(random) == 0) {
                    client.groups.push_back(gid);
                }
            }
            client.at_console = std::uniform_int_distribution<int>(0, 1)(random);
            pools.clients.push_back(client);
        }
        check_soundness(configuration.policy, pools, random, tally, "random configuration " + text);
        if (HasFailure()) {
            break;
        }
    }
    report("random", tally);
    EXPECT_GT(parsed, 1500u);
    // The property is only worth something if the exact check allows a fair share of what is asked.
    EXPECT_GT(tally.own_allowed, tally.own_checked / 10);
    EXPECT_GT(tally.talk_allowed, tally.talk_checked / 10);
    EXPECT_GT(tally.core_only, 0u);  // and the core is coarser, as it must be
}

TEST(CoarseOverApproximation, DebianSystemAndSessionBus) {
    for (const char* path : {"/usr/share/dbus-1/system.conf", "/usr/share/dbus-1/session.conf"}) {
        Tally tally;
        check_file(path, tally);
        report(path, tally);
        EXPECT_GT(tally.own_checked, 0u);
    }
}

TEST(CoarseOverApproximation, DbusTestSuiteConfigurations) {
    Tally tally;
    std::size_t files = 0;
    for (const auto& entry :
         fs::directory_iterator(fs::path(BUSGATE_DBUS_TEST_DATA) / "valid-config-files")) {
        if (entry.path().extension() != ".conf") {
            continue;
        }
        check_file(entry.path(), tally);
        ++files;
    }
    report("dbus test data", tally);
    EXPECT_GT(files, 10u);
    EXPECT_GT(tally.own_allowed, 0u);
    EXPECT_GT(tally.talk_allowed, 0u);
}
