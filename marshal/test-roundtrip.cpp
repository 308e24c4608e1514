// Round trips of randomly generated signatures and values through BodyWriter, build_message,
// parse_message and BodyReader, in both byte orders.
#include <gtest/gtest.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "busgate/marshal/message.h"
#include "busgate/marshal/reader.h"
#include "busgate/marshal/signature.h"
#include "busgate/marshal/writer.h"

using namespace busgate::marshal;

namespace {

struct Value {
    std::string type;  // complete type
    std::uint64_t number = 0;
    std::string text;
    std::vector<Value> children;  // elements, fields, key and value, or the variant's content
    bool operator==(const Value&) const = default;
};

class Generator {
  public:
    explicit Generator(std::uint32_t seed) : rng_(seed) {}

    std::string type(int depth) {
        static constexpr std::string_view basic = "ybnqiuxtdsogh";
        const int choice = pick(depth >= 4 ? 13 : 17);
        if (choice < 13) {
            return std::string(1, basic[choice]);
        }
        switch (choice) {
            case 13:
                return "v";
            case 14:
                return "a" + type(depth + 1);
            case 15: {
                std::string fields = "(";
                for (int i = pick(3); i >= 0; --i) {
                    fields += type(depth + 1);
                }
                return fields + ")";
            }
            default:
                return "a{" + std::string(1, basic[pick(13)]) + type(depth + 1) + "}";
        }
    }

    Value value(const std::string& complete, int depth) {
        Value v{complete};
        const char code = complete.front();
        switch (code) {
            case 'y':
                v.number = pick(256);
                break;
            case 'b':
                v.number = pick(2);
                break;
            case 'n':
            case 'q':
                v.number = rng_() & 0xffff;
                break;
            case 'i':
            case 'u':
            case 'h':
                v.number = rng_();
                break;
            case 'x':
            case 't':
                v.number = (std::uint64_t{rng_()} << 32) | rng_();
                break;
            case 'd':
                v.number = std::bit_cast<std::uint64_t>(static_cast<double>(rng_()) / 7.0);
                break;
            case 's':
                v.text = text();
                break;
            case 'o':
                v.text = path();
                break;
            case 'g':
                v.text = depth < 4 ? type(depth) : "a{sv}";
                break;
            case 'v': {
                const std::string inner = type(depth + 1);
                v.children.push_back(value(inner, depth + 1));
                break;
            }
            case '(':
            case '{': {
                const std::string_view inner = std::string_view(complete).substr(1, complete.size() - 2);
                for (std::size_t at = 0; at < inner.size(); at = complete_type_end(inner, at)) {
                    v.children.push_back(value(std::string(complete_type_at(inner, at)), depth + 1));
                }
                break;
            }
            case 'a': {
                const std::string element = complete.substr(1);
                for (int i = pick(4); i > 0; --i) {
                    v.children.push_back(value(element, depth + 1));
                }
                break;
            }
        }
        return v;
    }

    int pick(int n) { return static_cast<int>(rng_() % static_cast<std::uint32_t>(n)); }

  private:
    std::string text() {
        static const char* pieces[] = {"a", "Z", " ", "é", "€", "😀", "\x7f", "_", "."};
        std::string s;
        for (int i = pick(6); i > 0; --i) {
            s += pieces[pick(9)];
        }
        return s;
    }
    std::string path() {
        std::string p;
        for (int i = pick(4); i > 0; --i) {
            p += "/e" + std::to_string(pick(100));
        }
        return p.empty() ? "/" : p;
    }

    std::mt19937 rng_;
};

void write(BodyWriter& w, const Value& v) {
    switch (v.type.front()) {
        case 'y':
            w.byte(static_cast<std::uint8_t>(v.number));
            break;
        case 'b':
            w.boolean(v.number != 0);
            break;
        case 'n':
            w.int16(static_cast<std::int16_t>(v.number));
            break;
        case 'q':
            w.uint16(static_cast<std::uint16_t>(v.number));
            break;
        case 'i':
            w.int32(static_cast<std::int32_t>(v.number));
            break;
        case 'u':
            w.uint32(static_cast<std::uint32_t>(v.number));
            break;
        case 'h':
            w.unix_fd(static_cast<std::uint32_t>(v.number));
            break;
        case 'x':
            w.int64(static_cast<std::int64_t>(v.number));
            break;
        case 't':
            w.uint64(v.number);
            break;
        case 'd':
            w.double_(std::bit_cast<double>(v.number));
            break;
        case 's':
            w.string(v.text);
            break;
        case 'o':
            w.object_path(v.text);
            break;
        case 'g':
            w.signature(v.text);
            break;
        case 'v':
            w.open_variant(v.children[0].type);
            write(w, v.children[0]);
            w.close_variant();
            break;
        case '(':
            w.open_struct();
            for (const auto& field : v.children) {
                write(w, field);
            }
            w.close_struct();
            break;
        case 'a':
            w.open_array(std::string_view(v.type).substr(1));
            for (const auto& element : v.children) {
                if (v.type[1] == '{') {
                    w.open_dict_entry();
                    write(w, element.children[0]);
                    write(w, element.children[1]);
                    w.close_dict_entry();
                } else {
                    write(w, element);
                }
            }
            w.close_array();
            break;
    }
}

Value read(BodyReader& r) {
    Value v{std::string(r.peek_signature())};
    switch (r.peek()) {
        case 'y':
            v.number = r.read_byte().value();
            break;
        case 'b':
            v.number = r.read_boolean().value();
            break;
        case 'n':
            v.number = static_cast<std::uint16_t>(r.read_int16().value());
            break;
        case 'q':
            v.number = r.read_uint16().value();
            break;
        case 'i':
            v.number = static_cast<std::uint32_t>(r.read_int32().value());
            break;
        case 'u':
            v.number = r.read_uint32().value();
            break;
        case 'h':
            v.number = r.read_unix_fd().value();
            break;
        case 'x':
            v.number = static_cast<std::uint64_t>(r.read_int64().value());
            break;
        case 't':
            v.number = r.read_uint64().value();
            break;
        case 'd':
            v.number = std::bit_cast<std::uint64_t>(r.read_double().value());
            break;
        case 's':
            v.text = r.read_string().value();
            break;
        case 'o':
            v.text = r.read_object_path().value();
            break;
        case 'g':
            v.text = r.read_signature().value();
            break;
        default:
            EXPECT_TRUE(r.enter());
            while (!r.at_end()) {
                v.children.push_back(read(r));
            }
            EXPECT_TRUE(r.leave());
            break;
    }
    return v;
}

}  // namespace

TEST(RoundTrip, RandomValuesSurviveWriteParseAndRead) {
    int messages = 0;
    for (std::uint32_t seed = 1; seed <= 400; ++seed) {
        Generator generator(seed);
        std::vector<Value> values;
        std::string signature;
        for (int i = generator.pick(4); i >= 0; --i) {
            std::string complete = generator.type(0);
            if (signature.size() + complete.size() > limit::signature_length) {
                break;
            }
            signature += complete;
            values.push_back(generator.value(complete, 0));
        }
        ASSERT_EQ(validate_signature(signature), Validity::valid) << signature;
        for (ByteOrder order : {ByteOrder::little, ByteOrder::big}) {
            BodyWriter body(order);
            for (const auto& value : values) {
                write(body, value);
            }
            ASSERT_EQ(body.written_signature(), signature);
            const auto message = build_message(
                {.type = MessageType::method_call, .serial = seed, .path = "/t", .member = "M"}, body);
            MessageHeader header;
            ASSERT_EQ(parse_message(message, header), Validity::valid)
                << "seed " << seed << " signature " << signature;
            ASSERT_EQ(header.signature, signature);
            BodyReader reader(message, header);
            for (const auto& expected : values) {
                ASSERT_EQ(read(reader), expected) << "seed " << seed << " signature " << signature;
            }
            EXPECT_TRUE(reader.at_end());
            EXPECT_FALSE(reader.failed());
            ++messages;
        }
    }
    EXPECT_EQ(messages, 800);
}

TEST(RoundTrip, ByteOrdersDifferOnlyInByteOrder) {
    BodyWriter little(ByteOrder::little);
    BodyWriter big(ByteOrder::big);
    for (BodyWriter* w : {&little, &big}) {
        w->uint32(0x11223344).int16(-2).string("s");
    }
    EXPECT_EQ(little.data()[0], 0x44);
    EXPECT_EQ(big.data()[0], 0x11);
    EXPECT_EQ(little.data()[4], 0xfe);
    EXPECT_EQ(big.data()[5], 0xfe);
    EXPECT_EQ(little.data().size(), big.data().size());
}

TEST(Reader, FailsInsteadOfReadingPastTheEnd) {
    const std::vector<std::uint8_t> truncated = {9, 0, 0, 0, 'a'};
    BodyReader reader(truncated, 0, truncated.size(), "s", ByteOrder::little);
    EXPECT_FALSE(reader.read_string().has_value());
    EXPECT_TRUE(reader.failed());

    BodyReader wrong_type(truncated, 0, truncated.size(), "s", ByteOrder::little);
    EXPECT_FALSE(wrong_type.read_uint32().has_value());
    EXPECT_TRUE(wrong_type.failed());
}

TEST(Reader, LeaveSkipsTheRestOfAContainer) {
    BodyWriter body;
    body.open_struct().int32(1).string("skipped").open_array("i").int32(5).close_array().close_struct().byte(
        9);
    BodyReader reader(body.data(), 0, body.data().size(), body.written_signature(), native_byte_order);
    ASSERT_TRUE(reader.enter());
    EXPECT_EQ(reader.read_int32(), 1);
    ASSERT_TRUE(reader.leave());
    EXPECT_EQ(reader.read_byte(), 9);
    EXPECT_TRUE(reader.at_end());
}
