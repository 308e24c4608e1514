// Container endpoints: first the pure rule parsing and matching (endpoints.h), then the
// org.busgate.Endpoints1 methods of a bus in process, spoken to over the wire.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "bus/endpoints.h"
#include "bus/test_harness.h"

using namespace busgate;
using namespace busgate::bus;
using namespace busgate::bus::testing;

namespace {

MethodRule parsed(std::string_view text) {
    std::string error;
    auto rule = parse_method_rule(text, error);
    EXPECT_TRUE(rule.has_value()) << text << ": " << error;
    return rule.value_or(MethodRule{});
}

std::string parse_error(std::string_view text) {
    std::string error;
    EXPECT_FALSE(parse_method_rule(text, error).has_value()) << text;
    return error;
}

marshal::MessageHeader call_header(std::string_view path, std::string_view interface,
                                   std::string_view member) {
    marshal::MessageHeader header;
    header.type = marshal::MessageType::method_call;
    header.path = path;
    header.interface = interface;
    header.member = member;
    return header;
}

}  // namespace

TEST(EndpointNames, APatternMatchesItselfAndEveryNameBelowIt) {
    EXPECT_TRUE(name_matches("org.example.Foo", "org.example.Foo"));
    EXPECT_FALSE(name_matches("org.example.Foo", "org.example.Foo.Bar"));
    EXPECT_FALSE(name_matches("org.example.Foo", "org.example.Fo"));
    // As xdg-dbus-proxy: the name itself and every name below it, at any depth.
    EXPECT_TRUE(name_matches("org.example.*", "org.example.Foo"));
    EXPECT_TRUE(name_matches("org.example.*", "org.example.Foo.Bar"));
    EXPECT_TRUE(name_matches("org.example.*", "org.example"));
    EXPECT_FALSE(name_matches("org.example.*", "org.examples.Foo"));
    EXPECT_FALSE(name_matches("org.example.*", "org.exampl"));
    EXPECT_FALSE(name_matches("org.example.*", "org"));
}

TEST(EndpointMethodRules, ANameAloneAllowsEveryMethodOnEveryPath) {
    const MethodRule rule = parsed("org.example.Service");
    EXPECT_EQ(rule.name, "org.example.Service");
    EXPECT_EQ(rule.interface, "");
    EXPECT_EQ(rule.member, "");
    EXPECT_EQ(rule.path, "");
    EXPECT_TRUE(rule.matches(call_header("/any/where", "org.example.Any", "Thing")));
    const MethodRule star = parsed("org.example.*=*");
    EXPECT_EQ(star.name, "org.example.*");
    EXPECT_EQ(star.interface, "");
    EXPECT_TRUE(star.matches(call_header("/", "a.b", "C")));
}

TEST(EndpointMethodRules, InterfaceMemberAndPathAreSplit) {
    const MethodRule rule = parsed("org.example.Service=org.example.Iface.Method@/org/example/Object");
    EXPECT_EQ(rule.name, "org.example.Service");
    EXPECT_EQ(rule.interface, "org.example.Iface");
    EXPECT_EQ(rule.member, "Method");
    EXPECT_EQ(rule.path, "/org/example/Object");
    EXPECT_FALSE(rule.path_subtree);
    EXPECT_TRUE(rule.matches(call_header("/org/example/Object", "org.example.Iface", "Method")));
    EXPECT_FALSE(rule.matches(call_header("/org/example/Object", "org.example.Iface", "Other")));
    EXPECT_FALSE(rule.matches(call_header("/org/example/Object", "org.example.Other", "Method")));
    EXPECT_FALSE(rule.matches(call_header("/org/example/Object/Child", "org.example.Iface", "Method")));
    EXPECT_FALSE(rule.matches(call_header("/org/example", "org.example.Iface", "Method")));
}

TEST(EndpointMethodRules, InterfaceStarAllowsEveryMemberOfTheInterface) {
    const MethodRule rule = parsed("org.example.Service=org.example.Iface.*");
    EXPECT_EQ(rule.interface, "org.example.Iface");
    EXPECT_EQ(rule.member, "");
    EXPECT_TRUE(rule.matches(call_header("/x", "org.example.Iface", "Anything")));
    EXPECT_FALSE(rule.matches(call_header("/x", "org.example.Iface2", "Anything")));
    // A call without an interface does not satisfy a rule that names one.
    EXPECT_FALSE(rule.matches(call_header("/x", "", "Anything")));
}

TEST(EndpointMethodRules, PathSubtreesMatchTheirRootAndEverythingBelowOnElementBoundaries) {
    const MethodRule rule = parsed("org.example.Service=*@/org/example/*");
    EXPECT_EQ(rule.path, "/org/example");
    EXPECT_TRUE(rule.path_subtree);
    EXPECT_TRUE(rule.matches(call_header("/org/example", "i.f", "M")));
    EXPECT_TRUE(rule.matches(call_header("/org/example/a/b", "i.f", "M")));
    EXPECT_FALSE(rule.matches(call_header("/org/examples", "i.f", "M")));
    EXPECT_FALSE(rule.matches(call_header("/org", "i.f", "M")));
    const MethodRule root = parsed("org.example.Service=@/*");
    EXPECT_EQ(root.path, "/");
    EXPECT_TRUE(root.path_subtree);
    EXPECT_TRUE(root.matches(call_header("/", "i.f", "M")));
    EXPECT_TRUE(root.matches(call_header("/any/thing", "i.f", "M")));
}

TEST(EndpointMethodRules, MalformedRulesSayWhatIsWrong) {
    EXPECT_EQ(parse_error(":1.5=org.example.Iface.M"), "\":1.5\" is not a bus name or a name.* pattern");
    EXPECT_EQ(parse_error("org.example.**"), "\"org.example.**\" is not a bus name or a name.* pattern");
    EXPECT_EQ(parse_error("=org.example.Iface.M"), "\"\" is not a bus name or a name.* pattern");
    EXPECT_EQ(parse_error("org.example.Service=Method"), "\"Method\" is not INTERFACE.MEMBER or INTERFACE.*");
    EXPECT_EQ(parse_error("org.example.Service=org.example.Iface.9bad"),
              "\"org.example.Iface.9bad\" is not INTERFACE.MEMBER or INTERFACE.*");
    EXPECT_EQ(parse_error("org.example.Service=*@relative/path"), "\"relative/path\" is not an object path");
    EXPECT_EQ(parse_error("org.example.Service=*@/trailing/"), "\"/trailing/\" is not an object path");
}

TEST(EndpointSpecs, ValidationNamesTheFirstProblem) {
    EndpointSpec spec{.name = "sandbox-1_a"};
    EXPECT_EQ(validate_endpoint(spec), "");
    spec.name = "";
    EXPECT_EQ(validate_endpoint(spec), "an endpoint name is 1 to 64 letters, digits, '-' or '_'");
    spec.name = std::string(65, 'a');
    EXPECT_EQ(validate_endpoint(spec), "an endpoint name is 1 to 64 letters, digits, '-' or '_'");
    spec.name = std::string(64, 'a');
    EXPECT_EQ(validate_endpoint(spec), "");
    spec.name = "has/slash";
    EXPECT_EQ(validate_endpoint(spec), "an endpoint name is 1 to 64 letters, digits, '-' or '_'");
    spec.name = "ok";
    spec.talk = {"org.example.*", ":1.4"};
    EXPECT_EQ(validate_endpoint(spec), "\":1.4\" is not a bus name or a name.* pattern");
    spec.talk = {};
    spec.own = {"org.example.*.Foo"};
    EXPECT_EQ(validate_endpoint(spec), "\"org.example.*.Foo\" is not a bus name or a name.* pattern");
    spec.own = {};
    spec.path = "relative/socket";
    EXPECT_EQ(validate_endpoint(spec), "the socket path must be absolute");
    spec.path = "/run/x";
    spec.max_connections = 0;
    EXPECT_EQ(validate_endpoint(spec), "MaxConnections must be at least 1");
}

TEST(EndpointSpecs, AConfiguredEndpointBecomesASpecOrAnErrorWithItsPlace) {
    policy::EndpointConfig config{.name = "flatpak-app",
                                  .type = "flatpak",
                                  .path = "/run/app/bus",
                                  .see = {"org.example.Seen"},
                                  .talk = {"org.example.*"},
                                  .own = {"org.example.App"},
                                  .calls = {"org.example.Portal=org.example.Portal.Open@/org/example/*"},
                                  .broadcasts = {"org.example.Portal=org.example.Portal.Changed"},
                                  .max_connections = 7,
                                  .where = {.file = "/etc/busgate.conf", .line = 12}};
    std::string error;
    const auto spec = endpoint_spec_of(config, error);
    ASSERT_TRUE(spec.has_value()) << error;
    EXPECT_EQ(spec->name, "flatpak-app");
    EXPECT_EQ(spec->type, "flatpak");
    EXPECT_EQ(spec->path, "/run/app/bus");
    EXPECT_EQ(spec->see, std::vector<std::string>{"org.example.Seen"});
    EXPECT_EQ(spec->talk, std::vector<std::string>{"org.example.*"});
    EXPECT_EQ(spec->own, std::vector<std::string>{"org.example.App"});
    ASSERT_EQ(spec->calls.size(), 1u);
    EXPECT_EQ(spec->calls[0].interface, "org.example.Portal");
    EXPECT_EQ(spec->calls[0].member, "Open");
    EXPECT_TRUE(spec->calls[0].path_subtree);
    ASSERT_EQ(spec->broadcasts.size(), 1u);
    EXPECT_EQ(spec->broadcasts[0].member, "Changed");
    EXPECT_EQ(spec->max_connections, 7u);
    EXPECT_FALSE(spec->remove_with_creator);

    config.broadcasts = {"org.example.Portal=Changed"};
    EXPECT_FALSE(endpoint_spec_of(config, error).has_value());
    EXPECT_EQ(error,
              "/etc/busgate.conf:12: <endpoint name=\"flatpak-app\">: \"Changed\" is not INTERFACE.MEMBER "
              "or INTERFACE.*");
    config.broadcasts = {};
    config.max_connections = 0;
    EXPECT_FALSE(endpoint_spec_of(config, error).has_value());
    EXPECT_EQ(error,
              "/etc/busgate.conf:12: <endpoint name=\"flatpak-app\">: MaxConnections must be at least 1");
}

// The driver methods, in process.
namespace {

struct EndpointRow {
    std::string name, type, address;
    bool listening = false;
    std::uint32_t connections = 0, max_connections = 0;
    bool operator==(const EndpointRow&) const = default;
};

std::ostream& operator<<(std::ostream& out, const EndpointRow& row) {
    return out << "(" << row.name << ", " << row.type << ", " << row.address << ", " << row.listening << ", "
               << row.connections << ", " << row.max_connections << ")";
}

Reply call_endpoints(BusClient& client, const char* member, const char* types, auto... arguments) {
    return call_method(client, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.busgate.Endpoints1",
                       member, types, arguments...);
}

// AddEndpoint with a name and what `options` appends to the a{sv} after it.
Reply add_endpoint_with(BusClient& client, const std::string& name,
                        const std::function<void(sd_bus_message*)>& options) {
    sd_bus_message* call = nullptr;
    EXPECT_GE(
        sd_bus_message_new_method_call(client.bus, &call, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.busgate.Endpoints1", "AddEndpoint"),
        0);
    sd_bus_message_open_container(call, 'a', "{sv}");
    sd_bus_message_append(call, "{sv}", "Name", "s", name.c_str());
    options(call);
    sd_bus_message_close_container(call);
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    const int result = sd_bus_call(client.bus, call, 0, &error, &reply);
    sd_bus_message_unref(call);
    return take_reply(result, error, reply);
}

// AddEndpoint with a name, a socket path and, when given, one more string-array option.
Reply add_endpoint(BusClient& client, const std::string& name, const std::string& path,
                   const char* list_key = nullptr, const char* list_value = nullptr) {
    return add_endpoint_with(client, name, [&](sd_bus_message* call) {
        sd_bus_message_append(call, "{sv}", "Type", "s", "test");
        sd_bus_message_append(call, "{sv}", "Path", "s", path.c_str());
        if (list_key != nullptr) {
            sd_bus_message_append(call, "{sv}", list_key, "as", 1, list_value);
        }
    });
}

std::vector<EndpointRow> list_endpoints(BusClient& client) {
    Reply reply = call_endpoints(client, "ListEndpoints", "");
    EXPECT_TRUE(reply.ok()) << reply.error();
    std::vector<EndpointRow> rows;
    if (!reply.ok() || sd_bus_message_enter_container(reply.message, 'a', "(sssbuu)") < 0) {
        return rows;
    }
    const char *name = nullptr, *type = nullptr, *address = nullptr;
    int listening = 0;
    std::uint32_t connections = 0, max_connections = 0;
    while (sd_bus_message_read(reply.message, "(sssbuu)", &name, &type, &address, &listening, &connections,
                               &max_connections) > 0) {
        rows.push_back({name, type, address, listening != 0, connections, max_connections});
    }
    return rows;
}

}  // namespace

TEST(EndpointsDriver, AddListAndRemoveAnEndpoint) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    RunningBus bus;
    BusClient admin(bus.address());
    const std::string path = (bus.directory() / "sandbox.socket").string();
    Reply added = add_endpoint(admin, "sandbox", path);
    ASSERT_TRUE(added.ok()) << added.error();
    const std::string address = read_string(added);
    EXPECT_TRUE(address.starts_with("unix:path=" + path + ",guid=")) << address;
    EXPECT_EQ(list_endpoints(admin), (std::vector<EndpointRow>{{"sandbox", "test", address, true, 0, 256}}));
    {
        BusClient inside(address);
        EXPECT_EQ(inside.unique_name().substr(0, 3), ":1.");
        EXPECT_TRUE(eventually([&] { return list_endpoints(admin).at(0).connections == 1; }));
    }
    Reply removed = call_endpoints(admin, "RemoveEndpoint", "s", "sandbox");
    EXPECT_TRUE(removed.ok()) << removed.error();
    EXPECT_EQ(list_endpoints(admin), std::vector<EndpointRow>{});
    EXPECT_EQ(call_endpoints(admin, "RemoveEndpoint", "s", "sandbox").error(),
              "org.freedesktop.DBus.Error.InvalidArgs: No endpoint named \"sandbox\"");
}

TEST(EndpointsDriver, TheConnectionsARemovalDropsLeaveBeforeTheReply) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    RunningBus bus;
    BusClient admin(bus.address());
    Reply added = add_endpoint(admin, "sandbox", (bus.directory() / "sandbox.socket").string());
    ASSERT_TRUE(added.ok()) << added.error();
    BusClient inside(read_string(added));
    // The driver's signals about what a call caused go out before its reply, as dbus-daemon sends them:
    // the bus numbers its own messages in the order it sends them.
    const std::string rule = "type='signal',member='NameOwnerChanged',arg0='" + inside.unique_name() + "'";
    std::uint64_t left_cookie = 0;
    const auto on_signal = [](sd_bus_message* message, void* cookie, sd_bus_error*) {
        (void)sd_bus_message_get_cookie(message, static_cast<std::uint64_t*>(cookie));
        return 0;
    };
    ASSERT_GE(sd_bus_add_match(admin.bus, nullptr, rule.c_str(), on_signal, &left_cookie), 0);
    Reply removed = call_endpoints(admin, "RemoveEndpoint", "s", "sandbox");
    ASSERT_TRUE(removed.ok()) << removed.error();
    std::uint64_t reply_cookie = 0;
    ASSERT_GE(sd_bus_message_get_cookie(removed.message, &reply_cookie), 0);
    EXPECT_TRUE(eventually([&] {
        while (sd_bus_process(admin.bus, nullptr) > 0) {
        }
        return left_cookie != 0;
    }));
    EXPECT_LT(left_cookie, reply_cookie);
}

TEST(EndpointsDriver, StopListeningKeepsTheEndpointButRefusesNewConnections) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    RunningBus bus;
    BusClient admin(bus.address());
    const std::string path = (bus.directory() / "e.socket").string();
    ASSERT_TRUE(add_endpoint(admin, "e", path).ok());
    Reply stopped = call_endpoints(admin, "StopListening", "s", "e");
    EXPECT_TRUE(stopped.ok()) << stopped.error();
    ASSERT_EQ(list_endpoints(admin).size(), 1u);
    EXPECT_FALSE(list_endpoints(admin)[0].listening);
    EXPECT_EQ(call_endpoints(admin, "StopListening", "s", "other").error(),
              "org.freedesktop.DBus.Error.InvalidArgs: No endpoint named \"other\"");
}

TEST(EndpointsDriver, BadSpecsAreRefusedWithTheReason) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    RunningBus bus;
    BusClient admin(bus.address());
    const std::string path = (bus.directory() / "x.socket").string();
    EXPECT_EQ(add_endpoint(admin, "bad name", path).error(),
              "org.freedesktop.DBus.Error.InvalidArgs: Cannot add the endpoint: an endpoint name is 1 to 64 "
              "letters, digits, '-' or '_'");
    EXPECT_EQ(add_endpoint(admin, "x", path, "Bogus", "y").error(),
              "org.freedesktop.DBus.Error.InvalidArgs: Cannot add the endpoint: unknown option \"Bogus\"");
    EXPECT_EQ(
        add_endpoint(admin, "x", path, "Call", "org.example.S=Method").error(),
        "org.freedesktop.DBus.Error.InvalidArgs: Cannot add the endpoint: \"Method\" is not INTERFACE.MEMBER "
        "or INTERFACE.*");
    EXPECT_EQ(
        add_endpoint(admin, "x", path, "Talk", ":1.1").error(),
        "org.freedesktop.DBus.Error.InvalidArgs: Cannot add the endpoint: \":1.1\" is not a bus name or a "
        "name.* pattern");
    ASSERT_TRUE(add_endpoint(admin, "x", path).ok());
    EXPECT_EQ(
        add_endpoint(admin, "x", path + "2").error(),
        "org.freedesktop.DBus.Error.InvalidArgs: Cannot add the endpoint: an endpoint named \"x\" exists");
    // The wrong signature is the driver's usual refusal.
    EXPECT_EQ(
        call_endpoints(admin, "AddEndpoint", "s", "x").error(),
        "org.freedesktop.DBus.Error.InvalidArgs: Call to AddEndpoint has wrong args (s, expected a{sv})\n");
}

TEST(EndpointsDriver, AUserMayCreateOnlySoManyEndpoints) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    RunningBus bus;
    BusClient admin(bus.address());
    // 16 per uid (max_containers_per_user's default, DaemonOptions::max_endpoints_per_user).
    for (std::size_t index = 0; index < 16; ++index) {
        const std::string name = "e" + std::to_string(index);
        ASSERT_TRUE(add_endpoint(admin, name, (bus.directory() / name).string()).ok()) << index;
    }
    EXPECT_EQ(add_endpoint(admin, "one-more", (bus.directory() / "one-more").string()).error(),
              "org.freedesktop.DBus.Error.LimitsExceeded: Cannot add the endpoint: uid " +
                  std::to_string(getuid()) + " has created the most endpoints allowed (16)");
}

TEST(EndpointsDriver, ClientsOfAnEndpointMayNotManageEndpoints) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    RunningBus bus;
    BusClient admin(bus.address());
    Reply added = add_endpoint(admin, "sandbox", (bus.directory() / "s.socket").string());
    ASSERT_TRUE(added.ok()) << added.error();
    BusClient inside(read_string(added));
    for (const char* member : {"ListEndpoints", "RemoveEndpoint"}) {
        Reply refused = std::string(member) == "ListEndpoints"
                            ? call_endpoints(inside, member, "")
                            : call_endpoints(inside, member, "s", "sandbox");
        EXPECT_EQ(refused.error(), "org.freedesktop.DBus.Error.AccessDenied: Connection \"" +
                                       inside.unique_name() + "\" is not allowed to call " + member +
                                       " from a container endpoint");
    }
    EXPECT_EQ(add_endpoint(inside, "nested", (bus.directory() / "n.socket").string()).error(),
              "org.freedesktop.DBus.Error.AccessDenied: Connection \"" + inside.unique_name() +
                  "\" is not allowed to call AddEndpoint from a container endpoint");
    EXPECT_EQ(list_endpoints(admin).size(), 1u);
}

// AddEndpoint on a listening socket the caller bound, as busgate-dbus-proxy does; `extra` adds one option.
Reply add_endpoint_on_socket(BusClient& client, const std::string& name, int socket,
                             const std::function<void(sd_bus_message*)>& extra = {}) {
    return add_endpoint_with(client, name, [&](sd_bus_message* call) {
        sd_bus_message_append(call, "{sv}", "Socket", "h", socket);
        if (extra) {
            extra(call);
        }
    });
}

int listening_socket(const std::filesystem::path& path) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(fd, 8) != 0) {
        return -1;
    }
    return fd;
}

// What a user other than root and the bus's may do (Flatpak's proxy on the system bus): make endpoints of its
// own, bounded, on a socket it bound; see and remove only those. Each answer is one line of `text`.
TEST(EndpointsDriver, OtherUsersManageOnlyTheirOwnBoundedEndpoints) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    // The bus belongs to a uid that is neither root nor us when we are not root; as root, a child that
    // becomes nobody is the other user.
    const uid_t other = 65534;
    const bool as_root = getuid() == 0;
    RunningBus bus(
        [&](DaemonOptions& options, const std::filesystem::path&) {
            if (!as_root) {
                options.bus_uid = getuid() + 1;
            }
            options.max_connections_per_user_endpoint = 2;
        },
        // Another uid may connect only where the policy says so, as with dbus-daemon.
        std::string(session_policy) + "<policy context=\"default\"><allow user=\"*\"/></policy>");
    chmod(bus.directory().c_str(), 0755);
    chmod((bus.directory() / "bus").c_str(), 0777);
    const std::filesystem::path theirs = bus.directory() / "theirs";
    std::filesystem::create_directory(theirs);
    chmod(theirs.c_str(), 0777);
    BusClient admin(bus.address());
    ASSERT_TRUE(add_endpoint(admin, "admins", (bus.directory() / "admins").string()).ok());
    const std::string uid = std::to_string(as_root ? other : getuid());
    int pipe_ends[2];
    ASSERT_EQ(pipe(pipe_ends), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(pipe_ends[0]);
        if (as_root && (setgid(other) != 0 || setuid(other) != 0)) {
            _exit(2);
        }
        std::string text;
        {
            BusClient user(bus.address());
            const auto line = [&text](const Reply& reply) {
                text += (reply.ok() ? std::string("ok") : reply.error()) + "\n";
            };
            const int socket = listening_socket(theirs / "sandbox");
            const std::string name = "uid" + uid + "-sandbox";
            line(call_endpoints(user, "RemoveEndpoint", "s", "admins"));
            line(call_endpoints(user, "StopListening", "s", "admins"));
            line(add_endpoint(user, name, (theirs / "by-path").string()));
            line(add_endpoint_on_socket(user, "sandbox", socket));
            line(add_endpoint_on_socket(user, name, socket, [](sd_bus_message* call) {
                sd_bus_message_append(call, "{sv}", "MaxConnections", "u", 3u);
            }));
            line(add_endpoint_on_socket(user, name, socket, [](sd_bus_message* call) {
                sd_bus_message_open_container(call, 'e', "sv");
                sd_bus_message_append(call, "s", "See");
                sd_bus_message_open_container(call, 'v', "as");
                sd_bus_message_open_container(call, 'a', "s");
                for (int i = 0; i < 1025; ++i) {
                    sd_bus_message_append(call, "s", ("org.example.N" + std::to_string(i)).c_str());
                }
                sd_bus_message_close_container(call);
                sd_bus_message_close_container(call);
                sd_bus_message_close_container(call);
            }));
            Reply added = add_endpoint_on_socket(user, name, socket);
            line(added);
            const std::string address = added.ok() ? read_string(added) : "";
            text += "listed:";
            for (const EndpointRow& row : list_endpoints(user)) {
                text += " " + row.name + "/" + std::to_string(row.max_connections);
            }
            text += "\n";
            if (added.ok()) {
                // Two connections fit; the third is closed as soon as it is accepted.
                BusClient first(address), second(address);
                text += "connected: " + std::to_string(!first.unique_name().empty()) +
                        std::to_string(!second.unique_name().empty()) + "\n";
                const int third = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                sockaddr_un target{};
                target.sun_family = AF_UNIX;
                std::strncpy(target.sun_path, (theirs / "sandbox").c_str(), sizeof target.sun_path - 1);
                pollfd polled{third, POLLIN, 0};
                char byte = 0;
                const bool closed =
                    ::connect(third, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0 &&
                    ::poll(&polled, 1, 5000) == 1 && ::read(third, &byte, 1) == 0;
                text += std::string("third: ") + (closed ? "closed" : "not closed") + "\n";
                ::close(third);
            }
            close(socket);
        }
        (void)!write(pipe_ends[1], text.data(), text.size());
        _exit(0);
    }
    close(pipe_ends[1]);
    std::string text;
    char buffer[512];
    for (ssize_t length; (length = read(pipe_ends[0], buffer, sizeof buffer)) > 0;) {
        text.append(buffer, static_cast<std::size_t>(length));
    }
    close(pipe_ends[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_EQ(
        text,
        "org.freedesktop.DBus.Error.InvalidArgs: No endpoint named \"admins\"\n"
        "org.freedesktop.DBus.Error.InvalidArgs: No endpoint named \"admins\"\n"
        "org.freedesktop.DBus.Error.AccessDenied: Cannot add the endpoint: uid " +
            uid +
            " may make an endpoint only on a listening socket of its own (\"Socket\"), not on a path\n"
            "org.freedesktop.DBus.Error.AccessDenied: Cannot add the endpoint: an endpoint made by uid " +
            uid + " has a name beginning with \"uid" + uid +
            "-\"\n"
            "org.freedesktop.DBus.Error.LimitsExceeded: Cannot add the endpoint: an endpoint made by uid " +
            uid +
            " takes at most 2 connections\n"
            "org.freedesktop.DBus.Error.LimitsExceeded: Cannot add the endpoint: an endpoint made by uid " +
            uid +
            " has at most 1024 rules of 65536 bytes in all\n"
            "ok\n"
            "listed: uid" +
            uid +
            "-sandbox/2\n"
            "connected: 11\n"
            "third: closed\n");
    // Its endpoint went with its connection; the bus's own is untouched.
    std::vector<std::string> names;
    for (const EndpointRow& row : list_endpoints(admin)) {
        names.push_back(row.name);
    }
    EXPECT_EQ(names, std::vector<std::string>{"admins"});
}

// --log from an endpoint a user made shows that user's clients only: nobody learns what root sends through
// it.
TEST(EndpointsDriver, AUsersLoggingEndpointLogsOnlyThatUsersClients) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    if (getuid() != 0) {
        GTEST_SKIP() << "needs root: a child becomes nobody, and root connects through its endpoint";
    }
    const uid_t other = 65534;
    RunningBus bus({},
                   std::string(session_policy) + "<policy context=\"default\"><allow user=\"*\"/></policy>");
    chmod(bus.directory().c_str(), 0755);
    chmod((bus.directory() / "bus").c_str(), 0777);
    const std::filesystem::path theirs = bus.directory() / "theirs";
    std::filesystem::create_directory(theirs);
    chmod(theirs.c_str(), 0777);
    int to_parent[2], to_child[2];
    ASSERT_EQ(pipe(to_parent), 0);
    ASSERT_EQ(pipe(to_child), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(to_parent[0]);
        close(to_child[1]);
        if (setgid(other) != 0 || setuid(other) != 0) {
            _exit(2);
        }
        std::string text;
        {
            BusClient user(bus.address());
            const int socket = listening_socket(theirs / "logged");
            Reply added = add_endpoint_on_socket(
                user, "uid" + std::to_string(other) + "-logged", socket,
                [](sd_bus_message* call) { sd_bus_message_append(call, "{sv}", "Log", "b", 1); });
            const std::string address = added.ok() ? read_string(added) : "failed: " + added.error();
            (void)!write(to_parent[1], (address + "\n").data(), address.size() + 1);
            char go = 0;
            (void)!read(to_child[0], &go, 1);  // root has made its call through the endpoint
            {
                BusClient own(address);
                (void)call_method(own, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                  "org.freedesktop.DBus", "GetId", "");
            }
            // Every line the bus sent is queued on `user` once its own GetId is answered: the reply comes
            // after.
            (void)call_method(user, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                              "GetId", "");
            for (;;) {
                sd_bus_message* message = nullptr;
                if (sd_bus_process(user.bus, &message) <= 0) {
                    break;
                }
                const char *endpoint = nullptr, *line = nullptr;
                if (message != nullptr &&
                    sd_bus_message_is_signal(message, "org.busgate.Endpoints1", "Log") > 0 &&
                    sd_bus_message_read(message, "ss", &endpoint, &line) >= 0) {
                    text += std::string(line) + "\n";
                }
                sd_bus_message_unref(message);
            }
            close(socket);
        }
        (void)!write(to_parent[1], text.data(), text.size());
        _exit(0);
    }
    close(to_parent[1]);
    close(to_child[0]);
    std::string text;
    char buffer[512];
    ssize_t length = 0;
    while (text.find('\n') == std::string::npos && (length = read(to_parent[0], buffer, sizeof buffer)) > 0) {
        text.append(buffer, static_cast<std::size_t>(length));
    }
    const std::string address = text.substr(0, text.find('\n'));
    text.erase(0, text.find('\n') + 1);
    EXPECT_TRUE(address.starts_with("unix:path=")) << address;
    if (address.starts_with("unix:path=")) {
        BusClient root_inside(address);
        EXPECT_TRUE(call_method(root_inside, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "ListNames", "")
                        .ok());
    }
    (void)!write(to_child[1], "g", 1);
    close(to_child[1]);
    while ((length = read(to_parent[0], buffer, sizeof buffer)) > 0) {
        text.append(buffer, static_cast<std::size_t>(length));
    }
    close(to_parent[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    // nobody's own client is logged (its GetId); root's ListNames is not.
    EXPECT_NE(text.find("-> org.freedesktop.DBus call org.freedesktop.DBus.GetId at /org/freedesktop/DBus\n"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("ListNames"), std::string::npos) << text;
}

// The creator keeps its copy of a passed socket and may make it blocking, or shut it down: the bus must go
// on.
TEST(EndpointsDriver, AListenerItsCreatorMadeBlockingOrShutDownDoesNotStopTheBus) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    RunningBus bus;
    BusClient admin(bus.address());
    const int socket = listening_socket(bus.directory() / "passed");
    ASSERT_GE(socket, 0);
    Reply added = add_endpoint_on_socket(admin, "passed", socket);
    ASSERT_TRUE(added.ok()) << added.error();
    const std::string address = read_string(added);
    ASSERT_EQ(fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) & ~O_NONBLOCK), 0);
    {
        BusClient first(address), second(address);
        EXPECT_FALSE(first.unique_name().empty());
        EXPECT_FALSE(second.unique_name().empty());
    }
    EXPECT_TRUE(call_method(admin, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                            "GetId", "")
                    .ok());
    ASSERT_EQ(shutdown(socket, SHUT_RDWR), 0);
    EXPECT_TRUE(call_method(admin, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                            "GetId", "")
                    .ok());
    EXPECT_TRUE(call_endpoints(admin, "RemoveEndpoint", "s", "passed").ok());
    close(socket);
}

TEST(EndpointsDriver, AnEndpointSeesOnlyTheNamesItsSpecAllows) {
    BUSGATE_SKIP_ON_REFERENCE("org.busgate.Endpoints1");
    RunningBus bus;
    BusClient admin(bus.address());
    BusClient seen(bus.address());
    BusClient hidden(bus.address());
    ASSERT_GE(sd_bus_request_name(seen.bus, "org.example.Seen", 0), 0);
    ASSERT_GE(sd_bus_request_name(hidden.bus, "org.example.Hidden", 0), 0);
    Reply added =
        add_endpoint(admin, "sandbox", (bus.directory() / "s.socket").string(), "See", "org.example.Seen");
    ASSERT_TRUE(added.ok()) << added.error();
    BusClient inside(read_string(added));
    EXPECT_EQ(call_string(inside, "GetNameOwner", "org.example.Seen"), seen.unique_name());
    EXPECT_EQ(call_string(inside, "GetNameOwner", "org.example.Hidden"),
              "error:org.freedesktop.DBus.Error.NameHasNoOwner");
    // Outside the endpoint both exist.
    EXPECT_EQ(call_string(admin, "GetNameOwner", "org.example.Hidden"), hidden.unique_name());
}
