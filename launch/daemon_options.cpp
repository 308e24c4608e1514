#include "launch/daemon_options.h"

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>

#include "bus/bus_daemon.h"
#include "busgate/util/users.h"

namespace busgate::launch {
namespace {

std::string home_directory() {
    if (const auto user = util::user_by_uid(::getuid())) {
        return user->home;
    }
    const char* home = std::getenv("HOME");
    return home ? home : "/";
}

}  // namespace

bus::DaemonOptions daemon_options(const policy::Configuration& configuration,
                                  const CommandLine& command_line) {
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
        if (const auto user = util::user_by_name(*configuration.user)) {
            options.bus_uid = user->uid;
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
    options.max_endpoints = static_cast<std::size_t>(std::max(limits.max_containers, 0));
    options.max_endpoints_per_user = static_cast<std::size_t>(std::max(limits.max_containers_per_user, 0));
    options.max_connections_per_user_endpoint =
        static_cast<std::size_t>(std::max(limits.max_connections_per_container, 0));
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

}  // namespace busgate::launch
