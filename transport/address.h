// D-Bus addresses: parsing "transport:key=value,...;..." with the specification's escaping, and
// listening on the listenable ones the way dbus-daemon does — unix path/dir/tmpdir/abstract/
// runtime, tcp and nonce-tcp bound exactly where the address says, and systemd's passed sockets.
// Each listener reports the connectable address clients use (without the guid, which the bus adds).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "busgate/core/types.h"
#include "busgate/util/unique_fd.h"

namespace busgate::transport {

using util::UniqueFd;

struct AddressEntry {
    std::string transport;
    std::vector<std::pair<std::string, std::string>> parameters;  // unescaped, in order

    // The value of `key`, or nullptr.
    const std::string* find(std::string_view key) const;
};

struct ParsedAddress {
    std::vector<AddressEntry> entries;
    std::string error;  // dbus-daemon's wording, for org.freedesktop.DBus.Error.BadAddress
};

ParsedAddress parse_address(std::string_view text);
std::string escape_address_value(std::string_view value);

struct Listener {
    util::UniqueFd fd;
    std::string connectable;  // e.g. "unix:path=/tmp/dbus-abc" (no guid)
    std::string unlink_path;  // a socket file to remove at shutdown
    std::string nonce;        // nonce-tcp: the 16 bytes a client must send first
    std::string nonce_file;   // nonce-tcp: where they are written (removed at shutdown)
    bool is_unix = false;
    core::EndpointId endpoint = core::default_endpoint;  // a container endpoint's socket, or the bus's own
    // A socket someone else passed and still holds (busgate-dbus-proxy's): its flags and options are theirs
    // to change, O_NONBLOCK included, so the Acceptor never accepts on it from the event loop.
    bool foreign = false;
};

struct ListenResult {
    std::vector<Listener> listeners;
    std::string error;
};

// Listens on one address entry. `runtime_directory` is $XDG_RUNTIME_DIR (empty if unset), used by
// unix:runtime=yes. The sockets are non-blocking and close-on-exec.
ListenResult listen_on(const AddressEntry& entry, std::string_view runtime_directory);

// Listens on the sockets systemd passed (LISTEN_FDS), for the "systemd:" transport and for socket
// activation.
ListenResult listen_on_systemd_sockets();

// 32 hex digits: 12 random bytes and the time, as dbus-daemon makes its server GUIDs.
std::string make_guid();

}  // namespace busgate::transport
