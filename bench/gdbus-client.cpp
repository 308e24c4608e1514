// gdbus-bench-client: sequential and pipelined calls with GDBus (GDBusConnection) on both ends, as
// GLib applications make them (a registered object answering, g_dbus_connection_call), on a bus or
// peer to peer. Prints "key value" lines for tools/run-bus-benchmarks; exits non-zero if a call went
// unanswered.
#include <gio/gio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "clients.h"

namespace {

// GDBus spends several times what libdbus and sd-bus do per call (a worker thread, GVariant), so it
// makes fewer calls in the same time; these keep its share of `make bench` to a few seconds.
constexpr int sequential_share = 4;
constexpr int pipelined_share = 5;

constexpr const char* service_name = "org.busgate.BenchGDBus";
constexpr const char* object_path = "/org/busgate/Bench";
constexpr const char* interface_name = "org.busgate.Bench";
constexpr const char* introspection =
    "<node><interface name='org.busgate.Bench'><method name='Ping'/></interface></node>";

[[noreturn]] void die(const char* what, GError* error) {
    std::fprintf(stderr, "gdbus-bench-client: %s: %s\n", what, error ? error->message : "failed");
    std::exit(2);
}

void answer(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar*, GVariant*,
            GDBusMethodInvocation* invocation, gpointer) {
    g_dbus_method_invocation_return_value(invocation, nullptr);
}

void quit_on_close(GDBusConnection*, gboolean, GError*, gpointer) {
    std::_Exit(0);
}

// Serves Ping on `connection` (whose message processing may be delayed until now) until the peer goes away.
[[noreturn]] void serve(GDBusConnection* connection) {
    GError* error = nullptr;
    GDBusNodeInfo* node = g_dbus_node_info_new_for_xml(introspection, &error);
    if (!node) {
        die("introspection", error);
    }
    static const GDBusInterfaceVTable vtable = {answer, nullptr, nullptr, {}};
    if (!g_dbus_connection_register_object(connection, object_path, node->interfaces[0], &vtable, nullptr,
                                           nullptr, &error)) {
        die("register_object", error);
    }
    g_signal_connect(connection, "closed", G_CALLBACK(quit_on_close), nullptr);
    g_dbus_connection_start_message_processing(connection);
    g_main_loop_run(g_main_loop_new(nullptr, FALSE));
    std::_Exit(0);
}

GDBusConnection* connect_bus(const std::string& address) {
    GError* error = nullptr;
    GDBusConnection* connection = g_dbus_connection_new_for_address_sync(
        address.c_str(),
        static_cast<GDBusConnectionFlags>(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                          G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION),
        nullptr, nullptr, &error);
    if (!connection) {
        die("connect", error);
    }
    return connection;
}

// One end of a socketpair as a GDBus peer connection.
GDBusConnection* connect_peer(int fd, bool server) {
    GError* error = nullptr;
    GSocket* socket = g_socket_new_from_fd(fd, &error);
    if (!socket) {
        die("g_socket_new_from_fd", error);
    }
    GSocketConnection* stream = g_socket_connection_factory_create_connection(socket);
    gchar* guid = server ? g_dbus_generate_guid() : nullptr;
    const auto flags = server ? G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER |
                                    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_ALLOW_ANONYMOUS |
                                    G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING
                              : G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT;
    GDBusConnection* connection = g_dbus_connection_new_sync(
        G_IO_STREAM(stream), guid, static_cast<GDBusConnectionFlags>(flags), nullptr, nullptr, &error);
    g_free(guid);
    if (!connection) {
        die("peer connection", error);
    }
    return connection;
}

GVariant* call(GDBusConnection* connection, const char* destination, GError** error) {
    return g_dbus_connection_call_sync(connection, destination, object_path, interface_name, "Ping", nullptr,
                                       nullptr, G_DBUS_CALL_FLAGS_NONE, -1, nullptr, error);
}

void sequential(const bench::ClientOptions& options, GDBusConnection* connection, const char* destination,
                const std::string& prefix) {
    const int calls = options.sequential_calls() / sequential_share;
    bench::Latencies latencies;
    const double cpu_before = bench::process_cpu_seconds(options.bus_pid);
    const auto start = bench::Clock::now();
    for (int i = 0; i < calls; ++i) {
        const auto sent = bench::Clock::now();
        GError* error = nullptr;
        GVariant* reply = call(connection, destination, &error);
        if (!reply) {
            die("sequential Ping", error);
        }
        g_variant_unref(reply);
        latencies.add(bench::seconds_since(sent) * 1e6);
    }
    const double elapsed = bench::seconds_since(start);
    const double cpu = bench::process_cpu_seconds(options.bus_pid) - cpu_before;
    bench::print(prefix + "_seq_calls_per_s", calls / elapsed);
    bench::print(prefix + "_seq_p50_us", latencies.percentile(50));
    bench::print(prefix + "_seq_p99_us", latencies.percentile(99));
    if (options.bus_pid > 0) {
        bench::print(prefix + "_seq_bus_cpu_us_per_call", cpu * 1e6 / calls);
    }
    bench::print(prefix + "_seq_replies", calls);
}

struct Pipeline {
    GDBusConnection* connection = nullptr;
    const char* destination = nullptr;
    GMainLoop* loop = nullptr;
    int total = 0;
    int issued = 0;
    int answered = 0;
    int errors = 0;

    void issue() {
        g_dbus_connection_call(connection, destination, object_path, interface_name, "Ping", nullptr, nullptr,
                               G_DBUS_CALL_FLAGS_NONE, -1, nullptr, on_reply, this);
        ++issued;
    }

    static void on_reply(GObject* source, GAsyncResult* result, gpointer data) {
        auto* self = static_cast<Pipeline*>(data);
        GError* error = nullptr;
        GVariant* reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (reply) {
            g_variant_unref(reply);
        } else {
            ++self->errors;
            g_error_free(error);
        }
        ++self->answered;
        if (self->issued < self->total) {
            self->issue();
        }
        if (self->answered == self->total) {
            g_main_loop_quit(self->loop);
        }
    }
};

void pipelined(const bench::ClientOptions& options, GDBusConnection* connection, const char* destination,
               const std::string& prefix) {
    Pipeline pipeline{connection, destination, g_main_loop_new(nullptr, FALSE),
                      options.pipelined_calls() / pipelined_share};
    const double cpu_before = bench::process_cpu_seconds(options.bus_pid);
    const auto start = bench::Clock::now();
    while (pipeline.issued < bench::ClientOptions::depth && pipeline.issued < pipeline.total) {
        pipeline.issue();
    }
    g_main_loop_run(pipeline.loop);
    const double elapsed = bench::seconds_since(start);
    const double cpu = bench::process_cpu_seconds(options.bus_pid) - cpu_before;
    // Each call is two messages: the call and its reply.
    bench::print(prefix + "_pipe_msgs_per_s", 2.0 * pipeline.answered / elapsed);
    if (options.bus_pid > 0) {
        bench::print(prefix + "_pipe_bus_cpu_us_per_msg", cpu * 1e6 / (2.0 * pipeline.total));
    }
    bench::print(prefix + "_pipe_replies", pipeline.answered);
    bench::print(prefix + "_pipe_errors", pipeline.errors);
    g_main_loop_unref(pipeline.loop);
    if (pipeline.errors > 0) {
        std::fprintf(stderr, "gdbus-bench-client: %d of %d calls failed\n", pipeline.errors, pipeline.total);
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const bench::ClientOptions options = bench::parse_client_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, nullptr, _IOLBF, 0);
    const bool on_bus = !options.address.empty();
    int pair[2] = {-1, -1};
    if (!on_bus && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        die("socketpair", nullptr);
    }
    // Forked before GLib starts its worker thread in this process.
    const pid_t service = fork();
    if (service == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (!on_bus) {
            close(pair[0]);
            serve(connect_peer(pair[1], true));
        }
        GDBusConnection* connection = connect_bus(options.address);
        GError* error = nullptr;
        GVariant* reply = g_dbus_connection_call_sync(
            connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
            "RequestName", g_variant_new("(su)", service_name, 4u), G_VARIANT_TYPE("(u)"),
            G_DBUS_CALL_FLAGS_NONE, -1, nullptr, &error);
        if (!reply) {
            die("RequestName", error);
        }
        g_variant_unref(reply);
        serve(connection);
    }
    GDBusConnection* connection = nullptr;
    const char* destination = on_bus ? service_name : nullptr;
    if (on_bus) {
        connection = connect_bus(options.address);
        // Until the service owns its name, calls fail with ServiceUnknown.
        const auto start = bench::Clock::now();
        for (;;) {
            GError* error = nullptr;
            GVariant* reply = call(connection, destination, &error);
            if (reply) {
                g_variant_unref(reply);
                break;
            }
            if (bench::seconds_since(start) > 10) {
                die("the service never answered", error);
            }
            g_error_free(error);
            usleep(10000);
        }
    } else {
        close(pair[1]);
        connection = connect_peer(pair[0], false);
    }
    const std::string prefix = on_bus ? "gdbus" : "p2p_gdbus";
    sequential(options, connection, destination, prefix);
    pipelined(options, connection, destination, prefix);
    g_dbus_connection_close_sync(connection, nullptr, nullptr);
    g_object_unref(connection);
    kill(service, SIGTERM);
    waitpid(service, nullptr, 0);
    return 0;
}
