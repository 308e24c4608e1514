// libFuzzer target for the match-rule parser: whatever parses must print to text that parses back to
// an equal rule, and its core translation must not crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "match_rule.h"

using namespace busgate::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ParsedMatchRule parsed =
        parse_match_rule(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!parsed.ok()) {
        return 0;
    }
    const ParsedMatchRule again = parse_match_rule(parsed.rule->to_string());
    if (!again.ok() || !(*again.rule == *parsed.rule)) {
        std::abort();
    }
    (void)to_core_match(*parsed.rule, 1);
    return 0;
}
