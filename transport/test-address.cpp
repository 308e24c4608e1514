#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "transport/address.h"

using namespace busgate;
using namespace busgate::transport;

TEST(Address, ParsesEntriesAndUnescapesValues) {
    const auto parsed = parse_address("unix:path=/tmp/a%20b,guid=00ff;tcp:host=localhost,port=4242;");
    ASSERT_EQ(parsed.error, "");
    ASSERT_EQ(parsed.entries.size(), 2u);
    EXPECT_EQ(parsed.entries[0].transport, "unix");
    EXPECT_EQ(*parsed.entries[0].find("path"), "/tmp/a b");
    EXPECT_EQ(*parsed.entries[0].find("guid"), "00ff");
    EXPECT_EQ(parsed.entries[1].transport, "tcp");
    EXPECT_EQ(*parsed.entries[1].find("port"), "4242");
    EXPECT_EQ(parsed.entries[1].find("family"), nullptr);
}

TEST(Address, RejectsMalformedAddresses) {
    EXPECT_NE(parse_address("").error, "");
    EXPECT_NE(parse_address("unix").error, "");
    EXPECT_NE(parse_address("unix:path").error, "");
    EXPECT_NE(parse_address("unix:=x").error, "");
    EXPECT_NE(parse_address("unix:path=").error, "");
    EXPECT_NE(parse_address("unix:path=a%2").error, "");
    EXPECT_NE(parse_address("unix:path=a%zz").error, "");
    EXPECT_NE(parse_address("unix:path=a b").error, "");  // space must be escaped
}

TEST(Address, EscapesWhatIsNotOptionallyEscaped) {
    EXPECT_EQ(escape_address_value("/tmp/dbus-AZaz09_.\\*"), "/tmp/dbus-AZaz09_.\\*");
    EXPECT_EQ(escape_address_value("a b,c;d=é"), "a%20b%2cc%3bd%3d%c3%a9");
}

class AddressListen : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = (std::filesystem::temp_directory_path() / "busgate-address-XXXXXX").string();
        directory_ = mkdtemp(pattern.data());
    }
    void TearDown() override { std::filesystem::remove_all(directory_); }

    static bool connects(const Listener& listener) {
        const auto parsed = parse_address(listener.connectable);
        if (!parsed.error.empty() || parsed.entries.empty()) {
            return false;
        }
        const AddressEntry& entry = parsed.entries[0];
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::size_t length;
        if (const std::string* path = entry.find("path")) {
            std::memcpy(address.sun_path, path->data(), path->size());
            length = offsetof(sockaddr_un, sun_path) + path->size();
        } else if (const std::string* name = entry.find("abstract")) {
            std::memcpy(address.sun_path + 1, name->data(), name->size());
            length = offsetof(sockaddr_un, sun_path) + 1 + name->size();
        } else {
            return false;
        }
        util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), static_cast<socklen_t>(length)) ==
               0;
    }

    std::filesystem::path directory_;
};

TEST_F(AddressListen, UnixPathReplacesAStaleSocket) {
    const std::string path = (directory_ / "bus").string();
    for (int round = 0; round < 2; ++round) {  // the second bind finds the first one's file
        auto result = listen_on(parse_address("unix:path=" + escape_address_value(path)).entries[0], "");
        ASSERT_EQ(result.error, "");
        ASSERT_EQ(result.listeners.size(), 1u);
        EXPECT_EQ(result.listeners[0].connectable, "unix:path=" + path);
        EXPECT_EQ(result.listeners[0].unlink_path, path);
        EXPECT_TRUE(connects(result.listeners[0]));
    }
}

TEST_F(AddressListen, DirAndTmpdirMakeARandomSocketFile) {
    for (const char* key : {"dir", "tmpdir"}) {
        auto result =
            listen_on(parse_address(std::string("unix:") + key + "=" + directory_.string()).entries[0], "");
        ASSERT_EQ(result.error, "");
        const std::string prefix = "unix:path=" + directory_.string() + "/dbus-";
        EXPECT_EQ(result.listeners[0].connectable.substr(0, prefix.size()), prefix);
        EXPECT_TRUE(connects(result.listeners[0]));
    }
}

TEST_F(AddressListen, RuntimeUsesXdgRuntimeDir) {
    auto result = listen_on(parse_address("unix:runtime=yes").entries[0], directory_.string());
    ASSERT_EQ(result.error, "");
    EXPECT_EQ(result.listeners[0].connectable, "unix:path=" + (directory_ / "bus").string());
    EXPECT_NE(listen_on(parse_address("unix:runtime=yes").entries[0], "").error, "");
    EXPECT_NE(listen_on(parse_address("unix:runtime=no").entries[0], directory_.string()).error, "");
}

TEST_F(AddressListen, AbstractSockets) {
    const std::string name = "busgate-test-" + std::to_string(::getpid());
    auto result = listen_on(parse_address("unix:abstract=" + name).entries[0], "");
    ASSERT_EQ(result.error, "");
    EXPECT_EQ(result.listeners[0].connectable, "unix:abstract=" + name);
    EXPECT_EQ(result.listeners[0].unlink_path, "");
    EXPECT_TRUE(connects(result.listeners[0]));
}

TEST_F(AddressListen, UnixNeedsExactlyOneLocation) {
    EXPECT_NE(listen_on(parse_address("unix:guid=00").entries[0], "").error, "");
    EXPECT_NE(listen_on(parse_address("unix:path=/a,abstract=b").entries[0], "").error, "");
    EXPECT_NE(listen_on(parse_address("bogus:x=y").entries[0], "").error, "");
}

TEST_F(AddressListen, TcpBindsOnlyWhereAsked) {
    auto result = listen_on(parse_address("tcp:host=127.0.0.1,port=0").entries[0], "");
    ASSERT_EQ(result.error, "");
    ASSERT_EQ(result.listeners.size(), 1u);
    const std::string& connectable = result.listeners[0].connectable;
    EXPECT_EQ(connectable.substr(0, 23), "tcp:host=127.0.0.1,port");
    EXPECT_EQ(connectable.find(",port=0"), std::string::npos);
    sockaddr_in bound{};
    socklen_t length = sizeof bound;
    ::getsockname(result.listeners[0].fd.get(), reinterpret_cast<sockaddr*>(&bound), &length);
    EXPECT_EQ(ntohl(bound.sin_addr.s_addr), INADDR_LOOPBACK);
}

TEST_F(AddressListen, NonceTcpWritesANonceFile) {
    auto result = listen_on(parse_address("nonce-tcp:host=127.0.0.1").entries[0], "");
    ASSERT_EQ(result.error, "");
    const Listener& listener = result.listeners[0];
    EXPECT_EQ(listener.nonce.size(), 16u);
    ASSERT_NE(listener.nonce_file, "");
    EXPECT_NE(listener.connectable.find(",noncefile="), std::string::npos);
    std::ifstream file(listener.nonce_file, std::ios::binary);
    const std::string written((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    EXPECT_EQ(written, listener.nonce);
    std::filesystem::remove_all(std::filesystem::path(listener.nonce_file).parent_path());
}

TEST(Guid, Is32HexDigitsAndUnique) {
    const std::string a = make_guid();
    const std::string b = make_guid();
    EXPECT_EQ(a.size(), 32u);
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_NE(a, b);
}
