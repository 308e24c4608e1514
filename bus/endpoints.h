// Endpoints: container and sandbox doors into the bus. Each is a listening socket of its own bound to a core
// custom endpoint whose policy says which names its connections may SEE, TALK to and OWN; names outside it
// do not exist for them. On top, xdg-dbus-proxy's method-level rules: `call` rules let a connection call
// only the methods they name of a name it may otherwise only see, `broadcast` rules let it hear only the
// signals they name. The bus's XML policy applies as well: both must allow.
// Rules: a name is "org.example.Foo" or "org.example.*" (org.example and every name below it, at any depth,
// as xdg-dbus-proxy reads it; the core's subtree entry, not its one-element wildcard); a method rule is
// "[INTERFACE.MEMBER|INTERFACE.*|*][@/path|@/path/*]".
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "busgate/core/policy_database.h"
#include "busgate/marshal/message.h"
#include "busgate/policy/configuration.h"
#include "transport/address.h"

namespace busgate::bus {

class BusDaemon;

// One xdg-dbus-proxy style method rule, for a name pattern.
struct MethodRule {
    std::string name;       // the name pattern it applies to
    std::string interface;  // empty: any
    std::string member;     // empty: any
    std::string path;       // empty: any
    bool path_subtree = false;

    bool matches(const marshal::MessageHeader& header) const;
};

// "NAME=[METHOD][@PATH]" into a MethodRule; nullopt (with `error`) when malformed.
std::optional<MethodRule> parse_method_rule(std::string_view text, std::string& error);
// "org.example.Foo" matches itself; "org.example.*" matches org.example and every name below it.
bool name_matches(std::string_view pattern, std::string_view name);

struct EndpointSpec {
    std::string name;  // unique per bus
    std::string type;  // free text for services ("flatpak", "container"...)
    std::string path;  // the socket; empty: <endpoint_socket_directory>/<name>
    std::vector<std::string> see, talk, own;
    std::vector<MethodRule> calls, broadcasts;
    std::size_t max_connections = 256;
    bool remove_with_creator = false;
    // xdg-dbus-proxy's --sloppy-names: NameOwnerChanged of every unique name reaches its clients, not only
    // of the connections they may see (Flatpak asks it for the accessibility bus).
    bool sloppy_names = false;
    // busgate-dbus-proxy --log: the creator receives org.busgate.Endpoints1.Log signals, the lines
    // xdg-dbus-proxy prints (endpoint_log.h), for the clients of `log_only_uid` when set (a creator other
    // than root and the bus's sees no other user's traffic), else for every client.
    bool log = false;
    std::optional<std::uint32_t> log_only_uid;
};

// Where endpoints without a path= put their sockets: $XDG_RUNTIME_DIR/busgate, or /run/busgate for a bus
// run as root without one (the system bus). Made by the bus with mode 0711 and refused when someone else
// owns it; never a shared directory such as /tmp.
std::optional<std::filesystem::path> endpoint_socket_directory(const std::string& runtime_directory,
                                                               std::string& error);

// Empty when `spec` is well formed, else what is wrong.
std::string validate_endpoint(const EndpointSpec& spec);
// An <endpoint> of the configuration as a spec; nullopt with "FILE:LINE: problem" in `error`.
std::optional<EndpointSpec> endpoint_spec_of(const policy::EndpointConfig& config, std::string& error);

class Endpoints {
  public:
    struct Endpoint {
        EndpointSpec spec;
        core::EndpointId id = 0;
        std::string address;  // what clients connect to
        std::optional<transport::Listener> listener;
        uid_t creator_uid = 0;
        core::ConnectionId creator = 0;  // 0: from the configuration
        std::size_t connections = 0;
    };
    explicit Endpoints(BusDaemon& daemon) : daemon_(daemon) {}
    ~Endpoints();

    // Creates the core endpoint and starts listening, on `socket` when the creator passed a listening unix
    // socket it bound itself (busgate-dbus-proxy, inside a sandbox's mount namespace), else on spec.path;
    // the address, or an error text. A creator other than 0 (the configuration) counts against the
    // daemon's max_endpoints and max_endpoints_per_user; when `limited` is set, the error was a limit.
    std::optional<std::string> add(EndpointSpec spec, uid_t creator_uid, core::ConnectionId creator,
                                   std::string& error, util::UniqueFd socket = {}, bool* limited = nullptr);
    // Stops accepting connections; those already in stay.
    bool stop_listening(std::string_view name);
    // Closes every connection of the endpoint, then removes it.
    bool remove(std::string_view name);
    // The creator left: its endpoints that asked for it go too.
    void creator_left(core::ConnectionId creator);
    const std::map<std::string, Endpoint, std::less<>>& all() const { return endpoints_; }
    const Endpoint* find(core::EndpointId id) const;

    // The endpoints of the configuration: those gone or changed are removed, new ones added. The first
    // problem as "FILE:LINE: problem"; the others are still applied.
    std::optional<std::string> configure(const std::vector<policy::EndpointConfig>& configs);

    // A connection accepted through `id` arrives / leaves (connection limits).
    bool admit(core::EndpointId id);
    void left(core::EndpointId id);

    // Where the --log lines about a client of endpoint `id` with `client_uid` go: the creator, or 0 for
    // nowhere.
    core::ConnectionId log_receiver(core::EndpointId id, std::uint32_t client_uid) const;

    // The method-level rules, for a connection of endpoint `id`.
    bool may_call(core::EndpointId id, const std::vector<std::string>& target_names,
                  const marshal::MessageHeader& header) const;
    bool may_receive(core::EndpointId id, const std::vector<std::string>& sender_names,
                     const marshal::MessageHeader& header) const;

  private:
    static std::vector<core::PolicyEntry> core_policy(const EndpointSpec& spec);
    static bool talks_freely(const EndpointSpec& spec, const std::vector<std::string>& names);
    static bool same_spec(const EndpointSpec& a, const EndpointSpec& b);
    // Names the endpoint talks to freely, or else one of `rules` (calls or broadcasts) for them matches.
    bool allowed_by_rules(core::EndpointId id, const std::vector<std::string>& names,
                          const marshal::MessageHeader& header,
                          std::vector<MethodRule> EndpointSpec::*rules) const;

    BusDaemon& daemon_;
    std::map<std::string, Endpoint, std::less<>> endpoints_;
};

}  // namespace busgate::bus
