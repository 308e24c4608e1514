// libFuzzer target for the match-rule parser: whatever parses must print to text that parses back to
// an equal rule (when the printed text is within the length limit: quoting can make it longer, as it
// does in dbus-daemon), and its core translation must not crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bus/match_rule.h"

using namespace busgate;
using namespace busgate::bus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ParsedMatchRule parsed =
        parse_match_rule(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!parsed.ok()) {
        return 0;
    }
    const std::string text = parsed.rule->to_string();
    if (text.size() > max_match_rule_length) {
        return 0;
    }
    const ParsedMatchRule again = parse_match_rule(text);
    if (!again.ok() || !(*again.rule == *parsed.rule)) {
        std::abort();
    }
    (void)to_core_match(*parsed.rule, 1);
    return 0;
}
