// libdbus-bench-client: sequential and pipelined calls with libdbus on both ends, as libdbus
// applications make them (one message per write, read what arrives), on a bus or peer to peer.
// Prints "key value" lines for tools/run-bus-benchmarks; exits non-zero if a call went unanswered.
#include <dbus/dbus.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "clients.h"

namespace {

constexpr const char* service_name = "org.busgate.BenchLibDBus";
constexpr const char* object_path = "/org/busgate/Bench";
constexpr const char* interface_name = "org.busgate.Bench";

[[noreturn]] void die(const char* what, const DBusError& error) {
    std::fprintf(stderr, "libdbus-bench-client: %s: %s\n", what, error.message ? error.message : "failed");
    std::exit(2);
}

// Answers every method call with an empty reply until the peer goes away. What is queued is taken
// before blocking on the socket: a blocking call before (RequestName) may have read a call already,
// and read_write would then wait for a message that has long arrived.
[[noreturn]] void serve(DBusConnection* connection) {
    do {
        while (DBusMessage* message = dbus_connection_pop_message(connection)) {
            if (dbus_message_get_type(message) == DBUS_MESSAGE_TYPE_METHOD_CALL) {
                DBusMessage* reply = dbus_message_new_method_return(message);
                dbus_connection_send(connection, reply, nullptr);
                dbus_message_unref(reply);
            }
            dbus_message_unref(message);
        }
    } while (dbus_connection_read_write(connection, -1));
    std::_Exit(0);
}

DBusConnection* connect_bus(const std::string& address) {
    DBusError error;
    dbus_error_init(&error);
    DBusConnection* connection = dbus_connection_open_private(address.c_str(), &error);
    if (!connection || !dbus_bus_register(connection, &error)) {
        die("connect", error);
    }
    return connection;
}

DBusMessage* new_call(bool on_bus) {
    return dbus_message_new_method_call(on_bus ? service_name : nullptr, object_path, interface_name, "Ping");
}

// The peer-to-peer service: a DBusServer in this (child) process, driven without a main loop.
void on_new_connection(DBusServer*, DBusConnection* connection, void* accepted) {
    dbus_connection_ref(connection);
    *static_cast<DBusConnection**>(accepted) = connection;
}

dbus_bool_t add_watch(DBusWatch* watch, void* watches) {
    static_cast<std::vector<DBusWatch*>*>(watches)->push_back(watch);
    return TRUE;
}

void remove_watch(DBusWatch*, void*) {}

[[noreturn]] void serve_peer(DBusServer* server) {
    std::vector<DBusWatch*> watches;
    DBusConnection* accepted = nullptr;
    dbus_server_set_new_connection_function(server, on_new_connection, &accepted, nullptr);
    dbus_server_set_watch_functions(server, add_watch, remove_watch, nullptr, &watches, nullptr);
    while (!accepted) {
        for (DBusWatch* watch : watches) {
            if (!dbus_watch_get_enabled(watch)) {
                continue;
            }
            pollfd ready{dbus_watch_get_unix_fd(watch), POLLIN, 0};
            if (poll(&ready, 1, 100) > 0) {
                dbus_watch_handle(watch, DBUS_WATCH_READABLE);
            }
        }
    }
    serve(accepted);
}

void sequential(const bench::ClientOptions& options, DBusConnection* connection, const std::string& prefix) {
    const int calls = options.sequential_calls();
    bench::Latencies latencies;
    const double cpu_before = bench::process_cpu_seconds(options.bus_pid);
    const auto start = bench::Clock::now();
    for (int i = 0; i < calls; ++i) {
        const auto sent = bench::Clock::now();
        DBusMessage* call = new_call(!options.address.empty());
        DBusError error;
        dbus_error_init(&error);
        DBusMessage* reply = dbus_connection_send_with_reply_and_block(connection, call, -1, &error);
        dbus_message_unref(call);
        if (!reply) {
            die("sequential Ping", error);
        }
        dbus_message_unref(reply);
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

// What a new client pays before its first answer: connect, authenticate, Hello, one call (through a proxy,
// also the proxy's own connection to the bus and its bootstrap), one after the other.
void connects(const bench::ClientOptions& options, const std::string& address, const std::string& prefix) {
    const int connections = options.quick ? 50 : 500;
    bench::Latencies latencies;
    const auto start = bench::Clock::now();
    for (int i = 0; i < connections; ++i) {
        const auto began = bench::Clock::now();
        DBusConnection* connection = connect_bus(address);
        DBusMessage* call = new_call(true);
        DBusError error;
        dbus_error_init(&error);
        DBusMessage* reply = dbus_connection_send_with_reply_and_block(connection, call, -1, &error);
        dbus_message_unref(call);
        if (!reply) {
            die("the first call", error);
        }
        dbus_message_unref(reply);
        latencies.add(bench::seconds_since(began) * 1e6);
        dbus_connection_close(connection);
        dbus_connection_unref(connection);
    }
    bench::print(prefix + "_connect_per_s", connections / bench::seconds_since(start));
    bench::print(prefix + "_connect_p50_us", latencies.percentile(50));
    bench::print(prefix + "_connect_done", connections);
}

void pipelined(const bench::ClientOptions& options, DBusConnection* connection, const std::string& prefix) {
    const int total = options.pipelined_calls();
    int issued = 0;
    int answered = 0;
    int errors = 0;
    auto issue = [&] {
        DBusMessage* call = new_call(!options.address.empty());
        dbus_connection_send(connection, call, nullptr);
        dbus_message_unref(call);
        ++issued;
    };
    const double cpu_before = bench::process_cpu_seconds(options.bus_pid);
    const auto start = bench::Clock::now();
    while (issued < bench::ClientOptions::depth && issued < total) {
        issue();
    }
    // As in serve(): what is queued first, then the socket.
    do {
        while (DBusMessage* message = dbus_connection_pop_message(connection)) {
            const int type = dbus_message_get_type(message);
            dbus_message_unref(message);
            if (type != DBUS_MESSAGE_TYPE_METHOD_RETURN && type != DBUS_MESSAGE_TYPE_ERROR) {
                continue;
            }
            errors += type == DBUS_MESSAGE_TYPE_ERROR ? 1 : 0;
            ++answered;
            if (issued < total) {
                issue();
            }
        }
    } while (answered < total && dbus_connection_read_write(connection, -1));
    const double elapsed = bench::seconds_since(start);
    const double cpu = bench::process_cpu_seconds(options.bus_pid) - cpu_before;
    // Each call is two messages: the call and its reply.
    bench::print(prefix + "_pipe_msgs_per_s", 2.0 * answered / elapsed);
    if (options.bus_pid > 0) {
        bench::print(prefix + "_pipe_bus_cpu_us_per_msg", cpu * 1e6 / (2.0 * total));
    }
    bench::print(prefix + "_pipe_replies", answered);
    bench::print(prefix + "_pipe_errors", errors);
    if (answered != total || errors > 0) {
        std::fprintf(stderr, "libdbus-bench-client: %d of %d calls answered, %d errors\n", answered, total,
                     errors);
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const bench::ClientOptions options = bench::parse_client_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, nullptr, _IOLBF, 0);
    const bool on_bus = !options.address.empty();
    DBusServer* server = nullptr;
    if (!on_bus) {
        DBusError error;
        dbus_error_init(&error);
        server = dbus_server_listen("unix:tmpdir=/tmp", &error);
        if (!server) {
            die("listen", error);
        }
    }
    const pid_t service = fork();
    if (service == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (on_bus) {
            DBusConnection* connection = connect_bus(options.address);
            DBusError error;
            dbus_error_init(&error);
            if (dbus_bus_request_name(connection, service_name, DBUS_NAME_FLAG_DO_NOT_QUEUE, &error) !=
                DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER) {
                die("RequestName", error);
            }
            serve(connection);
        }
        serve_peer(server);
    }
    DBusConnection* connection = nullptr;
    const std::string caller_address =
        options.caller_address.empty() ? options.address : options.caller_address;
    if (on_bus) {
        connection = connect_bus(caller_address);
        // Until the service owns its name, calls fail with ServiceUnknown.
        const auto start = bench::Clock::now();
        for (;;) {
            DBusMessage* call = new_call(true);
            DBusError error;
            dbus_error_init(&error);
            DBusMessage* reply = dbus_connection_send_with_reply_and_block(connection, call, -1, &error);
            dbus_message_unref(call);
            if (reply) {
                dbus_message_unref(reply);
                break;
            }
            if (bench::seconds_since(start) > 10) {
                die("the service never answered", error);
            }
            dbus_error_free(&error);
            usleep(10000);
        }
    } else {
        char* address = dbus_server_get_address(server);
        DBusError error;
        dbus_error_init(&error);
        connection = dbus_connection_open_private(address, &error);
        dbus_free(address);
        if (!connection) {
            die("connect to the peer", error);
        }
    }
    const std::string prefix = on_bus ? "libdbus" : "p2p_libdbus";
    sequential(options, connection, prefix);
    pipelined(options, connection, prefix);
    if (on_bus) {
        connects(options, caller_address, prefix);
    }
    dbus_connection_close(connection);
    dbus_connection_unref(connection);
    kill(service, SIGTERM);
    waitpid(service, nullptr, 0);
    return 0;
}
