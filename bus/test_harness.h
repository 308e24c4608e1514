// The shared harness of bus/'s test executables: a bus in process (a BusDaemon on a temporary socket, its
// loop on a thread) and sd-bus (libsystemd) as a real client on the test thread. Tests speak only the wire
// and the public BusDaemon API, so they hold across rewrites of the daemon's inside.
//
// With BUSGATE_TEST_REFERENCE_DAEMON=/usr/bin/dbus-daemon in the environment the same tests run against
// that daemon instead (a session-like configuration in the same temporary directory, services in
// `services/` below it): that is how the expectations were checked against dbus-daemon 1.14. Tests of what
// only busgate has skip themselves there.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bus/bus_daemon.h"
#include "busgate/marshal/writer.h"
#include "busgate/policy/configuration.h"
#include "busgate/util/unique_fd.h"
#include "transport/event_loop.h"

namespace busgate::bus::testing {

// The dbus-daemon the tests run against instead of busgate, or null.
inline const char* reference_daemon() {
    const char* path = std::getenv("BUSGATE_TEST_REFERENCE_DAEMON");
    return path != nullptr && *path != '\0' ? path : nullptr;
}

#define BUSGATE_SKIP_ON_REFERENCE(reason)                  \
    do {                                                   \
        if (::busgate::bus::testing::reference_daemon()) { \
            GTEST_SKIP() << "busgate only: " << (reason);  \
        }                                                  \
    } while (false)

// The <policy> both daemons get unless a test gives its own: session.conf's.
inline constexpr const char* session_policy =
    "<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/><allow "
    "eavesdrop=\"true\"/>"
    "<allow own=\"*\"/></policy>";

class RunningBus {
  public:
    using Configure = std::function<void(DaemonOptions&, const std::filesystem::path&)>;

    // `configure` runs before the bus starts, with the temporary directory the bus lives in (service files
    // go to services_directory(), which both daemons read). `policy_xml` is the <policy> elements of the
    // configuration; a `configure` that sets options.policy itself wins on busgate.
    explicit RunningBus(Configure configure = {}, std::string policy_xml = session_policy)
        : policy_(std::move(policy_xml)) {
        std::string pattern = (std::filesystem::temp_directory_path() / "busgate-test-XXXXXX").string();
        directory_ = mkdtemp(pattern.data());
        std::filesystem::create_directories(services_directory());
        DaemonOptions options;
        options.listen = {"unix:path=" + (directory_ / "bus").string()};
        options.bus_uid = getuid();
        options.auth_mechanisms = {"EXTERNAL"};
        options.service_dirs = {{.path = services_directory().string()}};
        options.bus_type = "session";
        options.policy = policy::parse_configuration(
                             "<busconfig><listen>unix:tmpdir=/tmp</listen>" + policy_ + "</busconfig>",
                             "/virtual/test.conf")
                             .policy;
        if (configure) {
            configure(options, directory_);
        }
        if (reference_daemon()) {
            start_reference();
            return;
        }
        daemon_ = std::make_unique<BusDaemon>(loop_, options);
        std::string error;
        EXPECT_TRUE(daemon_->start(error)) << error;
        address_ = daemon_->address();
        thread_ = std::thread([this] {
            while (!stop_) {
                loop_.run_once(20);
            }
        });
    }
    ~RunningBus() {
        if (reference_pid_ > 0) {
            kill(reference_pid_, SIGTERM);
            waitpid(reference_pid_, nullptr, 0);
        } else {
            stop_ = true;
            if (thread_.joinable()) {
                thread_.join();
            }
            daemon_.reset();
        }
        std::error_code ignored;
        std::filesystem::remove_all(directory_, ignored);
    }
    RunningBus(const RunningBus&) = delete;
    RunningBus& operator=(const RunningBus&) = delete;

    const std::string& address() const { return address_; }
    const std::filesystem::path& directory() const { return directory_; }
    // Stops the daemon's loop for good (a bus that handed its clients over), then runs `inspect` on it.
    template <typename Inspect>
    void halted(Inspect&& inspect) {
        stop_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
        inspect(*daemon_);
    }
    // Runs `inspect` on the daemon while its loop is stopped (busgate only), then lets it run again.
    template <typename Inspect>
    void paused(Inspect&& inspect) {
        halted(inspect);
        stop_ = false;
        thread_ = std::thread([this] {
            while (!stop_) {
                loop_.run_once(20);
            }
        });
    }
    std::filesystem::path services_directory() const { return directory_ / "services"; }

  private:
    void start_reference() {
        const std::filesystem::path config = directory_ / "reference.conf";
        std::ofstream(config) << "<busconfig><type>session</type><listen>unix:path="
                              << (directory_ / "bus").string() << "</listen><auth>EXTERNAL</auth><servicedir>"
                              << services_directory().string() << "</servicedir>" << policy_
                              << "</busconfig>\n";
        int pipe_ends[2];
        ASSERT_EQ(pipe2(pipe_ends, O_CLOEXEC), 0);
        reference_pid_ = fork();
        if (reference_pid_ == 0) {
            dup2(pipe_ends[1], 3);
            const std::string config_argument = "--config-file=" + config.string();
            execl(reference_daemon(), reference_daemon(), config_argument.c_str(), "--nofork",
                  "--print-address=3", nullptr);
            _exit(127);
        }
        close(pipe_ends[1]);
        char buffer[512];
        const ssize_t length = read(pipe_ends[0], buffer, sizeof buffer);
        close(pipe_ends[0]);
        ASSERT_GT(length, 0) << "the reference daemon did not start";
        address_.assign(buffer, static_cast<std::size_t>(length));
        while (!address_.empty() && address_.back() == '\n') {
            address_.pop_back();
        }
    }

    std::string policy_;
    std::filesystem::path directory_;
    transport::EventLoop loop_;
    std::unique_ptr<BusDaemon> daemon_;
    std::string address_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    pid_t reference_pid_ = 0;
};

struct BusClient {
    sd_bus* bus = nullptr;
    // `hello`: false for a connection that authenticates but has not called Hello yet.
    explicit BusClient(const std::string& address, bool hello = true) {
        EXPECT_GE(sd_bus_new(&bus), 0);
        sd_bus_set_address(bus, address.c_str());
        sd_bus_set_bus_client(bus, hello ? 1 : 0);
        sd_bus_negotiate_fds(bus, 1);
        const int started = sd_bus_start(bus);
        EXPECT_GE(started, 0) << strerror(-started);
    }
    ~BusClient() { sd_bus_flush_close_unref(bus); }
    BusClient(const BusClient&) = delete;
    BusClient& operator=(const BusClient&) = delete;
    std::string unique_name() const {
        const char* name = nullptr;
        sd_bus_get_unique_name(bus, &name);
        return name ? name : "";
    }
};

// The outcome of a method call: the reply, or the error's name and text.
struct Reply {
    int result = 0;
    std::string error_name;
    std::string error_message;
    sd_bus_message* message = nullptr;

    Reply() = default;
    Reply(Reply&& other) noexcept
        : result(other.result),
          error_name(std::move(other.error_name)),
          error_message(std::move(other.error_message)),
          message(std::exchange(other.message, nullptr)) {}
    Reply& operator=(Reply&&) = delete;
    ~Reply() { sd_bus_message_unref(message); }
    bool ok() const { return result >= 0; }
    // "name: text" for an error, "" for a reply: one string to compare.
    std::string error() const { return ok() ? std::string() : error_name + ": " + error_message; }
};

inline Reply take_reply(int result, sd_bus_error& error, sd_bus_message* message) {
    Reply reply;
    reply.result = result;
    reply.message = message;
    if (result < 0) {
        reply.error_name = error.name ? error.name : "";
        reply.error_message = error.message ? error.message : "";
    }
    sd_bus_error_free(&error);
    return reply;
}

// A call to any destination, path and interface; `types` and the arguments as sd_bus_call_method takes them.
template <typename... Arguments>
Reply call_method(BusClient& client, const char* destination, const char* path, const char* interface,
                  const char* member, const char* types, Arguments... arguments) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* message = nullptr;
    const int result = sd_bus_call_method(client.bus, destination, path, interface, member, &error, &message,
                                          types, arguments...);
    return take_reply(result, error, message);
}

// A call to the driver at its canonical path.
template <typename... Arguments>
Reply call_bus(BusClient& client, const char* member, const char* types, Arguments... arguments) {
    return call_method(client, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       member, types, arguments...);
}

inline std::string read_string(Reply& reply) {
    const char* value = nullptr;
    if (!reply.ok() || sd_bus_message_read(reply.message, "s", &value) < 0 || value == nullptr) {
        return "<no string>";
    }
    return value;
}

inline std::uint32_t read_uint32(Reply& reply) {
    std::uint32_t value = ~0u;
    if (reply.ok()) {
        sd_bus_message_read(reply.message, "u", &value);
    }
    return value;
}

inline std::vector<std::string> read_strings(Reply& reply) {
    std::vector<std::string> strings;
    char** values = nullptr;
    if (!reply.ok() || sd_bus_message_read_strv(reply.message, &values) < 0) {
        return {"<no strings>"};
    }
    for (char** value = values; value && *value; ++value) {
        strings.emplace_back(*value);
        free(*value);
    }
    free(values);
    return strings;
}

// A driver method taking one string and returning one string: the string, or "error:<name>".
inline std::string call_string(BusClient& client, const char* member, const char* argument) {
    Reply reply = call_bus(client, member, "s", argument);
    return reply.ok() ? read_string(reply) : "error:" + reply.error_name;
}

// Adds (or with method "RemoveMatch" removes) a match rule; "" or the error name.
inline std::string add_match(BusClient& client, const char* rule, const char* method = "AddMatch") {
    Reply reply = call_bus(client, method, "s", rule);
    return reply.error_name;
}

// A client that speaks the wire itself: authenticated (EXTERNAL) and past Hello, or an invalid fd.
inline util::UniqueFd raw_client(const std::string& address) {
    const std::string path = address.substr(address.find('=') + 1, address.find(',') - address.find('=') - 1);
    util::UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un where{};
    where.sun_family = AF_UNIX;
    path.copy(where.sun_path, sizeof where.sun_path - 1);
    if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&where), sizeof where) != 0) {
        return {};
    }
    std::string uid = std::to_string(::getuid());
    std::string hex;
    for (const char digit : uid) {
        hex += "3" + std::string(1, digit);
    }
    const std::string auth = std::string(1, '\0') + "AUTH EXTERNAL " + hex + "\r\n";
    char answer[256];
    if (::write(socket.get(), auth.data(), auth.size()) < 0 ||
        ::read(socket.get(), answer, sizeof answer) <= 0 || ::write(socket.get(), "BEGIN\r\n", 7) < 0) {
        return {};
    }
    const std::vector<std::uint8_t> hello = marshal::build_message({.type = marshal::MessageType::method_call,
                                                                    .serial = 1,
                                                                    .path = "/org/freedesktop/DBus",
                                                                    .interface = "org.freedesktop.DBus",
                                                                    .member = "Hello",
                                                                    .destination = "org.freedesktop.DBus"});
    if (::write(socket.get(), hello.data(), hello.size()) < 0 ||
        ::read(socket.get(), answer, sizeof answer) <= 0) {
        return {};
    }
    return socket;
}

// Processes `client` until `accept` takes a message (true) or `timeout` passes; the message it took, or null.
// Messages it declines are dropped.
inline sd_bus_message* wait_for(BusClient& client, const std::function<bool(sd_bus_message*)>& accept,
                                std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        sd_bus_message* message = nullptr;
        const int processed = sd_bus_process(client.bus, &message);
        if (processed < 0) {
            return nullptr;
        }
        if (message != nullptr) {
            if (accept(message)) {
                return message;
            }
            sd_bus_message_unref(message);
            continue;
        }
        if (processed == 0) {
            sd_bus_wait(client.bus, 10000);
        }
    }
    return nullptr;
}

// The next signal to `client` not sent by the driver, as "member:arg0" (arg0 when it is a string); "" on
// timeout.
inline std::string next_signal(BusClient& client,
                               std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
    sd_bus_message* message = wait_for(
        client,
        [](sd_bus_message* candidate) {
            std::uint8_t type = 0;
            sd_bus_message_get_type(candidate, &type);
            const char* sender = sd_bus_message_get_sender(candidate);
            return type == SD_BUS_MESSAGE_SIGNAL &&
                   (sender == nullptr || std::string(sender) != "org.freedesktop.DBus");
        },
        timeout);
    if (message == nullptr) {
        return "";
    }
    std::string text = sd_bus_message_get_member(message);
    const char* argument = nullptr;
    char type = 0;
    if (sd_bus_message_peek_type(message, &type, nullptr) > 0 && type == 's' &&
        sd_bus_message_read_basic(message, 's', &argument) > 0) {
        text += std::string(":") + argument;
    }
    sd_bus_message_unref(message);
    return text;
}

// Polls `condition` for up to two seconds.
inline bool eventually(const std::function<bool()>& condition) {
    for (int attempt = 0; attempt < 200; ++attempt) {
        if (condition()) {
            return true;
        }
        usleep(10000);
    }
    return condition();
}

// Answers method calls on `client` from a thread of its own until destroyed: `handle` gets each call
// (and replies to it, or not).
class Server {
  public:
    Server(BusClient& client, std::function<void(sd_bus_message*)> handle)
        : client_(client), handle_(std::move(handle)), thread_([this] { run(); }) {}
    ~Server() {
        stop_ = true;
        thread_.join();
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

  private:
    void run() {
        while (!stop_) {
            sd_bus_message* message = nullptr;
            const int processed = sd_bus_process(client_.bus, &message);
            if (message != nullptr) {
                if (sd_bus_message_is_method_call(message, nullptr, nullptr)) {
                    handle_(message);
                }
                sd_bus_message_unref(message);
            } else if (processed <= 0) {
                sd_bus_wait(client_.bus, 20000);
            }
        }
    }

    BusClient& client_;
    std::function<void(sd_bus_message*)> handle_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace busgate::bus::testing
