// busgate: the daemon's entry point. Behaves as dbus-daemon does from the outside: the same
// options, the same configuration files, the address and pid printed where asked, --fork returning
// only once the bus is listening, SIGTERM to stop and SIGHUP to reload.
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <string>

#include "bus/bus_daemon.h"
#include "bus/driver.h"
#include "busgate/policy/configuration.h"
#include "launch/command_line.h"
#include "launch/daemon_options.h"
#include "launch/daemonize.h"
#include "launch/descriptor_budget.h"
#include "launch/directory_watcher.h"
#include "launch/reload.h"
#include "launch/spawner.h"
#include "launch/web_interface.h"

using namespace busgate;
using namespace busgate::launch;

namespace {

constexpr const char* version_text =
    "busgate %s (D-Bus Message Bus Daemon compatible with dbus-daemon 1.14)\n"
    "This is free software; see the source for copying conditions.\n";

int fail(const std::string& message) {
    std::fprintf(stderr, "busgate: Failed to start message bus: %s\n", message.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    prepare_process();

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
    bus::DaemonOptions options = daemon_options(configuration, command_line);
    budget_descriptors(options, configuration.limits);
    options.spawner = std::make_shared<Spawner>();
    options.directory_watcher = std::make_shared<DirectoryWatcher>(loop);
    ConfigurationReload reload(configuration, command_line.config_file);
    options.reload = [&reload] { return reload.run(); };
    bus::BusDaemon daemon(loop, std::move(options));
    reload.attach(&daemon);
    std::string error;
    if (!daemon.start(error)) {
        return fail(error);
    }

    Daemonizer daemonizer(command_line, fork_requested, configuration.keep_umask);
    if (const Daemonizer::Detached detached = daemonizer.detach(daemon.address()); !detached.serve) {
        return detached.error.empty() ? detached.exit_status : fail(detached.error);
    }
    if (configuration.pidfile && command_line.write_pid_file) {
        if (auto problem = write_pid_file(*configuration.pidfile)) {
            return fail(*problem);
        }
    }
    if (configuration.user) {
        if (auto problem = switch_user(*configuration.user)) {
            return fail(*problem);
        }
    }

    // The web interface starts in the process that serves the bus, as the user it serves as.
    std::unique_ptr<web::WebServer> web;
    if (!command_line.web.empty() && !(web = start_web_interface(command_line, daemon, error))) {
        return fail("web interface: " + error);
    }
    daemonizer.ready(daemon.address());

    std::signal(SIGPIPE, SIG_IGN);
    loop.watch_signals({SIGTERM, SIGINT, SIGHUP}, [&](int signal) {
        if (signal == SIGHUP) {
            (void)reload.run();
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
