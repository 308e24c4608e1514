#include <gtest/gtest.h>

#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "busgate/marshal/message.h"
#include "busgate/marshal/reader.h"
#include "busgate/marshal/rewrite.h"
#include "busgate/marshal/writer.h"

using namespace busgate::marshal;

namespace {

std::vector<std::uint8_t> routed(const std::vector<std::uint8_t>& message, std::string_view sender) {
    MessageHeader header;
    EXPECT_EQ(parse_message(message, header), Validity::valid);
    std::vector<std::uint8_t> out;
    rewrite_header_with_sender(message, header, sender, out);
    EXPECT_EQ(out.size() % 8, 0u);
    const auto body = body_of(message, header);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

}  // namespace

TEST(Rewrite, StampsSenderAndKeepsEverythingElse) {
    for (ByteOrder order : {ByteOrder::little, ByteOrder::big}) {
        BodyWriter body(order);
        body.string("payload").open_array("{sv}").open_dict_entry().string("k").open_variant("t").uint64(7);
        body.close_variant().close_dict_entry().close_array();
        const auto message = build_message({.type = MessageType::method_call,
                                            .flags = flag::no_auto_start,
                                            .serial = 31,
                                            .path = "/o",
                                            .interface = "a.b",
                                            .member = "Call",
                                            .destination = "org.x.Service",
                                            .unix_fds = 2},
                                           body);
        const auto stamped = routed(message, ":1.9");
        MessageHeader header;
        ASSERT_EQ(parse_message(stamped, header), Validity::valid);
        EXPECT_EQ(header.byte_order, order);
        EXPECT_EQ(header.sender, ":1.9");
        EXPECT_EQ(header.serial, 31u);
        EXPECT_EQ(header.flags, flag::no_auto_start);
        EXPECT_EQ(header.path, "/o");
        EXPECT_EQ(header.interface, "a.b");
        EXPECT_EQ(header.member, "Call");
        EXPECT_EQ(header.destination, "org.x.Service");
        EXPECT_EQ(header.signature, "sa{sv}");
        EXPECT_EQ(header.unix_fds, 2u);
        BodyReader reader(stamped, header);
        EXPECT_EQ(reader.read_string(), "payload");
    }
}

TEST(Rewrite, ReplacesAClientSuppliedSender) {
    const auto forged = build_message({.type = MessageType::signal,
                                       .path = "/",
                                       .interface = "a.b",
                                       .member = "S",
                                       .sender = "org.freedesktop.DBus"});
    const auto stamped = routed(forged, ":1.3");
    MessageHeader header;
    ASSERT_EQ(parse_message(stamped, header), Validity::valid);
    EXPECT_EQ(header.sender, ":1.3");
}

TEST(Rewrite, DropsUnknownHeaderFields) {
    BodyWriter fields;
    fields.byte('l').byte(1).byte(0).byte(1).uint32(0).uint32(5).open_array("(yv)");
    fields.open_struct().byte(1).open_variant("o").object_path("/x").close_variant().close_struct();
    fields.open_struct().byte(3).open_variant("s").string("M").close_variant().close_struct();
    fields.open_struct().byte(77).open_variant("s").string("forged").close_variant().close_struct();
    fields.close_array();
    std::vector<std::uint8_t> message = fields.data();
    message.resize(align_up(message.size(), 8), 0);
    message[0] = static_cast<std::uint8_t>(native_byte_order);
    const auto stamped = routed(message, ":1.1");
    MessageHeader header;
    ASSERT_EQ(parse_message(stamped, header), Validity::valid);
    const std::string_view text(reinterpret_cast<const char*>(stamped.data()), stamped.size());
    EXPECT_EQ(text.find("forged"), std::string_view::npos);
    EXPECT_EQ(header.path, "/x");
    EXPECT_EQ(header.member, "M");
}

TEST(Rewrite, BodyIsNotTouched) {
    BodyWriter body;
    body.byte(0xab).uint64(0x1122334455667788);
    const auto message = build_message({.type = MessageType::method_call, .path = "/", .member = "M"}, body);
    const auto stamped = routed(message, ":1.12345");
    const std::vector<std::uint8_t> tail(stamped.end() - static_cast<long>(body.data().size()),
                                         stamped.end());
    EXPECT_EQ(tail, body.data());
}

namespace {

// `message` stamped in front, in a buffer with `headroom` free bytes before it; and where its body
// lay before and after.
struct StampedInFront {
    std::vector<std::uint8_t> buffer;
    std::span<const std::uint8_t> message;
    const std::uint8_t* body_before = nullptr;
    const std::uint8_t* body_after = nullptr;
};

StampedInFront stamp_in_front(const std::vector<std::uint8_t>& message, std::string_view sender) {
    StampedInFront result;
    const std::size_t headroom = 64;
    result.buffer.assign(headroom, 0xee);
    result.buffer.insert(result.buffer.end(), message.begin(), message.end());
    std::uint8_t* start = result.buffer.data() + headroom;
    MessageHeader header;
    EXPECT_EQ(parse_message({start, message.size()}, header), Validity::valid);
    EXPECT_TRUE(stampable_in_front(header));
    result.body_before = start + header.body_offset;
    std::uint8_t* stamped = stamp_sender_in_front(start, header, sender);
    EXPECT_EQ(static_cast<std::size_t>(start - stamped), sender_field_room(sender));
    result.message = {stamped, message.size() + sender_field_room(sender)};
    MessageHeader after;
    EXPECT_EQ(parse_message(result.message, after), Validity::valid);
    result.body_after = stamped + after.body_offset;
    return result;
}

}  // namespace

TEST(Rewrite, StampingInFrontGivesTheRewrittenMessageAndLeavesTheBodyWhereItWas) {
    for (ByteOrder order : {ByteOrder::little, ByteOrder::big}) {
        for (std::string_view sender : {":1.9", ":1.1234567", ":1.123456789012345"}) {
            BodyWriter body(order);
            body.string("payload").uint32(7);
            const auto message = build_message({.type = MessageType::method_call,
                                                .flags = flag::no_auto_start,
                                                .serial = 31,
                                                .path = "/o",
                                                .interface = "a.b",
                                                .member = "Call",
                                                .destination = "org.x.Service",
                                                .unix_fds = 2},
                                               body);
            const StampedInFront in_front = stamp_in_front(message, sender);
            EXPECT_EQ(in_front.body_after, in_front.body_before) << sender;
            // Field for field what the rewrite gives, in another order.
            const auto rewritten = routed(message, sender);
            MessageHeader expected;
            MessageHeader got;
            ASSERT_EQ(parse_message(rewritten, expected), Validity::valid);
            ASSERT_EQ(parse_message(in_front.message, got), Validity::valid);
            EXPECT_EQ(got.byte_order, order);
            EXPECT_EQ(got.sender, sender);
            EXPECT_EQ(got.serial, expected.serial);
            EXPECT_EQ(got.flags, expected.flags);
            EXPECT_EQ(got.path, expected.path);
            EXPECT_EQ(got.interface, expected.interface);
            EXPECT_EQ(got.member, expected.member);
            EXPECT_EQ(got.destination, expected.destination);
            EXPECT_EQ(got.signature, expected.signature);
            EXPECT_EQ(got.unix_fds, expected.unix_fds);
            EXPECT_EQ(got.total_size(), expected.total_size());
            BodyReader reader(in_front.message, got);
            EXPECT_EQ(reader.read_string(), "payload");
        }
    }
}

TEST(Rewrite, OnlyAMessageWithoutSenderOrUnknownFieldsIsStampedInFront) {
    const auto plain =
        build_message({.type = MessageType::signal, .path = "/", .interface = "a.b", .member = "S"});
    const auto forged = build_message(
        {.type = MessageType::signal, .path = "/", .interface = "a.b", .member = "S", .sender = ":1.1"});
    BodyWriter fields;
    fields.byte('l').byte(1).byte(0).byte(1).uint32(0).uint32(5).open_array("(yv)");
    fields.open_struct().byte(1).open_variant("o").object_path("/x").close_variant().close_struct();
    fields.open_struct().byte(77).open_variant("s").string("unknown").close_variant().close_struct();
    fields.open_struct().byte(3).open_variant("s").string("M").close_variant().close_struct();
    fields.close_array();
    std::vector<std::uint8_t> unknown = fields.data();
    unknown.resize(align_up(unknown.size(), 8), 0);
    unknown[0] = static_cast<std::uint8_t>(native_byte_order);
    for (const auto& [message, expected] : {std::pair{plain, true}, {forged, false}, {unknown, false}}) {
        MessageHeader header;
        ASSERT_EQ(parse_message(message, header), Validity::valid);
        EXPECT_EQ(stampable_in_front(header), expected);
    }
}
