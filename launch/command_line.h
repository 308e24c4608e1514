// The dbus-daemon command line, parsed the way dbus-daemon parses it: `--opt=VALUE` and
// `--opt VALUE`, where a bare `--print-address`/`--print-pid` takes the next argument as its
// descriptor unless that argument is an option tested before it: dbus-daemon's flags, --config-file
// and --address, and busgate's own options (but not --print-pid after --print-address, as with
// dbus-daemon). Harnesses start busgate in place of dbus-daemon with every form it accepts, so the
// rules are mirrored, quirks included.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace busgate::launch {

inline constexpr std::string_view system_config_file = "/usr/share/dbus-1/system.conf";
inline constexpr std::string_view session_config_file = "/usr/share/dbus-1/session.conf";

struct CommandLine {
    enum class Action { run, help, version, introspect, check_config };
    enum class Fork { as_configured, never, always };
    enum class Syslog { as_configured, never, always, only };

    Action action = Action::run;
    std::string config_file;
    std::string address;  // overrides <listen> when set
    bool print_address = false;
    std::string print_address_fd;  // empty: stdout
    bool print_pid = false;
    std::string print_pid_fd;  // empty: stdout
    Fork fork = Fork::as_configured;
    Syslog syslog = Syslog::as_configured;
    bool write_pid_file = true;
    bool systemd_activation = false;
    std::string ready_event_fd;  // --ready-event-fd: written to once listening (Windows-only upstream)
    std::string web;             // --web=unix:path=... or tcp:host=127.0.0.1,port=N; empty: off
    std::string web_token_file;  // --web-token-file: the bearer token TCP clients must present
    std::string web_data_dir;    // --web-data-dir: the page's files (default: the installed ones)
};

struct CommandLineResult {
    CommandLine command_line;
    std::string error;  // set when dbus-daemon would print an error and exit 1
};

CommandLineResult parse_command_line(std::span<const char* const> arguments);

// The usage line dbus-daemon prints for --help and for arguments it does not know.
std::string usage_text(std::string_view program);

// Parses a descriptor given to --print-address/--print-pid: a non-negative decimal int; -1 if invalid.
int parse_descriptor(std::string_view text);

}  // namespace busgate::launch
