// The differential table (differential-cases.txt): configurations and probes whose allow/deny was decided by
// the real dbus-daemon 1.14.10 (source "dbus-daemon", recorded by tools/differential.py) or derived from
// dbus-daemon(1) and bus/policy.c (source "doc"). busgate must decide every one the same way.
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>

#include "busgate/policy/policy.h"

using namespace busgate::policy;
using busgate::marshal::MessageType;

namespace {

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> out;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, separator)) {
        if (!item.empty()) {
            out.push_back(item);
        }
    }
    return out;
}

// The groups dbus-daemon uses for a uid: the user database's (getgrouplist of the account).
std::vector<std::uint32_t> groups_of(std::uint32_t uid) {
    passwd* entry = getpwuid(uid);
    if (!entry) {
        return {};
    }
    int count = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    if (getgrouplist(entry->pw_name, entry->pw_gid, groups.data(), &count) < 0) {
        groups.resize(static_cast<std::size_t>(count));
        getgrouplist(entry->pw_name, entry->pw_gid, groups.data(), &count);
    }
    groups.resize(static_cast<std::size_t>(count));
    return {groups.begin(), groups.end()};
}

struct Case {
    int line = 0;
    std::vector<std::string> fields;  // kind config ... expectation source
    std::string text;
};

struct Table {
    std::map<std::string, std::string> configs;
    std::vector<Case> cases;
};

Table read_table() {
    Table table;
    std::ifstream file(BUSGATE_POLICY_SOURCE_DIR "/differential-cases.txt");
    std::string line;
    int number = 0;
    while (std::getline(file, line)) {
        ++number;
        if (line.empty() || line[0] == '#') {
            continue;
        }
        if (line.starts_with("config ")) {
            const std::string name = line.substr(7);
            std::string body;
            while (std::getline(file, line) && line != "end") {
                ++number;
                body += line + "\n";
            }
            ++number;
            table.configs[name] = body;
            continue;
        }
        table.cases.push_back(Case{number, split(line, ' '), line});
    }
    return table;
}

class Bus {
  public:
    explicit Bus(const std::string& body) {
        const std::string text = "<busconfig><listen>unix:path=/x</listen>\n" + body + "</busconfig>";
        config_ = parse_configuration(text, "differential.conf");
        policy_ = Policy(config_.policy);
    }
    const Policy& policy() const { return policy_; }
    ClientPolicy client(std::uint32_t uid) const {
        return policy_.for_connection({uid, groups_of(uid), false});
    }
    std::vector<std::string> names(const std::string& unique, const std::string& list) const {
        std::vector<std::string> out{unique};
        if (list != "-") {
            for (auto& name : split(list, ',')) {
                out.push_back(name);
            }
        }
        return out;
    }

  private:
    Configuration config_;
    Policy policy_;
};

std::uint32_t uid_of(const std::string& text) {
    return static_cast<std::uint32_t>(std::stoul(text));
}

std::optional<std::string_view> field(const std::string& text) {
    if (text == "-") {
        return std::nullopt;
    }
    return text;
}

// Evaluates one probe the way dbus-daemon would route it; returns allowed.
bool decide(const Bus& bus, const std::vector<std::string>& f) {
    const std::string& kind = f[0];
    const Policy& policy = bus.policy();
    if (kind == "own") {
        return bus.client(uid_of(f[2])).check_can_own(f[3]);
    }
    if (kind == "driver") {
        MessageInfo message;
        message.type = MessageType::method_call;
        message.destination = "org.freedesktop.DBus";
        message.interface = field(f[3]);
        message.member = f[4];
        message.path = f[5];
        const auto sender = bus.client(uid_of(f[2]));
        const auto sender_names = policy.prepare_names(bus.names(":1.100", "-"));
        Route route{&sender, &sender_names, nullptr, nullptr, false, false};
        if (policy.check_route(policy.prepare(message), route).verdict != Verdict::allowed) {
            return false;
        }
        // The driver's reply must then pass the caller's receive rules.
        MessageInfo answer;
        answer.type = MessageType::method_return;
        answer.has_reply_serial = true;
        answer.sender = "org.freedesktop.DBus";
        answer.destination = ":1.100";
        Route back{nullptr, nullptr, &sender, &sender_names, false, false};
        return policy.check_route(policy.prepare(answer), back).verdict == Verdict::allowed;
    }
    if (kind == "call" || kind == "signal") {
        // call CONFIG SUID SNAMES RUID RNAMES DEST IFACE MEMBER PATH
        MessageInfo message;
        message.type = kind == "call" ? MessageType::method_call : MessageType::signal;
        message.destination = field(f[6]);
        message.interface = field(f[7]);
        message.member = f[8];
        message.path = f[9];
        message.sender = ":1.100";
        const auto sender = bus.client(uid_of(f[2]));
        const auto recipient = bus.client(uid_of(f[4]));
        const auto sender_names = policy.prepare_names(bus.names(":1.100", f[3]));
        const auto recipient_names = policy.prepare_names(bus.names(":1.101", f[5]));
        Route route{&sender, &sender_names, &recipient, &recipient_names, false, false};
        return policy.check_route(policy.prepare(message), route).verdict == Verdict::allowed;
    }
    if (kind == "reply") {
        // reply CONFIG SUID RUID requested|unrequested TYPE
        MessageInfo message;
        message.type = f[5] == "error" ? MessageType::error : MessageType::method_return;
        if (message.type == MessageType::error) {
            message.error_name = "org.example.Error";
        }
        message.has_reply_serial = true;
        message.destination = ":1.101";
        message.sender = ":1.100";
        const auto sender = bus.client(uid_of(f[2]));
        const auto recipient = bus.client(uid_of(f[3]));
        const auto sender_names = policy.prepare_names(bus.names(":1.100", "-"));
        const auto recipient_names = policy.prepare_names(bus.names(":1.101", "-"));
        Route route{&sender, &sender_names, &recipient, &recipient_names, false, f[4] == "requested"};
        return policy.check_route(policy.prepare(message), route).verdict == Verdict::allowed;
    }
    if (kind == "eavesdrop") {
        // eavesdrop CONFIG SUID EUID DEST IFACE MEMBER: a call to DEST seen by an eavesdropper of uid EUID.
        MessageInfo message;
        message.type = MessageType::method_call;
        message.destination = f[4];
        message.interface = f[5];
        message.member = f[6];
        message.path = "/";
        message.sender = ":1.100";
        const auto sender = bus.client(uid_of(f[2]));
        const auto eavesdropper = bus.client(uid_of(f[3]));
        const auto sender_names = policy.prepare_names(bus.names(":1.100", "-"));
        const auto eavesdropper_names = policy.prepare_names(bus.names(":1.102", "-"));
        Route route{&sender, &sender_names, &eavesdropper, &eavesdropper_names, true, false};
        return policy.check_route(policy.prepare(message), route).verdict == Verdict::allowed;
    }
    ADD_FAILURE() << "unknown probe kind " << kind;
    return false;
}

}  // namespace

TEST(DifferentialTable, BusgateDecidesLikeDbusDaemon) {
    const Table table = read_table();
    ASSERT_GE(table.cases.size(), 200u) << "differential-cases.txt missing or short";
    std::map<std::string, std::unique_ptr<Bus>> buses;
    for (const auto& [name, body] : table.configs) {
        buses[name] = std::make_unique<Bus>(body);
    }

    std::size_t from_dbus_daemon = 0, allowed = 0, denied = 0;
    for (const Case& probe : table.cases) {
        SCOPED_TRACE("differential-cases.txt:" + std::to_string(probe.line) + ": " + probe.text);
        ASSERT_GE(probe.fields.size(), 4u);
        const std::string& expected = probe.fields[probe.fields.size() - 2];
        const std::string& source = probe.fields.back();
        ASSERT_TRUE(expected == "allow" || expected == "deny");
        ASSERT_TRUE(source == "dbus-daemon" || source == "doc");
        ASSERT_TRUE(buses.count(probe.fields[1])) << "unknown configuration";
        const bool decision = decide(*buses.at(probe.fields[1]), probe.fields);
        EXPECT_EQ(decision ? "allow" : "deny", expected);
        from_dbus_daemon += source == "dbus-daemon";
        (expected == "allow" ? allowed : denied)++;
    }
    // The table must exercise both outcomes, mostly from the real daemon.
    EXPECT_GE(from_dbus_daemon, 150u);
    EXPECT_GE(allowed, 50u);
    EXPECT_GE(denied, 50u);
}
