// MatchRule: one dbus1 AddMatch rule, parsed, printed, compared and evaluated exactly as dbus-daemon 1.14
// does (bus/signals.c), and translated into the core's bloom mask and sender filter.
// The rule a reader must know: the core mask is only a pre-filter. It never rejects a broadcast that the
// rule matches (no false negatives), but it accepts more, and it cannot see destination, argNpath or
// eavesdropping at all; the gateway always re-checks `matches()` before delivering.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/errors.h"
#include "busgate/core/match_index.h"
#include "busgate/core/types.h"
#include "busgate/marshal/message.h"
#include "busgate/marshal/types.h"

namespace busgate::bus {

namespace match_error {
inline constexpr BusError invalid = BusError::match_rule_invalid;
inline constexpr BusError limits_exceeded = BusError::limits_exceeded;
}  // namespace match_error

// dbus-daemon's DBUS_MAXIMUM_MATCH_RULE_LENGTH and DBUS_MAXIMUM_MATCH_RULE_ARG_NUMBER.
inline constexpr std::size_t max_match_rule_length = 1024;
inline constexpr unsigned max_match_argument = 63;

enum class ArgumentMatchKind : std::uint8_t {
    equals,     // argN: a STRING argument equal to the value
    path,       // argNpath: a STRING or OBJECT_PATH equal to it, or a prefix either way ending in '/'
    namespace_  // arg0namespace: a STRING equal to the value or starting with value + '.'
};

struct ArgumentMatch {
    unsigned index = 0;
    ArgumentMatchKind kind = ArgumentMatchKind::equals;
    std::string value;

    friend bool operator==(const ArgumentMatch&, const ArgumentMatch&) = default;
};

// Absent keys are wildcards. Equality is dbus-daemon's match_rule_equal, which RemoveMatch uses: the parsed
// keys and values compare, never the text, so key order, quoting and eavesdrop='false' do not matter.
struct MatchRule {
    std::optional<marshal::MessageType> type;
    std::optional<std::string> sender;
    std::optional<std::string> interface;
    std::optional<std::string> member;
    std::optional<std::string> path;  // path=, or path_namespace= when path_is_namespace
    bool path_is_namespace = false;
    std::optional<std::string> destination;
    bool eavesdrop = false;
    std::vector<ArgumentMatch> arguments;  // sorted by index, at most one per index

    // dbus-daemon's match_rule_to_string (Debug.Stats, monitors): keys in a fixed order, every value
    // quoted, apostrophes written as '\''. Parsing the text gives back an equal rule.
    std::string to_string() const;
    // One past the highest argument index the rule looks at; 0 without argument keys.
    unsigned argument_count() const { return arguments.empty() ? 0 : arguments.back().index + 1; }

    friend bool operator==(const MatchRule&, const MatchRule&) = default;
};

// Either a rule or dbus-daemon's error for the text: error_name is match_error::invalid or
// match_error::limits_exceeded, error_message its text (including dbus-daemon's trailing newlines).
struct ParsedMatchRule {
    std::optional<MatchRule> rule;
    BusError error_name = BusError::failed;
    std::string error_message;

    bool ok() const { return rule.has_value(); }
    explicit operator bool() const { return ok(); }
};

// bus_match_rule_parse, including its quirks: at most 16 key=value pairs are read and any text after them
// is ignored; a pair with an empty key ends parsing successfully; argument numbers are read as strtoul
// with base 0 ("arg0x1" is arg1); eavesdrop may repeat (the last one counts).
ParsedMatchRule parse_match_rule(std::string_view text);
// The same with another length limit: MatchRule::to_string quotes every value, so a rule a client added
// at the limit may print longer (a restart carries rules as that text).
ParsedMatchRule parse_match_rule(std::string_view text, std::size_t max_length);
// Enough for to_string of any rule parse_match_rule accepts.
inline constexpr std::size_t max_printed_match_rule_length = 4 * max_match_rule_length;

// A message as rules see it: the parsed header and its top-level arguments, decoded lazily, at most once,
// and only as far as the highest argument a rule asked for. Make one per message and evaluate every
// candidate rule against it. `bytes` and `header` must outlive the view; the message must have passed
// marshal::parse_message (malformed bodies are still read safely: unreadable arguments count as absent).
class MessageView {
  public:
    struct Argument {
        char type = 0;          // the argument's type code; 0 when the message has no such argument
        std::string_view text;  // the value of a STRING, OBJECT_PATH or SIGNATURE argument
    };

    MessageView(std::span<const std::uint8_t> bytes, const marshal::MessageHeader& header)
        : bytes_(bytes), header_(header), offset_(header.body_offset) {}

    const marshal::MessageHeader& header() const { return header_; }
    Argument argument(unsigned index) const;

  private:
    void decode_through(unsigned index) const;

    std::span<const std::uint8_t> bytes_;
    const marshal::MessageHeader& header_;
    // What one decoded argument is; trivial, so that the array below is left as it is until decoded: one
    // view is made per receiver of a broadcast, and zeroing 64 slots each time was most of its cost.
    struct Decoded {
        char type;
        const char* text;
        std::size_t size;
    };
    // The decoding cursor: arguments_[0, decoded_) are known (the rest is never read); offset_ and
    // signature_position_ point at the next argument, unless finished_ (end of the body or unreadable data).
    mutable std::array<Decoded, max_match_argument + 1> arguments_;
    mutable unsigned decoded_ = 0;
    mutable std::size_t offset_;
    mutable std::size_t signature_position_ = 0;
    mutable bool finished_ = false;
};

// Answers which connection is the primary owner of a well-known name, for sender= and destination= keys
// with well-known names. The gateway implements it over the core's name registry.
class NameOwnership {
  public:
    virtual bool is_primary_owner(std::string_view unique_name, std::string_view well_known_name) const = 0;

  protected:
    ~NameOwnership() = default;
};

// The connections a message involves, as match_rule_matches sees them.
struct MessageParties {
    // The sender's unique name; empty when the bus driver itself sends (it matches only
    // sender='org.freedesktop.DBus').
    std::string_view sender;
    // The unique name of the connection the message will be delivered to; empty for broadcasts, for
    // messages to the driver, and for messages whose destination has no owner yet (activation), in which
    // case destination= compares with the DESTINATION field as sent.
    std::string_view addressed_recipient;
    // Consulted only for well-known sender= / destination= values; may be null otherwise (a null lookup
    // answers "not the owner").
    const NameOwnership* names = nullptr;
};

// match_rule_matches. Every key must hold. A message with a DESTINATION field matches only rules with
// eavesdrop='true' (and a destination= key matches only then): the addressed recipient gets the message
// anyway, so the caller must not evaluate the addressed recipient's own rules for it (dbus-daemon skips
// that connection, which already receives the message).
bool matches(const MatchRule& rule, const MessageView& message, const MessageParties& parties);

// What the core should hold for one rule.
struct CoreMatch {
    // Sender filter and bloom mask (kdbus-semantics.md section 2.4). The mask relies on bloom.h's rule for
    // filters: every string-like argument is added at its own index, past non-string ones too.
    core::MessageMatch match;
    // The rule can match a broadcast, so the core should hold `match`. False when it names a destination
    // (broadcasts have none) or a unique sender that no connection of this bus can have.
    bool matches_broadcasts = true;
    // eavesdrop='true': the rule can also match messages addressed to other connections. The core's
    // broadcast delivery never sees those; the gateway must evaluate such rules (as dbus-daemon and
    // monitors do) for unicast traffic itself.
    bool matches_unicast = false;
};

// `driver_id` is the core connection the gateway's driver sends from; sender='org.freedesktop.DBus' maps to
// it (the driver holds no well-known name in the core). Unique names are ":1.<connection id>".
CoreMatch to_core_match(const MatchRule& rule, std::uint64_t cookie,
                        core::ConnectionId driver_id = core::any_connection);

// The filter a sender attaches to a broadcast, the counterpart of to_core_match's masks: header elements
// and every string-like argument (or array of them) among the first 64, each at its own index.
core::BloomFilter bloom_filter_of(std::span<const std::uint8_t> bytes, const marshal::MessageHeader& header);

// "method_call", "method_return", "error" or "signal", as in rules and bloom filters; "invalid" otherwise.
std::string_view message_type_name(marshal::MessageType type);

}  // namespace busgate::bus
