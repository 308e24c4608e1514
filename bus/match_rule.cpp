#include "bus/match_rule.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "bus/unique_name.h"
#include "busgate/marshal/names.h"
#include "busgate/marshal/reader.h"
#include "busgate/marshal/signature.h"

namespace busgate::bus {
namespace {

constexpr std::string_view driver_name = "org.freedesktop.DBus";
// bus_match_rule_parse reads at most this many key=value pairs and silently ignores the rest.
constexpr int max_rule_tokens = 16;

// ---------------------------------------------------------------------------------------------------------
// Parsing

struct Token {
    std::string key;
    std::string value;
};

// dbus-daemon's ISWHITE: the separators allowed around keys.
bool is_rule_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

ParsedMatchRule failure(BusError name, std::string message) {
    return ParsedMatchRule{std::nullopt, name, std::move(message)};
}

ParsedMatchRule invalid(std::string message) {
    return failure(match_error::invalid, std::move(message));
}

// The value after '=': apostrophes quote (backslashes inside are literal), \' outside quotes is an
// apostrophe, an unquoted ',' ends the value and is consumed. Spaces are part of the value (so
// "type='signal' ,..." has the type "signal "). Unlike the specification's second quoting example, any
// other backslash outside quotes keeps itself *and* takes the next character literally, so "arg1=\,x=y" is
// one key with the value "\,x=y": dbus-daemon 1.14 does this, and we follow the daemon.
bool read_value(std::string_view text, std::size_t& position, std::string& value) {
    enum class State { plain, quoted, backslash } state = State::plain;
    for (; position < text.size(); ++position) {
        const char c = text[position];
        if (state == State::quoted) {
            if (c == '\'') {
                state = State::plain;
            } else {
                value += c;
            }
        } else if (state == State::backslash) {
            if (c != '\'') {
                value += '\\';
            }
            value += c;
            state = State::plain;
        } else if (c == '\'') {
            state = State::quoted;
        } else if (c == '\\') {
            state = State::backslash;
        } else if (c == ',') {
            ++position;
            break;
        } else {
            value += c;
        }
    }
    if (state == State::backslash) {
        value += '\\';
    }
    return state != State::quoted;
}

// Tokenizing ends early, and successfully, at an empty key: dbus-daemon's tokenizer then stays on the same
// spot (the end of the text, or a '=' with no key before it) until its token budget is used up, and the
// key/value pairs before it are all that count.
std::optional<std::string> tokenize(std::string_view text, std::vector<Token>& tokens) {
    std::size_t position = 0;
    for (int slot = 0; slot < max_rule_tokens && position < text.size(); ++slot) {
        while (position < text.size() && is_rule_space(text[position])) {
            ++position;
        }
        const std::size_t key_start = position;
        while (position < text.size() && text[position] != '=' && !is_rule_space(text[position])) {
            ++position;
        }
        const std::size_t key_end = position;
        while (position < text.size() && is_rule_space(text[position])) {
            ++position;
        }
        if (key_start == key_end) {
            break;
        }
        if (position == text.size() || text[position] != '=') {
            return "Match rule has a key with no subsequent '=' character";
        }
        ++position;
        Token token{std::string(text.substr(key_start, key_end - key_start)), {}};
        if (!read_value(text, position, token.value)) {
            return "Unbalanced quotation marks in match rule";
        }
        tokens.push_back(std::move(token));
    }
    return std::nullopt;
}

// strtoul(text, &end, 0) as glibc does it: optional C-locale space and sign, "0x" (when a hex digit
// follows) or a leading 0 choosing the base; a minus negates modulo 2^64. Returns false where dbus-daemon's
// _dbus_string_parse_uint fails: no digits, or overflow (ERANGE).
bool parse_unsigned_like_strtoul(std::string_view text, unsigned long& value, std::size_t& end) {
    auto is_c_space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    auto digit_value = [](char c) -> unsigned {
        if (c >= '0' && c <= '9') {
            return static_cast<unsigned>(c - '0');
        }
        if (c >= 'a' && c <= 'z') {
            return static_cast<unsigned>(c - 'a' + 10);
        }
        if (c >= 'A' && c <= 'Z') {
            return static_cast<unsigned>(c - 'A' + 10);
        }
        return 99;
    };
    std::size_t position = 0;
    while (position < text.size() && is_c_space(text[position])) {
        ++position;
    }
    bool negative = false;
    if (position < text.size() && (text[position] == '+' || text[position] == '-')) {
        negative = text[position] == '-';
        ++position;
    }
    unsigned base = 10;
    if (position < text.size() && text[position] == '0') {
        if (position + 2 < text.size() && (text[position + 1] == 'x' || text[position + 1] == 'X') &&
            digit_value(text[position + 2]) < 16) {
            base = 16;
            position += 2;
        } else {
            base = 8;
        }
    }
    const std::size_t digits_start = position;
    unsigned long result = 0;
    bool overflow = false;
    while (position < text.size() && digit_value(text[position]) < base) {
        const unsigned digit = digit_value(text[position]);
        if (result > (~0UL - digit) / base) {
            overflow = true;
        }
        result = result * base + digit;
        ++position;
    }
    if (position == digits_start || overflow) {
        return false;
    }
    value = negative ? 0UL - result : result;
    end = position;
    return true;
}

std::optional<std::string> add_argument(MatchRule& rule, const std::string& key, const std::string& value) {
    if (key.size() < 4) {
        return "Key '" + key +
               "' in match rule starts with 'arg' but lacks an arg number. Should be 'arg0' or 'arg7' for "
               "example.\n";
    }
    unsigned long number = 0;
    std::size_t end = 0;
    if (!parse_unsigned_like_strtoul(std::string_view(key).substr(3), number, end)) {
        return "Key '" + key +
               "' in match rule starts with 'arg' but could not parse arg number. Should be 'arg0' or "
               "'arg7' for example.\n";
    }
    end += 3;
    ArgumentMatchKind kind = ArgumentMatchKind::equals;
    if (end != key.size()) {
        if (end + 4 == key.size() && key.ends_with("path")) {
            kind = ArgumentMatchKind::path;
        } else if (key == "arg0namespace") {
            kind = ArgumentMatchKind::namespace_;
            // dbus-daemon's namespace check takes unique names too (":1.5" is accepted).
            if (!(marshal::is_unique_name(value) ? marshal::is_valid_bus_name(value)
                                                 : marshal::is_valid_bus_namespace(value))) {
                return "arg0namespace='" + value + "' is not a valid prefix of a bus name";
            }
        } else {
            const std::string shown = std::to_string(number);
            return "Key '" + key + "' in match rule contains junk after argument number (" + shown +
                   "). Only 'arg" + shown + "path' (for example) or 'arg0namespace' are valid";
        }
    }
    if (number > max_match_argument) {
        return "Key '" + key + "' in match rule has arg number " + std::to_string(number) +
               " but the maximum is " + std::to_string(max_match_argument) + ".\n";
    }
    const auto index = static_cast<unsigned>(number);
    const auto at = std::lower_bound(rule.arguments.begin(), rule.arguments.end(), index,
                                     [](const ArgumentMatch& match, unsigned i) { return match.index < i; });
    if (at != rule.arguments.end() && at->index == index) {
        return "Argument " + key + " matched more than once in match rule\n";
    }
    rule.arguments.insert(at, ArgumentMatch{index, kind, value});
    return std::nullopt;
}

std::optional<marshal::MessageType> message_type_from_name(std::string_view name) {
    for (const auto type : {marshal::MessageType::method_call, marshal::MessageType::method_return,
                            marshal::MessageType::error, marshal::MessageType::signal}) {
        if (name == message_type_name(type)) {
            return type;
        }
    }
    return std::nullopt;
}

// One row per key that holds a name: its validator and dbus-daemon's wording for an invalid value.
struct NameKey {
    std::string_view key;
    std::optional<std::string> MatchRule::*field;
    bool (*is_valid)(std::string_view);
    std::string_view what;
};

const NameKey name_keys[] = {
    {"sender", &MatchRule::sender, marshal::is_valid_bus_name, "Sender name"},
    {"interface", &MatchRule::interface, marshal::is_valid_interface_name, "Interface name"},
    {"member", &MatchRule::member, marshal::is_valid_member_name, "Member name"},
    {"destination", &MatchRule::destination, marshal::is_valid_bus_name, "Destination name"},
};

std::optional<std::string> apply(MatchRule& rule, const Token& token) {
    const std::string& key = token.key;
    const std::string& value = token.value;
    if (key == "type") {
        if (rule.type) {
            return "Key " + key + " specified twice in match rule\n";
        }
        rule.type = message_type_from_name(value);
        if (!rule.type) {
            return "Invalid message type (" + value + ") in match rule\n";
        }
        return std::nullopt;
    }
    for (const NameKey& row : name_keys) {
        if (key == row.key) {
            if (rule.*row.field) {
                return "Key " + key + " specified twice in match rule\n";
            }
            if (!row.is_valid(value)) {
                return std::string(row.what) + " '" + value + "' is invalid\n";
            }
            rule.*row.field = value;
            return std::nullopt;
        }
    }
    if (key == "path" || key == "path_namespace") {
        if (rule.path) {
            return "path or path_namespace specified twice in match rule\n";
        }
        if (!marshal::is_valid_object_path(value)) {
            return "Path '" + value + "' is invalid\n";
        }
        rule.path = value;
        rule.path_is_namespace = key == "path_namespace";
        return std::nullopt;
    }
    if (key == "eavesdrop") {
        // Allowed more than once, so that a client can turn off the eavesdrop='true' a tool appended.
        if (value != "true" && value != "false") {
            return "eavesdrop='" + value + "' is invalid, it should be 'true' or 'false'\n";
        }
        rule.eavesdrop = value == "true";
        return std::nullopt;
    }
    if (key.starts_with("arg")) {
        return add_argument(rule, key, value);
    }
    return "Unknown key \"" + key + "\" in match rule";
}

void append_quoted(std::string& out, std::string_view value) {
    out += '\'';
    for (const char c : value) {
        if (c == '\'') {
            // No escape exists inside quotes: close them, write \', reopen.
            out += "'\\''";
        } else {
            out += c;
        }
    }
    out += '\'';
}

// ---------------------------------------------------------------------------------------------------------
// Reading arguments

// Reads values of a validated body; every step is bounds-checked so that a bad body only ends the walk.
class BodyWalker {
  public:
    BodyWalker(std::span<const std::uint8_t> bytes, std::size_t end, marshal::ByteOrder byte_order)
        : bytes_(bytes), end_(std::min(end, bytes.size())), byte_order_(byte_order) {}

    bool read_text(char code, std::size_t& offset, std::string_view& text) const {
        std::size_t length = 0;
        if (code == marshal::type::signature) {
            if (offset >= end_) {
                return false;
            }
            length = bytes_[offset];
            offset += 1;
        } else {
            const auto value = read_u32(offset);
            if (!value) {
                return false;
            }
            length = *value;
        }
        if (length >= end_ - offset) {  // the text and its NUL
            return false;
        }
        text = std::string_view(reinterpret_cast<const char*>(bytes_.data() + offset), length);
        offset += length + 1;
        return true;
    }

    // Skips the value whose complete type starts at signature[position], moving past both.
    bool skip(std::string_view signature, std::size_t& position, std::size_t& offset, int depth) const {
        if (position >= signature.size() || depth > marshal::limit::total_depth) {
            return false;
        }
        const char code = signature[position];
        switch (code) {
            case marshal::type::byte:
                return advance(position, offset, 1, 1);
            case marshal::type::int16:
            case marshal::type::uint16:
                return advance(position, offset, 2, 2);
            case marshal::type::boolean:
            case marshal::type::int32:
            case marshal::type::uint32:
            case marshal::type::unix_fd:
                return advance(position, offset, 4, 4);
            case marshal::type::int64:
            case marshal::type::uint64:
            case marshal::type::double_:
                return advance(position, offset, 8, 8);
            case marshal::type::string:
            case marshal::type::object_path:
            case marshal::type::signature: {
                std::string_view ignored;
                ++position;
                return read_text(code, offset, ignored);
            }
            case marshal::type::array: {
                const auto length = read_u32(offset);
                if (!length || position + 1 >= signature.size() ||
                    !align(offset, marshal::alignment_of(signature[position + 1])) ||
                    *length > end_ - offset) {
                    return false;
                }
                offset += *length;
                position = marshal::complete_type_end(signature, position);
                return true;
            }
            case marshal::type::struct_begin:
            case marshal::type::dict_entry_begin: {
                if (!align(offset, 8)) {
                    return false;
                }
                ++position;
                while (position < signature.size() && signature[position] != marshal::type::struct_end &&
                       signature[position] != marshal::type::dict_entry_end) {
                    if (!skip(signature, position, offset, depth + 1)) {
                        return false;
                    }
                }
                if (position >= signature.size()) {
                    return false;
                }
                ++position;
                return true;
            }
            case marshal::type::variant: {
                std::string_view contained;
                if (!read_text(marshal::type::signature, offset, contained) ||
                    !marshal::is_single_complete_type(contained)) {
                    return false;
                }
                std::size_t inner = 0;
                ++position;
                return skip(contained, inner, offset, depth + 1);
            }
            default:
                return false;
        }
    }

  private:
    bool align(std::size_t& offset, std::size_t alignment) const {
        const std::size_t aligned = marshal::align_up(offset, alignment);
        if (alignment == 0 || aligned > end_) {
            return false;
        }
        offset = aligned;
        return true;
    }

    bool advance(std::size_t& position, std::size_t& offset, std::size_t alignment, std::size_t size) const {
        if (!align(offset, alignment) || end_ - offset < size) {
            return false;
        }
        offset += size;
        ++position;
        return true;
    }

    std::optional<std::uint32_t> read_u32(std::size_t& offset) const {
        if (!align(offset, 4) || end_ - offset < 4) {
            return std::nullopt;
        }
        std::uint32_t value = 0;
        std::memcpy(&value, bytes_.data() + offset, 4);
        if (byte_order_ != marshal::native_byte_order) {
            value = __builtin_bswap32(value);
        }
        offset += 4;
        return value;
    }

    std::span<const std::uint8_t> bytes_;
    std::size_t end_;
    marshal::ByteOrder byte_order_;
};

// ---------------------------------------------------------------------------------------------------------
// Evaluation

bool argument_matches(const ArgumentMatch& match, const MessageView::Argument& argument) {
    const std::string_view expected = match.value;
    const std::string_view actual = argument.text;
    switch (match.kind) {
        case ArgumentMatchKind::equals:
            return argument.type == marshal::type::string && actual == expected;
        case ArgumentMatchKind::path:
            if (argument.type != marshal::type::string && argument.type != marshal::type::object_path) {
                return false;
            }
            // The shorter one must end in '/' unless both are equal. (dbus-daemon reads the byte before an
            // empty string here; an empty value never ends in '/', so it matches only an empty one.)
            if (actual.size() < expected.size() && (actual.empty() || actual.back() != '/')) {
                return false;
            }
            if (expected.size() < actual.size() && (expected.empty() || expected.back() != '/')) {
                return false;
            }
            return actual.substr(0, expected.size()) == expected.substr(0, actual.size());
        case ArgumentMatchKind::namespace_:
            return argument.type == marshal::type::string && actual.starts_with(expected) &&
                   (actual.size() == expected.size() || actual[expected.size()] == '.');
    }
    return false;
}

bool path_matches(const MatchRule& rule, std::string_view path) {
    const std::string_view expected = *rule.path;
    if (!rule.path_is_namespace) {
        return path == expected;
    }
    // "/" is the only valid path ending in '/', and it contains every path.
    return path.starts_with(expected) &&
           (expected.size() == 1 || path.size() == expected.size() || path[expected.size()] == '/');
}

bool owns(const MessageParties& parties, std::string_view connection, std::string_view name) {
    if (marshal::is_unique_name(name)) {
        return connection == name;
    }
    return parties.names != nullptr && parties.names->is_primary_owner(connection, name);
}

}  // namespace

std::string_view message_type_name(marshal::MessageType type) {
    switch (type) {
        case marshal::MessageType::method_call:
            return "method_call";
        case marshal::MessageType::method_return:
            return "method_return";
        case marshal::MessageType::error:
            return "error";
        case marshal::MessageType::signal:
            return "signal";
        default:
            return "invalid";
    }
}

ParsedMatchRule parse_match_rule(std::string_view text) {
    return parse_match_rule(text, max_match_rule_length);
}

ParsedMatchRule parse_match_rule(std::string_view text, std::size_t max_length) {
    if (text.size() > max_length) {
        return failure(match_error::limits_exceeded, "Match rule text is " + std::to_string(text.size()) +
                                                         " bytes, maximum is " + std::to_string(max_length));
    }
    // dbus-daemon reads the rule as a C string; a D-Bus string never holds a NUL anyway.
    text = text.substr(0, text.find('\0'));

    std::vector<Token> tokens;
    tokens.reserve(max_rule_tokens);
    if (auto error = tokenize(text, tokens)) {
        return invalid(std::move(*error));
    }
    MatchRule rule;
    for (const Token& token : tokens) {
        if (auto error = apply(rule, token)) {
            return invalid(std::move(*error));
        }
    }
    return ParsedMatchRule{std::move(rule), {}, {}};
}

std::string MatchRule::to_string() const {
    std::string out;
    auto key = [&out](std::string_view name) -> std::string& {
        if (!out.empty()) {
            out += ',';
        }
        out += name;
        out += '=';
        return out;
    };
    if (type) {
        append_quoted(key("type"), message_type_name(*type));
    }
    if (interface) {
        append_quoted(key("interface"), *interface);
    }
    if (member) {
        append_quoted(key("member"), *member);
    }
    if (path) {
        append_quoted(key(path_is_namespace ? "path_namespace" : "path"), *path);
    }
    if (sender) {
        append_quoted(key("sender"), *sender);
    }
    if (destination) {
        append_quoted(key("destination"), *destination);
    }
    if (eavesdrop) {
        append_quoted(key("eavesdrop"), "true");
    }
    for (const ArgumentMatch& argument : arguments) {
        const std::string_view suffix = argument.kind == ArgumentMatchKind::path         ? "path"
                                        : argument.kind == ArgumentMatchKind::namespace_ ? "namespace"
                                                                                         : "";
        append_quoted(key("arg" + std::to_string(argument.index) + std::string(suffix)), argument.value);
    }
    return out;
}

MessageView::Argument MessageView::argument(unsigned index) const {
    if (index > max_match_argument) {
        return {};
    }
    decode_through(index);
    if (index >= decoded_) {
        return {};
    }
    const Decoded& decoded = arguments_[index];
    return {decoded.type, std::string_view(decoded.text, decoded.size)};
}

void MessageView::decode_through(unsigned index) const {
    if (decoded_ > index || finished_) {
        return;
    }
    const std::string_view signature = header_.signature;
    const BodyWalker walker(bytes_, std::size_t{header_.body_offset} + header_.body_length,
                            header_.byte_order);
    while (decoded_ <= index) {
        if (signature_position_ >= signature.size()) {
            finished_ = true;
            return;
        }
        Argument argument{signature[signature_position_], {}};
        const bool read =
            marshal::is_string_like_type(argument.type)
                ? (++signature_position_, walker.read_text(argument.type, offset_, argument.text))
                : walker.skip(signature, signature_position_, offset_, 0);
        if (!read) {
            finished_ = true;
            return;
        }
        arguments_[decoded_++] = {argument.type, argument.text.data(), argument.text.size()};
    }
}

bool matches(const MatchRule& rule, const MessageView& message, const MessageParties& parties) {
    const marshal::MessageHeader& header = message.header();
    if (rule.type && static_cast<std::uint8_t>(*rule.type) != header.raw_type) {
        return false;
    }
    if (rule.interface &&
        (!header.has(marshal::HeaderField::interface) || header.interface != *rule.interface)) {
        return false;
    }
    if (rule.member && (!header.has(marshal::HeaderField::member) || header.member != *rule.member)) {
        return false;
    }
    if (rule.sender) {
        if (parties.sender.empty() ? *rule.sender != driver_name
                                   : !owns(parties, parties.sender, *rule.sender)) {
            return false;
        }
    }
    const bool has_destination = header.has(marshal::HeaderField::destination);
    if (rule.destination) {
        // Only eavesdroppers see messages addressed to someone else; the addressed recipient itself got the
        // message without consulting its rules.
        if (!has_destination || !rule.eavesdrop) {
            return false;
        }
        if (parties.addressed_recipient.empty()
                ? header.destination != *rule.destination
                : !owns(parties, parties.addressed_recipient, *rule.destination)) {
            return false;
        }
    } else if (has_destination && !rule.eavesdrop) {
        return false;
    }
    if (rule.path && (!header.has(marshal::HeaderField::path) || !path_matches(rule, header.path))) {
        return false;
    }
    for (const ArgumentMatch& argument : rule.arguments) {
        if (!argument_matches(argument, message.argument(argument.index))) {
            return false;
        }
    }
    return true;
}

CoreMatch to_core_match(const MatchRule& rule, std::uint64_t cookie, core::ConnectionId driver_id) {
    CoreMatch out;
    out.match.cookie = cookie;
    out.matches_unicast = rule.eavesdrop;
    out.matches_broadcasts = !rule.destination;
    core::BloomMask& mask = out.match.mask;
    if (rule.type) {
        mask.add_message_type(message_type_name(*rule.type));
    }
    if (rule.interface) {
        mask.add_interface(*rule.interface);
    }
    if (rule.member) {
        mask.add_member(*rule.member);
    }
    if (rule.path) {
        if (rule.path_is_namespace) {
            mask.add_path_namespace(*rule.path);
        } else {
            mask.add_path(*rule.path);
        }
    }
    // Filters carry every string-like argument at its own index (bloom.h), so each argN element is safe in
    // the mask whatever the arguments before N are. argNpath has no element.
    for (const ArgumentMatch& argument : rule.arguments) {
        if (argument.kind == ArgumentMatchKind::equals) {
            mask.add_argument(argument.index, argument.value);
        } else if (argument.kind == ArgumentMatchKind::namespace_) {
            mask.add_argument_namespace(argument.index, argument.value);
        }
    }
    if (rule.sender) {
        if (marshal::is_unique_name(*rule.sender)) {
            if (const auto id = connection_id_of(*rule.sender)) {
                out.match.sender_id = *id;
            } else {
                out.matches_broadcasts = false;
            }
        } else if (*rule.sender == driver_name) {
            // Left unfiltered when the driver's id is unknown: a wider pre-filter only costs exact checks.
            out.match.sender_id = driver_id;
        } else {
            out.match.sender_name = *rule.sender;
        }
    }
    return out;
}

// The bloom filter of a broadcast: header fields and every string-like argument (or array of them) among
// the first 64, each at its own index: dbus1's argN matches the Nth argument whatever precedes it, so
// unlike kdbus (section 2.3) other types are skipped, not a reason to stop.
core::BloomFilter bloom_filter_of(std::span<const std::uint8_t> bytes, const marshal::MessageHeader& header) {
    core::BloomFilter filter;
    filter.add_message_type(message_type_name(header.type));
    if (!header.interface.empty()) {
        filter.add_interface(header.interface);
    }
    if (!header.member.empty()) {
        filter.add_member(header.member);
    }
    if (!header.path.empty()) {
        filter.add_path(header.path);
    }
    marshal::BodyReader reader(bytes, header);
    for (unsigned index = 0; index < 64 && !reader.at_end(); ++index) {
        const char code = reader.peek();
        if (marshal::is_string_like_type(code)) {
            const auto value = code == 's'   ? reader.read_string()
                               : code == 'o' ? reader.read_object_path()
                                             : reader.read_signature();
            filter.add_argument(index, *value);
        } else if (code == 'a' && marshal::is_string_like_type(reader.peek_signature()[1]) &&
                   reader.peek_signature().size() == 2) {
            const char element = reader.peek_signature()[1];
            reader.enter();
            while (!reader.at_end()) {
                const auto value = element == 's'   ? reader.read_string()
                                   : element == 'o' ? reader.read_object_path()
                                                    : reader.read_signature();
                if (!value) {
                    break;
                }
                filter.add_argument_array_element(index, *value);
            }
            reader.leave();
        } else if (!reader.skip()) {
            break;
        }
    }
    return filter;
}

}  // namespace busgate::bus
