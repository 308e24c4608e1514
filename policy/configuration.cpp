// The busconfig loader: expat events onto a table of elements, mirroring bus/config-parser.c and
// bus/config-loader-expat.c of dbus-daemon 1.14 message for message.
// The one rule: every file is parsed into its own Configuration, then merged into its includer exactly as
// dbus-daemon's merge_included() does, so a file that fails in an <includedir> leaves no trace.
#include "busgate/policy/configuration.h"

#include <expat.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <sstream>
#include <variant>

#include "busgate/util/users.h"

namespace busgate::policy {

namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------------ errors

ConfigError::ConfigError(std::string file, int line, int column, std::string message)
    : std::runtime_error(file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + message),
      file_(std::move(file)),
      line_(line),
      column_(column),
      problem_(std::move(message)) {}

std::string ConfigError::describe() const {
    return what();
}

bool Configuration::operator==(const Configuration& other) const {
    return type == other.type && user == other.user && fork == other.fork && keep_umask == other.keep_umask &&
           syslog == other.syslog && allow_anonymous == other.allow_anonymous && pidfile == other.pidfile &&
           listen == other.listen && auth == other.auth && servicedirs == other.servicedirs &&
           servicehelper == other.servicehelper && limits == other.limits && policy == other.policy &&
           selinux_contexts == other.selinux_contexts && apparmor == other.apparmor &&
           endpoints == other.endpoints;
}

// ------------------------------------------------------------------------------------------ limits

namespace {

struct LimitSpec {
    std::string_view name;
    std::int64_t Limits::*wide = nullptr;
    std::int32_t Limits::*narrow = nullptr;  // dbus-daemon stores these in an int: "value is too large"
};

constexpr LimitSpec limit_table[] = {
    {"max_incoming_bytes", &Limits::max_incoming_bytes, nullptr},
    {"max_incoming_unix_fds", &Limits::max_incoming_unix_fds, nullptr},
    {"max_outgoing_bytes", &Limits::max_outgoing_bytes, nullptr},
    {"max_outgoing_unix_fds", &Limits::max_outgoing_unix_fds, nullptr},
    {"max_message_size", &Limits::max_message_size, nullptr},
    {"max_message_unix_fds", &Limits::max_message_unix_fds, nullptr},
    {"service_start_timeout", nullptr, &Limits::service_start_timeout},
    {"auth_timeout", nullptr, &Limits::auth_timeout},
    {"pending_fd_timeout", nullptr, &Limits::pending_fd_timeout},
    {"max_completed_connections", nullptr, &Limits::max_completed_connections},
    {"max_incomplete_connections", nullptr, &Limits::max_incomplete_connections},
    {"max_connections_per_user", nullptr, &Limits::max_connections_per_user},
    {"max_pending_service_starts", nullptr, &Limits::max_pending_service_starts},
    {"max_names_per_connection", nullptr, &Limits::max_names_per_connection},
    {"max_match_rules_per_connection", nullptr, &Limits::max_match_rules_per_connection},
    {"max_replies_per_connection", nullptr, &Limits::max_replies_per_connection},
    {"reply_timeout", nullptr, &Limits::reply_timeout},
    {"max_containers", nullptr, &Limits::max_containers},
    {"max_containers_per_user", nullptr, &Limits::max_containers_per_user},
    {"max_connections_per_container", nullptr, &Limits::max_connections_per_container},
    {"max_container_metadata_bytes", nullptr, &Limits::max_container_metadata_bytes},
};

}  // namespace

std::vector<std::string_view> limit_names() {
    std::vector<std::string_view> names;
    for (const auto& spec : limit_table) {
        names.push_back(spec.name);
    }
    return names;
}

// ------------------------------------------------------------------------------------------ users

namespace {

bool all_digits(std::string_view text) {
    return !text.empty() &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::uint32_t> lookup_user(std::string_view name) {
    const std::string key(name);
    std::optional<util::User> user;
    if (all_digits(name)) {
        errno = 0;
        const unsigned long uid = std::strtoul(key.c_str(), nullptr, 10);
        if (errno != 0 || uid > UINT32_MAX) {
            return std::nullopt;
        }
        // dbus-daemon: a number must still be an existing account.
        user = util::user_by_uid(static_cast<uid_t>(uid));
    } else {
        user = util::user_by_name(name);
    }
    return user ? std::optional<std::uint32_t>(user->uid) : std::nullopt;
}

std::optional<std::uint32_t> lookup_group(std::string_view name) {
    const std::string key(name);
    std::optional<util::Group> found;
    if (all_digits(name)) {
        errno = 0;
        const unsigned long gid = std::strtoul(key.c_str(), nullptr, 10);
        if (errno != 0 || gid > UINT32_MAX) {
            return std::nullopt;
        }
        found = util::group_by_gid(static_cast<gid_t>(gid));
    } else {
        found = util::group_by_name(name);
    }
    return found ? std::optional<std::uint32_t>(found->gid) : std::nullopt;
}

std::string current_home_directory() {
    const auto user = util::user_by_uid(getuid());
    return user ? user->home : "/";
}

}  // namespace

UserDatabase UserDatabase::system() {
    return UserDatabase{lookup_user, lookup_group};
}

// ------------------------------------------------------------------------------------------ the parser

namespace {

enum class Element : std::uint8_t {
    none,
    busconfig,
    include,
    user,
    type,
    listen,
    auth,
    policy,
    limit,
    allow,
    deny,
    fork,
    syslog,
    keep_umask,
    pidfile,
    servicedir,
    servicehelper,
    includedir,
    selinux,
    associate,
    standard_session_servicedirs,
    standard_system_servicedirs,
    allow_anonymous,
    apparmor,
    endpoint,  // busgate: <endpoint> and what it grants
    see,
    talk,
    own,
    call,
    broadcast,
};

struct ElementInfo {
    Element type;
    std::string_view name;
    bool has_content;  // an element whose text is its value (it must have some)
};

constexpr ElementInfo element_table[] = {
    {Element::busconfig, "busconfig", false},
    {Element::include, "include", true},
    {Element::user, "user", true},
    {Element::type, "type", true},
    {Element::listen, "listen", true},
    {Element::auth, "auth", true},
    {Element::policy, "policy", false},
    {Element::limit, "limit", true},
    {Element::allow, "allow", false},
    {Element::deny, "deny", false},
    {Element::fork, "fork", false},
    {Element::syslog, "syslog", false},
    {Element::keep_umask, "keep_umask", false},
    {Element::pidfile, "pidfile", true},
    {Element::servicedir, "servicedir", true},
    {Element::servicehelper, "servicehelper", true},
    {Element::includedir, "includedir", true},
    {Element::selinux, "selinux", false},
    {Element::associate, "associate", false},
    {Element::standard_session_servicedirs, "standard_session_servicedirs", false},
    {Element::standard_system_servicedirs, "standard_system_servicedirs", false},
    {Element::allow_anonymous, "allow_anonymous", false},
    {Element::apparmor, "apparmor", false},
    {Element::endpoint, "endpoint", false},
    {Element::see, "see", false},
    {Element::talk, "talk", false},
    {Element::own, "own", false},
    {Element::call, "call", false},
    {Element::broadcast, "broadcast", false},
};

const ElementInfo* find_element(std::string_view name) {
    for (const auto& info : element_table) {
        if (info.name == name) {
            return &info;
        }
    }
    return nullptr;
}

const ElementInfo& info_of(Element type) {
    for (const auto& info : element_table) {
        if (info.type == type) {
            return info;
        }
    }
    return element_table[0];
}

enum class PolicyKind : std::uint8_t { ignored, default_context, mandatory_context, user, group, console };

struct Frame {
    Element type = Element::none;
    bool had_content = false;
    // <policy>
    PolicyKind policy = PolicyKind::ignored;
    std::uint32_t policy_id = 0;  // uid, gid, or at_console
    // <limit>
    std::string limit_name;
    std::int64_t limit_value = 0;
    // <include>
    bool ignore_missing = false;
    bool if_selinux_enabled = false;
    bool selinux_root_relative = false;
};

// Thrown inside the parser's own code and caught before it could cross expat's C frames.
struct ParseFailure {
    std::string message;
};

[[noreturn]] void fail(std::string message) {
    throw ParseFailure{std::move(message)};
}

std::string in_quotes(std::string_view text) {
    return "\"" + std::string(text) + "\"";
}

bool is_all_whitespace(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// strtol(…, 0) as dbus's _dbus_string_parse_int uses it: leading blanks, sign, 0x/0 prefixes, and any
// trailing text are all accepted; no digits or overflow are not.
std::optional<std::int64_t> parse_long(const std::string& text) {
    const char* start = text.c_str();
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(start, &end, 0);
    if (end == start || errno != 0) {
        return std::nullopt;
    }
    return value;
}

std::optional<std::uint64_t> parse_unsigned(const std::string& text) {
    const char* start = text.c_str();
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r') {
        ++start;
    }
    if (*start == '-' || *start == '+') {
        return std::nullopt;
    }
    char* end = nullptr;
    errno = 0;
    const unsigned long value = std::strtoul(start, &end, 0);
    if (end == start || errno != 0) {
        return std::nullopt;
    }
    return value;
}

std::string join_path(const std::string& directory, const std::string& file) {
    if (!file.empty() && file.front() == '/') {
        return file;
    }
    if (directory.empty()) {
        return file;
    }
    if (directory.back() == '/') {
        return directory + file;
    }
    return directory + "/" + file;
}

std::string directory_of(const std::string& file) {
    const auto slash = file.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    if (slash == 0) {
        return "/";
    }
    return file.substr(0, slash);
}

void append_unique(std::vector<ServiceDir>& dirs, ServiceDir dir) {
    for (const auto& existing : dirs) {
        if (existing.path == dir.path) {
            return;
        }
    }
    dirs.push_back(std::move(dir));
}

// Splits a ':'-separated list and appends `suffix` to each element, as _dbus_split_paths_and_append.
std::vector<std::string> split_paths(const std::string& list, const std::string& suffix) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= list.size()) {
        std::size_t colon = list.find(':', start);
        if (colon == std::string::npos) {
            colon = list.size();
        }
        std::string element = list.substr(start, colon - start);
        if (!element.empty()) {
            while (element.size() > 1 && element.back() == '/') {
                element.pop_back();
            }
            out.push_back(element + suffix);
        }
        start = colon + 1;
    }
    return out;
}

class Loader;

// One file being parsed: its own Configuration (merged into the includer afterwards) and expat state.
class FileParser {
  public:
    FileParser(Loader& loader, std::string path, const Limits& inherited, AppArmorMode apparmor);
    ~FileParser();
    FileParser(const FileParser&) = delete;
    FileParser& operator=(const FileParser&) = delete;

    // Throws ConfigError.
    Configuration parse(std::string_view text);

  private:
    static void on_start(void* self, const XML_Char* name, const XML_Char** attributes);
    static void on_end(void* self, const XML_Char* name);
    static void on_text(void* self, const XML_Char* text, int length);

    void start_element(std::string_view name, const XML_Char** attributes);
    void end_element(std::string_view name);
    void flush_content();
    void content(const std::string& text);

    void start_busconfig_child(const ElementInfo& element, const XML_Char** attributes);
    void start_policy(const XML_Char** attributes);
    void start_rule(bool allow, const XML_Char** attributes);
    void place_rule(Rule rule, std::string_view element_name);

    void include_file(const std::string& path, bool ignore_missing, bool from_directory);
    void include_directory(const std::string& path);
    void merge(Configuration&& included);

    void warn(std::string message);
    int line() const { return static_cast<int>(XML_GetCurrentLineNumber(parser_)); }
    int column() const { return static_cast<int>(XML_GetCurrentColumnNumber(parser_)); }

    Loader& loader_;
    std::string path_;
    std::string basedir_;
    XML_Parser parser_;
    Configuration config_;
    std::vector<Frame> stack_;
    std::string text_;
    std::optional<ConfigError> error_;
};

class Loader {
  public:
    explicit Loader(const LoadOptions& load_options) : options(load_options) {}

    const LoadOptions& options;
    std::vector<std::string> include_stack;  // canonical paths of the files being parsed

    std::optional<std::string> getenv(std::string_view name) const {
        if (options.getenv) {
            return options.getenv(name);
        }
        const char* value = ::getenv(std::string(name).c_str());
        if (!value) {
            return std::nullopt;
        }
        return std::string(value);
    }
    std::string home() const {
        return options.home_directory ? *options.home_directory : current_home_directory();
    }
};

std::string canonical_or_self(const std::string& path) {
    std::error_code error;
    auto canonical = fs::weakly_canonical(fs::absolute(path, error), error);
    if (error) {
        return path;
    }
    return canonical.string();
}

// Reads a file as dbus-daemon's _dbus_file_get_contents does, with its messages.
struct FileProblem {
    bool missing = false;
    std::string message;
};

std::variant<std::string, FileProblem> read_file(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        const int code = errno;
        return FileProblem{code == ENOENT, "Failed to open " + in_quotes(path) + ": " + std::strerror(code)};
    }
    if (!S_ISREG(info.st_mode)) {
        return FileProblem{false, in_quotes(path) + " is not a regular file"};
    }
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        const int code = errno;
        return FileProblem{code == ENOENT, "Failed to open " + in_quotes(path) + ": " + std::strerror(code)};
    }
    return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

FileParser::FileParser(Loader& loader, std::string path, const Limits& inherited, AppArmorMode apparmor)
    : loader_(loader), path_(std::move(path)), basedir_(directory_of(path_)) {
    parser_ = XML_ParserCreate("UTF-8");
    if (!parser_) {
        throw std::bad_alloc();
    }
    XML_SetUserData(parser_, this);
    XML_SetElementHandler(parser_, on_start, on_end);
    XML_SetCharacterDataHandler(parser_, on_text);
    config_.limits = inherited;
    config_.apparmor = apparmor;
    config_.files.push_back(path_);
}

FileParser::~FileParser() {
    XML_ParserFree(parser_);
}

Configuration FileParser::parse(std::string_view text) {
    const auto status = XML_Parse(parser_, text.data(), static_cast<int>(text.size()), XML_TRUE);
    if (error_) {
        throw *error_;
    }
    if (status != XML_STATUS_OK) {
        throw ConfigError(path_, static_cast<int>(XML_GetCurrentLineNumber(parser_)),
                          static_cast<int>(XML_GetCurrentColumnNumber(parser_)),
                          XML_ErrorString(XML_GetErrorCode(parser_)));
    }
    if (!stack_.empty()) {
        throw ConfigError(path_, line(), column(),
                          "Element <" + std::string(info_of(stack_.back().type).name) +
                              "> was not closed in configuration file");
    }
    return std::move(config_);
}

// The expat callbacks: nothing may unwind through expat, so failures are recorded and parsing stopped.
#define BUSGATE_EXPAT_GUARD(body)                                                                 \
    auto* parser = static_cast<FileParser*>(self);                                                \
    if (parser->error_)                                                                           \
        return;                                                                                   \
    try {                                                                                         \
        body;                                                                                     \
    } catch (const ParseFailure& failure) {                                                       \
        parser->error_.emplace(parser->path_, parser->line(), parser->column(), failure.message); \
        XML_StopParser(parser->parser_, XML_FALSE);                                               \
    } catch (const ConfigError& error) {                                                          \
        parser->error_.emplace(error);                                                            \
        XML_StopParser(parser->parser_, XML_FALSE);                                               \
    } catch (const std::exception& error) {                                                       \
        parser->error_.emplace(parser->path_, parser->line(), parser->column(), error.what());    \
        XML_StopParser(parser->parser_, XML_FALSE);                                               \
    }

void FileParser::on_start(void* self, const XML_Char* name, const XML_Char** attributes) {
    BUSGATE_EXPAT_GUARD(parser->flush_content(); parser->start_element(name, attributes))
}

void FileParser::on_end(void* self, const XML_Char* name) {
    BUSGATE_EXPAT_GUARD(parser->flush_content(); parser->end_element(name))
}

void FileParser::on_text(void* self, const XML_Char* text, int length) {
    BUSGATE_EXPAT_GUARD(parser->text_.append(text, static_cast<std::size_t>(length)))
}

#undef BUSGATE_EXPAT_GUARD

void FileParser::warn(std::string message) {
    config_.warnings.push_back(ConfigWarning{path_, line(), std::move(message)});
}

// Attributes as dbus's locate_attributes(): each known at most once, anything else an error.
class Attributes {
  public:
    Attributes(std::string_view element, const XML_Char** attributes, std::span<const std::string_view> known)
        : known_(known.begin(), known.end()), values_(known.size()) {
        for (std::size_t i = 0; attributes[i]; i += 2) {
            const std::string_view name = attributes[i];
            const auto slot = std::find(known_.begin(), known_.end(), name);
            if (slot == known_.end()) {
                fail("Attribute " + in_quotes(name) + " is invalid on <" + std::string(element) +
                     "> element in this context");
            }
            auto& value = values_[static_cast<std::size_t>(slot - known_.begin())];
            if (value) {
                fail("Attribute " + in_quotes(name) + " repeated twice on the same <" + std::string(element) +
                     "> element");
            }
            value = attributes[i + 1];
        }
    }
    const std::optional<std::string>& operator[](std::string_view name) const {
        return values_[static_cast<std::size_t>(std::find(known_.begin(), known_.end(), name) -
                                                known_.begin())];
    }

  private:
    std::vector<std::string_view> known_;
    std::vector<std::optional<std::string>> values_;
};

void check_no_attributes(std::string_view element, const XML_Char** attributes) {
    if (attributes[0]) {
        fail("Attribute " + in_quotes(attributes[0]) + " is invalid on <" + std::string(element) +
             "> element in this context");
    }
}

bool yes_no(const std::optional<std::string>& value, std::string_view attribute) {
    if (!value) {
        return false;
    }
    if (*value == "yes") {
        return true;
    }
    if (*value == "no") {
        return false;
    }
    fail(std::string(attribute) + " attribute must have value \"yes\" or \"no\"");
}

void FileParser::start_element(std::string_view name, const XML_Char** attributes) {
    const Element top = stack_.empty() ? Element::none : stack_.back().type;
    if (top == Element::none) {
        if (name != "busconfig") {
            fail("Unknown element <" + std::string(name) + "> at root of configuration file");
        }
        check_no_attributes("busconfig", attributes);
        stack_.push_back(Frame{Element::busconfig});
        return;
    }
    if (top == Element::busconfig) {
        const ElementInfo* element = find_element(name);
        if (!element || element->type == Element::busconfig || element->type == Element::allow ||
            element->type == Element::deny || element->type == Element::associate ||
            element->type > Element::endpoint) {
            fail("Element <" + std::string(name) + "> not allowed inside <busconfig> in configuration file");
        }
        start_busconfig_child(*element, attributes);
        return;
    }
    if (top == Element::policy) {
        if (name == "allow" || name == "deny") {
            start_rule(name == "allow", attributes);
            stack_.push_back(Frame{name == "allow" ? Element::allow : Element::deny});
            return;
        }
        fail("Element <" + std::string(name) + "> not allowed inside <policy> in configuration file");
    }
    if (top == Element::endpoint) {
        const ElementInfo* element = find_element(name);
        if (!element || element->type <= Element::endpoint) {
            fail("Element <" + std::string(name) + "> not allowed inside <endpoint> in configuration file");
        }
        const bool is_rule = element->type == Element::call || element->type == Element::broadcast;
        static constexpr std::string_view names[] = {"name"};
        static constexpr std::string_view rules[] = {"rule"};
        Attributes values(
            element->name, attributes,
            is_rule ? std::span<const std::string_view>(rules) : std::span<const std::string_view>(names));
        const auto& value = values[is_rule ? "rule" : "name"];
        if (!value) {
            fail("<" + std::string(element->name) + "> element must have a \"" + (is_rule ? "rule" : "name") +
                 "\" attribute");
        }
        EndpointConfig& endpoint = config_.endpoints.back();
        switch (element->type) {
            case Element::see:
                endpoint.see.push_back(*value);
                break;
            case Element::talk:
                endpoint.talk.push_back(*value);
                break;
            case Element::own:
                endpoint.own.push_back(*value);
                break;
            case Element::call:
                endpoint.calls.push_back(*value);
                break;
            default:
                endpoint.broadcasts.push_back(*value);
                break;
        }
        stack_.push_back(Frame{element->type});
        return;
    }
    if (top == Element::selinux) {
        if (name != "associate") {
            fail("Element <" + std::string(name) + "> not allowed inside <selinux> in configuration file");
        }
        static constexpr std::string_view known[] = {"own", "context"};
        Attributes values("associate", attributes, known);
        if (!values["own"] || !values["context"]) {
            fail(
                "Element <associate> must have attributes own=\"<servicename>\" and context=\"<selinux "
                "context>\"");
        }
        config_.selinux_contexts[*values["own"]] = *values["context"];
        stack_.push_back(Frame{Element::associate});
        return;
    }
    fail("Element <" + std::string(name) + "> is not allowed in this context");
}

void FileParser::start_busconfig_child(const ElementInfo& element, const XML_Char** attributes) {
    Frame frame{element.type};
    switch (element.type) {
        case Element::include: {
            static constexpr std::string_view known[] = {"ignore_missing", "if_selinux_enabled",
                                                         "selinux_root_relative"};
            Attributes values("include", attributes, known);
            frame.ignore_missing = yes_no(values["ignore_missing"], "ignore_missing");
            frame.if_selinux_enabled = yes_no(values["if_selinux_enabled"], "if_selinux_enabled");
            frame.selinux_root_relative = yes_no(values["selinux_root_relative"], "selinux_root_relative");
            break;
        }
        case Element::policy:
            start_policy(attributes);
            return;
        case Element::limit: {
            static constexpr std::string_view known[] = {"name"};
            Attributes values("limit", attributes, known);
            if (!values["name"]) {
                fail("<limit> element must have a \"name\" attribute");
            }
            frame.limit_name = *values["name"];
            break;
        }
        case Element::endpoint: {
            static constexpr std::string_view known[] = {"name", "type", "path", "max_connections"};
            Attributes values("endpoint", attributes, known);
            if (!values["name"]) {
                fail("<endpoint> element must have a \"name\" attribute");
            }
            EndpointConfig endpoint;
            endpoint.name = *values["name"];
            endpoint.type = values["type"].value_or("");
            if (values["path"]) {
                endpoint.path = join_path(basedir_, *values["path"]);
            }
            if (const auto& limit = values["max_connections"]) {
                const auto parsed = parse_long(*limit);
                if (!parsed || *parsed < 1) {
                    fail("<endpoint max_connections=" + in_quotes(*limit) + "> must be a positive number");
                }
                endpoint.max_connections = *parsed;
            }
            endpoint.where = SourceLocation{path_, line()};
            // A later <endpoint> of the same name replaces the earlier one, as later elements win elsewhere.
            std::erase_if(config_.endpoints,
                          [&](const EndpointConfig& other) { return other.name == endpoint.name; });
            config_.endpoints.push_back(std::move(endpoint));
            break;
        }
        case Element::apparmor: {
            static constexpr std::string_view known[] = {"mode"};
            Attributes values("apparmor", attributes, known);
            if (const auto& mode = values["mode"]) {
                if (*mode == "required") {
                    config_.apparmor = AppArmorMode::required;
                } else if (*mode == "enabled") {
                    config_.apparmor = AppArmorMode::enabled;
                } else if (*mode == "disabled") {
                    config_.apparmor = AppArmorMode::disabled;
                } else {
                    fail(
                        "Mode attribute on <apparmor> must have value \"required\", \"enabled\" or "
                        "\"disabled\", not " +
                        in_quotes(*mode));
                }
            }
            break;
        }
        default:
            check_no_attributes(element.name, attributes);
            break;
    }

    switch (element.type) {
        case Element::fork:
            config_.fork = true;
            break;
        case Element::syslog:
            config_.syslog = true;
            break;
        case Element::keep_umask:
            config_.keep_umask = true;
            break;
        case Element::allow_anonymous:
            config_.allow_anonymous = true;
            break;
        case Element::standard_session_servicedirs: {
            // $XDG_RUNTIME_DIR/dbus-1/services first (strict naming, not watched), then
            // $XDG_DATA_HOME (default ~/.local/share), $XDG_DATA_DIRS (default /usr/local/share:/usr/share)
            // and ${datadir}, each + /dbus-1/services, duplicates dropped.
            if (auto runtime = loader_.getenv("XDG_RUNTIME_DIR")) {
                append_unique(config_.servicedirs,
                              ServiceDir{join_path(*runtime, "dbus-1/services"), true, false});
            }
            std::string list;
            if (auto home = loader_.getenv("XDG_DATA_HOME")) {
                list = *home;
            } else {
                list = join_path(loader_.home(), ".local/share");
            }
            list += ":";
            if (auto dirs = loader_.getenv("XDG_DATA_DIRS")) {
                list += *dirs + ":";
            } else {
                list += "/usr/local/share:/usr/share:";
            }
            list += loader_.options.datadir;
            for (auto& dir : split_paths(list, "/dbus-1/services")) {
                append_unique(config_.servicedirs, ServiceDir{std::move(dir), false, true});
            }
            break;
        }
        case Element::standard_system_servicedirs: {
            const std::string list = "/usr/local/share:/usr/share:" + loader_.options.datadir + ":/lib";
            for (auto& dir : split_paths(list, "/dbus-1/system-services")) {
                append_unique(config_.servicedirs, ServiceDir{std::move(dir), false, true});
            }
            break;
        }
        default:
            break;
    }
    stack_.push_back(std::move(frame));
}

void FileParser::start_policy(const XML_Char** attributes) {
    static constexpr std::string_view known[] = {"context", "user", "group", "at_console"};
    Attributes values("policy", attributes, known);
    const int given = !!values["context"] + !!values["user"] + !!values["group"] + !!values["at_console"];
    if (given != 1) {
        fail("<policy> element must have exactly one of (context|user|group|at_console) attributes");
    }

    Frame frame{Element::policy};
    if (const auto& context = values["context"]) {
        if (*context == "default") {
            frame.policy = PolicyKind::default_context;
        } else if (*context == "mandatory") {
            frame.policy = PolicyKind::mandatory_context;
        } else {
            fail("context attribute on <policy> must have the value \"default\" or \"mandatory\", not " +
                 in_quotes(*context));
        }
    } else if (const auto& user = values["user"]) {
        if (auto uid = loader_.options.users.user_id(*user)) {
            frame.policy = PolicyKind::user;
            frame.policy_id = *uid;
        } else {
            warn("Unknown username " + in_quotes(*user) + " in message bus configuration file");
        }
    } else if (const auto& group = values["group"]) {
        if (auto gid = loader_.options.users.group_id(*group)) {
            frame.policy = PolicyKind::group;
            frame.policy_id = *gid;
        } else {
            warn("Unknown group " + in_quotes(*group) + " in message bus configuration file");
        }
    } else {
        const auto& console = *values["at_console"];
        if (console != "true" && console != "false") {
            fail("Unknown value " + in_quotes(console) + " for at_console in message bus configuration file");
        }
        frame.policy = PolicyKind::console;
        frame.policy_id = console == "true";
    }
    stack_.push_back(std::move(frame));
}

std::optional<RuleMessageType> message_type_from_string(std::string_view text) {
    if (text == "method_call") {
        return RuleMessageType::method_call;
    }
    if (text == "method_return") {
        return RuleMessageType::method_return;
    }
    if (text == "signal") {
        return RuleMessageType::signal;
    }
    if (text == "error") {
        return RuleMessageType::error;
    }
    return std::nullopt;
}

// dbus-daemon prints these two arguments the wrong way round; so do we, to give the same text.
[[noreturn]] void fail_true_false_swapped(std::string_view attribute, const std::string& value) {
    fail("Bad value " + in_quotes(attribute) + " for " + value + " attribute, must be true or false");
}

bool true_false_swapped(const std::optional<std::string>& value, std::string_view attribute, bool fallback) {
    if (!value) {
        return fallback;
    }
    if (*value == "true") {
        return true;
    }
    if (*value == "false") {
        return false;
    }
    fail_true_false_swapped(attribute, *value);
}

std::uint32_t parse_fds(const std::optional<std::string>& value, std::string_view attribute,
                        std::uint32_t fallback) {
    if (!value) {
        return fallback;
    }
    auto parsed = parse_unsigned(*value);
    if (!parsed || *parsed > Rule::max_message_unix_fds) {
        fail("Bad value " + in_quotes(*value) + " for " + std::string(attribute) +
             " attribute, must be an integer in range 0 to " + std::to_string(Rule::max_message_unix_fds) +
             " inclusive");
    }
    return static_cast<std::uint32_t>(*parsed);
}

std::optional<std::string> unless_wildcard(const std::optional<std::string>& value) {
    if (value && *value == "*") {
        return std::nullopt;
    }
    return value;
}

void FileParser::start_rule(bool allow, const XML_Char** attributes) {
    const std::string element = allow ? "allow" : "deny";
    static constexpr std::string_view known[] = {
        "send_interface",
        "send_member",
        "send_error",
        "send_destination",
        "send_destination_prefix",
        "send_path",
        "send_type",
        "send_broadcast",
        "receive_interface",
        "receive_member",
        "receive_error",
        "receive_sender",
        "receive_path",
        "receive_type",
        "eavesdrop",
        "max_fds",
        "min_fds",
        "send_requested_reply",
        "receive_requested_reply",
        "own",
        "own_prefix",
        "user",
        "group",
        "log",
    };
    Attributes a(element, attributes, known);

    const bool any_send = a["send_destination"] || a["send_destination_prefix"] || a["send_broadcast"] ||
                          a["send_path"] || a["send_type"] || a["send_interface"] || a["send_member"] ||
                          a["send_error"] || a["send_requested_reply"];
    const bool any_receive = a["receive_sender"] || a["receive_path"] || a["receive_type"] ||
                             a["receive_interface"] || a["receive_member"] || a["receive_error"] ||
                             a["receive_requested_reply"];
    const bool any_message = any_send || any_receive || a["eavesdrop"] || a["max_fds"] || a["min_fds"];

    if (!(any_send || any_receive || a["eavesdrop"] || a["own"] || a["own_prefix"] || a["user"] ||
          a["group"])) {
        fail("Element <" + element + "> must have one or more attributes");
    }

    if ((a["send_member"] && !a["send_interface"] && !a["send_path"]) ||
        (a["receive_member"] && !a["receive_interface"] && !a["receive_path"])) {
        fail("On element <" + element +
             ">, if you specify a member you must specify an interface or a path. Keep in mind that not all "
             "messages have an interface field.");
    }

    if (int{any_message} + !!a["own"] + !!a["own_prefix"] + !!a["user"] + !!a["group"] > 1) {
        fail("Invalid combination of attributes on element <" + element +
             ">: own, own_prefix, user, group and the message-related attributes cannot be combined");
    }
    if (any_send && any_receive) {
        fail("Invalid combination of attributes on element <" + element +
             ">: send and receive attributes cannot be combined");
    }
    if ((a["send_member"] || a["send_interface"]) && a["send_error"]) {
        fail("Invalid combination of attributes on element <" + element +
             ">: send_error cannot be combined with send_member or send_interface");
    }
    if ((a["receive_member"] || a["receive_interface"]) && a["receive_error"]) {
        fail("Invalid combination of attributes on element <" + element +
             ">: receive_error cannot be combined with receive_member or receive_interface");
    }
    if (a["send_destination"] && a["send_destination_prefix"]) {
        fail("Invalid combination of attributes on element <" + element +
             ">: send_destination cannot be combined with send_destination_prefix");
    }

    Rule rule;
    rule.allow = allow;
    rule.where = SourceLocation{path_, line()};
    rule.log = a["log"] && *a["log"] == "true";

    if (any_message) {
        const bool send = any_send;
        const std::string_view prefix = send ? "send_" : "receive_";
        auto attribute = [&](std::string_view suffix) -> const std::optional<std::string>& {
            return a[std::string(prefix) + std::string(suffix)];
        };
        rule.kind = send ? RuleKind::send : RuleKind::receive;
        rule.interface = unless_wildcard(attribute("interface"));
        rule.member = unless_wildcard(attribute("member"));
        rule.error = unless_wildcard(attribute("error"));
        rule.path = unless_wildcard(attribute("path"));
        if (auto type = unless_wildcard(attribute("type"))) {
            auto parsed = message_type_from_string(*type);
            if (!parsed) {
                fail("Bad message type " + in_quotes(*type));
            }
            rule.message_type = *parsed;
        }
        rule.eavesdrop = true_false_swapped(a["eavesdrop"], "eavesdrop", false);
        if (send) {
            if (const auto& broadcast = a["send_broadcast"]) {
                if (*broadcast != "true" && *broadcast != "false") {
                    fail("Bad value " + in_quotes(*broadcast) +
                         " for send_broadcast attribute, must be true or false");
                }
                rule.broadcast = *broadcast == "true" ? Tristate::yes : Tristate::no;
            }
            rule.name = unless_wildcard(a["send_destination"]);
            if (rule.name && rule.broadcast == Tristate::yes) {
                fail("Rule with send_broadcast=\"true\" and send_destination=" + in_quotes(*rule.name) +
                     " cannot match anything");
            }
            if (a["send_destination_prefix"]) {
                rule.name = a["send_destination_prefix"];
                rule.name_is_prefix = true;
            }
        } else {
            rule.name = unless_wildcard(a["receive_sender"]);
        }
        const std::string requested = std::string(prefix) + "requested_reply";
        rule.requested_reply = true_false_swapped(a[requested], requested, allow);
        rule.max_fds = parse_fds(a["max_fds"], "max_fds", Rule::max_message_unix_fds);
        rule.min_fds = parse_fds(a["min_fds"], "min_fds", 0);
        place_rule(std::move(rule), element);
        return;
    }
    if (a["own"] || a["own_prefix"]) {
        rule.kind = RuleKind::own;
        if (a["own"]) {
            rule.name = unless_wildcard(a["own"]);
        } else {
            rule.name = a["own_prefix"];
            rule.name_is_prefix = true;
        }
        place_rule(std::move(rule), element);
        return;
    }
    const bool user = a["user"].has_value();
    const std::string& who = user ? *a["user"] : *a["group"];
    rule.kind = user ? RuleKind::user : RuleKind::group;
    if (who != "*") {
        rule.id = user ? loader_.options.users.user_id(who) : loader_.options.users.group_id(who);
        if (!rule.id) {
            warn(std::string(user ? "Unknown username " : "Unknown group ") + in_quotes(who) +
                 " on element <" + element + ">");
            return;
        }
    }
    place_rule(std::move(rule), element);
}

void FileParser::place_rule(Rule rule, std::string_view element_name) {
    const Frame& policy = stack_.back();
    const bool bus_global = rule.kind == RuleKind::user || rule.kind == RuleKind::group;
    auto& rules = config_.policy;
    switch (policy.policy) {
        case PolicyKind::ignored:
            break;
        case PolicyKind::default_context:
            rules.default_rules.push_back(std::move(rule));
            break;
        case PolicyKind::mandatory_context:
            rules.mandatory_rules.push_back(std::move(rule));
            break;
        case PolicyKind::user:
            if (bus_global) {
                fail("<" + std::string(element_name) +
                     "> rule cannot be per-user because it has bus-global semantics");
            }
            rules.user_rules[policy.policy_id].push_back(std::move(rule));
            break;
        case PolicyKind::group:
            if (bus_global) {
                fail("<" + std::string(element_name) +
                     "> rule cannot be per-group because it has bus-global semantics");
            }
            rules.group_rules[policy.policy_id].push_back(std::move(rule));
            break;
        case PolicyKind::console:
            (policy.policy_id ? rules.at_console_rules : rules.not_at_console_rules)
                .push_back(std::move(rule));
            break;
    }
}

void FileParser::flush_content() {
    if (text_.empty()) {
        return;
    }
    std::string text;
    text.swap(text_);
    content(text);
}

void FileParser::content(const std::string& text) {
    if (stack_.empty()) {
        fail("Text content outside of any XML element in configuration file");
    }
    Frame& frame = stack_.back();
    const ElementInfo& element = info_of(frame.type);
    if (!element.has_content) {
        if (is_all_whitespace(text)) {
            return;
        }
        fail("No text content expected inside XML element " + std::string(element.name) +
             " in configuration file");
    }
    frame.had_content = true;
    switch (frame.type) {
        case Element::pidfile:
            config_.pidfile = text;
            break;
        case Element::user:
            config_.user = text;
            break;
        case Element::type:
            config_.type = text;
            break;
        case Element::listen:
            config_.listen.push_back(text);
            break;
        case Element::auth:
            config_.auth.push_back(text);
            break;
        case Element::servicehelper:
            config_.servicehelper = join_path(basedir_, text);
            break;
        case Element::servicedir:
            append_unique(config_.servicedirs, ServiceDir{join_path(basedir_, text), false, true});
            break;
        case Element::includedir:
            include_directory(join_path(basedir_, text));
            break;
        case Element::include: {
            if (frame.if_selinux_enabled && !loader_.options.selinux_enabled) {
                break;
            }
            std::string full;
            if (frame.selinux_root_relative) {
                if (loader_.options.selinux_policy_root.empty()) {
                    fail("Could not determine SELinux policy root for relative inclusion");
                }
                full = join_path(loader_.options.selinux_policy_root, text);
            } else {
                full = join_path(basedir_, text);
            }
            include_file(full, frame.ignore_missing, false);
            break;
        }
        case Element::limit: {
            auto value = parse_long(text);
            if (!value) {
                fail("<limit name=" + in_quotes(frame.limit_name) +
                     "> element has invalid value (could not parse as integer)");
            }
            frame.limit_value = *value;
            break;
        }
        default:
            break;
    }
}

void FileParser::end_element(std::string_view name) {
    if (stack_.empty()) {
        fail("XML parser ended element with no element on the stack");
    }
    const Frame& frame = stack_.back();
    const ElementInfo& element = info_of(frame.type);
    if (element.name != name) {
        fail("XML element <" + std::string(name) + "> ended but topmost element on the stack was <" +
             std::string(element.name) + ">");
    }
    if (element.has_content && !frame.had_content) {
        fail("XML element <" + std::string(element.name) + "> was expected to have content inside it");
    }
    if (frame.type == Element::limit) {
        const LimitSpec* spec = nullptr;
        for (const auto& candidate : limit_table) {
            if (candidate.name == frame.limit_name) {
                spec = &candidate;
            }
        }
        if (!spec) {
            fail("There is no limit called " + in_quotes(frame.limit_name));
        }
        if (frame.limit_value < 0) {
            fail("<limit name=" + in_quotes(frame.limit_name) + "> must be a positive number");
        }
        if (spec->narrow) {
            if (frame.limit_value > INT32_MAX) {
                fail("<limit name=" + in_quotes(frame.limit_name) + "> value is too large");
            }
            config_.limits.*(spec->narrow) = static_cast<std::int32_t>(frame.limit_value);
        } else {
            config_.limits.*(spec->wide) = frame.limit_value;
        }
    }
    stack_.pop_back();
}

void FileParser::include_file(const std::string& path, bool ignore_missing, bool from_directory) {
    const std::string canonical = canonical_or_self(path);
    if (std::find(loader_.include_stack.begin(), loader_.include_stack.end(), canonical) !=
        loader_.include_stack.end()) {
        fail("Circular inclusion of file '" + path + "'");
    }

    auto contents = read_file(path);
    if (auto* problem = std::get_if<FileProblem>(&contents)) {
        if (problem->missing && ignore_missing) {
            return;
        }
        if (from_directory) {
            warn("Encountered error '" + problem->message + "' while parsing '" + path + "'");
            return;
        }
        fail(problem->message);
    }

    loader_.include_stack.push_back(canonical);
    struct Pop {
        Loader& loader;
        ~Pop() { loader.include_stack.pop_back(); }
    } pop{loader_};

    FileParser included(loader_, path, config_.limits, config_.apparmor);
    Configuration result;
    try {
        result = included.parse(std::get<std::string>(contents));
    } catch (const ConfigError& error) {
        if (!from_directory) {
            throw;
        }
        // dbus-daemon logs a broken file in an <includedir> and carries on without it.
        warn("Encountered error '" + error.problem() + "' while parsing '" + path + "'");
        return;
    }
    merge(std::move(result));
}

void FileParser::include_directory(const std::string& path) {
    std::error_code error;
    fs::directory_iterator entries(path, error);
    if (error) {
        if (error == std::errc::no_such_file_or_directory) {
            return;
        }
        fail("Failed to read directory \"" + path + "\": " + error.message());
    }
    std::vector<std::string> files;
    for (const auto& entry : entries) {
        std::string name = entry.path().filename().string();
        if (name.ends_with(".conf")) {
            files.push_back(join_path(path, name));
        }
    }
    // dbus-daemon reads the directory in readdir order ("undefined"); busgate makes it deterministic.
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
        include_file(file, true, true);
    }
    config_.included_dirs.push_back(path);
}

// dbus-daemon's merge_included(): later values win, lists and rules append, flags accumulate.
void FileParser::merge(Configuration&& included) {
    auto append = [](auto& to, auto& from) {
        to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
    };
    auto& policy = config_.policy;
    auto& other = included.policy;
    append(policy.default_rules, other.default_rules);
    append(policy.mandatory_rules, other.mandatory_rules);
    for (auto& [uid, rules] : other.user_rules) {
        append(policy.user_rules[uid], rules);
    }
    for (auto& [gid, rules] : other.group_rules) {
        append(policy.group_rules[gid], rules);
    }
    append(policy.at_console_rules, other.at_console_rules);
    append(policy.not_at_console_rules, other.not_at_console_rules);
    for (auto& [name, context] : included.selinux_contexts) {
        config_.selinux_contexts[name] = context;
    }
    if (included.user) {
        config_.user = std::move(included.user);
    }
    if (included.type) {
        config_.type = std::move(included.type);
    }
    config_.fork = config_.fork || included.fork;
    config_.keep_umask = config_.keep_umask || included.keep_umask;
    config_.syslog = config_.syslog || included.syslog;
    config_.allow_anonymous = config_.allow_anonymous || included.allow_anonymous;
    if (included.pidfile) {
        config_.pidfile = std::move(included.pidfile);
    }
    if (included.servicehelper) {
        config_.servicehelper = std::move(included.servicehelper);
    }
    append(config_.listen, included.listen);
    append(config_.auth, included.auth);
    // dbus-daemon appends the included file's service directories without removing duplicates.
    append(config_.servicedirs, included.servicedirs);
    append(config_.included_dirs, included.included_dirs);
    append(config_.files, included.files);
    append(config_.warnings, included.warnings);
    // The included file started from our limits (and AppArmor mode, which is global in dbus-daemon) and
    // may have changed them.
    config_.limits = included.limits;
    config_.apparmor = included.apparmor;
}

Configuration run(std::string_view text, const std::string& path, const LoadOptions& options) {
    // Like dbus-daemon, the top-level file is not on the include stack, so a loop back to it is reported
    // one step later, naming the same file dbus-daemon names.
    Loader loader(options);
    FileParser parser(loader, path, Limits{}, AppArmorMode::enabled);
    Configuration config = parser.parse(text);
    if (options.require_listen && config.listen.empty()) {
        throw ConfigError(path, 0, 0,
                          "Configuration file needs one or more <listen> elements giving addresses");
    }
    return config;
}

}  // namespace

Configuration parse_configuration(std::string_view text, const std::string& path,
                                  const LoadOptions& options) {
    return run(text, path, options);
}

Configuration load_configuration(const std::string& path, const LoadOptions& options) {
    auto contents = read_file(path);
    if (auto* problem = std::get_if<FileProblem>(&contents)) {
        throw ConfigError(path, 0, 0, problem->message);
    }
    return run(std::get<std::string>(contents), path, options);
}

std::optional<ConfigError> reload_configuration(Configuration& current, const std::string& path,
                                                const LoadOptions& options) {
    try {
        Configuration next = load_configuration(path, options);
        current = std::move(next);
        return std::nullopt;
    } catch (const ConfigError& error) {
        return error;
    }
}

}  // namespace busgate::policy
