// Service files: a small desktop-entry reader (groups, Key=Value, # comments) and dbus-daemon's checks on
// top of it, plus the shell-style splitting of Exec=.
#include "busgate/policy/service_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "busgate/marshal/names.h"

namespace busgate::policy {
namespace {

constexpr std::string_view service_group = "D-BUS Service";

std::string_view trim(std::string_view text) {
    const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    while (!text.empty() && blank(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && blank(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

bool is_key_character(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

// Desktop-entry escapes in values: \s \n \t \r \\ (anything else stays as written).
std::string unescape(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] != '\\' || i + 1 == value.size()) {
            out += value[i];
            continue;
        }
        switch (value[i + 1]) {
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
                out += value[i];
                out += value[i + 1];
                break;
        }
        ++i;
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
    std::map<std::string, std::map<std::string, std::string>> groups;
    std::string group;
    bool in_group = false;
    int line_number = 0;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view line = trim(text.substr(start, end - start));
        start = end + 1;
        ++line_number;
        if (line.empty() || line.front() == '#') {
            continue;
        }
        if (line.front() == '[') {
            if (line.back() != ']' || line.size() < 3) {
                return failure(path, line_number, "invalid group header");
            }
            group = std::string(line.substr(1, line.size() - 2));
            if (group.find_first_of("[]") != std::string::npos) {
                return failure(path, line_number, "invalid group header");
            }
            if (groups.contains(group)) {
                return failure(path, line_number, "duplicate group [" + group + "]");
            }
            groups[group];
            in_group = true;
            continue;
        }
        const std::size_t equals = line.find('=');
        if (equals == std::string_view::npos) {
            return failure(path, line_number, "neither a comment, a group header nor Key=Value");
        }
        if (!in_group) {
            return failure(path, line_number, "Key=Value outside of any group");
        }
        std::string_view key = trim(line.substr(0, equals));
        std::string_view locale;
        if (const std::size_t bracket = key.find('['); bracket != std::string_view::npos) {
            if (key.back() != ']') {
                return failure(path, line_number, "invalid key \"" + std::string(key) + "\"");
            }
            locale = key.substr(bracket);
            key = key.substr(0, bracket);
        }
        if (key.empty() || !std::all_of(key.begin(), key.end(), is_key_character)) {
            return failure(path, line_number, "invalid key \"" + std::string(key) + "\"");
        }
        if (!locale.empty()) {
            continue;  // localized values mean nothing to a bus
        }
        auto& entries = groups[group];
        if (entries.contains(std::string(key))) {
            return failure(path, line_number, "duplicate key " + std::string(key));
        }
        entries[std::string(key)] = unescape(trim(line.substr(equals + 1)));
    }

    const auto found = groups.find(std::string(service_group));
    if (found == groups.end()) {
        return failure(path, 0, "no [D-BUS Service] group");
    }
    const auto& entries = found->second;
    const auto value = [&entries](const char* key) -> std::optional<std::string> {
        const auto entry = entries.find(key);
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
