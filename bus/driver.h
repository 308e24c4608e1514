// Driver: the org.freedesktop.DBus service. Methods are a table keyed by interface (each interface
// lists its members with their signatures, flags and handler); a new method is one row and one function.
// busgate's own org.busgate.Endpoints1 is a table of its own beside the endpoints (endpoints_interface.h).
// A handler answers a call with reply() or returns a Refusal; handle() is the one place that sends a
// refusal as the call's error, in dbus-daemon's names and texts. The driver also turns the core's NAME_* and
// ID_* notifications into NameLost, NameOwnerChanged and NameAcquired, in that order, as dbus-daemon emits
// them.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus_daemon.h"
#include "bus/errors.h"
#include "busgate/marshal/reader.h"

namespace busgate::bus {

class Driver {
  public:
    using Peer = bus::Peer;

    explicit Driver(BusDaemon& daemon) : daemon_(daemon) {}

    // A method call (or any message) whose destination is org.freedesktop.DBus.
    void handle(Peer& peer, const transport::IncomingMessage& message);
    // A method call with no destination: answered as libdbus answers for the bus's end of the socket
    // (Peer.Ping, Peer.GetMachineId, an empty Introspect, UnknownMethod for anything else), without a
    // sender or destination.
    void answer_as_peer(Peer& peer, const transport::IncomingMessage& message);
    // Signals for the notifications queued on the driver's core connection.
    void process_notifications();

    // What Introspect returns at `path` (the canonical path lists every interface).
    static std::string introspection_xml(std::string_view path = "/org/freedesktop/DBus");

    // Where a method may be called and by whom (dbus-daemon's METHOD_FLAG_*), a column of the table.
    // from_endpoint: a connection of a container endpoint may call it (others get AccessDenied);
    // before_hello: a connection may call it before Hello (only Hello itself).
    enum MethodFlags : unsigned {
        none = 0,
        any_path = 1,
        privileged = 2,
        from_endpoint = 4,
        before_hello = 8
    };
    // What a handler returns: nothing once it has answered the call (or arranged for the answer, as
    // StartServiceByName does), else what went wrong, which handle() sends as the call's error. Success
    // carries no value, so a Result type would only be std::optional under another name. A handler whose
    // caller may leave the bus while it runs (ReloadConfig) returns nothing once the caller has gone.
    using Outcome = std::optional<Refusal>;
    static constexpr std::nullopt_t handled = std::nullopt;
    using Handler = Outcome (*)(Driver&, Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    struct Method {
        std::string_view member;
        std::string_view in_signature;
        std::string_view out_signature;
        unsigned flags;
        Handler handler;
    };
    // One interface of the bus, with its methods: the table is keyed by interface name.
    struct Interface {
        std::string_view name;
        bool any_path;                   // reachable at every object path, not only /org/freedesktop/DBus
        std::string_view introspection;  // signals and properties, appended after the methods
        std::span<const Method> methods;
    };

    BusDaemon& daemon() { return daemon_; }
    void reply(Peer& peer, const transport::IncomingMessage& call, const marshal::BodyWriter& body);

  private:
    template <Outcome (Driver::*member)(Peer&, const transport::IncomingMessage&, marshal::BodyReader&)>
    static Outcome call(Driver& driver, Peer& peer, const transport::IncomingMessage& message,
                        marshal::BodyReader& reader) {
        return (driver.*member)(peer, message, reader);
    }
    // handle() without the sending: the table lookup, the table's checks and the handler.
    Outcome dispatch(Peer& peer, const transport::IncomingMessage& message);
    static const Method bus_methods[];
    static const Method properties_methods[];
    static const Method introspectable_methods[];
    static const Method monitoring_methods[];
    static const Method stats_methods[];
    static const Method peer_methods[];
    static const Interface bus_interface_table;
    static const Interface properties_interface_table;
    static const Interface introspectable_interface_table;
    static const Interface monitoring_interface_table;
    static const Interface stats_interface_table;
    static const Interface peer_interface_table;
    // In lookup order.
    static const Interface* const interfaces[7];

    Outcome hello(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome request_name(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome release_name(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome list_names(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome list_activatable_names(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome name_has_owner(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_name_owner(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome list_queued_owners(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome start_service_by_name(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome update_activation_environment(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_connection_unix_user(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_connection_unix_process_id(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_connection_credentials(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_adt_audit_session_data(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_connection_selinux_security_context(Peer&, const transport::IncomingMessage&,
                                                    marshal::BodyReader&);
    Outcome get_id(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome reload_config(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome add_match(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome remove_match(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome become_monitor(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_stats(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_connection_stats(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_all_match_rules(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome introspect(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome ping(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome get_machine_id(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome properties_get(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome properties_get_all(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    Outcome properties_set(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);

    // The Features property: what this bus supports beyond the specification.
    std::vector<std::string_view> daemon_features() const;
    // Whether the driver implements `name` (Properties.GetAll of one without properties is empty).
    static bool has_interface(std::string_view name);
    // The value of a property of the driver (every one is an array of strings), if it has it.
    std::optional<std::vector<std::string_view>> property(std::string_view interface,
                                                          std::string_view name) const;
    // The refusal for a caller of a privileged `member` (dbus-daemon's AccessDenied text), or nothing for
    // the bus's own uid and root on the bus's own sockets. Inside a container endpoint nobody is privileged.
    Outcome privilege_refusal(const Peer& peer, std::string_view member) const;
    // The connection owning `name` (a unique or well-known name), or null if there is none or the
    // caller's endpoint cannot see it. With `bus_itself`, org.freedesktop.DBus names the driver's own
    // connection (the bus's uid and pid).
    const core::Connection* connection_for(const Peer& peer, std::string_view name,
                                           bool bus_itself = false) const;
    // dbus-daemon's NameHasNoOwner for a name connection_for() did not find:
    // "Could not get <what> of name '<name>': no such name".
    static Refusal no_such_name(std::string_view what, std::string_view name);
    void signal(std::string_view destination, std::string_view member, const marshal::BodyWriter& body);
    // NameLost to `owner` (connection `id`), which may have left the bus already.
    void lost(std::string_view owner, core::ConnectionId id, const marshal::BodyWriter& name);
    void name_owner_changed(std::string_view name, std::string_view old_owner, std::string_view new_owner);

    BusDaemon& daemon_;
};

}  // namespace busgate::bus
