// busgate: the daemon's entry point. Behaves as dbus-daemon does from the outside: the same
// options, the same configuration files, the address and pid printed where asked, --fork returning
// only once the bus is listening, SIGTERM to stop and SIGHUP to reload.
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "bus/bus_daemon.h"
#include "bus/driver.h"
#include "bus/endpoints.h"
#include "busgate/policy/configuration.h"
#include "launch/command_line.h"
#include "launch/descriptor_budget.h"
#include "transport/fd_limit.h"
#include "web/web_server.h"

using namespace busgate;
using namespace busgate::launch;

namespace {

constexpr const char* version_text =
    "busgate %s (D-Bus Message Bus Daemon compatible with dbus-daemon 1.14)\n"
    "This is free software; see the source for copying conditions.\n";

void write_to(const std::string& descriptor, const std::string& text) {
    const int fd = descriptor.empty() ? STDOUT_FILENO : parse_descriptor(descriptor);
    const std::string line = text + "\n";
    (void)!::write(fd, line.data(), line.size());
    if (fd != STDOUT_FILENO && fd != STDERR_FILENO) {
        ::close(fd);  // the reader sees end-of-file, as with dbus-daemon
    }
}

std::string home_directory() {
    if (const passwd* entry = ::getpwuid(::getuid()); entry && entry->pw_dir) {
        return entry->pw_dir;
    }
    const char* home = std::getenv("HOME");
    return home ? home : "/";
}

bus::DaemonOptions options_from(const policy::Configuration& configuration, const CommandLine& command_line) {
    bus::DaemonOptions options;
    if (!command_line.address.empty()) {
        options.listen = {command_line.address};
    } else {
        // dbus-daemon advertises the last <listen> first.
        options.listen.assign(configuration.listen.rbegin(), configuration.listen.rend());
    }
    options.auth_mechanisms = configuration.auth;
    options.allow_anonymous = configuration.allow_anonymous;
    if (const char* runtime = std::getenv("XDG_RUNTIME_DIR")) {
        options.runtime_directory = runtime;
    }
    options.keyring_directory = std::filesystem::path(home_directory()) / ".dbus-keyrings";
    // The bus runs as <user> once it listens (see switch_user): its driver's credentials, who is
    // privileged and the keyring are that user's, as dbus-daemon reports them after its switch.
    options.bus_uid = ::getuid();
    if (configuration.user) {
        if (const passwd* entry = ::getpwnam(configuration.user->c_str())) {
            options.bus_uid = entry->pw_uid;
        }
    }
    const policy::Limits& limits = configuration.limits;
    options.client.max_message_size = static_cast<std::size_t>(limits.max_message_size);
    options.client.max_message_unix_fds = static_cast<std::size_t>(limits.max_message_unix_fds);
    options.client.max_outgoing_bytes = static_cast<std::size_t>(limits.max_outgoing_bytes);
    options.client.max_outgoing_unix_fds = static_cast<std::size_t>(limits.max_outgoing_unix_fds);
    options.client.pending_fd_timeout_ns =
        static_cast<std::uint64_t>(std::max(limits.pending_fd_timeout, 1)) * 1'000'000u;
    options.core.owner_uid = options.bus_uid;
    options.max_connections_per_user = static_cast<std::size_t>(limits.max_connections_per_user);
    options.systemd_activation = command_line.systemd_activation;
    options.policy = configuration.policy;
    options.max_match_rules_per_connection = static_cast<std::size_t>(limits.max_match_rules_per_connection);
    // dbus-daemon counts the unique name among a connection's names; the core counts well-known ones.
    options.core.limits.max_names_per_connection =
        static_cast<std::size_t>(std::max<std::int32_t>(limits.max_names_per_connection - 1, 0));
    options.core.limits.max_matches_per_connection =
        static_cast<std::size_t>(limits.max_match_rules_per_connection);
    options.core.limits.max_pending_replies_per_connection =
        static_cast<std::size_t>(limits.max_replies_per_connection);
    // The core enforces these too, so they must be the configured ones, not kdbus's defaults. A
    // user's budget is its per-connection limit times its connections, as dbus-broker-launch derives it.
    // The gateway enforces max_connections_per_user exactly, as dbus-daemon counts; the core's
    // backstop also counts the driver's own connection, which belongs to the bus's user (activators, the
    // bus's too, are not counted by the core).
    options.core.limits.max_connections_per_user =
        static_cast<std::size_t>(limits.max_connections_per_user) + 1;
    options.core.limits.queue.max_bytes = static_cast<std::uint64_t>(limits.max_outgoing_bytes);
    options.core.limits.queue.max_fds = static_cast<std::uint64_t>(limits.max_outgoing_unix_fds);
    const auto per_user = [&](std::uint64_t per_connection) {
        const auto connections =
            std::max<std::uint64_t>(1, static_cast<std::uint64_t>(limits.max_connections_per_user));
        return per_connection > UINT64_MAX / connections ? UINT64_MAX : per_connection * connections;
    };
    options.core.limits.quota.bytes = per_user(options.core.limits.queue.max_bytes);
    options.core.limits.quota.fds = per_user(options.core.limits.queue.max_fds);
    options.core.limits.quota.messages = per_user(options.core.limits.queue.max_messages);
    options.core.limits.max_fds_per_message = static_cast<std::size_t>(limits.max_message_unix_fds);
    options.core.limits.max_message_bytes = static_cast<std::uint64_t>(limits.max_message_size);
    if (limits.reply_timeout > 0) {
        options.reply_timeout_ns = static_cast<std::uint64_t>(limits.reply_timeout) * 1'000'000u;
    }
    options.auth_timeout_ns = static_cast<std::uint64_t>(std::max(limits.auth_timeout, 1)) * 1'000'000u;
    options.max_incomplete_connections = static_cast<std::size_t>(limits.max_incomplete_connections);
    options.max_completed_connections = static_cast<std::size_t>(limits.max_completed_connections);
    options.service_dirs = configuration.servicedirs;
    options.bus_type = configuration.type.value_or("");
    options.servicehelper = configuration.servicehelper;
    options.service_start_timeout_ns =
        static_cast<std::uint64_t>(std::max(limits.service_start_timeout, 1)) * 1'000'000u;
    options.max_pending_service_starts = static_cast<std::size_t>(limits.max_pending_service_starts);
    options.endpoints = configuration.endpoints;
    return options;
}

// <user>: a bus started as root drops to this account once it listens.
bool switch_user(const std::string& user, std::string& error) {
    const passwd* entry = ::getpwnam(user.c_str());
    if (entry == nullptr) {
        error = "Could not get UID and GID for username \"" + user + "\"";
        return false;
    }
    if (::getuid() == entry->pw_uid) {
        return true;
    }
    if (::initgroups(entry->pw_name, entry->pw_gid) != 0 || ::setgid(entry->pw_gid) != 0 ||
        ::setuid(entry->pw_uid) != 0) {
        error = "Failed to drop privileges to user \"" + user + "\": " + std::strerror(errno);
        return false;
    }
    return true;
}

int fail(const std::string& message) {
    std::fprintf(stderr, "busgate: Failed to start message bus: %s\n", message.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    // Large messages (up to 16 MiB) come from the heap and freed memory stays for the next one:
    // with glibc's defaults each 1 MiB message buffer was a fresh mmap, and page faults took a
    // quarter of the bus's time in make bench's 1 MiB workload.
    ::mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
    ::mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);

    // Our own fds must never become 0, 1 or 2 (a caller may have closed them).
    for (int fd = 0; fd < 3; ++fd) {
        if (::fcntl(fd, F_GETFD) < 0) {
            ::open("/dev/null", O_RDWR);
        }
    }

    const CommandLineResult parsed =
        parse_command_line(std::span<const char* const>(argv, static_cast<std::size_t>(argc)));
    const CommandLine& command_line = parsed.command_line;
    switch (command_line.action) {
        case CommandLine::Action::help:
            std::fputs(usage_text("busgate").c_str(), stderr);
            return 1;
        case CommandLine::Action::version:
            std::printf(version_text, "0.1.0");
            return 0;
        case CommandLine::Action::introspect:
            std::printf("%s\n", bus::Driver::introspection_xml().c_str());
            return 0;
        default:
            break;
    }
    if (!parsed.error.empty()) {
        std::fprintf(stderr, "%s\n%s", parsed.error.c_str(), usage_text("busgate").c_str());
        return 1;
    }

    std::string web_error;
    if (!command_line.web.empty() && !web::parse_web_address(command_line.web, web_error)) {
        return fail("--web: " + web_error);
    }

    policy::Configuration configuration;
    try {
        configuration = policy::load_configuration(command_line.config_file);
    } catch (const policy::ConfigError& error) {
        return fail(error.describe());
    }
    if (command_line.action == CommandLine::Action::check_config) {
        std::printf("%s: configuration is valid\n", command_line.config_file.c_str());
        return 0;
    }
    for (const policy::ConfigWarning& warning : configuration.warnings) {
        std::fprintf(stderr, "busgate: %s:%d: %s\n", warning.file.c_str(), warning.line,
                     warning.message.c_str());
    }

    const bool fork_requested = command_line.fork == CommandLine::Fork::always ||
                                (command_line.fork == CommandLine::Fork::as_configured && configuration.fork);
    if (command_line.address.empty() && configuration.listen.empty() && sd_listen_fds(0) <= 0) {
        return fail("No listen addresses were specified in the configuration file");
    }

    transport::EventLoop loop;
    bus::DaemonOptions options = options_from(configuration, command_line);
    budget_descriptors(options, configuration.limits);
    bus::BusDaemon* running = nullptr;
    // SIGHUP and ReloadConfig: the new configuration is built completely before it replaces the old one;
    // a broken file changes nothing. Listen addresses and limits stay as they were at start.
    const auto reload = [&]() -> std::optional<std::string> {
        // Everything is checked before anything changes: a broken file leaves the old configuration in force.
        policy::Configuration candidate = configuration;
        if (auto failure = policy::reload_configuration(candidate, command_line.config_file)) {
            std::fprintf(stderr, "busgate: Unable to reload configuration: %s\n",
                         failure->describe().c_str());
            return failure->describe();
        }
        for (const policy::EndpointConfig& endpoint : candidate.endpoints) {
            std::string problem;
            if (!bus::endpoint_spec_of(endpoint, problem)) {
                std::fprintf(stderr, "busgate: Unable to reload configuration: %s\n", problem.c_str());
                return problem;
            }
        }
        if (running != nullptr) {
            if (auto problem = running->apply_policy(candidate.policy)) {
                std::fprintf(stderr, "busgate: Unable to reload configuration: %s\n", problem->c_str());
                return problem;
            }
        }
        configuration = std::move(candidate);
        if (running != nullptr) {
            running->reload_services(configuration.servicedirs);
            if (auto problem = running->configure_endpoints(configuration.endpoints)) {
                std::fprintf(stderr, "busgate: %s\n", problem->c_str());
                return problem;
            }
        }
        return std::nullopt;
    };
    options.reload = reload;
    bus::BusDaemon daemon(loop, std::move(options));
    running = &daemon;
    std::string error;
    if (!daemon.start(error)) {
        return fail(error);
    }

    int ready_pipe[2] = {-1, -1};
    if (fork_requested) {
        if (::pipe2(ready_pipe, O_CLOEXEC) != 0) {
            return fail("cannot create a pipe");
        }
        const pid_t child = ::fork();
        if (child < 0) {
            return fail(std::string("fork failed: ") + std::strerror(errno));
        }
        if (child > 0) {
            // Return only once the child is listening, so the caller can connect at once.
            ::close(ready_pipe[1]);
            char ready = 0;
            if (::read(ready_pipe[0], &ready, 1) != 1) {
                return 1;
            }
            if (command_line.print_address) {
                write_to(command_line.print_address_fd, daemon.address());
            }
            if (command_line.print_pid) {
                write_to(command_line.print_pid_fd, std::to_string(child));
            }
            std::_Exit(0);
        }
        ::close(ready_pipe[0]);
        // The parent prints the address and pid; a reader waiting for end-of-file on those descriptors
        // (dbus-launch, libdbus's X11 autolaunch) must not wait for the daemon to exit.
        for (const std::string* descriptor : {&command_line.print_address_fd, &command_line.print_pid_fd}) {
            if (const int fd = descriptor->empty() ? -1 : parse_descriptor(*descriptor); fd > STDERR_FILENO) {
                ::close(fd);
            }
        }
        ::setsid();
        if (!configuration.keep_umask) {
            ::umask(022);
        }
        (void)!::chdir("/");
        const int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, STDIN_FILENO);
        if (!std::getenv("DBUS_DEBUG_OUTPUT")) {
            ::dup2(null, STDOUT_FILENO);
            ::dup2(null, STDERR_FILENO);
        }
        ::close(null);
    }

    if (configuration.pidfile && command_line.write_pid_file) {
        std::ofstream pidfile(*configuration.pidfile, std::ios::trunc);
        // The write is buffered: a full disk (ENOSPC) only shows at the flush.
        if (!(pidfile << ::getpid() << '\n') || !pidfile.flush()) {
            return fail("Failed to write pid file \"" + *configuration.pidfile +
                        "\": " + std::strerror(errno));
        }
    }
    if (configuration.user && !switch_user(*configuration.user, error)) {
        return fail(error);
    }

    // The web interface starts in the process that serves the bus, as the user it serves as.
    std::unique_ptr<web::WebServer> web;
    if (!command_line.web.empty()) {
        auto hub = std::make_shared<web::WebHub>();
        web::WebOptions web_options{.address = command_line.web,
                                    .token_file = command_line.web_token_file,
                                    .data_directory = command_line.web_data_dir};
        web_options.snapshot = [&daemon] { return daemon.snapshot(); };
        web_options.policy_check = [&daemon](const bus::PolicyCheckRequest& request) {
            return daemon.check_policy(request);
        };
        web = std::make_unique<web::WebServer>(std::move(web_options), hub);
        if (!web->start(error)) {
            return fail("web interface: " + error);
        }
        daemon.attach_observer(std::move(hub));
        std::fprintf(stderr, "busgate: web interface on %s\n", web->url().c_str());
    }

    if (fork_requested) {
        (void)!::write(ready_pipe[1], "1", 1);
        ::close(ready_pipe[1]);
    } else {
        if (command_line.print_address) {
            write_to(command_line.print_address_fd, daemon.address());
        }
        if (command_line.print_pid) {
            write_to(command_line.print_pid_fd, std::to_string(::getpid()));
        }
    }

    std::signal(SIGPIPE, SIG_IGN);
    loop.watch_signals({SIGTERM, SIGINT, SIGHUP}, [&](int signal) {
        if (signal == SIGHUP) {
            (void)reload();
            return;
        }
        loop.quit();
    });
    sd_notify(0, "READY=1");
    loop.run();
    sd_notify(0, "STOPPING=1");
    web.reset();
    daemon.stop();
    if (configuration.pidfile && command_line.write_pid_file) {
        ::unlink(configuration.pidfile->c_str());
    }
    return 0;
}
