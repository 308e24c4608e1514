// Policy compilation and evaluation. The matching functions follow bus/policy.c of dbus-daemon 1.14 test for
// test, in the same order, with interned ids standing in for strcmp().
#include "busgate/policy/policy.h"

#include <algorithm>
#include <string>
#include <unordered_map>

namespace busgate::policy {

namespace {

constexpr std::uint32_t absent = 0;              // the message has no such field
constexpr std::uint32_t unknown = UINT32_MAX;    // present, but no rule names it
constexpr std::uint32_t no_prefix = UINT32_MAX;  // a rule without a prefix name

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using StringTable = std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>>;

struct CompiledRule {
    RuleKind kind = RuleKind::send;
    bool allow = false;
    std::uint8_t message_type = 0;  // 0: any
    Tristate broadcast = Tristate::any;
    bool eavesdrop = false;
    bool requested_reply = false;
    bool log = false;
    bool has_name = false;
    std::uint32_t path = 0, interface = 0, member = 0, error = 0;  // 0: any
    std::uint32_t name = 0;                                        // exact name id
    std::uint32_t prefix = no_prefix;                              // prefix index
    std::uint32_t min_fds = 0, max_fds = Rule::max_message_unix_fds;
    const Rule* source = nullptr;
};

bool test_bit(const std::vector<std::uint64_t>& bits, std::uint32_t index) {
    const std::size_t word = index / 64;
    return word < bits.size() && (bits[word] >> (index % 64)) & 1;
}

void set_bit(std::vector<std::uint64_t>& bits, std::uint32_t index) {
    const std::size_t word = index / 64;
    if (bits.size() <= word) {
        bits.resize(word + 1);
    }
    bits[word] |= std::uint64_t{1} << (index % 64);
}

}  // namespace

struct ClientPolicy::Compiled {
    PolicyRules source;
    StringTable strings;   // every string a rule compares for equality -> id >= 1
    StringTable prefixes;  // every send_destination_prefix / own_prefix -> index
    std::vector<CompiledRule> rules;
    std::vector<std::uint32_t> default_rules, mandatory_rules, at_console_rules, not_at_console_rules;
    std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> user_rules, group_rules;

    std::uint32_t intern(const std::optional<std::string>& text) {
        if (!text) {
            return 0;
        }
        auto [entry, added] = strings.try_emplace(*text, static_cast<std::uint32_t>(strings.size() + 1));
        return entry->second;
    }
    std::uint32_t intern_prefix(const std::string& text) {
        auto [entry, added] = prefixes.try_emplace(text, static_cast<std::uint32_t>(prefixes.size()));
        return entry->second;
    }
    std::uint32_t lookup(std::optional<std::string_view> text) const {
        if (!text) {
            return absent;
        }
        if (strings.empty()) {
            return unknown;  // allow-all configurations (session.conf) name nothing: no hash per field
        }
        auto found = strings.find(*text);
        return found == strings.end() ? unknown : found->second;
    }
    // Bits of every prefix p with name == p or name starting with p + '.'
    // (_dbus_string_starts_with_words_c_str).
    void add_prefixes(std::string_view name, std::vector<std::uint64_t>& bits) const {
        if (prefixes.empty()) {
            return;
        }
        for (std::size_t end = 0; end <= name.size(); ++end) {
            if (end != name.size() && name[end] != '.') {
                continue;
            }
            if (auto found = prefixes.find(name.substr(0, end)); found != prefixes.end()) {
                set_bit(bits, found->second);
            }
        }
    }

    std::vector<std::uint32_t> compile(const std::vector<Rule>& list) {
        std::vector<std::uint32_t> indices;
        for (const Rule& rule : list) {
            CompiledRule compiled;
            compiled.kind = rule.kind;
            compiled.allow = rule.allow;
            compiled.message_type = static_cast<std::uint8_t>(rule.message_type);
            compiled.broadcast = rule.broadcast;
            compiled.eavesdrop = rule.eavesdrop;
            compiled.requested_reply = rule.requested_reply;
            compiled.log = rule.log;
            compiled.path = intern(rule.path);
            compiled.interface = intern(rule.interface);
            compiled.member = intern(rule.member);
            compiled.error = intern(rule.error);
            compiled.has_name = rule.name.has_value();
            if (rule.name && rule.name_is_prefix) {
                compiled.prefix = intern_prefix(*rule.name);
            } else {
                compiled.name = intern(rule.name);
            }
            compiled.min_fds = rule.min_fds;
            compiled.max_fds = rule.max_fds;
            compiled.source = &rule;
            indices.push_back(static_cast<std::uint32_t>(rules.size()));
            rules.push_back(compiled);
        }
        return indices;
    }
};

// ------------------------------------------------------------------------------------------ Policy

Policy::Policy() : Policy(PolicyRules{}) {}

Policy::Policy(const PolicyRules& rules) {
    auto compiled = std::make_shared<ClientPolicy::Compiled>();
    compiled->source = rules;
    const PolicyRules& source = compiled->source;  // rules point into this copy
    compiled->default_rules = compiled->compile(source.default_rules);
    for (const auto& [gid, list] : source.group_rules) {
        compiled->group_rules[gid] = compiled->compile(list);
    }
    for (const auto& [uid, list] : source.user_rules) {
        compiled->user_rules[uid] = compiled->compile(list);
    }
    compiled->at_console_rules = compiled->compile(source.at_console_rules);
    compiled->not_at_console_rules = compiled->compile(source.not_at_console_rules);
    compiled->mandatory_rules = compiled->compile(source.mandatory_rules);
    compiled_ = std::move(compiled);
}

std::size_t Policy::interned_strings() const {
    return compiled_->strings.size() + compiled_->prefixes.size();
}

// bus_policy_create_client_policy(): default, each group of the connection, its uid, console, mandatory.
ClientPolicy Policy::for_connection(const ConnectionCredentials& credentials) const {
    ClientPolicy client;
    client.compiled_ = compiled_;
    const auto& compiled = *compiled_;
    auto add = [&](const std::vector<std::uint32_t>& list) {
        for (std::uint32_t index : list) {
            switch (compiled.rules[index].kind) {
                case RuleKind::send:
                    client.send_.push_back(index);
                    break;
                case RuleKind::receive:
                    client.receive_.push_back(index);
                    break;
                case RuleKind::own:
                    client.own_.push_back(index);
                    break;
                case RuleKind::user:
                case RuleKind::group:
                    break;  // connection-time rules, not per-client
            }
        }
    };
    add(compiled.default_rules);
    if (!compiled.group_rules.empty()) {
        for (std::uint32_t gid : credentials.groups) {
            if (auto found = compiled.group_rules.find(gid); found != compiled.group_rules.end()) {
                add(found->second);
            }
        }
    }
    if (auto found = compiled.user_rules.find(credentials.uid); found != compiled.user_rules.end()) {
        add(found->second);
    }
    add(credentials.at_console ? compiled.at_console_rules : compiled.not_at_console_rules);
    add(compiled.mandatory_rules);

    // bus_client_policy_optimize(): a rule naming no type, path, interface, member, error or name counts as
    // a catch-all and drops every earlier rule of its kind, even when send_broadcast, min_fds/max_fds,
    // eavesdrop or requested_reply narrow it. dbus-daemon 1.14 really does this (differential table,
    // configuration "optimize"), so busgate must too.
    auto names_nothing = [](const CompiledRule& rule) {
        return !rule.message_type && !rule.path && !rule.interface && !rule.member && !rule.error &&
               !rule.has_name;
    };
    auto drop_before_last_catch_all = [&](std::vector<std::uint32_t>& list) {
        for (std::size_t i = list.size(); i-- > 0;) {
            if (names_nothing(compiled.rules[list[i]])) {
                list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(i));
                return;
            }
        }
    };
    drop_before_last_catch_all(client.send_);
    drop_before_last_catch_all(client.receive_);
    drop_before_last_catch_all(client.own_);
    // What every test in check_can_send / check_can_receive passes for a message without REPLY_SERIAL, but
    // for eavesdropping, which check_can_receive's fast path still decides.
    auto bare = [&](const std::vector<std::uint32_t>& list, bool send) {
        if (list.size() != 1) {
            return false;
        }
        const CompiledRule& rule = compiled.rules[list.front()];
        return names_nothing(rule) && rule.min_fds == 0 && rule.max_fds >= Rule::max_message_unix_fds &&
               (!send || rule.broadcast == Tristate::any);
    };
    client.send_is_bare_ = bare(client.send_, true);
    client.receive_is_bare_ = bare(client.receive_, false);
    return client;
}

bool Policy::allows_connection(std::uint32_t uid, std::span<const std::uint32_t> groups,
                               bool uid_owns_bus) const {
    bool allowed = uid_owns_bus;
    auto apply = [&](const std::vector<Rule>& rules) {
        for (const Rule& rule : rules) {
            if (rule.kind == RuleKind::user) {
                if (rule.id && *rule.id != uid) {
                    continue;
                }
            } else if (rule.kind == RuleKind::group) {
                if (rule.id && std::find(groups.begin(), groups.end(), *rule.id) == groups.end()) {
                    continue;
                }
            } else {
                continue;
            }
            allowed = rule.allow;
        }
    };
    apply(compiled_->source.default_rules);
    apply(compiled_->source.mandatory_rules);
    return allowed;
}

PreparedMessage Policy::prepare(const MessageInfo& message) const {
    const auto& compiled = *compiled_;
    PreparedMessage prepared;
    prepared.type_ = static_cast<std::uint8_t>(message.type);
    prepared.has_reply_serial_ = message.has_reply_serial;
    prepared.has_destination_ = message.destination.has_value();
    prepared.unix_fds_ = message.unix_fds;
    prepared.path_ = compiled.lookup(message.path);
    prepared.interface_ = compiled.lookup(message.interface);
    prepared.member_ = compiled.lookup(message.member);
    prepared.error_ = compiled.lookup(message.error_name);
    prepared.destination_ = compiled.lookup(message.destination);
    prepared.sender_ = compiled.lookup(message.sender);
    if (message.destination) {
        compiled.add_prefixes(*message.destination, prepared.destination_prefixes_);
    }
    return prepared;
}

PeerNames Policy::prepare_names(std::span<const std::string_view> names) const {
    const auto& compiled = *compiled_;
    PeerNames prepared;
    for (std::string_view name : names) {
        if (auto id = compiled.lookup(name); id != unknown) {
            prepared.names_.push_back(id);
        }
        compiled.add_prefixes(name, prepared.prefixes_);
    }
    return prepared;
}

PeerNames Policy::prepare_names(std::span<const std::string> names) const {
    std::vector<std::string_view> views(names.begin(), names.end());
    return prepare_names(std::span<const std::string_view>(views));
}

// bus_context_check_security_policy(), from the point where both ends are known.
RouteDecision Policy::check_route(const PreparedMessage& message, const Route& route) const {
    RouteDecision result;
    const bool from_driver = route.sender == nullptr;
    if (!from_driver) {
        // A reply is "requested" only if it goes to its addressed recipient (not the driver, not an
        // eavesdropper) and the reply tracker has the call pending.
        if (message.has_reply_serial_ && route.recipient_names && !route.eavesdropping) {
            result.requested_reply = route.reply_expected;
        }
    } else if (!route.eavesdropping && message.has_reply_serial_) {
        result.requested_reply = true;  // the driver sends no unrequested replies
    }

    if (route.sender) {
        result.decision =
            route.sender->check_can_send(message, route.recipient_names, result.requested_reply);
        if (!result.decision.allowed) {
            result.verdict = Verdict::send_denied;
            return result;
        }
        result.log = result.decision.log;
    }
    if (route.recipient) {
        const bool eavesdropping = route.eavesdropping && message.has_destination_;
        Decision receive = route.recipient->check_can_receive(
            message, from_driver ? nullptr : route.sender_names, result.requested_reply, eavesdropping);
        if (!receive.allowed) {
            result.verdict = Verdict::receive_denied;
            result.decision = receive;
            result.log = false;
            return result;
        }
    }
    return result;
}

// ------------------------------------------------------------------------------------------ ClientPolicy

namespace {

// The tests bus_client_policy_check_can_send/receive share, in their order.
bool fields_match(const CompiledRule& rule, const PreparedMessage& message, std::uint32_t path,
                  std::uint32_t interface, std::uint32_t member, std::uint32_t error) {
    if (rule.path && path != absent && path != rule.path) {
        return false;
    }
    if (rule.interface) {
        // An allow rule naming an interface never matches a message without one; a deny rule does.
        const bool no_interface = interface == absent;
        if ((no_interface && rule.allow) || (!no_interface && interface != rule.interface)) {
            return false;
        }
    }
    if (rule.member && member != absent && member != rule.member) {
        return false;
    }
    if (rule.error && error != absent && error != rule.error) {
        return false;
    }
    (void)message;
    return true;
}

bool fds_match(const CompiledRule& rule, std::uint32_t unix_fds) {
    if (rule.min_fds > 0 || rule.max_fds < Rule::max_message_unix_fds) {
        return unix_fds >= rule.min_fds && unix_fds <= rule.max_fds;
    }
    return true;
}

bool reply_rule_applies(const CompiledRule& rule, bool requested_reply) {
    // allow + requested_reply="true" (the default) only lets requested replies through, unless it also
    // allows eavesdropping; deny + requested_reply="false" (the default) only stops unrequested ones.
    if (!requested_reply && rule.allow && rule.requested_reply && !rule.eavesdrop) {
        return false;
    }
    if (requested_reply && !rule.allow && !rule.requested_reply) {
        return false;
    }
    return true;
}

bool contains(const std::vector<std::uint32_t>& ids, std::uint32_t id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

Decision ClientPolicy::check_can_send(const PreparedMessage& message, const PeerNames* receiver,
                                      bool requested_reply) const {
    Decision decision;
    if (!compiled_) {
        return decision;
    }
    const auto& rules = compiled_->rules;
    if (send_is_bare_ && !message.has_reply_serial_) {
        const CompiledRule& rule = rules[send_.front()];
        decision.allowed = rule.allow;
        decision.log = rule.log;
        decision.rule = rule.source;
        decision.matched_rules = 1;
        return decision;
    }
    const bool broadcast =
        !message.has_destination_ && message.type_ == std::uint8_t(marshal::MessageType::signal);
    for (std::uint32_t index : send_) {
        const CompiledRule& rule = rules[index];
        if (rule.message_type && rule.message_type != message.type_) {
            continue;
        }
        if (message.has_reply_serial_ && !reply_rule_applies(rule, requested_reply)) {
            continue;
        }
        if (!fields_match(rule, message, message.path_, message.interface_, message.member_,
                          message.error_)) {
            continue;
        }
        if (rule.broadcast == Tristate::no && broadcast) {
            continue;
        }
        if (rule.broadcast == Tristate::yes && !broadcast) {
            continue;
        }
        if (rule.has_name) {
            if (rule.prefix == no_prefix) {
                if (!receiver) {
                    if (!message.has_destination_ || message.destination_ != rule.name) {
                        continue;
                    }
                } else if (!contains(receiver->names_, rule.name)) {
                    continue;
                }
            } else {
                if (!receiver) {
                    if (!message.has_destination_ || !test_bit(message.destination_prefixes_, rule.prefix)) {
                        continue;
                    }
                } else if (!test_bit(receiver->prefixes_, rule.prefix)) {
                    continue;
                }
            }
        }
        if (!fds_match(rule, message.unix_fds_)) {
            continue;
        }
        decision.allowed = rule.allow;
        decision.log = rule.log;
        decision.rule = rule.source;
        ++decision.matched_rules;
    }
    return decision;
}

Decision ClientPolicy::check_can_receive(const PreparedMessage& message, const PeerNames* sender,
                                         bool requested_reply, bool eavesdropping) const {
    Decision decision;
    if (!compiled_) {
        return decision;
    }
    const auto& rules = compiled_->rules;
    if (receive_is_bare_ && !message.has_reply_serial_) {
        const CompiledRule& rule = rules[receive_.front()];
        // The loop's eavesdrop tests, the only ones a bare rule does not pass of itself.
        if ((eavesdropping && rule.allow && !rule.eavesdrop) ||
            (!eavesdropping && !rule.allow && rule.eavesdrop)) {
            return decision;
        }
        decision.allowed = rule.allow;
        decision.rule = rule.source;
        decision.matched_rules = 1;
        return decision;
    }
    for (std::uint32_t index : receive_) {
        const CompiledRule& rule = rules[index];
        if (rule.message_type && rule.message_type != message.type_) {
            continue;
        }
        // allow + eavesdrop="false" does not apply to eavesdropping; deny + eavesdrop="true" applies only to
        // it.
        if (eavesdropping && rule.allow && !rule.eavesdrop) {
            continue;
        }
        if (!eavesdropping && !rule.allow && rule.eavesdrop) {
            continue;
        }
        if (message.has_reply_serial_ && !reply_rule_applies(rule, requested_reply)) {
            continue;
        }
        if (!fields_match(rule, message, message.path_, message.interface_, message.member_,
                          message.error_)) {
            continue;
        }
        if (rule.has_name) {
            if (!sender) {
                if (message.sender_ == absent || message.sender_ != rule.name) {
                    continue;
                }
            } else if (!contains(sender->names_, rule.name)) {
                continue;
            }
        }
        if (!fds_match(rule, message.unix_fds_)) {
            continue;
        }
        decision.allowed = rule.allow;
        decision.rule = rule.source;
        ++decision.matched_rules;
    }
    return decision;
}

bool ClientPolicy::check_can_own(std::string_view name) const {
    if (!compiled_) {
        return false;
    }
    const auto& compiled = *compiled_;
    const std::uint32_t id = compiled.lookup(name);
    std::vector<std::uint64_t> prefixes;
    compiled.add_prefixes(name, prefixes);
    bool allowed = false;
    for (std::uint32_t index : own_) {
        const CompiledRule& rule = compiled.rules[index];
        if (rule.has_name) {
            if (rule.prefix == no_prefix ? id != rule.name : !test_bit(prefixes, rule.prefix)) {
                continue;
            }
        }
        allowed = rule.allow;
    }
    return allowed;
}

}  // namespace busgate::policy
