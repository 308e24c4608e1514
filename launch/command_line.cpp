#include "launch/command_line.h"

#include <charconv>
#include <climits>
#include <cstddef>

namespace busgate::launch {
namespace {

using Action = CommandLine::Action;

// One string option (--config-file, --address, --print-address, --print-pid): where its value goes
// and the words dbus-daemon uses when it is given twice.
struct ValueOption {
    std::string_view name;
    std::string CommandLine::*value;
    bool CommandLine::*enabled;  // set even without a value (print options); null otherwise
    const char* duplicate_message;
};

// Tested in this order. dbus-daemon tests "the previous argument was a bare --print-address" after its
// other options, so only those are safe from being taken as a descriptor; busgate's own options come
// before the print options for the same reason (`--print-address --web=...` prints to stdout).
constexpr ValueOption value_options[] = {
    {"--config-file", &CommandLine::config_file, nullptr, "configuration file"},
    {"--address", &CommandLine::address, nullptr, "address"},
    // busgate's own: the HTTP/WebSocket interface (web_server.h).
    {"--web", &CommandLine::web, nullptr, "web interface"},
    {"--web-token-file", &CommandLine::web_token_file, nullptr, "web token file"},
    {"--web-data-dir", &CommandLine::web_data_dir, nullptr, "web data directory"},
    {"--print-address", &CommandLine::print_address_fd, &CommandLine::print_address, "printing address to"},
    {"--print-pid", &CommandLine::print_pid_fd, &CommandLine::print_pid, "printing pid to"},
};

// Flags without values, in the order dbus-daemon tests them (before any option value).
struct Flag {
    std::string_view name;
    void (*apply)(CommandLine&);
};

constexpr Flag flags[] = {
    {"--nosyslog", [](CommandLine& c) { c.syslog = CommandLine::Syslog::never; }},
    {"--syslog", [](CommandLine& c) { c.syslog = CommandLine::Syslog::always; }},
    {"--syslog-only", [](CommandLine& c) { c.syslog = CommandLine::Syslog::only; }},
    {"--nofork", [](CommandLine& c) { c.fork = CommandLine::Fork::never; }},
    {"--fork", [](CommandLine& c) { c.fork = CommandLine::Fork::always; }},
    {"--systemd-activation", [](CommandLine& c) { c.systemd_activation = true; }},
    {"--nopidfile", [](CommandLine& c) { c.write_pid_file = false; }},
};

}  // namespace

std::string usage_text(std::string_view program) {
    return std::string(program) +
           " [--version] [--session] [--system] [--config-file=FILE] [--print-address[=DESCRIPTOR]]"
           " [--print-pid[=DESCRIPTOR]] [--introspect] [--address=ADDRESS] [--nopidfile] [--nosyslog] "
           "[--syslog]"
           " [--syslog-only] [--nofork] [--fork] [--systemd-activation] [--check-config]\n";
}

int parse_descriptor(std::string_view text) {
    int value = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < 0 || text.empty()) {
        return -1;
    }
    return value;
}

CommandLineResult parse_command_line(std::span<const char* const> arguments) {
    CommandLineResult result;
    CommandLine& command_line = result.command_line;
    const auto fail = [&](std::string message) {
        result.error = std::move(message);
        return result;
    };
    const auto set_config = [&](std::string_view given_as, std::string_view file) -> bool {
        if (!command_line.config_file.empty()) {
            result.error = std::string(given_as) + " specified but configuration file " +
                           command_line.config_file + " already requested";
            return false;
        }
        command_line.config_file = file;
        return true;
    };

    std::string_view previous;
    for (std::size_t i = 1; i < arguments.size(); previous = arguments[i], ++i) {
        const std::string_view argument = arguments[i];
        if (argument == "--help" || argument == "-h" || argument == "-?") {
            command_line.action = Action::help;
            return result;
        }
        if (argument == "--version") {
            command_line.action = Action::version;
            return result;
        }
        if (argument == "--introspect") {
            command_line.action = Action::introspect;
            return result;
        }
        if (argument == "--check-config") {
            command_line.action = Action::check_config;
            continue;
        }
        bool matched = false;
        for (const Flag& flag : flags) {
            if (argument == flag.name) {
                flag.apply(command_line);
                matched = true;
                break;
            }
        }
        if (matched) {
            continue;
        }
        if (argument == "--system" || argument == "--session") {
            if (!set_config(argument.substr(2),
                            argument == "--system" ? system_config_file : session_config_file)) {
                return result;
            }
            continue;
        }
        if (argument.starts_with("--ready-event-fd=")) {
            command_line.ready_event_fd = argument.substr(argument.find('=') + 1);
            continue;
        }

        // Each value option, in dbus-daemon's order: "--opt=VALUE", then a value following a bare
        // "--opt", then the bare "--opt" itself.
        for (const ValueOption& option : value_options) {
            const bool inline_value = argument.size() > option.name.size() &&
                                      argument.starts_with(option.name) &&
                                      argument[option.name.size()] == '=';
            const bool follows_bare_option = previous == option.name;
            if (inline_value || follows_bare_option) {
                std::string& value = command_line.*option.value;
                if (!value.empty()) {
                    result.error = std::string(option.name.substr(2)) + " specified but " +
                                   option.duplicate_message + " " + value + " already requested";
                    return result;
                }
                value = inline_value ? argument.substr(option.name.size() + 1) : argument;
                if (option.enabled) {
                    command_line.*option.enabled = true;
                }
                matched = true;
                break;
            }
            if (argument == option.name) {
                if (option.enabled) {
                    command_line.*option.enabled = true;
                }
                matched = true;
                break;
            }
        }
        if (!matched) {
            return fail("unknown option " + std::string(argument));
        }
    }

    if (command_line.action == Action::run || command_line.action == Action::check_config) {
        if (command_line.config_file.empty()) {
            return fail("No configuration file specified.");
        }
    }
    for (const auto& [enabled, descriptor] :
         {std::pair{command_line.print_address, &command_line.print_address_fd},
          std::pair{command_line.print_pid, &command_line.print_pid_fd}}) {
        if (enabled && !descriptor->empty() && parse_descriptor(*descriptor) < 0) {
            return fail("Invalid file descriptor: \"" + *descriptor + "\"");
        }
    }
    return result;
}

}  // namespace busgate::launch
