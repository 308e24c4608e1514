// Policy: the <policy> rules of a Configuration compiled for evaluation, and ClientPolicy, the rules that
// apply to one connection (dbus-daemon's BusClientPolicy). Decisions are dbus-daemon 1.14's
// (bus/policy.c, bus_context_check_security_policy in bus/bus.c): contexts in the order default, groups,
// user, at_console true or false, mandatory; within them file order; the last matching rule wins; nothing
// matching means deny.
// Hot path rule: every string a rule names is interned to a small integer when the Policy is built; a message
// and a peer's names are resolved once (PreparedMessage, PeerNames) and rules then compare integers only.
// Nothing here throws or allocates per rule evaluated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "busgate/marshal/types.h"
#include "busgate/policy/configuration.h"

namespace busgate::policy {

// What the policy looks at in a message header.
struct MessageInfo {
    marshal::MessageType type = marshal::MessageType::method_call;
    std::optional<std::string_view> path;
    std::optional<std::string_view> interface;
    std::optional<std::string_view> member;
    std::optional<std::string_view> error_name;
    std::optional<std::string_view> destination;
    std::optional<std::string_view> sender;
    bool has_reply_serial = false;  // a method return or error (REPLY_SERIAL present)
    std::uint32_t unix_fds = 0;
};

// Who is asking: the connection's uid, all its groups (dbus-daemon uses the user database's groups of the
// uid), and whether the user is at the console (dbus-daemon: systemd seats, or /run/console/<user>).
struct ConnectionCredentials {
    std::uint32_t uid = 0;
    std::vector<std::uint32_t> groups;
    bool at_console = false;
};

struct Decision {
    bool allowed = false;
    bool log = false;                 // the deciding send rule had log="true"
    std::uint32_t matched_rules = 0;  // dbus-daemon's "toggles", for its rejection message
    const Rule* rule = nullptr;       // the last rule that matched, if any
};

class Policy;

// A message resolved against one Policy's interned strings. Valid while that Policy lives.
class PreparedMessage {
  private:
    friend class Policy;
    friend class ClientPolicy;
    std::uint8_t type_ = 0;
    bool has_reply_serial_ = false;
    bool has_destination_ = false;
    std::uint32_t unix_fds_ = 0;
    std::uint32_t path_ = 0, interface_ = 0, member_ = 0, error_ = 0, destination_ = 0, sender_ = 0;
    std::vector<std::uint64_t> destination_prefixes_;  // bit per prefix rule name the destination falls under
};

// The names a connection owns or is queued for (its unique name included), resolved against one Policy.
// Cache it per connection and rebuild when its names change.
class PeerNames {
  public:
    bool empty() const { return names_.empty(); }

  private:
    friend class Policy;
    friend class ClientPolicy;
    std::vector<std::uint32_t> names_;     // interned ids of the names that some rule mentions
    std::vector<std::uint64_t> prefixes_;  // bit per prefix rule name any of the names falls under
};

class ClientPolicy {
  public:
    ClientPolicy() = default;

    // `receiver` is null when the message goes to the bus driver or starts a service (dbus-daemon then
    // compares send_destination with the DESTINATION field instead of the receiver's names).
    Decision check_can_send(const PreparedMessage& message, const PeerNames* receiver,
                            bool requested_reply) const;
    // `sender` is null when the bus driver sent the message (receive_sender is compared with SENDER).
    // `eavesdropping`: the message is addressed to someone else and has a destination.
    Decision check_can_receive(const PreparedMessage& message, const PeerNames* sender, bool requested_reply,
                               bool eavesdropping) const;
    bool check_can_own(std::string_view name) const;

    std::size_t rule_count() const { return send_.size() + receive_.size() + own_.size(); }

  private:
    friend class Policy;
    struct Compiled;
    std::shared_ptr<const Compiled> compiled_;
    std::vector<std::uint32_t> send_, receive_, own_;  // indices into compiled_->rules, in evaluation order
    // The list is one rule that names nothing (session.conf's <allow send_destination="*"/>): a message
    // that is no reply needs no walk through the tests, which all pass.
    bool send_is_bare_ = false, receive_is_bare_ = false;
};

// One message's trip from sender to one recipient, as bus_context_check_security_policy() sees it.
struct Route {
    const ClientPolicy* sender = nullptr;     // null: the bus driver sends
    const PeerNames* sender_names = nullptr;  // null: the bus driver sends
    const ClientPolicy* recipient = nullptr;  // null: the bus driver receives (or an activation)
    const PeerNames* recipient_names = nullptr;
    bool eavesdropping = false;  // the recipient is not the addressed recipient (a monitor or eavesdropper)
    bool reply_expected =
        false;  // a reply whose call is pending from this recipient (reply tracker's answer)
};

enum class Verdict : std::uint8_t { allowed, send_denied, receive_denied };

struct RouteDecision {
    Verdict verdict = Verdict::allowed;
    bool log = false;  // allowed, but a matching send rule asked to log ("Would reject message")
    bool requested_reply = false;
    Decision decision;  // the decision that rejected it, or the send decision when allowed
};

class Policy {
  public:
    Policy();
    explicit Policy(const PolicyRules& rules);

    ClientPolicy for_connection(const ConnectionCredentials& credentials) const;

    // May a connection of `uid` (with `groups`) stay connected? dbus-daemon: default and mandatory
    // user=/group= rules, starting from "only the uid the bus runs as".
    bool allows_connection(std::uint32_t uid, std::span<const std::uint32_t> groups, bool uid_owns_bus) const;

    PreparedMessage prepare(const MessageInfo& message) const;
    PeerNames prepare_names(std::span<const std::string_view> names) const;
    PeerNames prepare_names(std::span<const std::string> names) const;

    // The whole check for one recipient: requested_reply as dbus-daemon computes it, then the sender's send
    // rules, then the recipient's receive rules.
    RouteDecision check_route(const PreparedMessage& message, const Route& route) const;

    std::size_t interned_strings() const;

  private:
    std::shared_ptr<const ClientPolicy::Compiled> compiled_;
};

}  // namespace busgate::policy
