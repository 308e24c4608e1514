// busgatectl: an operator's view of a running bus through the org.freedesktop.DBus driver, so names,
// connections, reload and stats work against busgate and dbus-daemon alike; `endpoint` manages busgate's
// container endpoints (org.busgate.Endpoints1). One row of `subcommands` per verb; sd-bus does the wire.
#include <systemd/sd-bus.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* driver_name = "org.freedesktop.DBus";
constexpr const char* driver_path = "/org/freedesktop/DBus";
constexpr const char* driver_interface = "org.freedesktop.DBus";
constexpr const char* stats_interface = "org.freedesktop.DBus.Debug.Stats";
constexpr const char* endpoints_interface = "org.busgate.Endpoints1";

using Arguments = std::span<const std::string_view>;

struct BusCloser {
    void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
using Bus = std::unique_ptr<sd_bus, BusCloser>;

struct MessageUnref {
    void operator()(sd_bus_message* message) const { sd_bus_message_unref(message); }
};
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

// An sd_bus_error that frees itself; its text is what the user sees when a call fails.
class CallError {
  public:
    CallError() = default;
    CallError(const CallError&) = delete;
    CallError& operator=(const CallError&) = delete;
    ~CallError() { sd_bus_error_free(&error_); }
    sd_bus_error* get() { return &error_; }
    std::string describe(int result) const {
        if (sd_bus_error_is_set(&error_)) {
            return std::string(error_.name) + ": " + (error_.message ? error_.message : "");
        }
        return std::strerror(-result);
    }

  private:
    // SD_BUS_ERROR_NULL is a C compound literal, which clang's -Wpedantic rejects in C++.
    sd_bus_error error_{nullptr, nullptr, 0};
};

class Failure {
  public:
    explicit Failure(std::string message) : message_(std::move(message)) {}
    const std::string& message() const { return message_; }

  private:
    std::string message_;
};

void check(int result, std::string_view what) {
    if (result < 0) {
        throw Failure(std::string(what) + ": " + std::strerror(-result));
    }
}

// Calls a driver method with at most one string argument.
Message call_driver(sd_bus* bus, const char* interface, const char* method,
                    std::optional<std::string> argument = std::nullopt) {
    CallError error;
    sd_bus_message* reply = nullptr;
    const int result = argument ? sd_bus_call_method(bus, driver_name, driver_path, interface, method,
                                                     error.get(), &reply, "s", argument->c_str())
                                : sd_bus_call_method(bus, driver_name, driver_path, interface, method,
                                                     error.get(), &reply, nullptr);
    if (result < 0) {
        throw Failure(std::string(method) + " failed: " + error.describe(result));
    }
    return Message(reply);
}

std::vector<std::string> read_strings(sd_bus_message* message) {
    char** strings = nullptr;
    check(sd_bus_message_read_strv(message, &strings), "reading a string array");
    std::vector<std::string> result;
    for (char** each = strings; each && *each; ++each) {
        result.emplace_back(*each);
        std::free(*each);
    }
    std::free(strings);
    return result;
}

// One value of a basic type as text; containers are shown by their signature only.
std::string read_variant_value(sd_bus_message* message) {
    char type = 0;
    const char* contents = nullptr;
    check(sd_bus_message_peek_type(message, &type, &contents), "reading a variant");
    check(sd_bus_message_enter_container(message, SD_BUS_TYPE_VARIANT, contents), "reading a variant");
    std::string text;
    char inner_type = 0;
    const char* inner_contents = nullptr;
    check(sd_bus_message_peek_type(message, &inner_type, &inner_contents), "reading a variant");
    union {
        std::uint8_t byte;
        int boolean;
        std::int16_t int16;
        std::uint16_t uint16;
        std::int32_t int32;
        std::uint32_t uint32;
        std::int64_t int64;
        std::uint64_t uint64;
        double floating;
        const char* string;
    } value{};
    switch (inner_type) {
        case SD_BUS_TYPE_BYTE:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = std::to_string(value.byte);
            break;
        case SD_BUS_TYPE_BOOLEAN:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = value.boolean ? "true" : "false";
            break;
        case SD_BUS_TYPE_INT16:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = std::to_string(value.int16);
            break;
        case SD_BUS_TYPE_UINT16:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = std::to_string(value.uint16);
            break;
        case SD_BUS_TYPE_INT32:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = std::to_string(value.int32);
            break;
        case SD_BUS_TYPE_UINT32:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = std::to_string(value.uint32);
            break;
        case SD_BUS_TYPE_INT64:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = std::to_string(value.int64);
            break;
        case SD_BUS_TYPE_UINT64:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = std::to_string(value.uint64);
            break;
        case SD_BUS_TYPE_DOUBLE:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = std::to_string(value.floating);
            break;
        case SD_BUS_TYPE_STRING:
        case SD_BUS_TYPE_OBJECT_PATH:
        case SD_BUS_TYPE_SIGNATURE:
            check(sd_bus_message_read_basic(message, inner_type, &value), "reading a value");
            text = value.string;
            break;
        default: {
            const std::string signature = inner_type == SD_BUS_TYPE_ARRAY
                                              ? "a" + std::string(inner_contents ? inner_contents : "")
                                              : std::string(1, inner_type);
            check(sd_bus_message_skip(message, signature.c_str()), "skipping a value");
            text = "(" + signature + ")";
        }
    }
    check(sd_bus_message_exit_container(message), "reading a variant");
    return text;
}

// An a{sv} reply as ordered key/value text.
std::map<std::string, std::string> read_dictionary(sd_bus_message* message) {
    std::map<std::string, std::string> entries;
    check(sd_bus_message_enter_container(message, SD_BUS_TYPE_ARRAY, "{sv}"), "reading a dictionary");
    while (true) {
        const int entered = sd_bus_message_enter_container(message, SD_BUS_TYPE_DICT_ENTRY, "sv");
        check(entered, "reading a dictionary");
        if (entered == 0) {
            break;
        }
        const char* key = nullptr;
        check(sd_bus_message_read_basic(message, SD_BUS_TYPE_STRING, &key), "reading a dictionary");
        std::string name = key;
        entries[name] = read_variant_value(message);
        check(sd_bus_message_exit_container(message), "reading a dictionary");
    }
    check(sd_bus_message_exit_container(message), "reading a dictionary");
    return entries;
}

std::vector<std::string> list_names(sd_bus* bus) {
    Message reply = call_driver(bus, driver_interface, "ListNames");
    std::vector<std::string> names = read_strings(reply.get());
    std::sort(names.begin(), names.end());
    return names;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string text;
    for (const std::string& item : items) {
        if (!text.empty()) {
            text += separator;
        }
        text += item;
    }
    return text;
}

// The owner first, then the connections queued behind it; empty if the name vanished meanwhile.
std::vector<std::string> queued_owners(sd_bus* bus, const std::string& name) {
    try {
        Message reply = call_driver(bus, driver_interface, "ListQueuedOwners", name);
        return read_strings(reply.get());
    } catch (const Failure&) {
        return {};
    }
}

int show_names(sd_bus* bus, Arguments) {
    std::printf("%-40s %-10s %s\n", "NAME", "OWNER", "QUEUED");
    for (const std::string& name : list_names(bus)) {
        if (name.starts_with(':')) {
            continue;
        }
        std::vector<std::string> owners =
            name == driver_name ? std::vector<std::string>{driver_name} : queued_owners(bus, name);
        if (owners.empty()) {
            continue;
        }
        const std::string owner = owners.front();
        owners.erase(owners.begin());
        std::printf("%-40s %-10s %s\n", name.c_str(), owner.c_str(),
                    owners.empty() ? "-" : join(owners, ",").c_str());
    }
    return 0;
}

int show_connections(sd_bus* bus, Arguments) {
    const std::vector<std::string> names = list_names(bus);
    std::map<std::string, std::vector<std::string>> owned;
    for (const std::string& name : names) {
        if (name.starts_with(':') || name == driver_name) {
            continue;
        }
        if (const std::vector<std::string> owners = queued_owners(bus, name); !owners.empty()) {
            owned[owners.front()].push_back(name);
        }
    }
    std::printf("%-10s %-8s %-8s %s\n", "UNIQUE", "UID", "PID", "NAMES");
    for (const std::string& name : names) {
        if (!name.starts_with(':')) {
            continue;
        }
        std::map<std::string, std::string> credentials;
        try {
            Message reply = call_driver(bus, driver_interface, "GetConnectionCredentials", name);
            credentials = read_dictionary(reply.get());
        } catch (const Failure&) {
            continue;  // disconnected between the two calls
        }
        const auto field = [&](const char* key) {
            const auto found = credentials.find(key);
            return found == credentials.end() ? std::string("-") : found->second;
        };
        const auto found = owned.find(name);
        std::printf("%-10s %-8s %-8s %s\n", name.c_str(), field("UnixUserID").c_str(),
                    field("ProcessID").c_str(),
                    found == owned.end() ? "-" : join(found->second, ",").c_str());
    }
    return 0;
}

int reload(sd_bus* bus, Arguments) {
    call_driver(bus, driver_interface, "ReloadConfig");
    return 0;
}

int show_stats(sd_bus* bus, Arguments) {
    Message reply = call_driver(bus, stats_interface, "GetStats");
    for (const auto& [key, value] : read_dictionary(reply.get())) {
        std::printf("%s %s\n", key.c_str(), value.c_str());
    }
    return 0;
}

// A command line mistake: printed with the command's usage, exit status 2, before any bus is opened.
class UsageError {
  public:
    explicit UsageError(std::string message) : message_(std::move(message)) {}
    const std::string& message() const { return message_; }

  private:
    std::string message_;
};

// What a command does once connected; built from its arguments before connecting, so a mistake in
// them is reported without a bus.
using Action = std::function<int(sd_bus*)>;

template <int (*run)(sd_bus*, Arguments)>
Action without_arguments(std::string_view name, Arguments arguments) {
    if (!arguments.empty()) {
        throw UsageError("\"" + std::string(name) + "\" takes no arguments");
    }
    return [](sd_bus* bus) { return run(bus, {}); };
}

struct EndpointRequest {
    std::map<std::string, std::vector<std::string>> lists;
    std::map<std::string, std::string> strings;
    std::optional<std::uint32_t> max_connections;
    bool remove_with_creator = false;
};

int add_endpoint(sd_bus* bus, const EndpointRequest& request) {
    sd_bus_message* raw = nullptr;
    check(sd_bus_message_new_method_call(bus, &raw, driver_name, driver_path, endpoints_interface,
                                         "AddEndpoint"),
          "building AddEndpoint");
    Message call(raw);
    check(sd_bus_message_open_container(raw, SD_BUS_TYPE_ARRAY, "{sv}"), "building AddEndpoint");
    for (const auto& [key, value] : request.strings) {
        check(sd_bus_message_append(raw, "{sv}", key.c_str(), "s", value.c_str()), "building AddEndpoint");
    }
    for (const auto& [key, values] : request.lists) {
        check(sd_bus_message_open_container(raw, SD_BUS_TYPE_DICT_ENTRY, "sv"), "building AddEndpoint");
        check(sd_bus_message_append(raw, "s", key.c_str()), "building AddEndpoint");
        check(sd_bus_message_open_container(raw, SD_BUS_TYPE_VARIANT, "as"), "building AddEndpoint");
        check(sd_bus_message_open_container(raw, SD_BUS_TYPE_ARRAY, "s"), "building AddEndpoint");
        for (const std::string& value : values) {
            check(sd_bus_message_append(raw, "s", value.c_str()), "building AddEndpoint");
        }
        for (int i = 0; i < 3; ++i) {
            check(sd_bus_message_close_container(raw), "building AddEndpoint");
        }
    }
    if (request.max_connections) {
        check(sd_bus_message_append(raw, "{sv}", "MaxConnections", "u", *request.max_connections),
              "building AddEndpoint");
    }
    if (request.remove_with_creator) {
        check(sd_bus_message_append(raw, "{sv}", "RemoveWithCreator", "b", 1), "building AddEndpoint");
    }
    check(sd_bus_message_close_container(raw), "building AddEndpoint");
    CallError error;
    sd_bus_message* reply = nullptr;
    if (const int result = sd_bus_call(bus, raw, 0, error.get(), &reply); result < 0) {
        throw Failure("AddEndpoint failed: " + error.describe(result));
    }
    Message owned_reply(reply);
    const char* address = nullptr;
    check(sd_bus_message_read(reply, "s", &address), "reading the endpoint's address");
    std::printf("%s\n", address);
    return 0;
}

int list_endpoints(sd_bus* bus) {
    Message reply = call_driver(bus, endpoints_interface, "ListEndpoints");
    sd_bus_message* message = reply.get();
    check(sd_bus_message_enter_container(message, SD_BUS_TYPE_ARRAY, "(sssbuu)"), "reading endpoints");
    std::printf("%-20s %-12s %-9s %-11s %s\n", "NAME", "TYPE", "LISTENING", "CONNECTIONS", "ADDRESS");
    const char *name = nullptr, *type = nullptr, *address = nullptr;
    int listening = 0;
    std::uint32_t connections = 0, limit = 0;
    while (sd_bus_message_read(message, "(sssbuu)", &name, &type, &address, &listening, &connections,
                               &limit) > 0) {
        std::printf("%-20s %-12s %-9s %-11s %s\n", name, *type ? type : "-", listening ? "yes" : "no",
                    (std::to_string(connections) + "/" + std::to_string(limit)).c_str(), address);
    }
    return 0;
}

// endpoint add NAME [options] | list | stop NAME | remove NAME
Action parse_endpoint(std::string_view, Arguments arguments) {
    const std::string_view verb = arguments.empty() ? "list" : arguments[0];
    if (verb == "list") {
        if (arguments.size() > 1) {
            throw UsageError("\"endpoint list\" takes no arguments");
        }
        return list_endpoints;
    }
    if (verb == "stop" || verb == "remove") {
        if (arguments.size() != 2 || arguments[1].starts_with('-')) {
            throw UsageError("\"endpoint " + std::string(verb) + "\" takes one endpoint NAME");
        }
        return [method = verb == "stop" ? "StopListening" : "RemoveEndpoint",
                name = std::string(arguments[1])](sd_bus* bus) {
            call_driver(bus, endpoints_interface, method, name);
            return 0;
        };
    }
    if (verb != "add") {
        throw UsageError("unknown endpoint command \"" + std::string(verb) + "\"");
    }
    if (arguments.size() < 2 || arguments[1].starts_with('-')) {
        throw UsageError("\"endpoint add\" needs an endpoint NAME first");
    }
    EndpointRequest request;
    request.strings["Name"] = arguments[1];
    static const std::map<std::string_view, std::string_view> list_options = {{"--see=", "See"},
                                                                              {"--talk=", "Talk"},
                                                                              {"--own=", "Own"},
                                                                              {"--call=", "Call"},
                                                                              {"--broadcast=", "Broadcast"}};
    for (const std::string_view option : arguments.subspan(2)) {
        bool known = false;
        for (const auto& [prefix, key] : list_options) {
            if (option.starts_with(prefix)) {
                request.lists[std::string(key)].emplace_back(option.substr(prefix.size()));
                known = true;
            }
        }
        if (option.starts_with("--type=")) {
            request.strings["Type"] = option.substr(7);
        } else if (option.starts_with("--path=")) {
            request.strings["Path"] = option.substr(7);
        } else if (option.starts_with("--max-connections=")) {
            const std::string_view text = option.substr(18);
            std::uint32_t value = 0;
            const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
                throw UsageError("--max-connections needs a number, not \"" + std::string(text) + "\"");
            }
            request.max_connections = value;
        } else if (option == "--remove-with-creator") {
            request.remove_with_creator = true;
        } else if (!known) {
            throw UsageError("unknown endpoint option \"" + std::string(option) + "\"");
        }
    }
    return [request = std::move(request)](sd_bus* bus) { return add_endpoint(bus, request); };
}

struct Subcommand {
    std::string_view name;
    Action (*parse)(std::string_view name, Arguments);
    std::string_view synopsis;     // what follows "busgatectl [OPTIONS] NAME"
    std::string_view help;         // its line in busgatectl --help
    std::string_view description;  // busgatectl NAME --help; empty: the help line
};

constexpr Subcommand subcommands[] = {
    {"names", without_arguments<show_names>, "",
     "well-known names with their owner and the connections queued for them", ""},
    {"connections", without_arguments<show_connections>, "",
     "unique names with the uid and pid the bus knows for them", ""},
    {"reload", without_arguments<reload>, "", "ask the bus to reload its configuration (ReloadConfig)", ""},
    {"stats", without_arguments<show_stats>, "",
     "the bus's counters (org.freedesktop.DBus.Debug.Stats.GetStats)", ""},
    {"endpoint", parse_endpoint,
     " add NAME [--see=NAME] [--talk=NAME] [--own=NAME]\n"
     "           [--call=NAME=RULE] [--broadcast=NAME=RULE] [--type=TYPE] [--path=SOCKET]\n"
     "           [--max-connections=N] [--remove-with-creator]\n"
     "       busgatectl [OPTIONS] endpoint list\n"
     "       busgatectl [OPTIONS] endpoint stop NAME\n"
     "       busgatectl [OPTIONS] endpoint remove NAME",
     "container endpoints (busgate): add NAME [--see=|--talk=|--own=NAME] [--call=|--broadcast=NAME=RULE]\n"
     "               [--type=T] [--path=SOCKET] [--max-connections=N] [--remove-with-creator],\n"
     "               list, stop NAME (no new connections), remove NAME (closes its connections)",
     "Container endpoints of busgate (org.busgate.Endpoints1). add makes one and prints the address its\n"
     "  clients connect to; list shows them (the default); stop stops it accepting connections; remove\n"
     "  closes its connections and removes it. See busgatectl(1) for the options of add."},
};

constexpr const char* bus_options =
    "Options:\n"
    "  --system             the system bus (the default)\n"
    "  --session, --user    the session bus\n"
    "  --address=ADDRESS    the bus at ADDRESS\n"
    "  -h, --help           this help\n"
    "  --version            the version\n";

void print_usage(std::FILE* stream) {
    std::fputs("Usage: busgatectl [--system|--session|--address=ADDRESS] COMMAND [ARGUMENTS]\n\nCommands:\n",
               stream);
    for (const Subcommand& subcommand : subcommands) {
        std::fprintf(stream, "  %-12s %s\n", std::string(subcommand.name).c_str(),
                     std::string(subcommand.help).c_str());
    }
    std::fprintf(stream, "\n%s", bus_options);
}

void print_command_usage(std::FILE* stream, const Subcommand& subcommand) {
    const std::string_view description =
        subcommand.description.empty() ? subcommand.help : subcommand.description;
    std::fprintf(stream, "Usage: busgatectl [OPTIONS] %s%s\n\n  %s\n\n%s",
                 std::string(subcommand.name).c_str(), std::string(subcommand.synopsis).c_str(),
                 std::string(description).c_str(), bus_options);
}

enum class BusChoice { system, session, address };

Bus open_bus(BusChoice choice, const std::string& address) {
    sd_bus* bus = nullptr;
    switch (choice) {
        case BusChoice::system:
            check(sd_bus_open_system(&bus), "connecting to the system bus");
            break;
        case BusChoice::session:
            check(sd_bus_open_user(&bus), "connecting to the session bus");
            break;
        case BusChoice::address: {
            check(sd_bus_new(&bus), "creating a bus connection");
            Bus owned(bus);
            check(sd_bus_set_address(bus, address.c_str()), "setting the address");
            check(sd_bus_set_bus_client(bus, 1), "setting the address");
            check(sd_bus_start(bus), ("connecting to " + address).c_str());
            return owned;
        }
    }
    return Bus(bus);
}

}  // namespace

int main(int argc, char** argv) {
    BusChoice choice = BusChoice::system;
    std::string address;
    const Subcommand* chosen = nullptr;
    std::vector<std::string_view> arguments;
    for (int i = 1; i < argc; ++i) {
        const std::string_view argument = argv[i];
        if (argument == "--help" || argument == "-h") {
            // After a command, its own help; it never needs the bus.
            chosen != nullptr ? print_command_usage(stdout, *chosen) : print_usage(stdout);
            return 0;
        }
        if (chosen != nullptr) {
            arguments.push_back(argument);  // everything after the command is the command's
            continue;
        }
        if (argument == "--version") {
            std::puts("busgatectl 0.1.0");
            return 0;
        }
        if (argument == "--system") {
            choice = BusChoice::system;
        } else if (argument == "--session" || argument == "--user") {
            choice = BusChoice::session;
        } else if (argument.starts_with("--address=")) {
            choice = BusChoice::address;
            address = argument.substr(std::strlen("--address="));
        } else if (!argument.starts_with('-')) {
            const auto found = std::find_if(std::begin(subcommands), std::end(subcommands),
                                            [&](const Subcommand& each) { return each.name == argument; });
            if (found == std::end(subcommands)) {
                std::fprintf(stderr, "busgatectl: unknown command \"%s\"\n", argv[i]);
                print_usage(stderr);
                return 2;
            }
            chosen = found;
        } else {
            std::fprintf(stderr, "busgatectl: unexpected argument \"%s\"\n", argv[i]);
            print_usage(stderr);
            return 2;
        }
    }
    if (chosen == nullptr) {
        std::fputs("busgatectl: no command given\n", stderr);
        print_usage(stderr);
        return 2;
    }
    Action action;
    try {
        action = chosen->parse(chosen->name, arguments);
    } catch (const UsageError& error) {
        std::fprintf(stderr, "busgatectl: %s\n", error.message().c_str());
        print_command_usage(stderr, *chosen);
        return 2;
    }
    try {
        Bus bus = open_bus(choice, address);
        return action(bus.get());
    } catch (const Failure& failure) {
        std::fprintf(stderr, "busgatectl: %s\n", failure.message().c_str());
        return 1;
    }
}
