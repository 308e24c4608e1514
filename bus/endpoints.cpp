#include "bus/endpoints.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "bus/bus_daemon.h"
#include "busgate/marshal/names.h"

namespace busgate::bus {
namespace {

bool valid_pattern(std::string_view pattern) {
    if (pattern.ends_with(".*")) {
        pattern.remove_suffix(2);
        return marshal::is_valid_bus_namespace(pattern);
    }
    return marshal::is_valid_bus_name(pattern) && !marshal::is_unique_name(pattern);
}

// A socket the creator bound and listens on: a listener for it, or nullopt with `error`. The creator keeps
// the path (it may be in a mount namespace the bus cannot see), so the bus never unlinks it.
std::optional<transport::Listener> listener_of_socket(util::UniqueFd socket, std::string& error) {
    int value = 0;
    socklen_t length = sizeof value;
    const auto option = [&](int name) {
        length = sizeof value;
        return ::getsockopt(socket.get(), SOL_SOCKET, name, &value, &length) == 0 ? value : -1;
    };
    if (option(SO_DOMAIN) != AF_UNIX || option(SO_TYPE) != SOCK_STREAM || option(SO_ACCEPTCONN) != 1) {
        error = "the socket is not a listening unix stream socket";
        return std::nullopt;
    }
    const int flags = ::fcntl(socket.get(), F_GETFL);
    if (flags < 0 || ::fcntl(socket.get(), F_SETFL, flags | O_NONBLOCK) != 0 ||
        ::fcntl(socket.get(), F_SETFD, FD_CLOEXEC) != 0) {
        error = std::string("cannot set up the socket: ") + std::strerror(errno);
        return std::nullopt;
    }
    sockaddr_un address{};
    socklen_t address_length = sizeof address;
    std::string path;
    if (::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&address), &address_length) == 0 &&
        address_length > offsetof(sockaddr_un, sun_path) && address.sun_path[0] != '\0') {
        path.assign(address.sun_path, ::strnlen(address.sun_path, sizeof address.sun_path));
    }
    transport::Listener listener;
    listener.fd = std::move(socket);
    listener.is_unix = true;
    listener.foreign = true;  // the creator keeps it: accepted on a thread of its own (transport/acceptor.h)
    listener.connectable = path.empty() ? "unix:" : "unix:path=" + path;
    return listener;
}

}  // namespace

bool name_matches(std::string_view pattern, std::string_view name) {
    if (!pattern.ends_with(".*")) {
        return pattern == name;
    }
    pattern.remove_suffix(2);
    return name.starts_with(pattern) && (name.size() == pattern.size() || name[pattern.size()] == '.');
}

bool MethodRule::matches(const marshal::MessageHeader& header) const {
    if (!interface.empty() && header.interface != interface) {
        return false;
    }
    if (!member.empty() && header.member != member) {
        return false;
    }
    if (path.empty()) {
        return true;
    }
    if (!path_subtree) {
        return header.path == path;
    }
    return header.path == path || (header.path.starts_with(path) &&
                                   (path == "/" || header.path.substr(path.size()).starts_with("/")));
}

std::optional<MethodRule> parse_method_rule(std::string_view text, std::string& error) {
    MethodRule rule;
    const std::size_t equals = text.find('=');
    rule.name = std::string(text.substr(0, equals));
    if (!valid_pattern(rule.name)) {
        error = "\"" + rule.name + "\" is not a bus name or a name.* pattern";
        return std::nullopt;
    }
    std::string_view method = equals == std::string_view::npos ? "" : text.substr(equals + 1);
    // The messages below are built with append: GCC 12 at -O3 reports `"\"" + std::string(...)` as an
    // overlapping memcpy (-Wrestrict, a false positive), which breaks release builds.
    if (const std::size_t at = method.find('@'); at != std::string_view::npos) {
        std::string_view path = method.substr(at + 1);
        method = method.substr(0, at);
        if (path.ends_with("/*")) {
            rule.path_subtree = true;
            path.remove_suffix(2);
            if (path.empty()) {
                path = "/";
            }
        }
        if (!marshal::is_valid_object_path(path)) {
            error = std::string("\"").append(path).append("\" is not an object path");
            return std::nullopt;
        }
        rule.path = std::string(path);
    }
    if (!method.empty() && method != "*") {
        const std::size_t dot = method.rfind('.');
        if (dot == std::string_view::npos) {
            error = std::string("\"").append(method).append("\" is not INTERFACE.MEMBER or INTERFACE.*");
            return std::nullopt;
        }
        rule.interface = std::string(method.substr(0, dot));
        const std::string_view member = method.substr(dot + 1);
        if (!marshal::is_valid_interface_name(rule.interface) ||
            (member != "*" && !marshal::is_valid_member_name(member))) {
            error = std::string("\"").append(method).append("\" is not INTERFACE.MEMBER or INTERFACE.*");
            return std::nullopt;
        }
        if (member != "*") {
            rule.member = std::string(member);
        }
    }
    return rule;
}

std::string validate_endpoint(const EndpointSpec& spec) {
    if (spec.name.empty() || spec.name.size() > 64 ||
        !std::all_of(spec.name.begin(), spec.name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
        })) {
        return "an endpoint name is 1 to 64 letters, digits, '-' or '_'";
    }
    for (const auto* list : {&spec.see, &spec.talk, &spec.own}) {
        for (const std::string& pattern : *list) {
            if (!valid_pattern(pattern)) {
                return "\"" + pattern + "\" is not a bus name or a name.* pattern";
            }
        }
    }
    if (!spec.path.empty() && !spec.path.starts_with("/")) {
        return "the socket path must be absolute";
    }
    if (spec.max_connections == 0) {
        return "MaxConnections must be at least 1";
    }
    return {};
}

std::optional<EndpointSpec> endpoint_spec_of(const policy::EndpointConfig& config, std::string& error) {
    EndpointSpec spec;
    spec.name = config.name;
    spec.type = config.type;
    spec.path = config.path;
    spec.see = config.see;
    spec.talk = config.talk;
    spec.own = config.own;
    spec.max_connections = static_cast<std::size_t>(config.max_connections);
    std::string problem;
    for (const auto& [texts, rules] :
         {std::pair{&config.calls, &spec.calls}, {&config.broadcasts, &spec.broadcasts}}) {
        for (const std::string& text : *texts) {
            if (auto rule = parse_method_rule(text, problem)) {
                rules->push_back(std::move(*rule));
            } else {
                break;
            }
        }
    }
    if (problem.empty()) {
        problem = validate_endpoint(spec);
    }
    if (!problem.empty()) {
        error = config.where.file + ":" + std::to_string(config.where.line) + ": <endpoint name=\"" +
                config.name + "\">: " + problem;
        return std::nullopt;
    }
    return spec;
}

std::optional<std::string> Endpoints::configure(const std::vector<policy::EndpointConfig>& configs) {
    std::optional<std::string> first_problem;
    std::map<std::string, EndpointSpec, std::less<>> wanted;
    for (const policy::EndpointConfig& config : configs) {
        std::string error;
        if (auto spec = endpoint_spec_of(config, error)) {
            wanted.emplace(config.name, std::move(*spec));
        } else if (!first_problem) {
            first_problem = error;
        }
    }
    std::vector<std::string> stale;
    for (const auto& [name, endpoint] : endpoints_) {
        const auto found = wanted.find(name);
        if (endpoint.creator == 0 && (found == wanted.end() || !same_spec(found->second, endpoint.spec))) {
            stale.push_back(name);
        }
    }
    for (const std::string& name : stale) {
        remove(name);
    }
    for (auto& [name, spec] : wanted) {
        if (endpoints_.contains(name)) {
            continue;  // unchanged, or made at run time under this name (which wins)
        }
        std::string error;
        if (!add(std::move(spec), daemon_.options().bus_uid, 0, error) && !first_problem) {
            for (const policy::EndpointConfig& config : configs) {
                if (config.name == name) {
                    first_problem = config.where.file + ":" + std::to_string(config.where.line) +
                                    ": <endpoint name=\"" + name + "\">: " + error;
                }
            }
        }
    }
    return first_problem;
}

bool Endpoints::same_spec(const EndpointSpec& a, const EndpointSpec& b) {
    const auto same_rules = [](const std::vector<MethodRule>& x, const std::vector<MethodRule>& y) {
        return std::equal(x.begin(), x.end(), y.begin(), y.end(),
                          [](const MethodRule& l, const MethodRule& r) {
                              return l.name == r.name && l.interface == r.interface && l.member == r.member &&
                                     l.path == r.path && l.path_subtree == r.path_subtree;
                          });
    };
    return a.name == b.name && a.type == b.type && a.log == b.log &&
           (a.path == b.path || b.path.empty() || a.path.empty()) && a.see == b.see && a.talk == b.talk &&
           a.own == b.own && same_rules(a.calls, b.calls) && same_rules(a.broadcasts, b.broadcasts) &&
           a.max_connections == b.max_connections && a.sloppy_names == b.sloppy_names;
}

Endpoints::~Endpoints() {
    for (auto& [name, endpoint] : endpoints_) {
        if (endpoint.listener) {
            daemon_.acceptor().unwatch(endpoint.listener->fd.get());  // a foreign listener's thread ends here
            ::unlink(endpoint.listener->unlink_path.c_str());
        }
    }
}

std::vector<core::PolicyEntry> Endpoints::core_policy(const EndpointSpec& spec) {
    // The highest access each pattern gets; call and broadcast rules need TALK in the core, and the gateway
    // narrows them to their methods.
    std::map<std::string, core::Access> access;
    const auto grant = [&access](const std::string& pattern, core::Access level) {
        auto [it, inserted] = access.emplace(pattern, level);
        if (!inserted && it->second < level) {
            it->second = level;
        }
    };
    for (const std::string& pattern : spec.see) {
        grant(pattern, core::Access::see);
    }
    for (const std::string& pattern : spec.talk) {
        grant(pattern, core::Access::talk);
    }
    for (const std::string& pattern : spec.own) {
        grant(pattern, core::Access::own);
    }
    for (const MethodRule& rule : spec.calls) {
        grant(rule.name, core::Access::talk);
    }
    for (const MethodRule& rule : spec.broadcasts) {
        grant(rule.name, core::Access::talk);
    }
    // "name.*" is the core's subtree entry: the name and every name below it, which only adds to what an
    // exact entry grants, so the highest level that matches holds (as in xdg-dbus-proxy).
    std::vector<core::PolicyEntry> entries;
    for (const auto& [pattern, level] : access) {
        const bool subtree = pattern.ends_with(".*");
        entries.push_back({subtree ? pattern.substr(0, pattern.size() - 2) : pattern,
                           {{core::Grantee::world, 0, level}},
                           subtree});
    }
    return entries;
}

std::optional<std::filesystem::path> endpoint_socket_directory(const std::string& runtime_directory,
                                                               std::string& error) {
    if (runtime_directory.empty() && ::geteuid() != 0) {
        error = "no directory for endpoint sockets: XDG_RUNTIME_DIR is unset (give the endpoint a path)";
        return std::nullopt;
    }
    const std::filesystem::path base = runtime_directory.empty()
                                           ? std::filesystem::path("/run/busgate")
                                           : std::filesystem::path(runtime_directory) / "busgate";
    if (::mkdir(base.c_str(), 0711) != 0 && errno != EEXIST) {
        error = "cannot create " + base.string() + ": " + std::strerror(errno);
        return std::nullopt;
    }
    // Someone else's directory (made first, or a symlink to one) would let its owner swap our sockets.
    const util::UniqueFd directory(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat status {};
    if (!directory || ::fstat(directory.get(), &status) != 0) {
        error = "cannot open " + base.string() + ": " + std::strerror(errno);
        return std::nullopt;
    }
    if (status.st_uid != ::geteuid() && status.st_uid != 0) {
        error = base.string() + " belongs to uid " + std::to_string(status.st_uid) +
                ", not to the bus: endpoint sockets are not made there";
        return std::nullopt;
    }
    // Only its owner may create, remove or list; clients may still reach a socket by its path.
    if (::fchmod(directory.get(), 0711) != 0) {
        error = "cannot set the mode of " + base.string() + ": " + std::strerror(errno);
        return std::nullopt;
    }
    return base;
}

std::optional<std::string> Endpoints::add(EndpointSpec spec, uid_t creator_uid, core::ConnectionId creator,
                                          std::string& error, util::UniqueFd socket, bool* limited) {
    if (error = validate_endpoint(spec); !error.empty()) {
        return std::nullopt;
    }
    if (endpoints_.contains(spec.name)) {
        error = "an endpoint named \"" + spec.name + "\" exists";
        return std::nullopt;
    }
    if (creator != 0) {
        std::size_t made_at_run_time = 0, made_by_creator = 0;
        for (const auto& [name, endpoint] : endpoints_) {
            made_at_run_time += endpoint.creator != 0;
            made_by_creator += endpoint.creator != 0 && endpoint.creator_uid == creator_uid;
        }
        const DaemonOptions& options = daemon_.options();
        if (made_by_creator >= options.max_endpoints_per_user) {
            error = "uid " + std::to_string(creator_uid) + " has created the most endpoints allowed (" +
                    std::to_string(options.max_endpoints_per_user) + ")";
        } else if (made_at_run_time >= options.max_endpoints) {
            error = "the bus has the most endpoints allowed (" + std::to_string(options.max_endpoints) + ")";
        }
        if (!error.empty()) {
            if (limited != nullptr) {
                *limited = true;
            }
            return std::nullopt;
        }
    }
    std::optional<transport::Listener> given;
    if (socket) {
        if (!spec.path.empty()) {
            error = "an endpoint has a path or a socket, not both";
            return std::nullopt;
        }
        if (given = listener_of_socket(std::move(socket), error); !given) {
            return std::nullopt;
        }
    } else if (spec.path.empty()) {
        const auto base = endpoint_socket_directory(daemon_.options().runtime_directory, error);
        if (!base) {
            return std::nullopt;
        }
        spec.path = (*base / spec.name).string();
    }
    std::error_code ignored;
    if (!given && std::filesystem::is_socket(spec.path, ignored)) {
        std::filesystem::remove(spec.path, ignored);  // a leftover from a bus that died
    }
    const auto made = daemon_.core().make_endpoint(spec.name, core_policy(spec));
    if (!made) {
        error = std::string(core::describe(made.error()));
        return std::nullopt;
    }
    transport::ListenResult listening;
    if (given) {
        listening.listeners.push_back(std::move(*given));
    } else {
        listening = transport::listen_on({.transport = "unix", .parameters = {{"path", spec.path}}}, {});
    }
    if (!listening.error.empty() || listening.listeners.empty()) {
        (void)daemon_.core().remove_endpoint(*made);
        error = listening.error;
        return std::nullopt;
    }
    Endpoint endpoint;
    endpoint.id = *made;
    endpoint.listener = std::move(listening.listeners.front());
    endpoint.listener->endpoint = *made;
    endpoint.address = endpoint.listener->connectable + ",guid=" + daemon_.guid();
    endpoint.creator_uid = creator_uid;
    endpoint.creator = creator;
    const std::string name = spec.name;
    endpoint.spec = std::move(spec);
    auto& stored = endpoints_.emplace(name, std::move(endpoint)).first->second;
    daemon_.acceptor().watch(*stored.listener);
    return stored.address;
}

bool Endpoints::stop_listening(std::string_view name) {
    const auto found = endpoints_.find(name);
    if (found == endpoints_.end()) {
        return false;
    }
    if (auto& listener = found->second.listener) {
        daemon_.acceptor().unwatch(listener->fd.get());
        ::unlink(listener->unlink_path.c_str());
        listener.reset();
    }
    return true;
}

bool Endpoints::remove(std::string_view name) {
    const auto found = endpoints_.find(name);
    if (found == endpoints_.end()) {
        return false;
    }
    stop_listening(name);
    const core::EndpointId id = found->second.id;
    // Its connections go first, each as if it hung up, then the core forgets the endpoint.
    daemon_.disconnect_endpoint_members(id, "its endpoint was removed");
    (void)daemon_.core().remove_endpoint(id);
    endpoints_.erase(found);
    return true;
}

void Endpoints::creator_left(core::ConnectionId creator) {
    std::vector<std::string> leaving;
    for (auto& [name, endpoint] : endpoints_) {
        if (endpoint.creator == creator && endpoint.spec.remove_with_creator) {
            leaving.push_back(name);
        } else if (endpoint.creator == creator) {
            endpoint.spec.log = false;  // nobody is left to read its lines
        }
    }
    for (const std::string& name : leaving) {
        remove(name);
    }
}

const Endpoints::Endpoint* Endpoints::find(core::EndpointId id) const {
    for (const auto& [name, endpoint] : endpoints_) {
        if (endpoint.id == id) {
            return &endpoint;
        }
    }
    return nullptr;
}

bool Endpoints::admit(core::EndpointId id) {
    Endpoint* endpoint = const_cast<Endpoint*>(find(id));
    if (endpoint == nullptr || endpoint->connections >= endpoint->spec.max_connections) {
        return false;
    }
    ++endpoint->connections;
    return true;
}

void Endpoints::left(core::EndpointId id) {
    if (Endpoint* endpoint = const_cast<Endpoint*>(find(id));
        endpoint != nullptr && endpoint->connections > 0) {
        --endpoint->connections;
    }
}

core::ConnectionId Endpoints::log_receiver(core::EndpointId id, std::uint32_t client_uid) const {
    const Endpoint* endpoint = find(id);
    if (endpoint == nullptr || !endpoint->spec.log ||
        (endpoint->spec.log_only_uid && *endpoint->spec.log_only_uid != client_uid)) {
        return 0;
    }
    return endpoint->creator;
}

bool Endpoints::talks_freely(const EndpointSpec& spec, const std::vector<std::string>& names) {
    for (const std::string& name : names) {
        for (const auto* list : {&spec.talk, &spec.own}) {
            for (const std::string& pattern : *list) {
                if (name_matches(pattern, name)) {
                    return true;
                }
            }
        }
    }
    return false;
}

bool Endpoints::allowed_by_rules(core::EndpointId id, const std::vector<std::string>& names,
                                 const marshal::MessageHeader& header,
                                 std::vector<MethodRule> EndpointSpec::*rules) const {
    const Endpoint* endpoint = find(id);
    if (endpoint == nullptr || talks_freely(endpoint->spec, names)) {
        return endpoint != nullptr;
    }
    for (const MethodRule& rule : endpoint->spec.*rules) {
        for (const std::string& name : names) {
            if (name_matches(rule.name, name) && rule.matches(header)) {
                return true;
            }
        }
    }
    return false;
}

bool Endpoints::may_call(core::EndpointId id, const std::vector<std::string>& target_names,
                         const marshal::MessageHeader& header) const {
    return allowed_by_rules(id, target_names, header, &EndpointSpec::calls);
}

bool Endpoints::may_receive(core::EndpointId id, const std::vector<std::string>& sender_names,
                            const marshal::MessageHeader& header) const {
    return allowed_by_rules(id, sender_names, header, &EndpointSpec::broadcasts);
}

}  // namespace busgate::bus
