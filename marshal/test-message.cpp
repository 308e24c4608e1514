#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "busgate/marshal/message.h"
#include "busgate/marshal/reader.h"
#include "busgate/marshal/writer.h"

using namespace busgate::marshal;

namespace {

using Bytes = std::vector<std::uint8_t>;

// A message with hand-written header fields, for headers build_message() would never produce, and as the
// general writer's reference for the ones it does.
Bytes raw_message(std::uint8_t type, const std::function<void(BodyWriter&)>& fields,
                  const BodyWriter& body = BodyWriter(), ByteOrder order = native_byte_order,
                  std::uint32_t serial = 7, std::uint8_t flags = 0) {
    BodyWriter header(order);
    header.byte(static_cast<std::uint8_t>(order)).byte(type).byte(flags).byte(1);
    header.uint32(static_cast<std::uint32_t>(body.data().size())).uint32(serial).open_array("(yv)");
    fields(header);
    header.close_array();
    Bytes message = header.data();
    message.resize(align_up(message.size(), 8), 0);
    message.insert(message.end(), body.data().begin(), body.data().end());
    return message;
}

void string_field(BodyWriter& w, std::uint8_t code, char type_code, std::string_view value) {
    w.open_struct().byte(code).open_variant(std::string_view(&type_code, 1));
    if (type_code == 'o') {
        w.object_path(value);
    } else if (type_code == 'g') {
        w.signature(value);
    } else {
        w.string(value);
    }
    w.close_variant().close_struct();
}

void uint_field(BodyWriter& w, std::uint8_t code, std::uint32_t value) {
    w.open_struct().byte(code).open_variant("u").uint32(value).close_variant().close_struct();
}

Validity parse(const Bytes& message) {
    MessageHeader header;
    return parse_message(message, header);
}

Bytes call_with_body(const BodyWriter& body, ByteOrder = native_byte_order) {
    return build_message({.type = MessageType::method_call, .path = "/a", .member = "M"}, body);
}

Validity validate_body_bytes(std::string_view signature, const Bytes& body) {
    return validate_values(body, 0, body.size(), signature, ByteOrder::little);
}

}  // namespace

TEST(Header, ParsesEveryKnownField) {
    BodyWriter body;
    body.string("x");
    const Bytes message = build_message({.type = MessageType::error,
                                         .flags = flag::no_auto_start,
                                         .serial = 99,
                                         .path = "/p",
                                         .interface = "a.b",
                                         .member = "M",
                                         .error_name = "org.E.Failed",
                                         .destination = ":1.7",
                                         .sender = "org.x.Y",
                                         .reply_serial = 12,
                                         .unix_fds = 3},
                                        body);
    MessageHeader header;
    ASSERT_EQ(parse_message(message, header), Validity::valid);
    EXPECT_EQ(header.type, MessageType::error);
    EXPECT_EQ(header.flags, flag::no_auto_start);
    EXPECT_EQ(header.serial, 99u);
    EXPECT_EQ(header.path, "/p");
    EXPECT_EQ(header.interface, "a.b");
    EXPECT_EQ(header.member, "M");
    EXPECT_EQ(header.error_name, "org.E.Failed");
    EXPECT_EQ(header.destination, ":1.7");
    EXPECT_EQ(header.sender, "org.x.Y");
    EXPECT_EQ(header.signature, "s");
    EXPECT_EQ(header.reply_serial, 12u);
    EXPECT_EQ(header.unix_fds, 3u);
    EXPECT_EQ(header.total_size(), message.size());
    EXPECT_TRUE(header.has(HeaderField::unix_fds));
    EXPECT_FALSE(header.expects_reply());
}

TEST(Header, BothByteOrdersParseToTheSameHeader) {
    for (ByteOrder order : {ByteOrder::little, ByteOrder::big}) {
        BodyWriter body(order);
        body.uint32(0x01020304).string("text");
        const Bytes message = build_message({.type = MessageType::signal,
                                             .serial = 0x0a0b0c0d,
                                             .path = "/s",
                                             .interface = "i.f",
                                             .member = "S"},
                                            body);
        EXPECT_EQ(message[0], static_cast<std::uint8_t>(order));
        MessageHeader header;
        ASSERT_EQ(parse_message(message, header), Validity::valid);
        EXPECT_EQ(header.byte_order, order);
        EXPECT_EQ(header.serial, 0x0a0b0c0du);
        BodyReader reader(message, header);
        EXPECT_EQ(reader.read_uint32(), 0x01020304u);
        EXPECT_EQ(reader.read_string(), "text");
    }
}

TEST(Header, RequiredFieldsPerMessageType) {
    EXPECT_EQ(parse(build_message({.type = MessageType::method_call, .member = "M"})),
              Validity::missing_path);
    EXPECT_EQ(parse(build_message({.type = MessageType::method_call, .path = "/"})),
              Validity::missing_member);
    EXPECT_EQ(parse(build_message({.type = MessageType::method_call, .path = "/", .member = "M"})),
              Validity::valid);
    EXPECT_EQ(parse(build_message({.type = MessageType::signal, .path = "/", .member = "M"})),
              Validity::missing_interface);
    EXPECT_EQ(
        parse(build_message({.type = MessageType::signal, .path = "/", .interface = "a.b", .member = "M"})),
        Validity::valid);
    EXPECT_EQ(parse(build_message({.type = MessageType::error, .reply_serial = 1})),
              Validity::missing_error_name);
    EXPECT_EQ(parse(build_message({.type = MessageType::error, .error_name = "a.b"})),
              Validity::missing_reply_serial);
    EXPECT_EQ(parse(build_message({.type = MessageType::method_return})), Validity::missing_reply_serial);
    EXPECT_EQ(parse(build_message({.type = MessageType::method_return, .reply_serial = 3})), Validity::valid);
}

TEST(Header, UnknownMessageTypesAreValidWithoutFields) {
    EXPECT_EQ(parse(raw_message(42, [](BodyWriter&) {})), Validity::valid);
}

TEST(Header, FixedPartIsChecked) {
    Bytes message = build_message({.type = MessageType::method_call, .path = "/", .member = "M"});
    Bytes bad = message;
    bad[0] = 'x';
    EXPECT_EQ(parse(bad), Validity::bad_byte_order);
    bad = message;
    bad[1] = 0;
    EXPECT_EQ(parse(bad), Validity::bad_message_type);
    bad = message;
    bad[3] = 2;
    EXPECT_EQ(parse(bad), Validity::bad_protocol_version);
    EXPECT_EQ(
        parse(build_message({.type = MessageType::method_call, .serial = 0, .path = "/", .member = "M"})),
        Validity::bad_serial);
}

TEST(Header, UnknownFlagsAreIgnored) {
    Bytes message = build_message({.type = MessageType::method_call, .path = "/", .member = "M"});
    message[2] = 0xf8;
    EXPECT_EQ(parse(message), Validity::valid);
}

TEST(Header, ExpectsReplyUnlessFlagged) {
    MessageHeader header;
    ASSERT_EQ(
        parse_message(build_message({.type = MessageType::method_call, .path = "/", .member = "M"}), header),
        Validity::valid);
    EXPECT_TRUE(header.expects_reply());
    ASSERT_EQ(parse_message(build_message({.type = MessageType::method_call,
                                           .flags = flag::no_reply_expected,
                                           .path = "/",
                                           .member = "M"}),
                            header),
              Validity::valid);
    EXPECT_FALSE(header.expects_reply());
}

TEST(Header, FieldContentsAreValidated) {
    EXPECT_EQ(parse(build_message(
                  {.type = MessageType::method_call, .path = "/", .interface = "nodot", .member = "M"})),
              Validity::bad_interface);
    EXPECT_EQ(parse(build_message({.type = MessageType::method_call, .path = "/", .member = "a.b"})),
              Validity::bad_member);
    EXPECT_EQ(parse(build_message({.type = MessageType::error, .error_name = "x", .reply_serial = 1})),
              Validity::bad_error_name);
    EXPECT_EQ(parse(build_message(
                  {.type = MessageType::method_call, .path = "/", .member = "M", .destination = "1.x"})),
              Validity::bad_destination);
    EXPECT_EQ(
        parse(build_message({.type = MessageType::method_call, .path = "/", .member = "M", .sender = "x"})),
        Validity::bad_sender);
    EXPECT_EQ(parse(build_message({.type = MessageType::method_call, .path = "/a/", .member = "M"})),
              Validity::bad_path);
    EXPECT_EQ(parse(raw_message(2, [](BodyWriter& w) { uint_field(w, 5, 0); })), Validity::bad_serial);
}

TEST(Header, LocalInterfaceAndPathAreReserved) {
    EXPECT_EQ(parse(build_message({.type = MessageType::signal,
                                   .path = "/a",
                                   .interface = "org.freedesktop.DBus.Local",
                                   .member = "Disconnected"})),
              Validity::uses_local_interface);
    EXPECT_EQ(parse(build_message(
                  {.type = MessageType::method_call, .path = "/org/freedesktop/DBus/Local", .member = "M"})),
              Validity::uses_local_path);
}

TEST(Header, FieldsMustHaveTheirTypes) {
    const auto path_as_string = [](BodyWriter& w) {
        string_field(w, 1, 's', "/a");
        string_field(w, 3, 's', "M");
    };
    EXPECT_EQ(parse(raw_message(1, path_as_string)), Validity::header_field_has_wrong_type);
    const auto serial_as_string = [](BodyWriter& w) { string_field(w, 5, 's', "1"); };
    EXPECT_EQ(parse(raw_message(2, serial_as_string)), Validity::header_field_has_wrong_type);
}

TEST(Header, FieldMayAppearOnlyOnce) {
    const auto twice = [](BodyWriter& w) {
        string_field(w, 1, 'o', "/a");
        string_field(w, 3, 's', "M");
        string_field(w, 3, 's', "N");
    };
    EXPECT_EQ(parse(raw_message(1, twice)), Validity::header_field_appears_twice);
}

TEST(Header, FieldCodeZeroIsInvalid) {
    EXPECT_EQ(parse(raw_message(42, [](BodyWriter& w) { string_field(w, 0, 's', "x"); })),
              Validity::header_field_code);
}

TEST(Header, UnknownFieldsAreSkippedButMustBeWellFormed) {
    const auto unknown = [](BodyWriter& w) {
        string_field(w, 1, 'o', "/a");
        w.open_struct()
            .byte(200)
            .open_variant("a{sv}")
            .open_array("{sv}")
            .close_array()
            .close_variant()
            .close_struct();
        string_field(w, 3, 's', "M");
    };
    MessageHeader header;
    const Bytes message = raw_message(1, unknown);
    ASSERT_EQ(parse_message(message, header), Validity::valid);
    EXPECT_EQ(header.member, "M");

    const auto bad_unknown = [](BodyWriter& w) { string_field(w, 100, 's', std::string_view("a\0b", 3)); };
    EXPECT_EQ(parse(raw_message(42, bad_unknown)), Validity::bad_utf8_in_string);
}

TEST(Header, PaddingAfterFieldsMustBeZero) {
    Bytes message = build_message({.type = MessageType::method_call, .path = "/", .member = "M"});
    MessageHeader header;
    ASSERT_EQ(parse_message(message, header), Validity::valid);
    ASSERT_LT(16 + header.fields_length, header.body_offset);
    message[16 + header.fields_length] = 1;
    EXPECT_EQ(parse(message), Validity::alignment_padding_not_nul);
}

TEST(Header, FramingRejectsOversizedLengthsBeforeReadingThem) {
    Bytes message = build_message({.type = MessageType::method_call, .path = "/", .member = "M"});
    EXPECT_EQ(frame_size(message).total, message.size());
    EXPECT_EQ(frame_size(std::span(message).first(15)).validity, Validity::not_enough_data);

    Bytes big = message;
    const std::uint32_t body_length = 128u * 1024 * 1024;
    std::memcpy(&big[4], &body_length, 4);
    big[0] = static_cast<std::uint8_t>(native_byte_order);
    EXPECT_EQ(frame_size(big).validity, Validity::message_too_long);
    EXPECT_EQ(frame_size(big, 1024).validity, Validity::insane_body_length);
    const std::uint32_t just_fits =
        128u * 1024 * 1024 - static_cast<std::uint32_t>(align_up(16 + message[12], 8));
    std::memcpy(&big[4], &just_fits, 4);
    EXPECT_EQ(frame_size(big).validity, Validity::valid);
    const std::uint32_t huge_fields = 0xfffffff0u;
    std::memcpy(&big[12], &huge_fields, 4);
    EXPECT_EQ(frame_size(big).validity, Validity::insane_fields_array_length);
}

TEST(Header, MessageMustBeExactlyOneFrame) {
    Bytes message = build_message({.type = MessageType::method_call, .path = "/", .member = "M"});
    message.push_back(0);
    EXPECT_EQ(parse(message), Validity::too_much_data);
    message.pop_back();
    message.pop_back();
    EXPECT_EQ(parse(message), Validity::not_enough_data);
}

TEST(Body, MustMatchTheSignatureExactly) {
    BodyWriter body;
    body.uint32(5);
    Bytes message = call_with_body(body);
    EXPECT_EQ(parse(message), Validity::valid);

    const Bytes no_signature = raw_message(
        1,
        [](BodyWriter& w) {
            string_field(w, 1, 'o', "/a");
            string_field(w, 3, 's', "M");
        },
        body);
    EXPECT_EQ(parse(no_signature), Validity::too_much_data);

    const Bytes short_body = raw_message(
        1,
        [](BodyWriter& w) {
            string_field(w, 1, 'o', "/a");
            string_field(w, 3, 's', "M");
            string_field(w, 8, 'g', "uu");
        },
        body);
    EXPECT_EQ(parse(short_body), Validity::not_enough_data);

    const Bytes bad_signature = raw_message(
        1,
        [](BodyWriter& w) {
            string_field(w, 1, 'o', "/a");
            string_field(w, 3, 's', "M");
            string_field(w, 8, 'g', "a");
        },
        body);
    EXPECT_EQ(parse(bad_signature), Validity::missing_array_element_type);
}

TEST(Body, BooleansAreZeroOrOne) {
    EXPECT_EQ(validate_body_bytes("b", {1, 0, 0, 0}), Validity::valid);
    EXPECT_EQ(validate_body_bytes("b", {2, 0, 0, 0}), Validity::boolean_not_zero_or_one);
    EXPECT_EQ(validate_body_bytes("ab", {8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0}),
              Validity::boolean_not_zero_or_one);
}

TEST(Body, PaddingMustBeZero) {
    EXPECT_EQ(validate_body_bytes("yu", {1, 0, 0, 0, 5, 0, 0, 0}), Validity::valid);
    EXPECT_EQ(validate_body_bytes("yu", {1, 0, 9, 0, 5, 0, 0, 0}), Validity::alignment_padding_not_nul);
    // An empty array of 8-aligned elements still pads to its element alignment.
    EXPECT_EQ(validate_body_bytes("at", {0, 0, 0, 0, 0, 0, 0, 0}), Validity::valid);
    EXPECT_EQ(validate_body_bytes("at", {0, 0, 0, 0, 0, 0, 1, 0}), Validity::alignment_padding_not_nul);
    EXPECT_EQ(validate_body_bytes("at", {0, 0, 0, 0}), Validity::not_enough_data);
}

TEST(Body, StringsAreUtf8WithTrailingNul) {
    EXPECT_EQ(validate_body_bytes("s", {2, 0, 0, 0, 'h', 'i', 0}), Validity::valid);
    EXPECT_EQ(validate_body_bytes("s", {2, 0, 0, 0, 'h', 'i', 1}), Validity::string_missing_nul);
    EXPECT_EQ(validate_body_bytes("s", {2, 0, 0, 0, 'h', 0, 0}), Validity::bad_utf8_in_string);
    EXPECT_EQ(validate_body_bytes("s", {2, 0, 0, 0, 0xc0, 0x80, 0}), Validity::bad_utf8_in_string);
    EXPECT_EQ(validate_body_bytes("s", {9, 0, 0, 0, 'h', 'i', 0}), Validity::length_out_of_bounds);
    EXPECT_EQ(validate_body_bytes("o", {2, 0, 0, 0, '/', 'a', 0}), Validity::valid);
    EXPECT_EQ(validate_body_bytes("o", {2, 0, 0, 0, 'a', '/', 0}), Validity::bad_path);
    EXPECT_EQ(validate_body_bytes("g", {2, 'a', 'y', 0}), Validity::valid);
    EXPECT_EQ(validate_body_bytes("g", {1, 'a', 0}), Validity::missing_array_element_type);
    EXPECT_EQ(validate_body_bytes("g", {2, 'a', 'y', 1}), Validity::signature_missing_nul);
    EXPECT_EQ(validate_body_bytes("g", {5, 'a', 'y', 0}), Validity::signature_length_out_of_bounds);
}

TEST(Body, FixedArraysMustHoldWholeElements) {
    EXPECT_EQ(validate_body_bytes("ai", {8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0}), Validity::valid);
    EXPECT_EQ(validate_body_bytes("ai", {6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0}),
              Validity::array_length_incorrect);
    EXPECT_EQ(validate_body_bytes("as", {5, 0, 0, 0, 1, 0, 0, 0, 'x', 0}), Validity::array_length_incorrect);
}

TEST(Body, ArraysAreAtMost64MiB) {
    const std::size_t limit = 64u * 1024 * 1024;
    for (const std::size_t length : {limit, limit + 1}) {
        Bytes body(4 + length, 0);
        const auto length32 = static_cast<std::uint32_t>(length);
        std::memcpy(body.data(), &length32, 4);
        const Validity validity = validate_values(body, 0, body.size(), "ay", native_byte_order);
        EXPECT_EQ(validity, length == limit ? Validity::valid : Validity::array_length_exceeds_maximum);
    }
}

TEST(Body, VariantsCarryExactlyOneCompleteType) {
    EXPECT_EQ(validate_body_bytes("v", {1, 'y', 0, 7}), Validity::valid);
    EXPECT_EQ(validate_body_bytes("v", {0, 0}), Validity::variant_signature_empty);
    EXPECT_EQ(validate_body_bytes("v", {2, 'y', 'y', 0, 7, 8}),
              Validity::variant_signature_specifies_multiple_values);
    EXPECT_EQ(validate_body_bytes("v", {1, 'a', 0}), Validity::variant_signature_bad);
    EXPECT_EQ(validate_body_bytes("v", {1, 'y', 1, 7}), Validity::variant_signature_missing_nul);
    EXPECT_EQ(validate_body_bytes("v", {9, 'y', 0}), Validity::variant_signature_length_out_of_bounds);
}

TEST(Body, VariantNestingIsLimitedTo64) {
    for (const int depth : {64, 65}) {
        BodyWriter body;
        for (int i = 0; i < depth; ++i) {
            body.open_variant(i + 1 == depth ? "y" : "v");
        }
        body.byte(1);
        for (int i = 0; i < depth; ++i) {
            body.close_variant();
        }
        EXPECT_EQ(validate_values(body.data(), 0, body.data().size(), "v", native_byte_order),
                  depth == 64 ? Validity::valid : Validity::nested_too_deeply)
            << depth;
    }
}

TEST(Body, StructsAndDictEntriesAlignTo8) {
    BodyWriter body;
    body.byte(1).open_struct().byte(2).close_struct();
    EXPECT_EQ(body.data().size(), 9u);
    EXPECT_EQ(validate_values(body.data(), 0, body.data().size(), "y(y)", native_byte_order),
              Validity::valid);
    Bytes bad = body.data();
    bad[3] = 1;
    EXPECT_EQ(validate_values(bad, 0, bad.size(), "y(y)", native_byte_order),
              Validity::alignment_padding_not_nul);
}

TEST(Body, UnixFdIndicesAreNotCheckedAgainstTheFdCount) {
    // As dbus-daemon: the count of attached fds is checked by the transport, not the validator.
    BodyWriter body;
    body.unix_fd(1000);
    EXPECT_EQ(parse(call_with_body(body)), Validity::valid);
}

namespace {

void expect_same_header(const MessageHeader& validated, const MessageHeader& full) {
    EXPECT_EQ(validated.byte_order, full.byte_order);
    EXPECT_EQ(validated.raw_type, full.raw_type);
    EXPECT_EQ(validated.flags, full.flags);
    EXPECT_EQ(validated.serial, full.serial);
    EXPECT_EQ(validated.body_length, full.body_length);
    EXPECT_EQ(validated.body_offset, full.body_offset);
    EXPECT_EQ(validated.path, full.path);
    EXPECT_EQ(validated.interface, full.interface);
    EXPECT_EQ(validated.member, full.member);
    EXPECT_EQ(validated.error_name, full.error_name);
    EXPECT_EQ(validated.destination, full.destination);
    EXPECT_EQ(validated.sender, full.sender);
    EXPECT_EQ(validated.signature, full.signature);
    EXPECT_EQ(validated.reply_serial, full.reply_serial);
    EXPECT_EQ(validated.unix_fds, full.unix_fds);
    EXPECT_EQ(validated.present, full.present);
    for (unsigned code = 0; code <= last_known_header_field; ++code) {
        EXPECT_EQ(validated.locations[code].offset, full.locations[code].offset) << "field " << code;
        EXPECT_EQ(validated.locations[code].size, full.locations[code].size) << "field " << code;
    }
}

}  // namespace

TEST(Header, ValidatedParseReadsWhatTheFullParseReads) {
    for (ByteOrder order : {ByteOrder::little, ByteOrder::big}) {
        BodyWriter body(order);
        body.string("x").uint32(5);
        const Bytes message = build_message({.type = MessageType::error,
                                             .flags = flag::no_auto_start,
                                             .serial = 99,
                                             .path = "/p/q",
                                             .interface = "a.b",
                                             .member = "Member",
                                             .error_name = "org.E.Failed",
                                             .destination = ":1.7",
                                             .sender = "org.x.Y",
                                             .reply_serial = 12,
                                             .unix_fds = 3},
                                            body);
        MessageHeader full;
        ASSERT_EQ(parse_header(message, full), Validity::valid);
        MessageHeader validated;
        ASSERT_EQ(parse_validated_header(message, validated), Validity::valid);
        expect_same_header(validated, full);
    }
}

TEST(Header, ValidatedParseLeavesUnknownFieldsToTheFullParse) {
    // A method call with an unknown field code 42 holding a string, then a known field after it.
    const Bytes message = raw_message(1, [](BodyWriter& w) {
        string_field(w, 1, 'o', "/x");
        string_field(w, 42, 's', "kept");
        string_field(w, 3, 's', "Sig");
    });
    MessageHeader full;
    ASSERT_EQ(parse_header(message, full), Validity::valid);
    MessageHeader validated;
    ASSERT_EQ(parse_validated_header(message, validated), Validity::valid);
    expect_same_header(validated, full);
    EXPECT_EQ(validated.member, "Sig");
}

// build_message writes the header directly; raw_message, which gives the general writer the header as the
// values yyyyuua(yv) of the specification, must produce the same bytes for every combination of fields, in
// both byte orders.
TEST(Message, BuiltHeadersAreTheGeneralWritersBytes) {
    const std::string_view paths[] = {"", "/", "/org/freedesktop/DBus"};
    const std::string_view names[] = {"", "a", "org.freedesktop.DBus", ":1.12345", "org.example.Longer.Name1"};
    int checked = 0;
    for (const ByteOrder order : {ByteOrder::little, ByteOrder::big}) {
        for (unsigned mask = 0; mask < 64; ++mask) {
            for (std::size_t variant = 0; variant < 5; ++variant) {
                MessageSpec spec;
                spec.type = static_cast<MessageType>(1 + mask % 4);
                spec.flags = static_cast<std::uint8_t>(mask & 3);
                spec.serial = 1 + mask * 7919u;
                spec.path = paths[(mask + variant) % 3];
                spec.interface = (mask & 1) ? names[variant] : "";
                spec.member = (mask & 2) ? names[(variant + 1) % 5] : "";
                spec.error_name = (mask & 4) ? names[(variant + 2) % 5] : "";
                spec.destination = (mask & 8) ? names[(variant + 3) % 5] : "";
                spec.sender = (mask & 16) ? names[(variant + 4) % 5] : "";
                spec.reply_serial = (mask & 32) ? 40000 + variant : 0;
                spec.unix_fds = static_cast<std::uint32_t>(variant % 3);
                BodyWriter body(order);
                for (std::size_t i = 0; i < variant; ++i) {
                    body.string(names[i]).byte(static_cast<std::uint8_t>(i));
                }
                const auto fields = [&](BodyWriter& w) {
                    const auto text = [&w](HeaderField code, char type_code, std::string_view value) {
                        if (!value.empty()) {
                            string_field(w, static_cast<std::uint8_t>(code), type_code, value);
                        }
                    };
                    const auto number = [&w](HeaderField code, std::uint32_t value) {
                        if (value != 0) {
                            uint_field(w, static_cast<std::uint8_t>(code), value);
                        }
                    };
                    text(HeaderField::path, 'o', spec.path);
                    text(HeaderField::interface, 's', spec.interface);
                    text(HeaderField::member, 's', spec.member);
                    text(HeaderField::error_name, 's', spec.error_name);
                    number(HeaderField::reply_serial, spec.reply_serial);
                    text(HeaderField::destination, 's', spec.destination);
                    text(HeaderField::sender, 's', spec.sender);
                    text(HeaderField::signature, 'g', body.written_signature());
                    number(HeaderField::unix_fds, spec.unix_fds);
                };
                ASSERT_EQ(build_message(spec, body),
                          raw_message(static_cast<std::uint8_t>(spec.type), fields, body, order, spec.serial,
                                      spec.flags))
                    << "mask " << mask << ", variant " << variant;
                ++checked;
            }
        }
    }
    EXPECT_EQ(checked, 640);
}
