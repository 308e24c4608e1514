// The daemon end to end, in process (test_harness.h): a BusDaemon on a temporary socket and sd-bus as a
// real client.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bus/bus_daemon.h"
#include "bus/test_harness.h"
#include "busgate/policy/configuration.h"

using namespace busgate;
using namespace busgate::bus;
using namespace busgate::bus::testing;

TEST(BusDaemon, HelloGivesEachClientAUniqueName) {
    RunningBus bus;
    BusClient first(bus.address());
    BusClient second(bus.address());
    EXPECT_EQ(first.unique_name().substr(0, 3), ":1.");
    EXPECT_NE(first.unique_name(), second.unique_name());
    EXPECT_EQ(call_string(first, "GetNameOwner", second.unique_name().c_str()), second.unique_name());
    EXPECT_EQ(call_string(first, "GetNameOwner", "org.freedesktop.DBus"), "org.freedesktop.DBus");
}

TEST(BusDaemon, RequestedNamesAreOwnedAndReleasedOnDisconnect) {
    RunningBus bus;
    BusClient observer(bus.address());
    std::string owner_name;
    {
        BusClient owner(bus.address());
        owner_name = owner.unique_name();
        ASSERT_GE(sd_bus_request_name(owner.bus, "org.example.Service", 0), 0);
        EXPECT_EQ(call_string(observer, "GetNameOwner", "org.example.Service"), owner_name);
        // A second owner without replacement rights is refused (sd-bus maps EXISTS to -EEXIST).
        BusClient rival(bus.address());
        EXPECT_EQ(sd_bus_request_name(rival.bus, "org.example.Service", 0), -EEXIST);
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (call_string(observer, "GetNameOwner", "org.example.Service").starts_with("error:")) {
            break;
        }
        usleep(10000);
    }
    EXPECT_EQ(call_string(observer, "GetNameOwner", "org.example.Service"),
              "error:org.freedesktop.DBus.Error.NameHasNoOwner");
}

TEST(BusDaemon, ListNamesHasTheUniqueNameOfConnectionsThatOwnNames) {
    RunningBus bus;
    BusClient owner(bus.address());
    BusClient observer(bus.address());
    ASSERT_GE(sd_bus_request_name(owner.bus, "org.example.Listed", 0), 0);
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    ASSERT_GE(sd_bus_call_method(observer.bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", "ListNames", &error, &reply, nullptr),
              0);
    char** names = nullptr;
    ASSERT_GE(sd_bus_message_read_strv(reply, &names), 0);
    std::vector<std::string> listed;
    for (char** name = names; name && *name; ++name) {
        listed.emplace_back(*name);
        free(*name);
    }
    free(names);
    sd_bus_message_unref(reply);
    std::sort(listed.begin(), listed.end());
    std::vector<std::string> expected = {"org.freedesktop.DBus", "org.example.Listed", owner.unique_name(),
                                         observer.unique_name()};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(listed, expected);
}

TEST(BusDaemon, MethodCallsReachTheOwnerAndRepliesComeBack) {
    RunningBus bus;
    BusClient service(bus.address());
    ASSERT_GE(sd_bus_request_name(service.bus, "org.example.Echo", 0), 0);
    std::thread server([&] {
        for (int handled = 0; handled < 1;) {
            sd_bus_message* call = nullptr;
            if (sd_bus_process(service.bus, &call) > 0 && call != nullptr) {
                if (sd_bus_message_is_method_call(call, "org.example.Echo", "Echo")) {
                    const char* text = nullptr;
                    sd_bus_message_read(call, "s", &text);
                    sd_bus_reply_method_return(call, "s", text);
                    ++handled;
                }
                sd_bus_message_unref(call);
            } else {
                sd_bus_wait(service.bus, 100000);
            }
        }
    });
    BusClient client(bus.address());
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    ASSERT_GE(sd_bus_call_method(client.bus, "org.example.Echo", "/", "org.example.Echo", "Echo", &error,
                                 &reply, "s", "hello through the core"),
              0)
        << (error.message ? error.message : "");
    const char* text = nullptr;
    sd_bus_message_read(reply, "s", &text);
    EXPECT_STREQ(text, "hello through the core");
    const char* sender = sd_bus_message_get_sender(reply);
    EXPECT_EQ(std::string(sender ? sender : ""), service.unique_name());
    sd_bus_message_unref(reply);
    server.join();
}

TEST(BusDaemon, UnknownDestinationsGetServiceUnknown) {
    RunningBus bus;
    BusClient client(bus.address());
    sd_bus_error error = SD_BUS_ERROR_NULL;
    EXPECT_LT(
        sd_bus_call_method(client.bus, "org.example.Nobody", "/", "org.example.X", "Y", &error, nullptr, ""),
        0);
    EXPECT_STREQ(error.name, "org.freedesktop.DBus.Error.ServiceUnknown");
    EXPECT_STREQ(error.message, "The name org.example.Nobody was not provided by any .service files");
    sd_bus_error_free(&error);
}

TEST(BusDaemon, UnknownDriverMethodsAreRejected) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(call_string(client, "NoSuchMethod", "x"), "error:org.freedesktop.DBus.Error.UnknownMethod");
    EXPECT_EQ(call_string(client, "GetNameOwner", "not a name"),
              "error:org.freedesktop.DBus.Error.NameHasNoOwner");  // as dbus-daemon answers it
    EXPECT_EQ(call_string(client, "GetConnectionUnixUser", ":1.999"),
              "error:org.freedesktop.DBus.Error.NameHasNoOwner");
}

TEST(BusDaemon, BroadcastsReachOnlyConnectionsWhoseRulesMatchExactly) {
    RunningBus bus;
    BusClient emitter(bus.address());
    BusClient subscriber(bus.address());
    ASSERT_EQ(add_match(subscriber, "type='signal',interface='org.example.Iface',member='Wanted'"), "");
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/org/example", "org.example.Iface", "Unwanted", "s", "no"), 0);
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/org/example", "org.example.Iface", "Wanted", "s", "yes"), 0);
    sd_bus_flush(emitter.bus);
    EXPECT_EQ(next_signal(subscriber), "Wanted:yes");
}

TEST(BusDaemon, ArgumentRulesSeePastNonStringArguments) {
    // arg1 of a (u, s) signal: the bloom filter must carry string arguments after other types.
    RunningBus bus;
    BusClient emitter(bus.address());
    BusClient subscriber(bus.address());
    ASSERT_EQ(add_match(subscriber, "type='signal',member='Count',arg1='right'"), "");
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/", "org.example.Iface", "Count", "us", 1u, "wrong"), 0);
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/", "org.example.Iface", "Count", "us", 2u, "right"), 0);
    ASSERT_GE(sd_bus_emit_signal(emitter.bus, "/", "org.example.Iface", "Done", "s", "end"), 0);
    sd_bus_flush(emitter.bus);
    sd_bus_message* message = nullptr;
    std::string seen;
    for (int attempt = 0; attempt < 200 && seen.empty(); ++attempt) {
        if (sd_bus_process(subscriber.bus, &message) > 0 && message != nullptr) {
            std::uint8_t type = 0;
            sd_bus_message_get_type(message, &type);
            if (type == SD_BUS_MESSAGE_SIGNAL &&
                sd_bus_message_is_signal(message, "org.example.Iface", "Count")) {
                std::uint32_t number = 0;
                const char* text = nullptr;
                sd_bus_message_read(message, "us", &number, &text);
                seen = std::to_string(number) + text;
            }
            sd_bus_message_unref(message);
        } else {
            sd_bus_wait(subscriber.bus, 10000);
        }
    }
    EXPECT_EQ(seen, "2right");
}

TEST(BusDaemon, RemoveMatchTakesBackEqualRulesOnly) {
    RunningBus bus;
    BusClient client(bus.address());
    EXPECT_EQ(add_match(client, "member='A',type='signal'"), "");
    EXPECT_EQ(add_match(client, "type='signal',member='B'", "RemoveMatch"),
              "org.freedesktop.DBus.Error.MatchRuleNotFound");
    // Equal as parsed rules, not as strings.
    EXPECT_EQ(add_match(client, "type='signal',member='A'", "RemoveMatch"), "");
    EXPECT_EQ(add_match(client, "type='signal',member='A'", "RemoveMatch"),
              "org.freedesktop.DBus.Error.MatchRuleNotFound");
    EXPECT_EQ(add_match(client, "type='nonsense'"), "org.freedesktop.DBus.Error.MatchRuleInvalid");
}

TEST(BusDaemon, NameOwnerChangedFollowsRules) {
    RunningBus bus;
    BusClient watcher(bus.address());
    ASSERT_EQ(add_match(watcher,
                        "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',"
                        "arg0='org.example.Watched'"),
              "");
    BusClient owner(bus.address());
    ASSERT_GE(sd_bus_request_name(owner.bus, "org.example.Other", 0), 0);
    ASSERT_GE(sd_bus_request_name(owner.bus, "org.example.Watched", 0), 0);
    std::string seen;
    for (int attempt = 0; attempt < 200 && seen.empty(); ++attempt) {
        sd_bus_message* message = nullptr;
        if (sd_bus_process(watcher.bus, &message) > 0 && message != nullptr) {
            if (sd_bus_message_is_signal(message, "org.freedesktop.DBus", "NameOwnerChanged")) {
                const char *name = nullptr, *old_owner = nullptr, *new_owner = nullptr;
                sd_bus_message_read(message, "sss", &name, &old_owner, &new_owner);
                seen = std::string(name) + "|" + old_owner + "|" + new_owner;
            }
            sd_bus_message_unref(message);
        } else {
            sd_bus_wait(watcher.bus, 10000);
        }
    }
    EXPECT_EQ(seen, "org.example.Watched||" + owner.unique_name());
}

TEST(BusDaemon, DebugStatsListsMatchRulesInCanonicalForm) {
    RunningBus bus;
    BusClient client(bus.address());
    ASSERT_EQ(add_match(client, "member='M',  type='signal'"), "");
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    ASSERT_GE(sd_bus_call_method(client.bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus.Debug.Stats", "GetAllMatchRules", &error, &reply, ""),
              0)
        << (error.message ? error.message : "");
    std::string found;
    ASSERT_GE(sd_bus_message_enter_container(reply, 'a', "{sas}"), 0);
    while (sd_bus_message_enter_container(reply, 'e', "sas") > 0) {
        const char* name = nullptr;
        sd_bus_message_read(reply, "s", &name);
        sd_bus_message_enter_container(reply, 'a', "s");
        const char* rule = nullptr;
        while (sd_bus_message_read(reply, "s", &rule) > 0) {
            if (std::string(name) == client.unique_name()) {
                found += rule;
            }
        }
        sd_bus_message_exit_container(reply);
        sd_bus_message_exit_container(reply);
    }
    sd_bus_message_unref(reply);
    EXPECT_EQ(found, "type='signal',member='M'");
    // Stats live only at the canonical path, as in dbus-daemon.
    EXPECT_LT(sd_bus_call_method(client.bus, "org.freedesktop.DBus", "/", "org.freedesktop.DBus.Debug.Stats",
                                 "GetStats", &error, nullptr, ""),
              0);
    EXPECT_STREQ(error.name, "org.freedesktop.DBus.Error.UnknownInterface");
    sd_bus_error_free(&error);
}

TEST(BusDaemon, AtConsolePoliciesFollowPamConsoleMarks) {
    // Owning org.example.Console is allowed only at the console; the mark is pam_console's file.
    const auto configure = [](bool at_console) {
        return [at_console](DaemonOptions& options, const std::filesystem::path& directory) {
            options.policy = busgate::policy::parse_configuration(
                                 "<busconfig><listen>unix:tmpdir=/tmp</listen><policy context=\"default\">"
                                 "<allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy>"
                                 "<policy at_console=\"true\"><allow own=\"org.example.Console\"/></policy>"
                                 "</busconfig>",
                                 "/virtual/console.conf")
                                 .policy;
            options.console_directory = (directory / "console").string();
            std::filesystem::create_directories(options.console_directory);
            if (at_console) {
                const passwd* self = getpwuid(getuid());
                ASSERT_NE(self, nullptr);
                std::ofstream(std::filesystem::path(options.console_directory) / self->pw_name);
            }
        };
    };
    {
        RunningBus bus(configure(false));
        BusClient client(bus.address());
        EXPECT_EQ(sd_bus_request_name(client.bus, "org.example.Console", 0), -EACCES);
    }
    {
        RunningBus bus(configure(true));
        BusClient client(bus.address());
        EXPECT_GE(sd_bus_request_name(client.bus, "org.example.Console", 0), 0);
    }
}

// A client writes its AUTH as soon as connect() returns. The bus reads it before its next wait instead of
// after it, so the reply is out one wake-up after the accept, not two: the loop is driven by hand here.
TEST(BusDaemon, ANewConnectionsFirstBytesAreReadBeforeTheNextWait) {
    BUSGATE_SKIP_ON_REFERENCE("drives busgate's event loop by hand");
    std::string pattern = (std::filesystem::temp_directory_path() / "busgate-test-XXXXXX").string();
    const std::filesystem::path directory = mkdtemp(pattern.data());
    const std::string path = (directory / "bus").string();
    DaemonOptions options;
    options.listen = {"unix:path=" + path};
    options.bus_uid = getuid();
    options.auth_mechanisms = {"EXTERNAL"};
    transport::EventLoop loop;
    BusDaemon daemon(loop, options);
    std::string error;
    ASSERT_TRUE(daemon.start(error)) << error;

    const int client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof address.sun_path - 1);
    ASSERT_EQ(connect(client, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    std::string uid_hex;
    for (const char digit : std::to_string(getuid())) {
        uid_hex += "0123456789abcdef"[(digit >> 4) & 0xf];
        uid_hex += "0123456789abcdef"[digit & 0xf];
    }
    const std::string auth = std::string(1, '\0') + "AUTH EXTERNAL " + uid_hex + "\r\n";
    ASSERT_EQ(write(client, auth.data(), auth.size()), static_cast<ssize_t>(auth.size()));

    loop.run_once(5000);  // the listener is readable: the accept
    loop.run_once(0);     // before this wait, the read and the reply; on the old path only the read
    char reply[256];
    const ssize_t length = recv(client, reply, sizeof reply, MSG_DONTWAIT);
    ASSERT_GT(length, 0) << "no reply yet: " << strerror(errno);
    EXPECT_EQ(std::string(reply, 3), "OK ");
    close(client);
    daemon.stop();
    std::filesystem::remove_all(directory);
}
