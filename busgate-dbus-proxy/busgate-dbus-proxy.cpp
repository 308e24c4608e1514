// busgate-dbus-proxy: xdg-dbus-proxy's command line, without the proxy. For a bus that is busgate it binds
// each PATH itself, hands the listening socket to the bus as a container endpoint carrying the group's
// rules, and only keeps the creating connection open: the bus filters, clients talk to it directly, and
// the endpoint goes when this process does. Groups on any other bus are served by the real xdg-dbus-proxy.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#ifndef XDG_DBUS_PROXY
#define XDG_DBUS_PROXY "/usr/bin/xdg-dbus-proxy"
#endif
#ifndef BUSGATE_VERSION
#define BUSGATE_VERSION "0"
#endif

namespace {

struct Group {
    std::string address;
    std::string path;
    std::vector<std::string> arguments;  // as given, for xdg-dbus-proxy when the bus is not busgate
    bool filter = false;
    bool log = false;
    bool sloppy_names = false;
    std::vector<std::string> see, talk, own, calls, broadcasts;
    sd_bus* bus = nullptr;  // the endpoint's creator: the endpoint lives while it is connected
    int socket = -1;
    std::string endpoint;  // the endpoint's name on the bus
};

struct Options {
    int ready_fd = -1;
    std::vector<Group> groups;
};

void print_help() {
    std::puts(
        "Usage:\n  busgate-dbus-proxy [OPTION...] [ADDRESS PATH [OPTION...] ...]\n\n"
        "  --help  --version  --fd=FD  --args=FD\n"
        "Per ADDRESS PATH: --filter --log --sloppy-names --see=NAME --talk=NAME --own=NAME\n"
        "                  --call=NAME=RULE --broadcast=NAME=RULE\n"
        "See busgate-dbus-proxy(1).");
}

bool read_all(int fd, std::string& into) {
    char buffer[4096];
    for (;;) {
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got == 0) {
            return true;
        }
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        into.append(buffer, static_cast<std::size_t>(got));
    }
}

bool parse_fd(std::string_view text, int& fd) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos || text.size() > 9) {
        return false;
    }
    fd = std::stoi(std::string(text));
    return true;
}

// xdg-dbus-proxy's grammar: general options anywhere; ADDRESS then PATH start a group; proxy options
// apply to the group before them. Arguments from --args=FD are read in place, as if given there.
std::optional<Options> parse(std::vector<std::string> arguments) {
    Options options;
    bool want_path = false;
    for (std::size_t i = 0; i < arguments.size(); ++i) {
        const std::string argument = arguments[i];
        const auto value_of = [&](std::string_view option) -> std::optional<std::string> {
            if (argument.starts_with(std::string(option) + "=")) {
                return argument.substr(option.size() + 1);
            }
            return std::nullopt;
        };
        if (argument == "--help") {
            print_help();
            std::exit(0);
        }
        if (argument == "--version") {
            std::printf("busgate-dbus-proxy %s\n", BUSGATE_VERSION);
            std::exit(0);
        }
        if (const auto fd = value_of("--fd")) {
            if (!parse_fd(*fd, options.ready_fd)) {
                std::fprintf(stderr, "Invalid fd %s\n", fd->c_str());
                return std::nullopt;
            }
            continue;
        }
        if (const auto fd = value_of("--args")) {
            int from = -1;
            std::string text;
            if (!parse_fd(*fd, from) || !read_all(from, text)) {
                std::fprintf(stderr, "Invalid --args fd %s\n", fd->c_str());
                return std::nullopt;
            }
            ::close(from);
            std::vector<std::string> read;
            for (std::size_t start = 0; start < text.size();) {
                std::size_t end = text.find('\0', start);
                if (end == std::string::npos) {
                    end = text.size();
                }
                read.push_back(text.substr(start, end - start));
                start = end + 1;
            }
            arguments.insert(arguments.begin() + static_cast<std::ptrdiff_t>(i) + 1, read.begin(),
                             read.end());
            continue;
        }
        if (!argument.starts_with("--")) {
            if (want_path) {
                options.groups.back().path = argument;
                options.groups.back().arguments.push_back(argument);
                want_path = false;
            } else {
                options.groups.push_back({.address = argument, .arguments = {argument}});
                want_path = true;
            }
            continue;
        }
        if (options.groups.empty() || want_path) {
            std::fprintf(stderr, "Unknown option %s\n", argument.c_str());
            return std::nullopt;
        }
        Group& group = options.groups.back();
        group.arguments.push_back(argument);
        if (argument == "--filter") {
            group.filter = true;
        } else if (argument == "--log") {
            group.log = true;
        } else if (argument == "--sloppy-names") {
            group.sloppy_names = true;
        } else if (const auto name = value_of("--see")) {
            group.see.push_back(*name);
        } else if (const auto talk = value_of("--talk")) {
            group.talk.push_back(*talk);
        } else if (const auto own = value_of("--own")) {
            group.own.push_back(*own);
        } else if (const auto call = value_of("--call")) {
            group.calls.push_back(*call);
        } else if (const auto broadcast = value_of("--broadcast")) {
            group.broadcasts.push_back(*broadcast);
        } else {
            std::fprintf(stderr, "Unknown proxy option %s\n", argument.c_str());
            return std::nullopt;
        }
    }
    if (want_path) {
        std::fprintf(stderr, "No path specified for address %s\n", options.groups.back().address.c_str());
        return std::nullopt;
    }
    if (options.groups.empty()) {
        std::fprintf(stderr, "No proxies specified\n");
        return std::nullopt;
    }
    return options;
}

// --log: the bus sends the lines about the endpoint's clients to its creator, in xdg-dbus-proxy's form; they
// are printed as xdg-dbus-proxy prints them, on standard output.
// Only the bus's own lines about this group's endpoint: anyone may send us a signal.
int print_log_line(sd_bus_message* message, void* data, sd_bus_error*) {
    const Group& group = *static_cast<const Group*>(data);
    const char* endpoint = nullptr;
    const char* line = nullptr;
    const char* sender = sd_bus_message_get_sender(message);
    if (sd_bus_message_is_signal(message, "org.busgate.Endpoints1", "Log") > 0 && sender != nullptr &&
        std::strcmp(sender, "org.freedesktop.DBus") == 0 &&
        sd_bus_message_read(message, "ss", &endpoint, &line) >= 0 && group.endpoint == endpoint) {
        std::printf("%s\n", line);
        std::fflush(stdout);
        return 1;
    }
    return 0;
}

bool is_busgate(sd_bus* bus) {
    sd_bus_error error{nullptr, nullptr,
                       0};  // SD_BUS_ERROR_NULL is a C compound literal clang rejects in C++
    sd_bus_message* reply = nullptr;
    const int result =
        sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus.Introspectable", "Introspect", &error, &reply, "");
    sd_bus_error_free(&error);
    const char* xml = nullptr;
    const bool found = result >= 0 && sd_bus_message_read(reply, "s", &xml) >= 0 &&
                       std::strstr(xml, "org.busgate.Endpoints1") != nullptr;
    sd_bus_message_unref(reply);
    return found;
}

sd_bus* connect(const std::string& address, std::string& problem) {
    sd_bus* bus = nullptr;
    int result = sd_bus_new(&bus);
    if (result >= 0) {
        result = sd_bus_set_address(bus, address.c_str());
    }
    if (result >= 0) {
        result = sd_bus_set_bus_client(bus, 1);
    }
    if (result >= 0) {
        result = sd_bus_negotiate_fds(bus, 1);
    }
    if (result >= 0) {
        result = sd_bus_start(bus);
    }
    if (result < 0) {
        problem = "Failed to connect to bus " + address + ": " + std::strerror(-result);
        sd_bus_unref(bus);
        return nullptr;
    }
    return bus;
}

int bind_listening(const std::string& path, std::string& problem) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
        problem = "socket path too long: " + path;
        return -1;
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct stat status {};
    if (::lstat(path.c_str(), &status) == 0 && S_ISSOCK(status.st_mode)) {
        ::unlink(path.c_str());  // as xdg-dbus-proxy, a leftover socket is replaced
    }
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd, 128) != 0) {
        problem = "Failed to listen on " + path + ": " + std::strerror(errno);
        if (fd >= 0) {
            ::close(fd);
        }
        return -1;
    }
    return fd;
}

int append_list(sd_bus_message* message, const char* key, const std::vector<std::string>& values) {
    int result = sd_bus_message_open_container(message, SD_BUS_TYPE_DICT_ENTRY, "sv");
    if (result >= 0) {
        result = sd_bus_message_append(message, "s", key);
    }
    if (result >= 0) {
        result = sd_bus_message_open_container(message, SD_BUS_TYPE_VARIANT, "as");
    }
    if (result >= 0) {
        result = sd_bus_message_open_container(message, SD_BUS_TYPE_ARRAY, "s");
    }
    for (const std::string& value : values) {
        if (result >= 0) {
            result = sd_bus_message_append(message, "s", value.c_str());
        }
    }
    for (int i = 0; i < 3 && result >= 0; ++i) {
        result = sd_bus_message_close_container(message);
    }
    return result;
}

bool add_endpoint(Group& group, std::size_t index, std::string& problem) {
    group.socket = bind_listening(group.path, problem);
    if (group.socket < 0) {
        return false;
    }
    // An endpoint reads names and rules as xdg-dbus-proxy does ("org.foo.*" is org.foo and all below it).
    // The bus names a user's endpoints after it: "uid<UID>-" is required unless we are root or the bus's
    // user.
    group.endpoint = "uid" + std::to_string(::getuid()) + "-dbus-proxy-" + std::to_string(::getpid()) + "-" +
                     std::to_string(index);
    const std::string& name = group.endpoint;
    sd_bus_message* call = nullptr;
    int result =
        sd_bus_message_new_method_call(group.bus, &call, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.busgate.Endpoints1", "AddEndpoint");
    if (result >= 0) {
        result = sd_bus_message_open_container(call, SD_BUS_TYPE_ARRAY, "{sv}");
    }
    if (result >= 0) {
        result = sd_bus_message_append(call, "{sv}", "Name", "s", name.c_str());
    }
    if (result >= 0) {
        result = sd_bus_message_append(call, "{sv}", "Type", "s", "xdg-dbus-proxy");
    }
    if (result >= 0) {
        result = append_list(call, "See", group.see);
    }
    if (result >= 0) {
        result = append_list(call, "Talk", group.talk);
    }
    if (result >= 0) {
        result = append_list(call, "Own", group.own);
    }
    if (result >= 0) {
        result = append_list(call, "Call", group.calls);
    }
    if (result >= 0) {
        result = append_list(call, "Broadcast", group.broadcasts);
    }
    if (result >= 0) {
        result = sd_bus_message_append(call, "{sv}", "RemoveWithCreator", "b", 1);
    }
    if (result >= 0 && group.log) {
        result = sd_bus_message_append(call, "{sv}", "Log", "b", 1);
    }
    if (result >= 0 && group.sloppy_names) {
        result = sd_bus_message_append(call, "{sv}", "SloppyNames", "b", 1);
    }
    if (result >= 0) {
        result = sd_bus_message_append(call, "{sv}", "Socket", "h", group.socket);
    }
    if (result >= 0) {
        result = sd_bus_message_close_container(call);
    }
    sd_bus_error error{nullptr, nullptr,
                       0};  // SD_BUS_ERROR_NULL is a C compound literal clang rejects in C++
    if (result >= 0) {
        result = sd_bus_call(group.bus, call, 0, &error, nullptr);
    }
    sd_bus_message_unref(call);
    if (result < 0) {
        problem = "Failed to add an endpoint on " + group.address + ": " +
                  (error.message ? std::string(error.message) : std::string(std::strerror(-result)));
    }
    sd_bus_error_free(&error);
    return result >= 0;
}

// Runs xdg-dbus-proxy for `groups`, with a lifetime fd of ours; returns the read end (ready byte, then
// hang-up when it exits) or -1.
int spawn_fallback(const std::vector<const Group*>& groups, std::string& problem) {
    int lifetime[2];
    if (::pipe2(lifetime, O_CLOEXEC) != 0) {
        problem = std::string("pipe: ") + std::strerror(errno);
        return -1;
    }
    std::vector<std::string> arguments{XDG_DBUS_PROXY, "--fd=" + std::to_string(lifetime[1])};
    for (const Group* group : groups) {
        arguments.insert(arguments.end(), group->arguments.begin(), group->arguments.end());
    }
    const pid_t child = ::fork();
    if (child == 0) {
        ::fcntl(lifetime[1], F_SETFD, 0);
        std::vector<char*> argv;
        for (std::string& argument : arguments) {
            argv.push_back(argument.data());
        }
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        std::fprintf(stderr, "busgate-dbus-proxy: cannot run %s: %s\n", argv[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(lifetime[1]);
    if (child < 0) {
        problem = std::string("fork: ") + std::strerror(errno);
        ::close(lifetime[0]);
        return -1;
    }
    char byte = 0;
    if (::read(lifetime[0], &byte, 1) != 1) {
        problem = XDG_DBUS_PROXY " did not start its proxies";
        ::close(lifetime[0]);
        return -1;
    }
    return lifetime[0];
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    auto options = parse(std::vector<std::string>(argv + 1, argv + argc));
    if (!options) {
        return 1;
    }
    std::vector<const Group*> fallback;
    std::string problem;
    for (std::size_t i = 0; i < options->groups.size(); ++i) {
        Group& group = options->groups[i];
        // Unfiltered, xdg-dbus-proxy passes everything, owning any name included; an endpoint cannot grant
        // that, so such a group is proxied as before.
        // A bus that cannot be reached now is left to xdg-dbus-proxy too, which connects only when a client
        // does, so the same command line starts as it always did.
        if (group.filter) {
            group.bus = connect(group.address, problem);
        }
        if (group.bus == nullptr || !is_busgate(group.bus)) {
            group.bus = sd_bus_flush_close_unref(group.bus);
            fallback.push_back(&group);
            continue;
        }
        if (group.log && sd_bus_add_filter(group.bus, nullptr, print_log_line, &group) < 0) {
            std::fprintf(stderr, "busgate-dbus-proxy: %s: cannot receive the bus's log\n",
                         group.path.c_str());
            return 1;
        }
        if (!add_endpoint(group, i, problem)) {
            // Refused (the bus's limits, or a policy without org.busgate.Endpoints1): xdg-dbus-proxy would
            // have served it, so it does.
            std::fprintf(stderr, "busgate-dbus-proxy: %s; %s is served by %s\n", problem.c_str(),
                         group.path.c_str(), XDG_DBUS_PROXY);
            if (group.socket >= 0) {
                ::unlink(group.path.c_str());
                ::close(group.socket);
                group.socket = -1;
            }
            group.bus = sd_bus_flush_close_unref(group.bus);
            fallback.push_back(&group);
        }
    }
    if (fallback.size() == options->groups.size()) {
        // Nothing for busgate: be xdg-dbus-proxy.
        std::vector<std::string> arguments{XDG_DBUS_PROXY};
        if (options->ready_fd >= 0) {
            arguments.push_back("--fd=" + std::to_string(options->ready_fd));
        }
        for (const Group* group : fallback) {
            arguments.insert(arguments.end(), group->arguments.begin(), group->arguments.end());
        }
        std::vector<char*> exec_argv;
        for (std::string& argument : arguments) {
            exec_argv.push_back(argument.data());
        }
        exec_argv.push_back(nullptr);
        ::execv(exec_argv[0], exec_argv.data());
        std::fprintf(stderr, "busgate-dbus-proxy: cannot run %s: %s\n", exec_argv[0], std::strerror(errno));
        return 1;
    }
    int fallback_fd = -1;
    if (!fallback.empty() && (fallback_fd = spawn_fallback(fallback, problem)) < 0) {
        std::fprintf(stderr, "busgate-dbus-proxy: %s\n", problem.c_str());
        return 1;
    }
    if (options->ready_fd >= 0) {
        const char ready = 'x';
        while (::write(options->ready_fd, &ready, 1) < 0 && errno == EINTR) {
        }
    }
    // Serve until the lifetime fd hangs up, a bus connection ends, or the fallback proxy exits. What sd-bus
    // has read already (during AddEndpoint, or with the last batch) is processed before each wait: with
    // messages queued it asks for no events at all, and would never be woken for them.
    int status = 0;
    for (bool done = false; !done;) {
        for (Group& group : options->groups) {
            if (!group.bus) {
                continue;
            }
            int result;
            while ((result = sd_bus_process(group.bus, nullptr)) > 0) {
            }
            if (result < 0) {
                std::fprintf(stderr, "busgate-dbus-proxy: lost the connection to %s\n",
                             group.address.c_str());
                done = true;
                status = 1;
            }
        }
        if (done) {
            break;
        }
        std::vector<pollfd> polled;
        if (options->ready_fd >= 0) {
            polled.push_back({options->ready_fd, 0, 0});
        }
        if (fallback_fd >= 0) {
            polled.push_back({fallback_fd, POLLIN, 0});
        }
        const std::size_t first_bus = polled.size();
        for (const Group& group : options->groups) {
            if (group.bus) {
                polled.push_back(
                    {sd_bus_get_fd(group.bus), static_cast<short>(sd_bus_get_events(group.bus)), 0});
            }
        }
        if (::poll(polled.data(), polled.size(), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            status = 1;
            break;
        }
        for (std::size_t i = 0; i < first_bus; ++i) {
            if (polled[i].revents & (POLLHUP | POLLERR | POLLNVAL | POLLIN)) {
                done = true;
            }
        }
    }
    for (Group& group : options->groups) {
        if (group.socket >= 0) {
            ::unlink(group.path.c_str());
            ::close(group.socket);
        }
        sd_bus_flush_close_unref(group.bus);
    }
    return status;
}
