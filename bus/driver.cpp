#include "bus/driver.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>

#include "bus/activation.h"
#include "bus/endpoints.h"
#include "bus/endpoints_interface.h"
#include "bus/errors.h"
#include "busgate/marshal/names.h"
#include "busgate/marshal/protocol.h"
#include "busgate/marshal/signature.h"

namespace busgate::bus {
namespace {

using marshal::BodyReader;
using marshal::BodyWriter;

using marshal::bus_interface;
using marshal::bus_name;
using marshal::bus_path;
using marshal::introspectable_interface;
using marshal::monitoring_interface;
using marshal::peer_interface;
using marshal::properties_interface;
using marshal::stats_interface;
using namespace marshal::request_name_flag;

std::string machine_id() {
    for (const char* path : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
        std::ifstream file(path);
        std::string id;
        if (file >> id && id.size() == 32) {
            return id;
        }
    }
    return {};
}

std::uint32_t release_name_reply(core::ReleaseResult result) {
    switch (result) {
        case core::ReleaseResult::released:
            return 1;  // RELEASED
        case core::ReleaseResult::unowned:
            return 2;  // NON_EXISTENT
        case core::ReleaseResult::not_owner:
            return 3;  // NOT_OWNER
    }
    return 3;
}

// DBUS_REQUEST_NAME_REPLY_* and DBUS_RELEASE_NAME_REPLY_*: the core's results in dbus1's numbers.
std::uint32_t request_name_reply(core::AcquireResult result) {
    switch (result) {
        case core::AcquireResult::acquired:
            return 1;  // PRIMARY_OWNER
        case core::AcquireResult::queued:
            return 2;  // IN_QUEUE
        case core::AcquireResult::owned_elsewhere:
            return 3;  // EXISTS
        case core::AcquireResult::already_owner:
            return 4;  // ALREADY_OWNER
    }
    return 3;
}

}  // namespace

const Driver::Method Driver::bus_methods[] = {
    {"Hello", "", "s", any_path | from_endpoint | before_hello, &Driver::call<&Driver::hello>},
    {"RequestName", "su", "u", any_path | from_endpoint, &Driver::call<&Driver::request_name>},
    {"ReleaseName", "s", "u", any_path | from_endpoint, &Driver::call<&Driver::release_name>},
    {"StartServiceByName", "su", "u", any_path | from_endpoint,
     &Driver::call<&Driver::start_service_by_name>},
    {"UpdateActivationEnvironment", "a{ss}", "", privileged,
     &Driver::call<&Driver::update_activation_environment>},
    {"NameHasOwner", "s", "b", any_path | from_endpoint, &Driver::call<&Driver::name_has_owner>},
    {"ListNames", "", "as", any_path | from_endpoint, &Driver::call<&Driver::list_names>},
    {"ListActivatableNames", "", "as", any_path | from_endpoint,
     &Driver::call<&Driver::list_activatable_names>},
    {"AddMatch", "s", "", any_path | from_endpoint, &Driver::call<&Driver::add_match>},
    {"RemoveMatch", "s", "", any_path | from_endpoint, &Driver::call<&Driver::remove_match>},
    {"GetNameOwner", "s", "s", any_path | from_endpoint, &Driver::call<&Driver::get_name_owner>},
    {"ListQueuedOwners", "s", "as", any_path | from_endpoint, &Driver::call<&Driver::list_queued_owners>},
    {"GetConnectionUnixUser", "s", "u", any_path | from_endpoint,
     &Driver::call<&Driver::get_connection_unix_user>},
    {"GetConnectionUnixProcessID", "s", "u", any_path | from_endpoint,
     &Driver::call<&Driver::get_connection_unix_process_id>},
    {"GetAdtAuditSessionData", "s", "ay", any_path | from_endpoint,
     &Driver::call<&Driver::get_adt_audit_session_data>},
    {"GetConnectionSELinuxSecurityContext", "s", "ay", any_path | from_endpoint,
     &Driver::call<&Driver::get_connection_selinux_security_context>},
    {"ReloadConfig", "", "", any_path, &Driver::call<&Driver::reload_config>},
    {"GetId", "", "s", any_path | from_endpoint, &Driver::call<&Driver::get_id>},
    {"GetConnectionCredentials", "s", "a{sv}", any_path | from_endpoint,
     &Driver::call<&Driver::get_connection_credentials>},
};

const Driver::Method Driver::properties_methods[] = {
    {"Get", "ss", "v", from_endpoint, &Driver::call<&Driver::properties_get>},
    {"GetAll", "s", "a{sv}", from_endpoint, &Driver::call<&Driver::properties_get_all>},
    {"Set", "ssv", "", from_endpoint, &Driver::call<&Driver::properties_set>},
};

const Driver::Method Driver::introspectable_methods[] = {
    {"Introspect", "", "s", any_path | from_endpoint, &Driver::call<&Driver::introspect>},
};

const Driver::Method Driver::monitoring_methods[] = {
    {"BecomeMonitor", "asu", "", privileged, &Driver::call<&Driver::become_monitor>},
};

const Driver::Method Driver::stats_methods[] = {
    {"GetStats", "", "a{sv}", none, &Driver::call<&Driver::get_stats>},
    {"GetConnectionStats", "s", "a{sv}", none, &Driver::call<&Driver::get_connection_stats>},
    {"GetAllMatchRules", "", "a{sas}", none, &Driver::call<&Driver::get_all_match_rules>},
};

const Driver::Method Driver::peer_methods[] = {
    {"GetMachineId", "", "s", any_path | from_endpoint, &Driver::call<&Driver::get_machine_id>},
    {"Ping", "", "", any_path | from_endpoint, &Driver::call<&Driver::ping>},
};

const Driver::Interface Driver::bus_interface_table = {
    bus_interface, true,
    "    <property name=\"Features\" type=\"as\" access=\"read\">\n"
    "      <annotation name=\"org.freedesktop.DBus.Property.EmitsChangedSignal\" value=\"const\"/>\n"
    "    </property>\n"
    "    <property name=\"Interfaces\" type=\"as\" access=\"read\">\n"
    "      <annotation name=\"org.freedesktop.DBus.Property.EmitsChangedSignal\" value=\"const\"/>\n"
    "    </property>\n"
    "    <signal name=\"NameOwnerChanged\">\n      <arg type=\"s\"/>\n      <arg type=\"s\"/>\n"
    "      <arg type=\"s\"/>\n    </signal>\n"
    "    <signal name=\"NameLost\">\n      <arg type=\"s\"/>\n    </signal>\n"
    "    <signal name=\"NameAcquired\">\n      <arg type=\"s\"/>\n    </signal>\n"
    "    <signal name=\"ActivatableServicesChanged\">\n    </signal>\n",
    bus_methods};
const Driver::Interface Driver::properties_interface_table = {
    properties_interface, false,
    "    <signal name=\"PropertiesChanged\">\n      <arg type=\"s\" name=\"interface_name\"/>\n"
    "      <arg type=\"a{sv}\" name=\"changed_properties\"/>\n"
    "      <arg type=\"as\" name=\"invalidated_properties\"/>\n    </signal>\n",
    properties_methods};
const Driver::Interface Driver::introspectable_interface_table = {introspectable_interface, true, "",
                                                                  introspectable_methods};
const Driver::Interface Driver::monitoring_interface_table = {monitoring_interface, false, "",
                                                              monitoring_methods};
const Driver::Interface Driver::stats_interface_table = {stats_interface, false, "", stats_methods};
const Driver::Interface Driver::peer_interface_table = {peer_interface, true, "", peer_methods};

// Lookup order is dbus-daemon's: a call that names no interface goes to the first one here that has the
// member. org.busgate.Endpoints1 is the container endpoints' own interface (endpoints_interface.cpp).
const Driver::Interface* const Driver::interfaces[7] = {
    &bus_interface_table,        &properties_interface_table, &introspectable_interface_table,
    &monitoring_interface_table, &stats_interface_table,      &peer_interface_table,
    &endpoints_interface_table,
};

void Driver::handle(Peer& peer, const transport::IncomingMessage& message) {
    // The one place where a refusal becomes the call's error. Nothing is sent between a handler's return
    // and here, so the error goes out in the same order among the bus's other messages as when handlers
    // sent it themselves (after the signals of a ReloadConfig that failed, say).
    if (const Outcome refusal = dispatch(peer, message)) {
        daemon_.send_error(peer, message, refusal->error, refusal->text);
    }
}

Driver::Outcome Driver::dispatch(Peer& peer, const transport::IncomingMessage& message) {
    const marshal::MessageHeader& header = message.header;
    if (header.type == marshal::MessageType::signal && peer.registered() &&
        header.interface == "org.freedesktop.systemd1.Activator" && header.member == "ActivationFailure") {
        daemon_.activation().systemd_failure(peer, message);
        return handled;
    }
    if (header.type != marshal::MessageType::method_call) {
        return handled;  // other signals and replies to the bus go nowhere
    }
    // As dbus-daemon: interfaces not reachable at this path are skipped, and the first interface (in
    // table order) with a method of that name wins when the call names no interface.
    const bool canonical_path = header.path == bus_path;
    const Method* found = nullptr;
    bool interface_found = false;
    for (const Interface* interface : interfaces) {
        if ((!canonical_path && !interface->any_path) ||
            (!header.interface.empty() && header.interface != interface->name)) {
            continue;
        }
        interface_found = true;
        for (const Method& method : interface->methods) {
            if (method.member == header.member) {
                found = &method;
                break;
            }
        }
        if (found) {
            break;
        }
    }
    if (!peer.registered() && (found == nullptr || !(found->flags & before_hello))) {
        // dbus-daemon refuses the call and keeps the connection: a later Hello still works.
        return Refusal{BusError::access_denied,
                       "Client tried to send a message other than Hello without being registered"};
    }
    if (found == nullptr) {
        return Refusal{interface_found ? BusError::unknown_method : BusError::unknown_interface,
                       "org.freedesktop.DBus does not understand message " + std::string(header.member)};
    }
    // Decided once, by the table: inside a container endpoint only the methods a sandboxed client needs,
    // each answering within what the endpoint lets it see (xdg-dbus-proxy's list, plus harmless reads).
    if (peer.endpoint != core::default_endpoint && !(found->flags & from_endpoint)) {
        return Refusal{BusError::access_denied,
                       "Connection \"" + peer.unique_name + "\" is not allowed to call " +
                           std::string(found->member) + " from a container endpoint"};
    }
    if (found->flags & privileged) {
        if (Outcome refusal = privilege_refusal(peer, found->member)) {
            return refusal;
        }
    }
    if (!canonical_path && !(found->flags & any_path)) {
        return Refusal{BusError::access_denied, "Method '" + std::string(header.member) +
                                                    "' is only available at the canonical object path '" +
                                                    std::string(bus_path) + "'"};
    }
    if (header.signature != found->in_signature) {
        // dbus-daemon's text, trailing newline included.
        return Refusal{BusError::invalid_args, "Call to " + std::string(found->member) + " has wrong args (" +
                                                   std::string(header.signature) + ", expected " +
                                                   std::string(found->in_signature) + ")\n"};
    }
    BodyReader reader(message.bytes, header);
    return found->handler(*this, peer, message, reader);
}

void Driver::answer_as_peer(Peer& peer, const transport::IncomingMessage& call) {
    const marshal::MessageHeader& header = call.header;
    const bool peer_method = header.interface == peer_interface;
    const auto answer = [&](const BodyWriter& body, std::string_view error = {}) {
        daemon_.send_directly(
            peer,
            {.type = error.empty() ? marshal::MessageType::method_return : marshal::MessageType::error,
             .error_name = error,
             .reply_serial = header.serial},
            body, false);
    };
    BodyWriter body;
    if (peer_method && header.member == "Ping") {
        return answer(body);
    }
    if (const std::string machine = peer_method && header.member == "GetMachineId" ? machine_id() : "";
        !machine.empty()) {
        body.string(machine);
        return answer(body);
    }
    if (header.interface == introspectable_interface && header.member == "Introspect") {
        body.string(
            "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
            "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n"
            "<node>\n</node>\n");
        return answer(body);
    }
    body.string(peer_method
                    ? std::string("Unknown method invoked on org.freedesktop.DBus.Peer interface")
                    : "Method \"" + std::string(header.member) + "\" with signature \"" +
                          std::string(header.signature) + "\" on interface \"" +
                          (header.interface.empty() ? std::string("(null)") : std::string(header.interface)) +
                          "\" doesn't exist\n");
    answer(body, name_of(BusError::unknown_method));
}

Driver::Outcome Driver::privilege_refusal(const Peer& peer, std::string_view member) const {
    const core::Connection* caller = daemon_.core().connection(peer.id);
    const std::uint32_t uid = caller ? caller->credentials().uid : ~0u;
    if ((uid == 0 || uid == daemon_.options().bus_uid) && peer.endpoint == core::default_endpoint) {
        return handled;
    }
    const std::string process = caller != nullptr && caller->credentials().pid > 0
                                    ? " pid=" + std::to_string(caller->credentials().pid)
                                    : std::string();
    return Refusal{BusError::access_denied,
                   "rejected attempt to call " + std::string(member) + " by connection " + peer.unique_name +
                       " (uid=" + std::to_string(uid) + process + ") with uid " + std::to_string(uid)};
}

void Driver::reply(Peer& peer, const transport::IncomingMessage& call, const BodyWriter& body) {
    // Even a call flagged NO_REPLY_EXPECTED is answered, as dbus-daemon does; clients drop the reply.
    daemon_.send_from_bus({.type = marshal::MessageType::method_return,
                           .destination = peer.unique_name,
                           .reply_serial = call.header.serial},
                          body);
}

void Driver::signal(std::string_view destination, std::string_view member, const BodyWriter& body) {
    daemon_.send_from_bus({.type = marshal::MessageType::signal,
                           .path = bus_path,
                           .interface = bus_interface,
                           .member = member,
                           .destination = destination},
                          body);
}

void Driver::lost(std::string_view owner, core::ConnectionId id, const BodyWriter& name) {
    if (daemon_.peers().find(id) != nullptr) {
        return signal(owner, "NameLost", name);
    }
    // A connection that left is told too, as dbus-daemon tells it: only monitors see that.
    if (daemon_.peers().has_monitors()) {
        daemon_.capture(marshal::build_message({.type = marshal::MessageType::signal,
                                                .flags = marshal::flag::no_reply_expected,
                                                .serial = daemon_.next_serial(),
                                                .path = bus_path,
                                                .interface = bus_interface,
                                                .member = "NameLost",
                                                .destination = owner,
                                                .sender = bus_name},
                                               name),
                        {}, owner);
    }
}

void Driver::name_owner_changed(std::string_view name, std::string_view old_owner,
                                std::string_view new_owner) {
    BodyWriter body;
    body.string(name).string(old_owner).string(new_owner);
    signal({}, "NameOwnerChanged", body);
}

void Driver::process_notifications() {
    core::Bus& bus = daemon_.core();
    while (auto item = bus.receive(daemon_.driver_id())) {
        if (item->kind != core::QueueItem::Kind::notification) {
            continue;
        }
        const core::Notification& notification = item->notification;
        switch (notification.type) {
            case core::NotificationType::name_add:
            case core::NotificationType::name_remove:
            case core::NotificationType::name_change: {
                // An activator holding a name is no owner to dbus1 clients: the name has none.
                const bool old_visible =
                    notification.old_id && !(notification.old_flags & core::name_flag::activator);
                const bool new_visible =
                    notification.new_id && !(notification.new_flags & core::name_flag::activator);
                if (!old_visible && !new_visible) {
                    break;
                }
                for (const core::ConnectionId changed : {notification.old_id, notification.new_id}) {
                    if (Peer* owner = daemon_.peers().find(changed)) {
                        owner->names_stale = true;
                    }
                }
                const std::string old_owner = old_visible ? unique_name_of(notification.old_id) : "";
                const std::string new_owner = new_visible ? unique_name_of(notification.new_id) : "";
                BodyWriter name;
                name.string(notification.name);
                if (!old_owner.empty()) {
                    lost(old_owner, notification.old_id, name);
                }
                name_owner_changed(notification.name, old_owner, new_owner);
                if (!new_owner.empty()) {
                    signal(new_owner, "NameAcquired", name);
                }
                if (notification.old_flags & core::name_flag::activator) {
                    daemon_.activation().name_acquired(notification.name);
                }
                break;
            }
            case core::NotificationType::id_add:
                // The bus's own connections (the driver, activators, policy holders) are no dbus1 peers.
                if (notification.id < core::first_internal_connection_id) {
                    const std::string name = unique_name_of(notification.id);
                    name_owner_changed(name, "", name);
                    BodyWriter acquired;
                    acquired.string(name);
                    signal(name, "NameAcquired", acquired);
                }
                break;
            case core::NotificationType::id_remove: {
                if (notification.id >= core::first_internal_connection_id) {
                    break;
                }
                const std::string name = unique_name_of(notification.id);
                BodyWriter unique;
                unique.string(name);
                lost(name, notification.id, unique);
                name_owner_changed(name, name, "");
                break;
            }
            default:
                break;
        }
    }
}

Driver::Outcome Driver::hello(Peer& peer, const transport::IncomingMessage& call, BodyReader&) {
    if (peer.registered()) {
        return Refusal{BusError::failed, "Already handled an Hello message"};
    }
    if (daemon_.peers().by_id().size() >= daemon_.options().max_completed_connections) {
        return Refusal{BusError::limits_exceeded,
                       "The maximum number of active connections has been reached"};
    }
    const transport::PeerCredentials& socket = peer.connection->credentials();
    const std::uint32_t uid = peer.connection->authentication().authorized_uid.value_or(socket.uid.value_or(~0u));
    if (daemon_.peers().connections_of(uid) >= daemon_.options().max_connections_per_user) {
        ++daemon_.counters().quota_hits[BusCounters::connections_per_user];
        return Refusal{BusError::limits_exceeded, "The maximum number of active connections for UID " +
                                                      std::to_string(uid) + " has been reached"};
    }
    core::HelloParams params;
    params.credentials.uid = uid;
    params.credentials.gid = socket.gid.value_or(~0u);
    params.credentials.pid = socket.pid;
    params.credentials.groups.assign(socket.groups.begin(), socket.groups.end());
    params.credentials.security_label = socket.security_label;
    params.endpoint = peer.endpoint;
    if (peer.connection->unix_fds_allowed()) {
        params.flags |= core::hello_flag::accept_fds;
    }
    auto id = daemon_.core().hello(std::move(params));
    if (!id) {
        return Refusal{BusError::limits_exceeded, "The maximum number of active connections for UID " +
                                                      std::to_string(socket.uid.value_or(0)) +
                                                      " has been reached"};
    }
    peer.id = *id;
    peer.uid = uid;
    peer.unique_name = unique_name_of(peer.id);
    daemon_.peers().registered(peer);
    daemon_.assign_policy(peer);
    if (daemon_.peers().has_monitors()) {
        daemon_.capture(stamped_message(call, peer.unique_name), peer.unique_name, {});
    }
    // dbus-daemon answers Hello before it announces the new name.
    BodyWriter body;
    body.string(peer.unique_name);
    reply(peer, call, body);
    process_notifications();
    return handled;
}

Driver::Outcome Driver::request_name(Peer& peer, const transport::IncomingMessage& call, BodyReader& reader) {
    const std::string name(*reader.read_string());
    const std::uint32_t flags = *reader.read_uint32();
    if (!marshal::is_valid_bus_name(name)) {
        return Refusal{BusError::invalid_args, "Requested bus name \"" + name + "\" is not valid"};
    }
    if (marshal::is_unique_name(name)) {
        return Refusal{BusError::invalid_args,
                       "Cannot acquire a service starting with ':' such as \"" + name + "\""};
    }
    if (name == bus_name) {
        // dbus-daemon's text, without the space before "because".
        return Refusal{BusError::invalid_args, "Connection \"" + peer.unique_name +
                                                   "\" is not allowed to own the service \"" + name +
                                                   "\"because it is reserved for D-Bus' use only"};
    }
    if (daemon_.has_policy() && !peer.policy.check_can_own(name)) {
        return Refusal{BusError::access_denied, "Connection \"" + peer.unique_name +
                                                    "\" is not allowed to own the service \"" + name +
                                                    "\" due to security policies in the configuration file"};
    }
    std::uint64_t core_flags = 0;
    if (flags & allow_replacement) {
        core_flags |= core::name_flag::allow_replacement;
    }
    if (flags & replace_existing) {
        core_flags |= core::name_flag::replace_existing;
    }
    if (!(flags & do_not_queue)) {
        core_flags |= core::name_flag::queue;
    }
    const auto result = daemon_.core().acquire_name(peer.id, name, core_flags);
    if (!result) {
        if (result.error() == core::Error::permission_denied) {
            return Refusal{BusError::access_denied,
                           "Connection \"" + peer.unique_name + "\" is not allowed to own the service \"" +
                               name + "\" due to security policies in the configuration file"};
        }
        if (result.error() == core::Error::name_limit_reached) {
            return Refusal{
                BusError::limits_exceeded,
                "Connection \"" + peer.unique_name +
                    "\" is not allowed to own more services (increase limits in configuration file "
                    "if required; max_names_per_connection=" +
                    std::to_string(daemon_.options().core.limits.max_names_per_connection + 1) + ")"};
        }
        return Refusal{BusError::failed, std::string(core::describe(result.error()))};
    }
    peer.names_stale = true;  // queued ownership changes without a notification
    daemon_.deliver();        // NameLost/NameOwnerChanged/NameAcquired (and what they cause) come first
    BodyWriter body;
    body.uint32(request_name_reply(*result));
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::release_name(Peer& peer, const transport::IncomingMessage& call, BodyReader& reader) {
    const std::string name(*reader.read_string());
    if (!marshal::is_valid_bus_name(name)) {
        return Refusal{BusError::invalid_args, "Given bus name \"" + name + "\" is not valid"};
    }
    if (marshal::is_unique_name(name)) {
        return Refusal{BusError::invalid_args,
                       "Cannot release a service starting with ':' such as \"" + name + "\""};
    }
    if (name == bus_name) {
        return Refusal{BusError::invalid_args,
                       "Cannot release the org.freedesktop.DBus service because it is owned by the bus"};
    }
    const auto result = daemon_.core().release_name(peer.id, name);
    if (!result) {
        return Refusal{BusError::failed, std::string(core::describe(result.error()))};
    }
    peer.names_stale = true;  // queued ownership changes without a notification
    daemon_.deliver();        // NameLost/NameOwnerChanged/NameAcquired (and what they cause) come first
    BodyWriter body;
    body.uint32(release_name_reply(*result));
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::list_names(Peer& peer, const transport::IncomingMessage& call, BodyReader&) {
    BodyWriter body;
    body.open_array("s").string(bus_name);
    std::optional<core::ConnectionId> previous_id;
    for (const core::ListEntry& entry :
         daemon_.core().list(peer.id, core::list_flag::unique | core::list_flag::names)) {
        if (entry.id == daemon_.driver_id()) {
            continue;
        }
        // The core lists a connection once per name it owns, or once by id if it owns none (sorted by
        // id); ListNames has every unique name besides the well-known ones, as dbus-daemon's does.
        if (entry.id != previous_id) {
            body.string(unique_name_of(entry.id));
            previous_id = entry.id;
        }
        if (!entry.name.empty()) {
            body.string(entry.name);
        }
    }
    body.close_array();
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::list_activatable_names(Peer& peer, const transport::IncomingMessage& call,
                                               BodyReader&) {
    BodyWriter body;
    body.open_array("s").string(bus_name);
    for (const core::ListEntry& entry : daemon_.core().list(peer.id, core::list_flag::activators)) {
        if (!entry.name.empty()) {
            body.string(entry.name);
        }
    }
    body.close_array();
    reply(peer, call, body);
    return handled;
}

const core::Connection* Driver::connection_for(const Peer& peer, std::string_view name,
                                               bool bus_itself) const {
    core::ConnectionId id = 0;
    if (bus_itself && name == bus_name) {
        return daemon_.core().connection(
            daemon_.driver_id());  // dbus-daemon answers for itself: its uid and pid
    }
    if (marshal::is_unique_name(name)) {
        id = id_of_unique_name(name);
    } else if (marshal::is_valid_bus_name(name)) {
        if (auto owner = daemon_.core().name_owner(peer.id, name)) {
            id = *owner;
        }
    }
    // Through a container endpoint, connections it cannot see do not exist.
    const auto visible = id ? daemon_.core().connection_info(peer.id, id)
                            : core::Result<const core::Connection*>(core::Error::no_such_connection);
    const core::Connection* connection = visible ? *visible : nullptr;
    return id == daemon_.driver_id() ? nullptr : connection;
}

Refusal Driver::no_such_name(std::string_view what, std::string_view name) {
    return {BusError::name_has_no_owner,
            "Could not get " + std::string(what) + " of name '" + std::string(name) + "': no such name"};
}

Driver::Outcome Driver::name_has_owner(Peer& peer, const transport::IncomingMessage& call,
                                       BodyReader& reader) {
    const std::string_view name = *reader.read_string();
    bool has_owner = name == bus_name;
    if (!has_owner && marshal::is_unique_name(name)) {
        // Through a container endpoint, connections it cannot see do not exist.
        const core::ConnectionId id = id_of_unique_name(name);
        has_owner = id != 0 && daemon_.core().connection_info(peer.id, id).ok();
    } else if (!has_owner && marshal::is_valid_bus_name(name)) {
        has_owner = daemon_.core().name_owner(peer.id, name).ok();
    }
    BodyWriter body;
    body.boolean(has_owner);
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::get_name_owner(Peer& peer, const transport::IncomingMessage& call,
                                       BodyReader& reader) {
    const std::string name(*reader.read_string());
    BodyWriter body;
    if (name == bus_name) {
        body.string(bus_name);
        reply(peer, call, body);
        return handled;
    }
    const core::Connection* owner = connection_for(peer, name);
    if (owner == nullptr) {
        return no_such_name("owner", name);
    }
    body.string(unique_name_of(owner->id()));
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::list_queued_owners(Peer& peer, const transport::IncomingMessage& call,
                                           BodyReader& reader) {
    const std::string name(*reader.read_string());
    BodyWriter body;
    body.open_array("s");
    if (name == bus_name) {
        body.string(bus_name).close_array();
        reply(peer, call, body);
        return handled;
    }
    if (marshal::is_unique_name(name)) {
        const core::Connection* owner = connection_for(peer, name);
        if (owner == nullptr) {
            return no_such_name("owners", name);
        }
        body.string(unique_name_of(owner->id())).close_array();
        reply(peer, call, body);
        return handled;
    }
    const auto owners = marshal::is_valid_bus_name(name)
                            ? daemon_.core().queued_owners(peer.id, name)
                            : core::Result<std::vector<core::ConnectionId>>(core::Error::invalid_name);
    if (!owners || owners->empty()) {
        return no_such_name("owners", name);
    }
    for (const core::ConnectionId id : *owners) {
        if (daemon_.core().connection_info(peer.id, id).ok()) {  // an endpoint sees only whom it may see
            body.string(unique_name_of(id));
        }
    }
    body.close_array();
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::start_service_by_name(Peer& peer, const transport::IncomingMessage& call,
                                              BodyReader& reader) {
    const std::string name(*reader.read_string());
    // As dbus-daemon: a name without a service file is unknown, even while someone owns it. Through a
    // container endpoint, so is a name it may not talk to (xdg-dbus-proxy asks for TALK): it learns nothing
    // of hidden names and starts nothing it could not call.
    const core::Connection* self = daemon_.core().connection(peer.id);
    if (!daemon_.activation().has_service(name) || self == nullptr ||
        !daemon_.core().may_talk_to_name(*self, name)) {
        return Refusal{BusError::service_unknown,
                       "The name " + name + " was not provided by any .service files"};
    }
    if (daemon_.core().name_owner(peer.id, name).ok()) {
        BodyWriter body;
        body.uint32(2);  // DBUS_START_REPLY_ALREADY_RUNNING
        reply(peer, call, body);
        return handled;
    }
    daemon_.activation().start_requested(peer, call, name);  // the reply waits for the outcome
    return handled;
}

Driver::Outcome Driver::update_activation_environment(Peer& peer, const transport::IncomingMessage& call,
                                                      BodyReader& reader) {
    // dbus-daemon only lets the bus's own user in, and never on a system bus.
    const core::Connection* self = daemon_.core().connection(peer.id);
    if (self && self->credentials().uid != daemon_.options().bus_uid && self->credentials().uid != 0) {
        return Refusal{BusError::access_denied, "Connection \"" + peer.unique_name +
                                                    "\" is not allowed to call UpdateActivationEnvironment"};
    }
    if (daemon_.options()
            .servicehelper) {  // dbus-daemon: a bus with a launch helper, not <type>system</type>
        return Refusal{BusError::access_denied, "Cannot change activation environment on a system bus."};
    }
    std::vector<std::pair<std::string, std::string>> variables;
    reader.enter();  // the signature was checked against the table: a{ss}
    while (!reader.at_end() && reader.enter()) {
        const auto key = reader.read_string();
        const auto value = reader.read_string();
        reader.leave();
        if (!key || !value) {
            break;
        }
        variables.emplace_back(*key, *value);
    }
    daemon_.activation().update_environment(variables);
    reply(peer, call, BodyWriter());
    return handled;
}

Driver::Outcome Driver::get_id(Peer& peer, const transport::IncomingMessage& call, BodyReader&) {
    BodyWriter body;
    body.string(daemon_.guid());
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::reload_config(Peer& peer, const transport::IncomingMessage& call, BodyReader&) {
    if (!daemon_.options().reload) {
        reply(peer, call, BodyWriter());
        return handled;
    }
    // Reloading may remove endpoints and disconnect their connections: the caller is looked up again
    // afterwards, never used through a reference that may dangle.
    const core::ConnectionId caller = peer.id;
    const std::optional<std::string> failure = daemon_.options().reload();
    Peer* still = daemon_.peers().find(caller);
    if (still == nullptr) {
        return handled;  // nobody is left to answer
    }
    if (failure) {
        return Refusal{BusError::failed, *failure};  // `still` is `peer`: handle() may send to it
    }
    reply(*still, call, BodyWriter());
    return handled;
}

Driver::Outcome Driver::introspect(Peer& peer, const transport::IncomingMessage& call, BodyReader&) {
    BodyWriter body;
    body.string(introspection_xml(call.header.path));
    reply(peer, call, body);
    return handled;
}

Driver::Outcome Driver::ping(Peer& peer, const transport::IncomingMessage& call, BodyReader&) {
    reply(peer, call, BodyWriter());
    return handled;
}

Driver::Outcome Driver::get_machine_id(Peer& peer, const transport::IncomingMessage& call, BodyReader&) {
    const std::string id = machine_id();
    if (id.empty()) {
        return Refusal{BusError::failed, "Failed to read the machine ID"};
    }
    BodyWriter body;
    body.string(id);
    reply(peer, call, body);
    return handled;
}

}  // namespace busgate::bus
