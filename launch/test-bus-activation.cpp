// Activation, what a bus in process can show: service files make names activatable, StartServiceByName
// and auto-start run the Exec= line, and its failures come back as dbus-daemon's Spawn.* errors. The
// activated service is this executable itself, started with BUSGATE_TEST_SERVE=NAME in its environment
// (see serve_if_activated). It starts services with launch/'s spawner, so it lives in launch/ (bus/ cannot
// include launch/). Checked against dbus-daemon 1.14 with BUSGATE_TEST_REFERENCE_DAEMON=/usr/bin/dbus-daemon.
#include <gtest/gtest.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "bus/test_harness.h"
#include "launch/spawner.h"

using namespace busgate;
using namespace busgate::bus;
using namespace busgate::bus::testing;

namespace {

// Started by the bus as a service: takes the name BUSGATE_TEST_SERVE says on DBUS_STARTER_ADDRESS,
// answers org.example.Echo.Echo, and exits when the bus goes away. Runs before main, so the test
// framework never starts in the service process.
[[maybe_unused]] const bool serving = [] {
    const char* name = std::getenv("BUSGATE_TEST_SERVE");
    const char* address = std::getenv("DBUS_STARTER_ADDRESS");
    if (name == nullptr) {
        return false;
    }
    sd_bus* bus = nullptr;
    if (address == nullptr || sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 ||
        sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0 || sd_bus_request_name(bus, name, 0) < 0) {
        _exit(3);
    }
    for (;;) {
        sd_bus_message* message = nullptr;
        const int processed = sd_bus_process(bus, &message);
        if (processed < 0) {
            _exit(0);
        }
        if (message != nullptr) {
            if (sd_bus_message_is_method_call(message, "org.example.Echo", "Echo")) {
                const char* text = nullptr;
                sd_bus_message_read(message, "s", &text);
                sd_bus_reply_method_return(message, "s", text);
            }
            sd_bus_message_unref(message);
        } else if (processed == 0 && sd_bus_wait(bus, UINT64_MAX) < 0) {
            _exit(0);
        }
    }
}();

std::string this_executable() {
    return std::filesystem::read_symlink("/proc/self/exe").string();
}

void write_service(const std::filesystem::path& directory, const std::string& name, const std::string& exec) {
    std::ofstream(directory / (name + ".service"))
        << "[D-BUS Service]\nName=" << name << "\nExec=" << exec << "\n";
}

// A bus whose service directory has `name` started by `exec`.
RunningBus::Configure with_service(const std::string& name, const std::string& exec) {
    return [name, exec](DaemonOptions& options, const std::filesystem::path& directory) {
        // The bus only decides what to start; the process that runs it (launch/) gives it the spawner.
        options.spawner = std::make_shared<launch::Spawner>();
        write_service(directory / "services", name, exec);
    };
}

std::string serving_exec(const std::string& name) {
    return "/usr/bin/env BUSGATE_TEST_SERVE=" + name + " " + this_executable();
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

TEST(Activation, AServiceFileMakesItsNameActivatable) {
    RunningBus bus(with_service("org.example.Activatable", "/bin/true"));
    BusClient client(bus.address());
    Reply reply = call_bus(client, "ListActivatableNames", "");
    const std::vector<std::string> names = read_strings(reply);
    EXPECT_TRUE(contains(names, "org.example.Activatable")) << ::testing::PrintToString(names);
    EXPECT_TRUE(contains(names, "org.freedesktop.DBus"));
    EXPECT_FALSE(contains(names, "org.example.Other"));
    // Activatable is not owned.
    EXPECT_EQ(call_string(client, "GetNameOwner", "org.example.Activatable"),
              "error:org.freedesktop.DBus.Error.NameHasNoOwner");
}

TEST(Activation, StartServiceByNameOfANameNoFileProvidesIsServiceUnknown) {
    RunningBus bus(with_service("org.example.Activatable", "/bin/true"));
    BusClient client(bus.address());
    EXPECT_EQ(
        call_bus(client, "StartServiceByName", "su", "org.example.Missing", 0u).error(),
        "org.freedesktop.DBus.Error.ServiceUnknown: The name org.example.Missing was not provided by any "
        ".service files");
}

TEST(Activation, StartServiceByNameStartsTheServiceOnce) {
    RunningBus bus(with_service("org.example.Started", serving_exec("org.example.Started")));
    BusClient client(bus.address());
    Reply started = call_bus(client, "StartServiceByName", "su", "org.example.Started", 0u);
    ASSERT_TRUE(started.ok()) << started.error();
    EXPECT_EQ(read_uint32(started), 1u);  // SUCCESS
    EXPECT_NE(call_string(client, "GetNameOwner", "org.example.Started").substr(0, 3), "err");
    Reply again = call_bus(client, "StartServiceByName", "su", "org.example.Started", 0u);
    EXPECT_EQ(read_uint32(again), 2u);  // ALREADY_RUNNING
}

TEST(Activation, AMessageToAnActivatableNameIsDeliveredAfterTheStart) {
    RunningBus bus(with_service("org.example.Echo", serving_exec("org.example.Echo")));
    BusClient client(bus.address());
    Reply reply =
        call_method(client, "org.example.Echo", "/", "org.example.Echo", "Echo", "s", "auto-started");
    ASSERT_TRUE(reply.ok()) << reply.error();
    EXPECT_EQ(read_string(reply), "auto-started");
}

TEST(Activation, WithoutAutoStartAnActivatableNameDoesNotExist) {
    RunningBus bus(with_service("org.example.Echo", serving_exec("org.example.Echo")));
    BusClient client(bus.address());
    sd_bus_message* call = nullptr;
    ASSERT_GE(sd_bus_message_new_method_call(client.bus, &call, "org.example.Echo", "/", "org.example.Echo",
                                             "Echo"),
              0);
    sd_bus_message_append(call, "s", "not started");
    sd_bus_message_set_auto_start(call, 0);
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* answer = nullptr;
    const int result = sd_bus_call(client.bus, call, 0, &error, &answer);
    sd_bus_message_unref(call);
    Reply reply = take_reply(result, error, answer);
    EXPECT_EQ(reply.error(),
              "org.freedesktop.DBus.Error.NameHasNoOwner: Name \"org.example.Echo\" does not exist");
}

TEST(Activation, AnExecThatCannotRunIsSpawnExecFailed) {
    RunningBus bus(with_service("org.example.Broken", "/nonexistent/busgate-test-program --flag"));
    BusClient client(bus.address());
    // dbus-daemon names the service, not the program.
    EXPECT_EQ(
        call_bus(client, "StartServiceByName", "su", "org.example.Broken", 0u).error(),
        "org.freedesktop.DBus.Error.Spawn.ExecFailed: Failed to execute program org.example.Broken: No such "
        "file or directory");
}

TEST(Activation, AServiceThatExitsWithoutTheNameIsSpawnChildExited) {
    RunningBus bus(with_service("org.example.Quitter", "/bin/sh -c 'exit 7'"));
    BusClient client(bus.address());
    EXPECT_EQ(
        call_bus(client, "StartServiceByName", "su", "org.example.Quitter", 0u).error(),
        "org.freedesktop.DBus.Error.Spawn.ChildExited: Process org.example.Quitter exited with status 7");
}

TEST(Activation, AServiceKilledBySignalIsSpawnChildSignaled) {
    RunningBus bus(with_service("org.example.Crasher", "/bin/sh -c 'kill -9 $$'"));
    BusClient client(bus.address());
    EXPECT_EQ(
        call_bus(client, "StartServiceByName", "su", "org.example.Crasher", 0u).error(),
        "org.freedesktop.DBus.Error.Spawn.ChildSignaled: Process org.example.Crasher received signal 9");
}
