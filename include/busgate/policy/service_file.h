// Service files: the `[D-BUS Service]` desktop-entry files that make a name activatable, read from every
// <servicedir> of the configuration, validated as dbus-daemon validates them. A broken file is skipped with
// a reason, never fatal; the first directory that provides a name wins.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "busgate/policy/configuration.h"

namespace busgate::policy {

struct ServiceFile {
    std::string name;                 // Name=: the bus name it provides
    std::string exec;                 // Exec=: a command line, split by split_command_line() at start time
    std::optional<std::string> user;  // User=: the account it runs as on the system bus
    std::optional<std::string> systemd_service;         // SystemdService=: the unit that provides it
    std::optional<std::string> assumed_apparmor_label;  // AssumedAppArmorLabel=
    std::string path;                                   // the file it came from

    bool operator==(const ServiceFile&) const = default;
};

struct ServiceFileResult {
    std::optional<ServiceFile> service;
    std::string error;  // "FILE:LINE: problem" when `service` is empty
};

// Parses one service file held in memory. `path` names it in errors; with `strict_naming` (the transient
// $XDG_RUNTIME_DIR/dbus-1/services directory) its base name must be
// "<Name>.service".
ServiceFileResult parse_service_file(std::string_view text, const std::string& path, bool strict_naming);

struct ServiceDirectoryScan {
    std::vector<ServiceFile> services;  // by name, first provider wins
    std::vector<std::string> skipped;   // one reason per file left out
};

// Reads every "*.service" file of `directories` in order (a missing directory is no error). Within a
// directory files are read in name order, so the outcome never depends on readdir order. As with
// dbus-daemon, a file without User= still lists its name; starting it on a system bus fails.
ServiceDirectoryScan scan_service_directories(const std::vector<ServiceDir>& directories);

// Exec= as dbus-daemon splits it (the shell quoting of g_shell_parse_argv: '...' literal, "..." with
// \ escapes of $ ` " \ and newline, \ outside quotes, # comments). Empty with `error` set when the line
// cannot be split.
std::vector<std::string> split_command_line(std::string_view line, std::string& error);

}  // namespace busgate::policy
