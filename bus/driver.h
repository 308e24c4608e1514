// Driver: the org.freedesktop.DBus service. Methods are a table keyed by interface (each interface
// lists its members with their signatures, flags and handler); a new method is one row and one function.
// busgate's own org.busgate.Endpoints1 is a table of its own beside the endpoints (endpoints_interface.h).
// Errors use dbus-daemon's names and texts. The driver also turns the core's NAME_* and ID_*
// notifications into NameLost, NameOwnerChanged and NameAcquired, in that order, as dbus-daemon
// emits them.
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
    using Handler = void (*)(Driver&, Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
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
    void error(Peer& peer, const transport::IncomingMessage& call, BusError name, std::string text);

  private:
    template <void (Driver::*member)(Peer&, const transport::IncomingMessage&, marshal::BodyReader&)>
    static void call(Driver& driver, Peer& peer, const transport::IncomingMessage& message,
                     marshal::BodyReader& reader) {
        (driver.*member)(peer, message, reader);
    }
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

    void hello(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void request_name(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void release_name(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void list_names(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void list_activatable_names(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void name_has_owner(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_name_owner(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void list_queued_owners(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void start_service_by_name(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void update_activation_environment(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_connection_unix_user(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_connection_unix_process_id(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_connection_credentials(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_adt_audit_session_data(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_connection_selinux_security_context(Peer&, const transport::IncomingMessage&,
                                                 marshal::BodyReader&);
    void get_id(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void reload_config(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void add_match(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void remove_match(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void become_monitor(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_stats(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_connection_stats(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_all_match_rules(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void introspect(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void ping(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void get_machine_id(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void properties_get(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void properties_get_all(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);
    void properties_set(Peer&, const transport::IncomingMessage&, marshal::BodyReader&);

    // The Features property: what this bus supports beyond the specification.
    std::vector<std::string_view> daemon_features() const;
    // Whether the driver implements `name` (Properties.GetAll of one without properties is empty).
    static bool has_interface(std::string_view name);
    // The value of a property of the driver (every one is an array of strings), if it has it.
    std::optional<std::vector<std::string_view>> property(std::string_view interface,
                                                          std::string_view name) const;
    // True for the bus's own uid and root on the bus's own sockets; otherwise answers AccessDenied in
    // dbus-daemon's words and returns false.
    bool refuse_unless_privileged(Peer& peer, const transport::IncomingMessage& call,
                                  std::string_view member);
    // The connection owning `name` (a unique or well-known name), or null after replying
    // NameHasNoOwner with "Could not get <what> of name '<name>': no such name". With `bus_itself`,
    // org.freedesktop.DBus names the driver's own connection (the bus's uid and pid).
    const core::Connection* connection_for(Peer& peer, const transport::IncomingMessage& call,
                                           std::string_view name, std::string_view what,
                                           bool bus_itself = false);
    void signal(std::string_view destination, std::string_view member, const marshal::BodyWriter& body);
    // NameLost to `owner` (connection `id`), which may have left the bus already.
    void lost(std::string_view owner, core::ConnectionId id, const marshal::BodyWriter& name);
    void name_owner_changed(std::string_view name, std::string_view old_owner, std::string_view new_owner);

    BusDaemon& daemon_;
};

}  // namespace busgate::bus
