// The server side of the authentication protocol against dbus-tests' auth scripts (the same
// scripts dbus-daemon's own unit test runs), plus cases the scripts do not cover.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "busgate/util/encoding.h"
#include "transport/cookie_keyring.h"
#include "transport/sasl.h"

using namespace busgate;
using namespace busgate::transport;
using namespace std::string_literals;

namespace {

std::string current_user_name() {
    const passwd* entry = getpwuid(getuid());
    return entry ? entry->pw_name : "root";
}

class TemporaryDirectory {
  public:
    TemporaryDirectory() {
        std::string pattern = (std::filesystem::temp_directory_path() / "busgate-sasl-XXXXXX").string();
        path_ = mkdtemp(pattern.data());
    }
    ~TemporaryDirectory() { std::filesystem::remove_all(path_); }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

SaslOptions test_options(const std::filesystem::path& keyrings) {
    return {.guid = "0123456789abcdef0123456789abcdef",
            .mechanisms = {},
            .unix_fd_possible = true,
            .server_uid = getuid(),
            .keyring_directory = keyrings};
}

std::string unquote(std::string text) {
    if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'') {
        text = text.substr(1, text.size() - 2);
    }
    for (std::size_t at; (at = text.find("\\r\\n")) != std::string::npos;) {
        text.replace(at, 4, "\r\n");
    }
    return text;
}

std::string substitute(std::string text) {
    const std::pair<std::string, std::string> variables[] = {
        {"WRONG_USERID_HEX", util::hex_encode(std::to_string(getuid() + 4242))},
        {"WRONG_USERNAME_HEX", util::hex_encode(current_user_name() + "-not-a-user")},
        {"USERID_HEX", util::hex_encode(std::to_string(getuid()))},
        {"USERNAME_HEX", util::hex_encode(current_user_name())},
    };
    for (const auto& [name, value] : variables) {
        for (std::size_t at; (at = text.find(name)) != std::string::npos;) {
            text.replace(at, name.size(), value);
        }
    }
    return text;
}

// Runs one server-side script; returns an empty string or what went wrong.
std::string run_script(const std::filesystem::path& path, const std::filesystem::path& keyrings) {
    std::ifstream file(path);
    std::string line;
    PeerCredentials credentials{.uid = getuid(), .gid = getgid(), .pid = getpid()};
    std::optional<SaslServer> server;
    std::deque<std::string> replies;
    bool unused_consumed = false;
    int number = 0;
    const auto start = [&] {
        if (!server) {
            server.emplace(test_options(keyrings), credentials);
            server->receive(std::string_view("\0", 1));
        }
    };
    const auto collect = [&] {
        std::string output = server->take_output();
        for (std::size_t at; (at = output.find("\r\n")) != std::string::npos; output.erase(0, at + 2)) {
            replies.push_back(output.substr(0, at));
        }
    };
    while (std::getline(file, line)) {
        ++number;
        const std::string where = path.filename().string() + ":" + std::to_string(number) + ": ";
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::istringstream words(line);
        std::string command;
        words >> command;
        std::string rest;
        std::getline(words >> std::ws, rest);
        if (command == "SERVER" || command == "UNIX_ONLY") {
            continue;
        } else if (command == "CLIENT") {
            return "";  // client-side scripts test a client, which the bus is not
        } else if (command == "NO_CREDENTIALS") {
            credentials.uid.reset();
        } else if (command == "ROOT_CREDENTIALS") {
            credentials.uid = 0;
        } else if (command == "SILLY_CREDENTIALS") {
            credentials.uid = getuid() + 4312;
        } else if (command == "SEND") {
            start();
            server->receive(substitute(unquote(rest)) + "\r\n");
            collect();
        } else if (command == "EXPECT_COMMAND") {
            start();
            if (replies.empty()) {
                return where + "expected " + rest + ", server sent nothing";
            }
            const std::string reply = replies.front();
            replies.pop_front();
            if (reply.substr(0, reply.find(' ')) != rest) {
                return where + "expected " + rest + ", server sent " + reply;
            }
        } else if (command == "EXPECT_STATE") {
            start();
            std::string state = "WAITING_FOR_INPUT";
            if (server->state() == SaslServer::State::need_disconnect) {
                state = "NEED_DISCONNECT";
            } else if (server->state() == SaslServer::State::authenticated) {
                state = !unused_consumed && !server->unused_bytes().empty()
                            ? "AUTHENTICATED_WITH_UNUSED_BYTES"
                            : "AUTHENTICATED";
            }
            if (state != rest) {
                return where + "expected state " + rest + ", got " + state;
            }
        } else if (command == "EXPECT_UNUSED") {
            if (server->unused_bytes() != unquote(rest)) {
                return where + "unexpected unused bytes '" + std::string(server->unused_bytes()) + "'";
            }
            unused_consumed = true;
        } else if (command == "EXPECT_HAVE_NO_CREDENTIALS" || command == "EXPECT_HAVE_SOME_CREDENTIALS") {
            const bool have = server && server->authorized_uid().has_value();
            if (have != (command == "EXPECT_HAVE_SOME_CREDENTIALS")) {
                return where + command + " failed";
            }
        } else {
            return where + "unknown script command " + command;
        }
    }
    return "";
}

}  // namespace

TEST(Sasl, PassesEveryServerScriptOfDbusTests) {
    const std::filesystem::path scripts = std::filesystem::path(BUSGATE_DBUS_TEST_DATA) / "auth";
    int server_scripts = 0;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(scripts, error)) {
        if (entry.path().extension() != ".auth-script") {
            continue;
        }
        std::ifstream file(entry.path());
        const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
        if (text.find("\nSERVER") == std::string::npos && !text.starts_with("SERVER")) {
            continue;
        }
        ++server_scripts;
        TemporaryDirectory keyrings;
        EXPECT_EQ(run_script(entry.path(), keyrings.path() / "keyrings"), "") << entry.path();
    }
    EXPECT_GE(server_scripts, 14) << "dbus-tests auth scripts missing under " << scripts;
}

TEST(Sasl, SdBusOneWriteHandshake) {
    // sd-bus sends everything at once, and the Hello call right after BEGIN.
    SaslServer server(test_options("/nonexistent"), {.uid = getuid(), .pid = 7});
    const std::string uid_hex = util::hex_encode(std::to_string(getuid()));
    server.receive("\0AUTH EXTERNAL\r\nDATA\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\nl\x01\x00\x01"s);
    EXPECT_EQ(server.take_output(), "DATA\r\nOK 0123456789abcdef0123456789abcdef\r\nAGREE_UNIX_FD\r\n");
    EXPECT_EQ(server.state(), SaslServer::State::authenticated);
    EXPECT_TRUE(server.unix_fd_negotiated());
    EXPECT_EQ(server.authorized_uid(), getuid());
    EXPECT_EQ(server.authorized_pid(), 7);
    EXPECT_EQ(server.unused_bytes(), std::string_view("l\x01\x00\x01", 4));
}

TEST(Sasl, LibdbusHandshakeWithUidAsInitialResponse) {
    SaslServer server(test_options("/nonexistent"), {.uid = 1000});
    server.receive("\0AUTH EXTERNAL 31303030\r\n"s);
    EXPECT_EQ(server.take_output(), "OK 0123456789abcdef0123456789abcdef\r\n");
    server.receive("BEGIN\r\n");
    EXPECT_EQ(server.state(), SaslServer::State::authenticated);
    EXPECT_EQ(server.authorized_uid(), 1000u);
}

TEST(Sasl, FirstByteMustBeNul) {
    SaslServer server(test_options("/nonexistent"), {.uid = 0});
    server.receive("AUTH EXTERNAL 30\r\n");
    EXPECT_EQ(server.state(), SaslServer::State::need_disconnect);
}

TEST(Sasl, RejectionListsOnlyConfiguredMechanisms) {
    SaslOptions options = test_options("/nonexistent");
    options.mechanisms = {"EXTERNAL"};
    SaslServer server(options, {.uid = 0});
    server.receive("\0AUTH ANONYMOUS\r\n"s);
    EXPECT_EQ(server.take_output(), "REJECTED EXTERNAL\r\n");
    SaslServer all(test_options("/nonexistent"), {.uid = 0});
    all.receive("\0AUTH\r\n"s);
    EXPECT_EQ(all.take_output(), "REJECTED EXTERNAL DBUS_COOKIE_SHA1 ANONYMOUS\r\n");
}

TEST(Sasl, UnixFdsOnlyWhenPossibleAndAfterAuthentication) {
    SaslOptions options = test_options("/nonexistent");
    options.unix_fd_possible = false;
    SaslServer server(options, {.uid = 0});
    server.receive("\0NEGOTIATE_UNIX_FD\r\nAUTH EXTERNAL 30\r\nNEGOTIATE_UNIX_FD\r\n"s);
    EXPECT_EQ(server.take_output(),
              "ERROR \"Need to authenticate first\"\r\nOK 0123456789abcdef0123456789abcdef\r\n"
              "ERROR \"Unix FD passing not supported, not authenticated or otherwise not possible\"\r\n");
    EXPECT_FALSE(server.unix_fd_negotiated());
}

TEST(Sasl, OverlongLinesDisconnect) {
    SaslServer server(test_options("/nonexistent"), {.uid = 0});
    server.receive(std::string(1, '\0') + std::string(17 * 1024, 'A'));
    EXPECT_EQ(server.state(), SaslServer::State::need_disconnect);
}

TEST(Sasl, NonAsciiCommandsGetAnError) {
    SaslServer server(test_options("/nonexistent"), {.uid = 0});
    server.receive("\0AUTH \xc3\xa9\r\n"s);
    EXPECT_EQ(server.take_output(), "ERROR \"Command contained non-ASCII\"\r\n");
    EXPECT_EQ(server.state(), SaslServer::State::waiting_for_input);
}

TEST(Sasl, CookieSha1CompletesWithTheRightHashOnly) {
    TemporaryDirectory home;
    for (const bool right_hash : {true, false}) {
        SaslServer server(test_options(home.path() / ".dbus-keyrings"), {.uid = getuid()});
        server.receive(std::string(1, '\0') + "AUTH DBUS_COOKIE_SHA1 " +
                       util::hex_encode(std::to_string(getuid())) + "\r\n");
        const std::string reply = server.take_output();
        ASSERT_TRUE(reply.starts_with("DATA ")) << reply;
        std::size_t consumed;
        const std::string challenge = util::hex_decode(reply.substr(5, reply.size() - 7), consumed);
        std::istringstream fields(challenge);
        std::string context, server_challenge;
        long id = 0;
        fields >> context >> id >> server_challenge;
        ASSERT_EQ(context, "org_freedesktop_general");
        std::string error;
        auto keyring = CookieKeyring::open(home.path() / ".dbus-keyrings", context, error);
        ASSERT_TRUE(keyring) << error;
        const std::string cookie = keyring->cookie(id);
        ASSERT_FALSE(cookie.empty());
        const std::string client_challenge = "c0ffee";
        const std::string hash =
            sha1_hex(server_challenge + ":" + client_challenge + ":" + (right_hash ? cookie : "x"));
        server.receive("DATA " + util::hex_encode(client_challenge + " " + hash) + "\r\n");
        const std::string answer = server.take_output();
        EXPECT_EQ(answer.substr(0, answer.find(' ')), right_hash ? "OK" : "REJECTED");
    }
}

TEST(CookieKeyring, Sha1MatchesKnownVectors) {
    EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(CookieKeyring, ReusesRecentKeysAndExpiresOldOnes) {
    TemporaryDirectory home;
    std::string error;
    const std::time_t start = 1'000'000;
    auto keyring = CookieKeyring::open(home.path() / "k", "ctx", error, start);
    ASSERT_TRUE(keyring) << error;
    const long first = keyring->best_key_id(error, start);
    ASSERT_GT(first, 0);
    EXPECT_EQ(keyring->best_key_id(error, start + 60), first);
    const long second = keyring->best_key_id(error, start + 6 * 60);  // older than 5 minutes: a new key
    EXPECT_NE(second, first);
    EXPECT_EQ(keyring->cookie(first).size(), 48u);
    auto later =
        CookieKeyring::open(home.path() / "k", "ctx", error, start + 8 * 60);  // the first key expired
    ASSERT_TRUE(later);
    EXPECT_EQ(later->cookie(first), "");
    EXPECT_NE(later->cookie(second), "");
    EXPECT_FALSE(CookieKeyring::is_valid_context("a/b"));
    EXPECT_FALSE(CookieKeyring::open(home.path() / "k", "../x", error));
}
