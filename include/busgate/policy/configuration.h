// Configuration: everything a dbus-daemon configuration file (busconfig XML) says, as a value type, and the
// loader that reads it with expat exactly as dbus-daemon 1.14 does (bus/config-parser.c).
// Invariants: a Configuration is only ever returned complete; a file that dbus-daemon rejects yields a
// ConfigError naming the file, the line and dbus-daemon's own message, and nothing else. Rules keep file
// order; "last wins" elements (type, user, pidfile, servicehelper, limits, apparmor) follow document order
// across includes. Where a rule came from (file, line) is recorded but never compared.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace busgate::policy {

// dbus-daemon's BusLimits. Defaults are dbus-daemon's compiled-in values (bus/config-parser.c), which do
// not depend on the bus type: session.conf raises them explicitly.
struct Limits {
    std::int64_t max_incoming_bytes = 127 * 1024 * 1024;
    std::int64_t max_incoming_unix_fds = 64;
    std::int64_t max_outgoing_bytes = 127 * 1024 * 1024;
    std::int64_t max_outgoing_unix_fds = 64;
    std::int64_t max_message_size = 32 * 1024 * 1024;
    std::int64_t max_message_unix_fds = 16;
    std::int32_t service_start_timeout = 25000;  // ms
    std::int32_t auth_timeout = 5000;            // ms
    std::int32_t pending_fd_timeout = 150000;    // ms
    std::int32_t max_completed_connections = 2048;
    std::int32_t max_incomplete_connections = 64;
    std::int32_t max_connections_per_user = 256;
    std::int32_t max_pending_service_starts = 512;
    std::int32_t max_names_per_connection = 512;
    std::int32_t max_match_rules_per_connection = 512;
    std::int32_t max_replies_per_connection = 128;
    std::int32_t reply_timeout = -1;  // ms; -1 means never
    // Accepted by dbus-daemon 1.14 (for its experimental containers interface); busgate keeps them.
    std::int32_t max_containers = 512;
    std::int32_t max_containers_per_user = 16;
    std::int32_t max_connections_per_container = 8;
    std::int32_t max_container_metadata_bytes = 4096;

    bool operator==(const Limits&) const = default;
};

// The names <limit name="..."> accepts, in dbus-daemon's order.
std::vector<std::string_view> limit_names();

struct ServiceDir {
    std::string path;
    bool strict_naming = false;  // file name must be "<bus name>.service" ($XDG_RUNTIME_DIR/dbus-1/services)
    bool watch = true;           // dbus-daemon watches it with inotify

    bool operator==(const ServiceDir&) const = default;
};

enum class AppArmorMode : std::uint8_t { enabled, disabled, required };

// Where something came from, for messages; never part of equality.
struct SourceLocation {
    std::string file;
    int line = 0;
    bool operator==(const SourceLocation&) const { return true; }
};

enum class RuleKind : std::uint8_t { send, receive, own, user, group };
enum class Tristate : std::uint8_t { any, yes, no };

// The message types a rule can name; `any` is "*" or no attribute.
enum class RuleMessageType : std::uint8_t {
    any = 0,
    method_call = 1,
    method_return = 2,
    error = 3,
    signal = 4
};

// One <allow> or <deny>, after dbus-daemon's normalisation: "*" became "no constraint" (nullopt), except
// for user/group where it is `id == nullopt`.
struct Rule {
    RuleKind kind = RuleKind::send;
    bool allow = true;

    // send/receive
    RuleMessageType message_type = RuleMessageType::any;
    std::optional<std::string> path;
    std::optional<std::string> interface;
    std::optional<std::string> member;
    std::optional<std::string> error;
    // send: send_destination (or its prefix); receive: receive_sender; own: own (or own_prefix).
    std::optional<std::string> name;
    bool name_is_prefix = false;
    Tristate broadcast = Tristate::any;  // send only
    bool eavesdrop = false;
    bool requested_reply = true;  // default: true for allow, false for deny (dbus-daemon)
    bool log = false;
    std::uint32_t min_fds = 0;
    std::uint32_t max_fds = max_message_unix_fds;

    // user/group: nullopt is "*"
    std::optional<std::uint32_t> id;

    SourceLocation where;

    static constexpr std::uint32_t max_message_unix_fds = 33554432;  // DBUS_MAXIMUM_MESSAGE_UNIX_FDS
    bool operator==(const Rule&) const = default;
};

// dbus-daemon's BusPolicy: rules by context, each list in file order.
struct PolicyRules {
    std::vector<Rule> default_rules;
    std::vector<Rule> mandatory_rules;
    std::map<std::uint32_t, std::vector<Rule>> user_rules;   // <policy user="...">, by uid
    std::map<std::uint32_t, std::vector<Rule>> group_rules;  // <policy group="...">, by gid
    std::vector<Rule> at_console_rules;                      // <policy at_console="true">
    std::vector<Rule> not_at_console_rules;                  // <policy at_console="false">

    bool operator==(const PolicyRules&) const = default;
};

struct ConfigWarning {
    std::string file;
    int line = 0;
    std::string message;
};

// busgate's own <endpoint>: a container endpoint made at start (see gateway/endpoints.h for the rules).
struct EndpointConfig {
    std::string name;
    std::string type;
    std::string path;
    std::vector<std::string> see, talk, own;  // <see name=.../>, <talk .../>, <own .../>
    std::vector<std::string> calls;           // <call rule="NAME=[METHOD][@PATH]"/>
    std::vector<std::string> broadcasts;      // <broadcast rule="..."/>
    std::int64_t max_connections = 256;
    SourceLocation where;

    bool operator==(const EndpointConfig&) const = default;
};

struct Configuration {
    std::optional<std::string> type;  // <type>: "system", "session", or anything else
    std::optional<std::string> user;  // <user>: the account to switch to, as written
    bool fork = false;
    bool keep_umask = false;
    bool syslog = false;
    bool allow_anonymous = false;
    std::optional<std::string> pidfile;
    std::vector<std::string> listen;  // in file order; dbus-daemon advertises the last one first
    std::vector<std::string> auth;    // empty: every mechanism busgate knows
    std::vector<ServiceDir> servicedirs;
    std::optional<std::string> servicehelper;
    Limits limits;
    PolicyRules policy;
    std::map<std::string, std::string> selinux_contexts;  // <associate own=... context=...>, last wins
    AppArmorMode apparmor = AppArmorMode::enabled;
    std::vector<EndpointConfig> endpoints;  // busgate's <endpoint> elements

    // Not compared: what was read, for diagnostics, reload and inotify.
    std::vector<std::string> included_dirs;  // every <includedir> that existed, for watching
    std::vector<std::string> files;          // every file read, top-level first
    std::vector<ConfigWarning> warnings;     // unknown users/groups, broken files in an <includedir>

    bool operator==(const Configuration& other) const;
};

class ConfigError : public std::runtime_error {
  public:
    ConfigError(std::string file, int line, int column, std::string message);
    const std::string& file() const { return file_; }
    int line() const { return line_; }
    int column() const { return column_; }
    const std::string& problem() const { return problem_; }
    // "FILE:LINE: problem" (or "FILE: problem" when no line applies).
    std::string describe() const;

  private:
    std::string file_;
    int line_;
    int column_;
    std::string problem_;
};

// How names in <policy user=...> and allow/deny user=/group= resolve. dbus-daemon asks the system user
// database; a number must still name an existing account. Unknown names drop the policy or rule with a
// warning, as dbus-daemon does.
struct UserDatabase {
    std::function<std::optional<std::uint32_t>(std::string_view)> user_id;
    std::function<std::optional<std::uint32_t>(std::string_view)> group_id;
    static UserDatabase system();
};

struct LoadOptions {
    UserDatabase users = UserDatabase::system();
    // Environment for <standard_session_servicedirs/> (XDG_*), HOME fallback from the user database.
    std::function<std::optional<std::string>(std::string_view)> getenv;  // default: ::getenv
    std::optional<std::string> home_directory;                           // default: the current user's
    std::string datadir = "/usr/share";                                  // dbus-daemon's ${datadir}
    bool selinux_enabled = false;     // <include if_selinux_enabled="yes"> is skipped when false
    std::string selinux_policy_root;  // for selinux_root_relative; empty: such includes fail
    // dbus-daemon refuses to start without a <listen>; the parser itself does not care.
    bool require_listen = true;
};

// Loads a top-level configuration file and everything it includes. Throws ConfigError.
Configuration load_configuration(const std::string& path, const LoadOptions& options = {});
// Parses a configuration held in memory; `path` names it in errors and anchors relative paths.
Configuration parse_configuration(std::string_view text, const std::string& path,
                                  const LoadOptions& options = {});

// Reload: builds the new configuration completely; on any error returns the error and leaves `current`
// as it was. On success replaces `current` and returns nullopt.
std::optional<ConfigError> reload_configuration(Configuration& current, const std::string& path,
                                                const LoadOptions& options = {});

}  // namespace busgate::policy
