// Activation: names from service files start their services on demand, as dbus-daemon does it.
// Every activatable name is held in the core by an activator connection, so messages to it queue there in
// order. The first queued message (or StartServiceByName) starts the service once: the spawner
// (bus/service_spawner.h; launch/ does the fork and exec) runs Exec= with the bus's environment plus the
// activation environment, or the configured <servicehelper> (the setuid dbus-daemon-launch-helper of a
// system bus, which switches to the service's User=); or the bus sends an ActivationRequest to systemd with
// --systemd-activation and SystemdService=. When the service takes its name the core hands the queue over; if
// it fails first (exec error, non-zero exit, a signal, service_start_timeout, systemd's ActivationFailure),
// every queued message's sender gets dbus-daemon's error and StartServiceByName callers theirs. A service
// that exits 0 before taking its name (one that daemonizes) is no failure.
#pragma once

#include <sys/types.h>

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus_daemon.h"
#include "bus/errors.h"
#include "busgate/policy/service_file.h"

namespace busgate::bus {

class Activation {
  public:
    using Peer = BusDaemon::Peer;

    explicit Activation(BusDaemon& daemon);
    ~Activation();
    Activation(const Activation&) = delete;
    Activation& operator=(const Activation&) = delete;

    // (Re)reads the service directories: new names get activators, vanished ones lose theirs (their queued
    // messages are refused), changed files apply to the next start. Creates the transient directory
    // ($XDG_RUNTIME_DIR/dbus-1/services) as dbus-daemon does, and watches every directory with inotify.
    // Returns whether the set of activatable names changed.
    bool load(const std::vector<policy::ServiceDir>& directories);

    bool is_activator(core::ConnectionId id) const { return by_activator_.contains(id); }
    // A message to `name` would wait for its activation (no owner, a service file, auto-start allowed).
    // A name the bus does not know at all first makes it look for new service files (see has_service).
    bool would_activate(std::string_view name);
    // The activator `id` has queued messages: start its service unless it is already starting.
    void queued(core::ConnectionId activator);
    // StartServiceByName for an activatable name without an owner; the reply waits for the outcome.
    void start_requested(Peer& caller, const transport::IncomingMessage& call, std::string_view name);
    // Whether `name` has a service file. An unknown name rereads the directories first if any of them
    // appeared or changed since they were read, as dbus-daemon rereads them for a name it does not know:
    // inotify cannot watch a directory that did not exist yet.
    bool has_service(std::string_view name);
    // A real owner took `name` from its activator: the activation succeeded.
    void name_acquired(std::string_view name);
    // org.freedesktop.systemd1.Activator.ActivationFailure, honoured only from systemd1's owner.
    void systemd_failure(Peer& sender, const transport::IncomingMessage& signal);
    // UpdateActivationEnvironment (already authorized); forwards to systemd with --systemd-activation.
    void update_environment(const std::vector<std::pair<std::string, std::string>>& variables);

    // A service is being started: something waits for it (a restart waits until nothing does).
    bool in_progress() const;
    std::optional<std::uint64_t> next_deadline() const;
    void expire(std::uint64_t now);

  private:
    struct StartCall {
        core::ConnectionId caller;
        std::uint32_t serial;
    };
    struct Service {
        policy::ServiceFile file;
        core::ConnectionId activator = 0;
        bool pending = false;
        std::optional<std::uint64_t> deadline;  // service_start_timeout while pending
        pid_t pid = 0;                          // the process this start spawned, while it runs
        std::vector<StartCall> start_calls;
    };
    struct Child {
        util::UniqueFd exit_fd;  // readable once it has ended
        pid_t pid;
        std::string name;     // the service it was started for
        bool through_helper;  // the <servicehelper>, whose exit status has its own meanings
    };

    void start(Service& service);
    void spawn(Service& service);
    void request_from_systemd(Service& service);
    void succeed(Service& service);
    // Refuses everything waiting for the service (queued messages, StartServiceByName calls) with `error`.
    void fail(Service& service, BusError error, std::string_view text);
    // The same with an error name that is not the bus's own: the one systemd's ActivationFailure gave.
    void fail_named(Service& service, std::string_view error_name, std::string_view text);
    void remove(Service& service);
    void child_exited(int exit_fd);
    void watch(const std::vector<policy::ServiceDir>& directories);
    void rescan_if_changed();
    std::vector<std::string> environment() const;

    BusDaemon& daemon_;
    std::map<std::string, Service, std::less<>> services_;
    boost::unordered_flat_map<core::ConnectionId, std::string> by_activator_;
    boost::unordered_flat_map<int, Child> children_;  // by exit_fd
    std::map<std::string, std::string> environment_;  // the bus's own environment plus updates
    std::vector<policy::ServiceDir> directories_;
    // Each directory as it was when last read: whether it existed, and its modification time.
    struct DirectoryState {
        bool exists = false;
        std::int64_t seconds = 0;
        std::int64_t nanoseconds = 0;
        bool operator==(const DirectoryState&) const = default;
    };
    static std::vector<DirectoryState> states_of(const std::vector<policy::ServiceDir>& directories);
    std::vector<DirectoryState> states_;
    bool watching_ = false;  // the directory watcher watches directories_
};

}  // namespace busgate::bus
