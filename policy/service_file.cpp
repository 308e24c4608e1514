// Service files: a small desktop-entry reader (groups, Key=Value, # comments) and dbus-daemon's checks on
// top of it, plus the shell-style splitting of Exec=.
#include "busgate/policy/service_file.h"

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "busgate/marshal/names.h"

namespace busgate::policy {
namespace {

constexpr std::string_view service_group = "D-BUS Service";

bool is_key_character(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

bool is_blank(std::string_view line) {
    return std::all_of(line.begin(), line.end(),
                       [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f'; });
}

// Group names may hold any ASCII but control characters and the brackets.
bool is_valid_group_name(std::string_view name) {
    return std::all_of(name.begin(), name.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte > 0x1f && byte < 0x7f && c != '[' && c != ']';
    });
}

// The desktop-entry escapes \s \n \t \r \\. Like dbus-daemon, anything else after a backslash (\$ too),
// a backslash at the end and an embedded NUL make the whole file invalid.
std::optional<std::string> unescape(std::string_view value, std::string& problem) {
    std::string out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '\0') {
            problem = "text to be unescaped contains embedded nul";
            return std::nullopt;
        }
        if (value[i] != '\\') {
            out += value[i];
            continue;
        }
        if (++i == value.size()) {
            problem = "text to be unescaped ended in \\";
            return std::nullopt;
        }
        switch (value[i]) {
            case 's':
                out += ' ';
                break;
            case 'n':
                out += '\n';
                break;
            case 't':
                out += '\t';
                break;
            case 'r':
                out += '\r';
                break;
            case '\\':
                out += '\\';
                break;
            default:
                problem = std::string("invalid escape sequence \\") + value[i];
                return std::nullopt;
        }
    }
    return out;
}

ServiceFileResult failure(const std::string& path, int line, const std::string& problem) {
    ServiceFileResult result;
    result.error = line > 0 ? path + ":" + std::to_string(line) + ": " + problem : path + ": " + problem;
    return result;
}

}  // namespace

ServiceFileResult parse_service_file(std::string_view text, const std::string& path, bool strict_naming) {
    if (!marshal::is_valid_utf8(text)) {
        return failure(path, 0, "not valid UTF-8");
    }
    // dbus-daemon's reader: a repeated group or key is kept, and lookups take the first of them.
    using Entries = std::vector<std::pair<std::string, std::string>>;
    std::vector<std::pair<std::string, Entries>> groups;
    int line_number = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        // Lines end at \n, \r\n or a lone \r.
        std::size_t end = text.find_first_of("\r\n", start);
        std::size_t next = end == std::string_view::npos ? text.size() : end + 1;
        if (end == std::string_view::npos) {
            end = text.size();
        } else if (text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') {
            ++next;
        }
        const std::string_view line = text.substr(start, end - start);
        start = next;
        ++line_number;
        if (!line.empty() && line.front() == '[') {
            if (line.size() <= 2 || line.back() != ']') {
                return failure(path, line_number, "invalid syntax for group header");
            }
            const std::string_view group = line.substr(1, line.size() - 2);
            if (!is_valid_group_name(group)) {
                return failure(path, line_number, "invalid characters in group name");
            }
            groups.emplace_back(std::string(group), Entries());
            continue;
        }
        if (is_blank(line) || line.front() == '#') {  // is_blank holds for an empty line
            continue;
        }
        if (groups.empty()) {
            return failure(path, line_number, "Key=Value outside of any group");
        }
        const std::size_t key_end =
            std::find_if_not(line.begin(), line.end(), is_key_character) - line.begin();
        if (key_end == 0) {
            return failure(path, line_number, "empty key name");
        }
        if (key_end < line.size() && line[key_end] == '[') {
            continue;  // localized values mean nothing to a bus, and are not checked
        }
        std::size_t position = key_end;
        while (position < line.size() && line[position] == ' ') {
            ++position;
        }
        if (position == line.size()) {
            return failure(path, line_number, "no '=' in key/value pair");
        }
        if (line[position] != '=') {
            return failure(path, line_number, "invalid characters in key name");
        }
        ++position;
        while (position < line.size() && line[position] == ' ') {
            ++position;
        }
        std::string problem;
        auto value = unescape(line.substr(position), problem);
        if (!value) {
            return failure(path, line_number, problem);
        }
        groups.back().second.emplace_back(std::string(line.substr(0, key_end)), std::move(*value));
    }

    const auto found = std::find_if(groups.begin(), groups.end(),
                                    [](const auto& group) { return group.first == service_group; });
    if (found == groups.end()) {
        return failure(path, 0, "no [D-BUS Service] group");
    }
    const Entries& entries = found->second;
    const auto value = [&entries](std::string_view key) -> std::optional<std::string> {
        const auto entry = std::find_if(entries.begin(), entries.end(),
                                        [key](const auto& pair) { return pair.first == key; });
        return entry == entries.end() ? std::nullopt : std::optional<std::string>(entry->second);
    };
    ServiceFile service;
    service.path = path;
    const auto name = value("Name");
    if (!name) {
        return failure(path, 0, "no Name= in [D-BUS Service]");
    }
    if (!marshal::is_valid_bus_name(*name) || marshal::is_unique_name(*name)) {
        return failure(path, 0, "Name=" + *name + " is not a valid well-known bus name");
    }
    service.name = *name;
    const auto exec = value("Exec");
    if (!exec) {
        return failure(path, 0, "no Exec= in [D-BUS Service]");
    }
    service.exec = *exec;
    service.user = value("User");
    service.systemd_service = value("SystemdService");
    service.assumed_apparmor_label = value("AssumedAppArmorLabel");
    if (strict_naming && std::filesystem::path(path).filename().string() != service.name + ".service") {
        return failure(path, 0, "should have been named \"" + service.name + ".service\": not loading it");
    }
    ServiceFileResult result;
    result.service = std::move(service);
    return result;
}

ServiceDirectoryScan scan_service_directories(const std::vector<ServiceDir>& directories) {
    ServiceDirectoryScan scan;
    std::set<std::string> provided;
    for (const ServiceDir& directory : directories) {
        std::error_code error;
        std::vector<std::filesystem::path> files;
        for (const auto& entry : std::filesystem::directory_iterator(directory.path, error)) {
            if (entry.path().extension() == ".service") {
                files.push_back(entry.path());
            }
        }
        std::sort(files.begin(), files.end());
        for (const auto& file : files) {
            std::ifstream stream(file, std::ios::binary);
            if (!stream) {
                scan.skipped.push_back(file.string() + ": cannot be read");
                continue;
            }
            std::ostringstream text;
            text << stream.rdbuf();
            ServiceFileResult parsed = parse_service_file(text.str(), file.string(), directory.strict_naming);
            if (!parsed.service) {
                scan.skipped.push_back(std::move(parsed.error));
                continue;
            }
            if (!provided.insert(parsed.service->name).second) {
                scan.skipped.push_back(file.string() + ": " + parsed.service->name +
                                       " is already provided by another .service file");
                continue;
            }
            scan.services.push_back(std::move(*parsed.service));
        }
    }
    return scan;
}

std::vector<std::string> split_command_line(std::string_view line, std::string& error) {
    std::vector<std::string> arguments;
    std::string current;
    bool in_token = false;
    std::size_t i = 0;
    const auto finish = [&] {
        if (in_token) {
            arguments.push_back(std::move(current));
            current.clear();
            in_token = false;
        }
    };
    while (i < line.size()) {
        const char c = line[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            finish();
            ++i;
            continue;
        }
        if (c == '#' && !in_token) {
            while (i < line.size() && line[i] != '\n') {
                ++i;
            }
            continue;
        }
        in_token = true;
        if (c == '\\') {
            if (i + 1 == line.size()) {
                error = "Text ended just after a '\\' character. (The text was '" + std::string(line) + "')";
                return {};
            }
            if (line[i + 1] != '\n') {
                current += line[i + 1];
            }
            i += 2;
            continue;
        }
        if (c == '\'') {
            const std::size_t close = line.find('\'', i + 1);
            if (close == std::string_view::npos) {
                error = "Text ended before matching quote was found for '. (The text was '" +
                        std::string(line) + "')";
                return {};
            }
            current.append(line.substr(i + 1, close - i - 1));
            i = close + 1;
            continue;
        }
        if (c == '"') {
            ++i;
            bool closed = false;
            while (i < line.size()) {
                if (line[i] == '"') {
                    closed = true;
                    ++i;
                    break;
                }
                if (line[i] == '\\' && i + 1 < line.size() &&
                    std::string_view("$`\"\\\n").find(line[i + 1]) != std::string_view::npos) {
                    if (line[i + 1] != '\n') {
                        current += line[i + 1];
                    }
                    i += 2;
                    continue;
                }
                current += line[i++];
            }
            if (!closed) {
                error = "Text ended before matching quote was found for \". (The text was '" +
                        std::string(line) + "')";
                return {};
            }
            continue;
        }
        current += c;
        ++i;
    }
    finish();
    if (arguments.empty()) {
        error = "Text was empty (or contained only whitespace)";
    }
    return arguments;
}

}  // namespace busgate::policy
