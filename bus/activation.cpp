#include "bus/activation.h"

#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "bus/service_spawner.h"
#include "busgate/marshal/names.h"
#include "busgate/marshal/reader.h"
#include "busgate/util/clock.h"

extern char** environ;

namespace busgate::bus {
namespace {

constexpr std::string_view systemd_name = "org.freedesktop.systemd1";

// What a failed launch helper's exit status means (dbus's bus/activation-exit-codes.h, the helper's side of
// the contract), as dbus-daemon reports it: the error name and text of its handle_servicehelper_exit_error.
// FILE_INVALID is reported as PermissionsInvalid there, and so here.
std::pair<BusError, std::string_view> helper_failure(int status) {
    switch (status) {
        case 2:
            return {BusError::no_memory, "Launcher could not run (out of memory)"};
        case 3:
            return {BusError::spawn_config_invalid, "Invalid configuration (missing or empty <user>?)"};
        case 4:
            return {BusError::spawn_failed_to_setup, "Failed to setup environment correctly"};
        case 5:
            return {BusError::spawn_service_not_valid, "Bus name is not valid or missing"};
        case 6:
            return {BusError::spawn_service_not_found, "Bus name not found in system service directory"};
        case 7:
            return {BusError::spawn_permissions_invalid,
                    "The permission of the setuid helper is not correct"};
        case 8:
            return {BusError::spawn_permissions_invalid,
                    "The service file is incorrect or does not have all required attributes"};
        case 9:
            return {BusError::spawn_exec_failed,
                    "Cannot launch daemon, file not found or permissions invalid"};
        case 10:
            return {BusError::invalid_args, "Invalid arguments to command line"};
        case 11:
            return {BusError::spawn_child_signaled, "Launched child was signaled, it probably crashed"};
        default:
            return {BusError::spawn_child_exited, {}};
    }
}

}  // namespace

Activation::Activation(BusDaemon& daemon) : daemon_(daemon) {
    for (char** variable = environ; variable != nullptr && *variable != nullptr; ++variable) {
        const std::string_view entry(*variable);
        if (const std::size_t equals = entry.find('='); equals != std::string_view::npos) {
            environment_[std::string(entry.substr(0, equals))] = std::string(entry.substr(equals + 1));
        }
    }
    // What systemd sets for the bus's own unit describes the bus, not the services it starts; dbus-daemon
    // drops the same variables.
    for (const char* own : {"JOURNAL_STREAM", "LISTEN_FDNAMES", "LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET",
                            "INVOCATION_ID", "WATCHDOG_PID", "WATCHDOG_USEC"}) {
        environment_.erase(own);
    }
}

Activation::~Activation() {
    if (watching_) {
        daemon_.options().directory_watcher->clear();  // its reaction calls back into this object
    }
    for (const auto& [exit_fd, child] : children_) {
        daemon_.loop().remove(exit_fd);
    }
}

bool Activation::load(const std::vector<policy::ServiceDir>& directories) {
    for (const policy::ServiceDir& directory : directories) {
        if (directory.strict_naming) {
            // dbus-daemon creates the transient directory so that services can be dropped in later.
            std::error_code ignored;
            std::filesystem::create_directories(directory.path, ignored);
        }
    }
    // The watch is made before the scan, so that nothing written in between goes unnoticed; a new one only
    // when the directories or which of them exist change.
    std::vector<DirectoryState> states = states_of(directories);
    const auto which_exist = [](const std::vector<DirectoryState>& list) {
        std::vector<bool> exists;
        for (const DirectoryState& state : list) {
            exists.push_back(state.exists);
        }
        return exists;
    };
    if (directories != directories_ || !watching_ || which_exist(states) != which_exist(states_)) {
        directories_ = directories;
        watch(directories);
    }
    states_ = std::move(states);
    const policy::ServiceDirectoryScan scan = policy::scan_service_directories(directories);
    for (const std::string& reason : scan.skipped) {
        std::fprintf(stderr, "busgate: Ignoring service file %s\n", reason.c_str());
    }
    bool changed = false;
    std::map<std::string, const policy::ServiceFile*, std::less<>> wanted;
    for (const policy::ServiceFile& file : scan.services) {
        wanted[file.name] = &file;
        // The launch helper looks a service up by its file name; dbus-daemon lists the name anyway, and
        // warns.
        if (daemon_.options().servicehelper &&
            std::filesystem::path(file.path).filename() != file.name + ".service") {
            std::fprintf(
                stderr,
                "busgate: Service file \"%s\" should have been named \"%s.service\" and will not work "
                "with system bus activation\n",
                file.path.c_str(), file.name.c_str());
        }
    }
    for (auto it = services_.begin(); it != services_.end();) {
        if (wanted.contains(it->first)) {
            ++it;
            continue;
        }
        remove(it->second);
        it = services_.erase(it);
        changed = true;
    }
    for (const auto& [name, file] : wanted) {
        if (auto existing = services_.find(name); existing != services_.end()) {
            existing->second.file = *file;
            continue;
        }
        core::HelloParams params;
        params.credentials.uid = daemon_.options().bus_uid;
        params.credentials.pid = ::getpid();
        params.flags = core::hello_flag::activator | core::hello_flag::accept_fds;
        params.name = name;
        params.description = "activator for " + name;
        const auto activator = daemon_.core().hello(std::move(params));
        if (!activator) {
            std::fprintf(stderr, "busgate: Cannot make %s activatable: %s\n", name.c_str(),
                         std::string(core::describe(activator.error())).c_str());
            continue;
        }
        Service service;
        service.file = *file;
        service.activator = *activator;
        services_.emplace(name, std::move(service));
        by_activator_[*activator] = name;
        changed = true;
    }
    return changed;
}

std::vector<Activation::DirectoryState> Activation::states_of(
    const std::vector<policy::ServiceDir>& directories) {
    std::vector<DirectoryState> states;
    states.reserve(directories.size());
    for (const policy::ServiceDir& directory : directories) {
        struct stat status {};
        DirectoryState& state = states.emplace_back();
        if (::stat(directory.path.c_str(), &status) == 0) {
            state = {true, status.st_mtim.tv_sec, status.st_mtim.tv_nsec};
        }
    }
    return states;
}

void Activation::rescan_if_changed() {
    // dbus-daemon reads its directories again on each unknown name; a stat of each is enough to know
    // whether that could find anything, and keeps a client asking for names that do not exist cheap.
    // Like dbus-daemon, no ActivatableServicesChanged on this path.
    if (states_of(directories_) != states_) {
        (void)load(std::vector<policy::ServiceDir>(directories_));
    }
}

bool Activation::has_service(std::string_view name) {
    if (!services_.contains(name)) {
        rescan_if_changed();
    }
    return services_.contains(name);
}

void Activation::watch(const std::vector<policy::ServiceDir>& directories) {
    DirectoryWatcher* watcher = daemon_.options().directory_watcher.get();
    if (watcher == nullptr) {
        return;  // an unknown name still finds new files (rescan_if_changed)
    }
    std::vector<std::string> paths;
    for (const policy::ServiceDir& directory : directories) {
        if (directory.watch) {
            paths.push_back(directory.path);
        }
    }
    watching_ = watcher->watch(paths, [this] { daemon_.reload_services(directories_); });
}

bool Activation::would_activate(std::string_view name) {
    // Only this module makes activators, so a name held by one alone has a service file.
    const core::NameEntry* entry = daemon_.core().names().find(name);
    if (entry == nullptr) {
        rescan_if_changed();
        entry = daemon_.core().names().find(name);
    }
    return entry != nullptr && entry->only_activator();
}

void Activation::queued(core::ConnectionId activator) {
    const auto found = by_activator_.find(activator);
    if (found == by_activator_.end()) {
        return;
    }
    Service& service = services_.find(found->second)->second;
    // Nothing left waiting (a start that failed at once already answered them): nothing to start.
    if (!service.pending && daemon_.core().peek(activator) != nullptr) {
        start(service);
    }
}

void Activation::start_requested(Peer& caller, const transport::IncomingMessage& call,
                                 std::string_view name) {
    Service& service = services_.find(name)->second;
    service.start_calls.push_back({caller.id, call.header.serial});
    if (!service.pending) {
        start(service);
    }
}

void Activation::start(Service& service) {
    std::size_t pending = 0;
    for (const auto& [name, other] : services_) {
        pending += other.pending;
    }
    service.pending = true;
    service.deadline.reset();
    if (pending >= daemon_.options().max_pending_service_starts) {
        return fail(
            service, BusError::limits_exceeded,
            "The maximum number of pending activations has been reached, max_pending_service_starts=" +
                std::to_string(daemon_.options().max_pending_service_starts));
    }
    ++daemon_.counters().activation_starts;
    if (daemon_.options().systemd_activation) {
        if (service.file.name == systemd_name) {
            return;  // systemd itself is not there yet (early boot): its messages wait until it connects
        }
        if (service.file.systemd_service) {
            service.deadline = util::monotonic_ns() + daemon_.options().service_start_timeout_ns;
            daemon_.arm_timer();
            return request_from_systemd(service);
        }
    }
    service.deadline = util::monotonic_ns() + daemon_.options().service_start_timeout_ns;
    daemon_.arm_timer();
    spawn(service);
}

void Activation::request_from_systemd(Service& service) {
    marshal::BodyWriter body;
    body.string(*service.file.systemd_service);
    const bool sent = daemon_.send_from_bus({.type = marshal::MessageType::signal,
                                             .path = "/org/freedesktop/DBus",
                                             .interface = "org.freedesktop.systemd1.Activator",
                                             .member = "ActivationRequest",
                                             .destination = systemd_name},
                                            body);
    if (!sent) {
        fail(service, BusError::service_unknown,
             "The name " + std::string(systemd_name) + " was not provided by any .service files");
    }
}

std::vector<std::string> Activation::environment() const {
    // The bus's own environment with UpdateActivationEnvironment's changes, and where the service's bus is.
    // On a system bus the launch helper clears all of it but DBUS_STARTER_*; without a helper (a private
    // bus of type system) the service sees it all, as dbus-daemon does.
    std::map<std::string, std::string> variables = environment_;
    const std::string address = daemon_.address();
    const std::string first = address.substr(0, address.find(';'));
    variables["DBUS_STARTER_ADDRESS"] = first;
    const std::string& type = daemon_.options().bus_type;
    if (!type.empty()) {
        variables["DBUS_STARTER_BUS_TYPE"] = type;
        if (type == "session") {
            variables["DBUS_SESSION_BUS_ADDRESS"] = first;
        } else if (type == "system") {
            variables["DBUS_SYSTEM_BUS_ADDRESS"] = first;
        }
    }
    std::vector<std::string> entries;
    entries.reserve(variables.size());
    for (const auto& [key, value] : variables) {
        entries.push_back(key + "=" + value);
    }
    return entries;
}

void Activation::spawn(Service& service) {
    // With a <servicehelper> (the system bus) the setuid helper finds the service file itself, switches to
    // its User= and execs it; the bus only names the service. Otherwise the bus runs Exec= itself, as its
    // own user whatever User= says.
    const std::optional<std::string>& helper = daemon_.options().servicehelper;
    std::vector<std::string> arguments;
    if (helper) {
        if (!service.file.user) {
            return fail(service, BusError::spawn_file_invalid,
                        "Cannot do system-bus activation with no user\n");
        }
        arguments = {*helper, service.file.name};
    } else {
        std::string error;
        arguments = policy::split_command_line(service.file.exec, error);
        if (arguments.empty()) {
            return fail(service, BusError::invalid_args, error);
        }
    }
    ServiceSpawner* spawner = daemon_.options().spawner.get();
    if (spawner == nullptr) {
        return fail(service, BusError::spawn_fork_failed, "Failed to fork: this bus does not start services");
    }
    ServiceSpawner::Started started;
    if (const auto failure = spawner->spawn(arguments, environment(), started)) {
        const std::string reason = std::strerror(failure->error);
        switch (failure->stage) {
            case ServiceSpawner::Failure::Stage::pipe:
                return fail(service, BusError::spawn_fork_failed, "Failed to create pipe: " + reason);
            case ServiceSpawner::Failure::Stage::fork:
                return fail(service, BusError::spawn_fork_failed, "Failed to fork: " + reason);
            case ServiceSpawner::Failure::Stage::exec:
                return fail(service, BusError::spawn_exec_failed,
                            "Failed to execute program " + service.file.name + ": " + reason);
        }
    }
    service.pid = started.pid;
    if (!started.exit_fd) {
        return;  // an old kernel: the start timeout still ends the activation if it never comes
    }
    const int exit_fd = started.exit_fd.get();
    children_.emplace(exit_fd,
                      Child{std::move(started.exit_fd), started.pid, service.file.name, helper.has_value()});
    daemon_.loop().add(exit_fd, EPOLLIN, [this, exit_fd](std::uint32_t) { child_exited(exit_fd); });
}

void Activation::child_exited(int exit_fd) {
    const auto found = children_.find(exit_fd);
    if (found == children_.end()) {
        return;
    }
    const auto exit = daemon_.options().spawner->reap(found->second.exit_fd);
    if (!exit) {
        return;
    }
    daemon_.loop().remove(exit_fd);
    const Child child = std::move(found->second);
    children_.erase(found);
    const auto service = services_.find(child.name);
    if (service == services_.end() || service->second.pid != child.pid) {
        return;
    }
    service->second.pid = 0;
    if (!service->second.pending) {
        return;  // the service came and went: nothing is waiting for it
    }
    if (!exit->signaled) {
        if (exit->status != 0 && child.through_helper) {
            const auto [error, text] = helper_failure(exit->status);
            fail(service->second, error,
                 text.empty()
                     ? "Launch helper exited with unknown return code " + std::to_string(exit->status)
                     : std::string(text));
        } else if (exit->status != 0) {
            fail(service->second, BusError::spawn_child_exited,
                 "Process " + child.name + " exited with status " + std::to_string(exit->status));
        }
        // Exit status 0 before taking the name: it daemonized; wait for the name or the timeout.
    } else {
        fail(service->second, BusError::spawn_child_signaled,
             "Process " + child.name + " received signal " + std::to_string(exit->status));
    }
    daemon_.deliver();
}

void Activation::name_acquired(std::string_view name) {
    const auto found = services_.find(name);
    if (found != services_.end() && found->second.pending) {
        succeed(found->second);
    }
}

void Activation::succeed(Service& service) {
    service.pending = false;
    service.deadline.reset();
    for (const StartCall& call : std::exchange(service.start_calls, {})) {
        if (daemon_.peers().find(call.caller) == nullptr) {
            continue;
        }
        marshal::BodyWriter body;
        body.uint32(1);  // DBUS_START_REPLY_SUCCESS
        daemon_.send_from_bus({.type = marshal::MessageType::method_return,
                               .destination = unique_name_of(call.caller),
                               .reply_serial = call.serial},
                              body);
    }
}

void Activation::fail(Service& service, BusError error, std::string_view text) {
    fail_named(service, name_of(error), text);
}

void Activation::fail_named(Service& service, std::string_view error_name, std::string_view text) {
    ++daemon_.counters().activation_failures;
    service.pending = false;
    service.deadline.reset();
    if (service.pid != 0) {
        daemon_.options().spawner->terminate(service.pid);  // a start that timed out; reaped as it ends
        service.pid = 0;
    }
    std::fprintf(stderr, "busgate: Activation of %s failed: %.*s\n", service.file.name.c_str(),
                 static_cast<int>(text.size()), text.data());
    while (auto item = daemon_.core().receive(service.activator)) {
        if (item->kind == core::QueueItem::Kind::message) {
            daemon_.refuse_queued(service.activator, *item, error_name, text);
        }
    }
    for (const StartCall& call : std::exchange(service.start_calls, {})) {
        if (daemon_.peers().find(call.caller) == nullptr) {
            continue;
        }
        marshal::BodyWriter body;
        body.string(text);
        daemon_.send_from_bus({.type = marshal::MessageType::error,
                               .error_name = error_name,
                               .destination = unique_name_of(call.caller),
                               .reply_serial = call.serial},
                              body);
    }
}

void Activation::remove(Service& service) {
    if (service.pending) {
        fail(service, BusError::service_unknown,
             "The name " + service.file.name + " was not provided by any .service files");
    }
    by_activator_.erase(service.activator);
    (void)daemon_.core().bye(service.activator);
}

void Activation::systemd_failure(Peer& sender, const transport::IncomingMessage& signal) {
    const auto owner = daemon_.core().name_owner(daemon_.driver_id(), systemd_name);
    if (!owner || *owner != sender.id) {
        return;  // only systemd may say that systemd failed
    }
    marshal::BodyReader reader(signal.bytes, signal.header);
    const auto unit = reader.read_string();
    const auto error_name = reader.read_string();
    const auto text = reader.read_string();
    if (!unit || !error_name || !text) {
        return;
    }
    for (auto& [name, service] : services_) {
        if (service.pending && service.file.systemd_service == *unit) {
            // Not the bus's own error: systemd's name is passed on as it came.
            if (marshal::is_valid_error_name(*error_name)) {
                fail_named(service, *error_name, *text);
            } else {
                fail(service, BusError::failed, *text);
            }
        }
    }
}

void Activation::update_environment(const std::vector<std::pair<std::string, std::string>>& variables) {
    for (const auto& [key, value] : variables) {
        environment_[key] = value;
    }
    if (!daemon_.options().systemd_activation) {
        return;
    }
    // systemd starts the services, so it needs the variables too; while systemd is not connected the call
    // waits in its activator's queue, addressed to the well-known name.
    const auto owner = daemon_.core().name_owner(daemon_.driver_id(), systemd_name);
    const std::string destination = owner ? unique_name_of(*owner) : std::string(systemd_name);
    marshal::BodyWriter body;
    body.open_array("s");
    for (const auto& [key, value] : variables) {
        body.string(key + "=" + value);
    }
    body.close_array();
    (void)daemon_.send_from_bus({.type = marshal::MessageType::method_call,
                                 .flags = marshal::flag::no_reply_expected,
                                 .path = "/org/freedesktop/systemd1",
                                 .interface = "org.freedesktop.systemd1.Manager",
                                 .member = "SetEnvironment",
                                 .destination = destination},
                                body);
}

bool Activation::in_progress() const {
    return std::any_of(services_.begin(), services_.end(),
                       [](const auto& entry) { return entry.second.pending; });
}

std::optional<std::uint64_t> Activation::next_deadline() const {
    std::optional<std::uint64_t> earliest;
    for (const auto& [name, service] : services_) {
        if (service.deadline && (!earliest || *service.deadline < *earliest)) {
            earliest = service.deadline;
        }
    }
    return earliest;
}

void Activation::expire(std::uint64_t now) {
    for (auto& [name, service] : services_) {
        if (service.pending && service.deadline && *service.deadline <= now) {
            fail(service, BusError::timed_out, "Activation of " + name + " timed out");
        }
    }
}

}  // namespace busgate::bus
