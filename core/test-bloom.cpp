#include <gtest/gtest.h>

#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "busgate/core/bloom.h"
#include "siphash.h"

namespace busgate::core {
namespace {

BloomBits::Words parse_words(const char* text) {
    BloomBits::Words words{};
    std::size_t i = 0;
    const char* p = text;
    while (*p && i < words.size()) {
        while (*p == ' ') {
            ++p;
        }
        char* end = nullptr;
        words[i++] = std::strtoull(p, &end, 16);
        p = end;
    }
    EXPECT_EQ(i, words.size());
    return words;
}

std::array<unsigned, 8> bits(std::initializer_list<unsigned> list) {
    std::array<unsigned, 8> out{};
    std::copy(list.begin(), list.end(), out.begin());
    return out;
}

TEST(SipHash, MatchesReferenceVectors) {
    std::array<std::uint8_t, 16> key{};
    for (unsigned i = 0; i < 16; ++i) {
        key[i] = static_cast<std::uint8_t>(i);
    }
    EXPECT_EQ(SipHash24::hash(key, ""), 0x726fdb47dd0e0e31ULL);
    std::string fifteen;
    for (int i = 0; i < 15; ++i) {
        fifteen.push_back(static_cast<char>(i));
    }
    EXPECT_EQ(SipHash24::hash(key, fifteen), 0xa129ca6149be45e5ULL);
}

TEST(SipHash, StreamingEqualsOneShotForEverySplit) {
    std::array<std::uint8_t, 16> key{};
    for (unsigned i = 0; i < 16; ++i) {
        key[i] = static_cast<std::uint8_t>(i * 7 + 1);
    }
    const std::string text = "path-slash-prefix:/org/freedesktop/DBus/and/more";
    const std::uint64_t whole = SipHash24::hash(key, text);
    for (std::size_t a = 0; a <= text.size(); ++a) {
        for (std::size_t b = a; b <= text.size(); b += 5) {
            SipHash24 state(key);
            state.update(std::string_view(text).substr(0, a));
            state.update(std::string_view(text).substr(a, b - a));
            state.update(std::string_view(text).substr(b));
            EXPECT_EQ(state.finish(), whole) << a << "," << b;
        }
    }
}

TEST(Bloom, ElementBitsMatchTestVectors) {
    EXPECT_EQ(bloom_element_bits("interface:org.freedesktop.DBus"),
              bits({419, 384, 90, 1, 317, 249, 417, 474}));
    EXPECT_EQ(bloom_element_bits("member:NameOwnerChanged"), bits({289, 108, 414, 301, 234, 125, 244, 433}));
    EXPECT_EQ(bloom_element_bits("message-type:signal"), bits({388, 108, 102, 383, 132, 138, 312, 309}));
    EXPECT_EQ(bloom_element_bits("path:/org/freedesktop/DBus"),
              bits({281, 246, 377, 301, 215, 27, 143, 494}));
    EXPECT_EQ(bloom_element_bits("arg0:org.example.Foo"), bits({8, 445, 243, 448, 56, 96, 363, 367}));
}

TEST(Bloom, KeyValueElementEqualsConcatenatedString) {
    BloomBits pieces;
    pieces.add_element("member", "NameOwnerChanged");
    BloomBits whole;
    for (auto bit : bloom_element_bits("member:NameOwnerChanged")) {
        whole.set(bit);
    }
    EXPECT_EQ(pieces, whole);
}

TEST(Bloom, HeaderOnlySignalFilterMatchesTestVector) {
    BloomFilter filter;
    filter.add_message_type("signal");
    filter.add_interface("org.freedesktop.DBus");
    filter.add_member("NameOwnerChanged");
    filter.add_path("/org/freedesktop/DBus");
    EXPECT_EQ(filter.words(),
              parse_words("6821400408081002 2001114004440010 0203080800808410 0250042020800060 "
                          "2120258202002156 8208000400000000 8003001a41082011 2100400004100000"));
}

BloomFilter example_signal_filter() {
    BloomFilter filter;
    filter.add_message_type("signal");
    filter.add_interface("org.example.Iface");
    filter.add_member("Changed");
    filter.add_path("/org/example/Obj");
    EXPECT_TRUE(filter.add_argument(0, "org.example.Foo"));
    return filter;
}

TEST(Bloom, SignalWithArgumentFilterMatchesTestVector) {
    EXPECT_EQ(example_signal_filter().words(),
              parse_words("0163204000002102 0001104fc6a40098 305a0808e1008710 08080810000a8084 "
                          "2d210da80800897e 9002884408860a00 aa51c311a5088014 9340080662145801"));
}

TEST(Bloom, MaskMatchesTestVectorAndIsCoveredByFilter) {
    BloomMask mask;
    mask.add_message_type("signal");
    mask.add_interface("org.example.Iface");
    EXPECT_TRUE(mask.add_argument_namespace(0, "org.example"));
    EXPECT_EQ(mask.words(),
              parse_words("0000000000000000 0000104800000000 0040080040000510 0008001000020004 "
                          "0120000800000000 8000004000040200 0000810000000010 0000000000000800"));
    EXPECT_TRUE(example_signal_filter().covers(mask));
}

TEST(Bloom, MaskWithAnElementTheMessageLacksIsNotCovered) {
    BloomMask mask;
    mask.add_member("SomethingElse");
    EXPECT_FALSE(example_signal_filter().covers(mask));
}

TEST(Bloom, EmptyMaskIsWildcardAndFullMaskIsNot) {
    EXPECT_TRUE(BloomFilter().covers(BloomMask()));
    BloomBits::Words ones;
    ones.fill(~uint64_t{0});
    EXPECT_FALSE(example_signal_filter().covers(BloomMask(ones)));
}

TEST(Bloom, PathAddsAllSlashPrefixesWithV221Semantics) {
    BloomFilter filter;
    filter.add_path("/foo/bar/waldo");
    BloomBits expected;
    expected.add_element("path", "/foo/bar/waldo");
    for (auto prefix : {"/foo/bar/waldo", "/foo/bar/", "/foo/bar", "/foo/", "/foo", "/"}) {
        expected.add_element("path-slash-prefix", prefix);
    }
    EXPECT_EQ(static_cast<const BloomBits&>(filter), expected);
}

TEST(Bloom, ArgumentAddsValueDotPrefixesAndSlashPrefixes) {
    BloomFilter filter;
    ASSERT_TRUE(filter.add_argument(7, "a.b/c"));
    BloomBits expected;
    expected.add_element("arg7", "a.b/c");
    for (auto prefix : {"a.b/c", "a.", "a"}) {
        expected.add_element("arg7-dot-prefix", prefix);
    }
    for (auto prefix : {"a.b/c", "a.b/", "a.b"}) {
        expected.add_element("arg7-slash-prefix", prefix);
    }
    EXPECT_EQ(static_cast<const BloomBits&>(filter), expected);
}

TEST(Bloom, LaterArgumentsAreIncludedNotOnlyTheFirst) {
    BloomFilter filter;
    filter.add_argument(0, "first");
    filter.add_argument(1, "second");
    filter.add_argument(63, "last");
    BloomMask arg1;
    arg1.add_argument(1, "second");
    BloomMask arg63;
    arg63.add_argument(63, "last");
    EXPECT_TRUE(filter.covers(arg1));
    EXPECT_TRUE(filter.covers(arg63));
    EXPECT_FALSE(filter.add_argument(64, "too far"));
    EXPECT_FALSE(BloomMask().add_argument(64, "too far"));
}

TEST(Bloom, StringArgumentAfterANonStringOneStillMatchesItsIndex) {
    // Signal (u, s): the gateway skips arg0 and adds arg1 at index 1, so "arg1='x'" is not a false negative.
    BloomFilter filter;
    filter.add_message_type("signal");
    filter.add_argument(1, "x");
    BloomMask mask;
    mask.add_argument(1, "x");
    EXPECT_TRUE(filter.covers(mask));
    BloomMask arg0;
    arg0.add_argument(0, "x");
    EXPECT_FALSE(filter.covers(arg0));
}

TEST(Bloom, ArgumentHasMatchesArrayElement) {
    BloomFilter filter;
    filter.add_argument_array_element(2, "x");
    filter.add_argument_array_element(2, "y");
    BloomMask mask;
    mask.add_argument_has(2, "y");
    EXPECT_TRUE(filter.covers(mask));
    BloomMask other;
    other.add_argument_has(2, "z");
    EXPECT_FALSE(filter.covers(other));
}

// ---- Property test: an exact dbus1 match never fails the bloom check. ----

struct TestMessage {
    std::string type, interface, member, path;
    // A string argument, an array of strings, or (monostate) a non-string argument.
    std::vector<std::variant<std::monostate, std::string, std::vector<std::string>>> args;
};

struct TestRule {
    std::optional<std::string> type, interface, member, path, path_namespace;
    struct Arg {
        unsigned index;
        enum Kind { equal, has, dot_namespace, path } kind;
        std::string value;
    };
    std::vector<Arg> args;
};

bool has_prefix_at(const std::string& value, const std::string& prefix, char separator) {
    if (value == prefix) {
        return true;
    }
    if (prefix.size() >= value.size() || value.compare(0, prefix.size(), prefix) != 0) {
        return false;
    }
    return prefix.back() == separator || value[prefix.size()] == separator;
}

bool exact_match(const TestRule& rule, const TestMessage& m) {
    if (rule.type && *rule.type != m.type) {
        return false;
    }
    if (rule.interface && *rule.interface != m.interface) {
        return false;
    }
    if (rule.member && *rule.member != m.member) {
        return false;
    }
    if (rule.path && *rule.path != m.path) {
        return false;
    }
    if (rule.path_namespace &&
        !(*rule.path_namespace == "/" || has_prefix_at(m.path, *rule.path_namespace, '/'))) {
        return false;
    }
    for (const auto& arg : rule.args) {
        if (arg.index >= m.args.size()) {
            return false;
        }
        const auto& value = m.args[arg.index];
        const auto* text = std::get_if<std::string>(&value);
        const auto* array = std::get_if<std::vector<std::string>>(&value);
        switch (arg.kind) {
            case TestRule::Arg::equal:
                if (!text || *text != arg.value) {
                    return false;
                }
                break;
            case TestRule::Arg::has:
                if (!array || std::find(array->begin(), array->end(), arg.value) == array->end()) {
                    return false;
                }
                break;
            case TestRule::Arg::dot_namespace:
                if (!text || !has_prefix_at(*text, arg.value, '.')) {
                    return false;
                }
                break;
            case TestRule::Arg::path: {
                // Two-way prefix match on '/'-terminated prefixes (dbus1 argNpath).
                if (!text) {
                    return false;
                }
                const std::string& a = *text;
                const std::string& b = arg.value;
                bool ok = a == b || (!b.empty() && b.back() == '/' && a.starts_with(b)) ||
                          (!a.empty() && a.back() == '/' && b.starts_with(a));
                if (!ok) {
                    return false;
                }
                break;
            }
        }
    }
    return true;
}

// The gateway's rule: every string-like argument at its own index, arrays of strings as argN-has.
BloomFilter filter_for(const TestMessage& m) {
    BloomFilter filter;
    filter.add_message_type(m.type);
    filter.add_interface(m.interface);
    filter.add_member(m.member);
    filter.add_path(m.path);
    for (unsigned i = 0; i < m.args.size(); ++i) {
        if (const auto* text = std::get_if<std::string>(&m.args[i])) {
            filter.add_argument(i, *text);
        } else if (const auto* array = std::get_if<std::vector<std::string>>(&m.args[i])) {
            for (const auto& element : *array) {
                filter.add_argument_array_element(i, element);
            }
        }
    }
    return filter;
}

BloomMask mask_for(const TestRule& rule) {
    BloomMask mask;
    if (rule.type) {
        mask.add_message_type(*rule.type);
    }
    if (rule.interface) {
        mask.add_interface(*rule.interface);
    }
    if (rule.member) {
        mask.add_member(*rule.member);
    }
    if (rule.path) {
        mask.add_path(*rule.path);
    }
    if (rule.path_namespace) {
        mask.add_path_namespace(*rule.path_namespace);
    }
    for (const auto& arg : rule.args) {
        switch (arg.kind) {
            case TestRule::Arg::equal:
                mask.add_argument(arg.index, arg.value);
                break;
            case TestRule::Arg::has:
                mask.add_argument_has(arg.index, arg.value);
                break;
            case TestRule::Arg::dot_namespace:
                mask.add_argument_namespace(arg.index, arg.value);
                break;
            case TestRule::Arg::path:
                break;  // cannot be expressed in a bloom mask
        }
    }
    return mask;
}

TEST(BloomProperty, ExactMatchesAreNeverRejectedAndFalsePositiveRateIsReported) {
    std::mt19937_64 rng(20240611);
    auto pick = [&](const std::vector<std::string>& from) { return from[rng() % from.size()]; };
    auto chance = [&](unsigned percent) { return rng() % 100 < percent; };
    const std::vector<std::string> types = {"signal", "method_call", "method_return", "error"};
    const std::vector<std::string> interfaces = {"org.example.A", "org.example.B", "org.freedesktop.DBus",
                                                 "com.acme.Widget"};
    const std::vector<std::string> members = {"Changed", "NameOwnerChanged", "Ping", "PropertiesChanged"};
    const std::vector<std::string> paths = {
        "/", "/org", "/org/example", "/org/example/Obj", "/com/acme/w1", "/org/example/Obj/child"};
    const std::vector<std::string> strings = {
        "org.example",      "org.example.Foo", "org", "foo", "/org/example/",
        "/org/example/Obj", "a.b.c",           "",    "x"};

    std::uint64_t exact = 0, bloom_accepts_non_matching = 0, non_matching = 0;
    std::uint64_t expressible_non_matching = 0, expressible_false_positives = 0;
    for (int round = 0; round < 20000; ++round) {
        TestMessage m{pick(types), pick(interfaces), pick(members), pick(paths), {}};
        const unsigned n_args = static_cast<unsigned>(rng() % 5);
        for (unsigned i = 0; i < n_args; ++i) {
            const auto kind = rng() % 6;
            if (kind == 0) {
                m.args.emplace_back(std::monostate{});
            } else if (kind == 1) {
                std::vector<std::string> array;
                for (unsigned j = rng() % 3; j > 0; --j) {
                    array.push_back(pick(strings));
                }
                m.args.emplace_back(std::move(array));
            } else {
                m.args.emplace_back(pick(strings));
            }
        }
        const BloomFilter filter = filter_for(m);
        for (int r = 0; r < 8; ++r) {
            TestRule rule;
            if (chance(50)) {
                rule.type = pick(types);
            }
            if (chance(50)) {
                rule.interface = pick(interfaces);
            }
            if (chance(40)) {
                rule.member = pick(members);
            }
            if (chance(20)) {
                rule.path = pick(paths);
            } else if (chance(20)) {
                rule.path_namespace = pick(paths);
            }
            for (unsigned k = rng() % 3; k > 0; --k) {
                rule.args.push_back({static_cast<unsigned>(rng() % 4),
                                     static_cast<TestRule::Arg::Kind>(rng() % 4), pick(strings)});
            }
            const bool matches = exact_match(rule, m);
            const bool accepted = filter.covers(mask_for(rule));
            if (matches) {
                ++exact;
                ASSERT_TRUE(accepted) << "false negative in round " << round;
            } else {
                ++non_matching;
                if (accepted) {
                    ++bloom_accepts_non_matching;
                }
                // Rules without argNpath are fully expressed in the mask: their false positives are hash
                // collisions only.
                const bool expressible = std::none_of(rule.args.begin(), rule.args.end(), [](const auto& a) {
                    return a.kind == TestRule::Arg::path;
                });
                if (expressible) {
                    ++expressible_non_matching;
                    if (accepted) {
                        ++expressible_false_positives;
                    }
                }
            }
        }
    }
    ASSERT_GT(exact, 1000u);
    ASSERT_GT(non_matching, 1000u);
    const double rate = static_cast<double>(bloom_accepts_non_matching) / static_cast<double>(non_matching);
    std::printf(
        "bloom property: %llu exact matches, all accepted; false positives %llu of %llu non-matching "
        "(%.4f%%)\n",
        static_cast<unsigned long long>(exact), static_cast<unsigned long long>(bloom_accepts_non_matching),
        static_cast<unsigned long long>(non_matching), 100.0 * rate);
    std::printf("bloom property: rules without argNpath: false positives %llu of %llu (%.4f%%)\n",
                static_cast<unsigned long long>(expressible_false_positives),
                static_cast<unsigned long long>(expressible_non_matching),
                100.0 * static_cast<double>(expressible_false_positives) /
                    static_cast<double>(expressible_non_matching));
    RecordProperty("false_positive_rate", std::to_string(rate));
}

}  // namespace
}  // namespace busgate::core
