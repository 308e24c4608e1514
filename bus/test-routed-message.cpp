// RoutedMessage: the payload the bus writes to every receiver, with its header parsed once.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <functional>

#include "bus/bus_daemon.h"
#include "bus/routed_message.h"
#include "busgate/marshal/message.h"
#include "busgate/marshal/protocol.h"
#include "busgate/marshal/writer.h"

using namespace busgate;
using namespace busgate::bus;

namespace {

transport::IncomingMessage incoming(const marshal::MessageSpec& spec, const marshal::BodyWriter& body) {
    transport::IncomingMessage message;
    const std::vector<std::uint8_t> bytes = marshal::build_message(spec, body);
    message.bytes.assign(bytes);
    EXPECT_EQ(marshal::parse_header(message.bytes, message.header), marshal::Validity::valid);
    return message;
}

bool inside(std::string_view view, std::span<const std::uint8_t> bytes) {
    const auto* begin = static_cast<const void*>(bytes.data());
    const auto* end = static_cast<const void*>(bytes.data() + bytes.size());
    return std::less_equal<const void*>()(begin, view.data()) &&
           std::less_equal<const void*>()(static_cast<const void*>(view.data() + view.size()), end);
}

}  // namespace

TEST(RoutedMessage, StampedIsTheMessageWithItsSenderAndTheSameBody) {
    marshal::BodyWriter body;
    body.string("hello");
    body.uint32(7);
    transport::IncomingMessage message = incoming({.type = marshal::MessageType::signal,
                                                   .serial = 5,
                                                   .path = "/org/example",
                                                   .interface = "org.example.Iface",
                                                   .member = "Changed",
                                                   .sender = ":1.99"},  // a client's lie, replaced
                                                  body);
    const std::vector<std::uint8_t> expected = stamped_message(message, ":1.7");
    const RoutedMessage::Ref routed = RoutedMessage::stamped(message, ":1.7");
    EXPECT_EQ(std::vector<std::uint8_t>(routed->wire().begin(), routed->wire().end()), expected);

    const marshal::MessageHeader* header = routed->header();
    ASSERT_NE(header, nullptr);
    EXPECT_EQ(header->sender, ":1.7");
    EXPECT_EQ(header->member, "Changed");
    EXPECT_EQ(header->serial, 5u);
    // Its views point into the payload itself, which every receiver shares, and it is parsed once.
    EXPECT_TRUE(inside(header->sender, routed->wire()));
    EXPECT_TRUE(inside(header->path, routed->wire()));
    EXPECT_EQ(routed->header(), header);
}

TEST(RoutedMessage, BusMessagesCarryTheBusAsSenderAndExpectNoReply) {
    transport::EventLoop loop;
    BusDaemon daemon(loop, DaemonOptions{});
    marshal::BodyWriter body;
    body.string("org.example.Name");
    const RoutedMessage::Ref first = daemon.bus_message(
        {.type = marshal::MessageType::signal, .path = "/org/freedesktop/DBus", .member = "NameLost"}, body);
    const RoutedMessage::Ref second = daemon.bus_message(
        {.type = marshal::MessageType::error, .error_name = "org.freedesktop.DBus.Error.Failed"}, body, {},
        false);
    ASSERT_NE(first->header(), nullptr);
    ASSERT_NE(second->header(), nullptr);
    EXPECT_EQ(first->header()->sender, marshal::bus_name);
    EXPECT_TRUE(first->header()->flags & marshal::flag::no_reply_expected);
    EXPECT_EQ(second->header()->sender, "");  // the socket's other end, not the bus
    EXPECT_TRUE(second->header()->flags & marshal::flag::no_reply_expected);
    EXPECT_EQ(second->header()->serial, first->header()->serial + 1);
}

TEST(RoutedMessage, CopiesHaveTheirOwnDescriptors) {
    const std::vector<std::uint8_t> bytes = {1, 2, 3};
    std::vector<util::UniqueFd> fds;
    fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    const RoutedMessage::Ref copy = RoutedMessage::copy(bytes, fds);
    ASSERT_EQ(copy->fds.size(), 1u);
    EXPECT_GE(copy->fds[0].get(), 0);
    EXPECT_NE(copy->fds[0].get(), fds[0].get());
    EXPECT_EQ(std::vector<std::uint8_t>(copy->wire().begin(), copy->wire().end()), bytes);
}
