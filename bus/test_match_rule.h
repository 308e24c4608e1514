// Test-only: the rule a test writes as text, parsed; a rule the test expects to be valid that is not fails
// the test where it is written and stands as the empty rule, so the rest of the test still runs.
#pragma once

#include <gtest/gtest.h>

#include <string_view>
#include <utility>

#include "bus/match_rule.h"

namespace busgate::bus::testing {

inline MatchRule parse(std::string_view text) {
    ParsedMatchRule parsed = parse_match_rule(text);
    EXPECT_TRUE(parsed.ok()) << text << ": " << parsed.error_message;
    return parsed.ok() ? std::move(*parsed.rule) : MatchRule{};
}

}  // namespace busgate::bus::testing
