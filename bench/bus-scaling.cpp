// bench-bus-scaling: the cost curves of issue 19. For one point of one axis (so many idle
// connections, match rules, well-known names or container endpoints on the bus) it sets that
// background up, then measures what the bus spends on a fixed routed workload that has nothing to
// do with the background. A bus whose cost per message stays flat as the background grows scales;
// one that walks its peers, rules or names per message does not. Results are "key value" lines
// for tools/run-bus-scaling.
//
// The workloads, all with sd-bus clients of this one process (their CPU is not the bus's):
//   unicast    method calls to a well-known name, 32 in flight; two messages (call, reply) each
//   broadcast  a signal that exactly one subscriber's rule matches, 32 to 64 in flight
//   connect    connect, Hello, disconnect, one connection after the other (the per-peer setup cost)
//   epcall     (endpoints axis) unicast again, the caller a client of a container endpoint
// The setup of the background is measured too (bus CPU per connection, rule, name or endpoint
// client), since a cost that grows with the bus often shows there first. Bus CPU is read from the
// scheduler's per-thread run time (/proc/PID/task/*/schedstat, ns), not from /proc/PID/stat's
// 10 ms ticks, so a second of work gives a precise figure; each workload's second is five windows
// and the median window is reported, so that a burst of other load moves one window, not the result.
#include <signal.h>
#include <sys/resource.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support.h"

namespace {

using bench::Bus;
using bench::check;
using bench::Clock;
using bench::die;
using bench::seconds_since;

constexpr const char* service_name = "org.busgate.Bench";
constexpr const char* emitter_name = "org.busgate.BenchEmitter";
constexpr const char* object_path = "/org/busgate/Bench";
constexpr const char* interface_name = "org.busgate.Bench";

// The background of the match-rule and name axes lives on this many connections.
constexpr int background_owners = 100;
constexpr int pipeline_depth = 32;

struct Options {
    std::string address;
    bench::BusProcess bus;
    std::string axis;
    int size = 0;
    double seconds = 1.0;
    int connects = 1000;
    std::string endpoint_dir;
};

void print(const std::string& key, double value) {
    std::printf("%s %.6g\n", key.c_str(), value);
}

// Runs `bus` until `done` is set by one of its callbacks.
void drive(sd_bus* bus, const bool& done) {
    while (!done) {
        if (check(sd_bus_process(bus, nullptr), "sd_bus_process") == 0) {
            check(sd_bus_wait(bus, UINT64_MAX), "sd_bus_wait");
        }
    }
}

// Counts the replies of asynchronous driver calls and stops at the first error, naming the call.
struct PendingCalls {
    int outstanding = 0;
    bool done = true;
    const char* what = "";

    static int on_reply(sd_bus_message* reply, void* userdata, sd_bus_error*) {
        auto* self = static_cast<PendingCalls*>(userdata);
        if (sd_bus_message_is_method_error(reply, nullptr)) {
            std::fprintf(stderr, "bench-bus-scaling: %s failed: %s\n", self->what,
                         sd_bus_message_get_error(reply)->message);
            std::exit(2);
        }
        if (--self->outstanding == 0) {
            self->done = true;
        }
        return 0;
    }

    void call(sd_bus* bus, const char* member, const char* signature, const std::string& argument) {
        if (*signature == 's') {
            check(sd_bus_call_method_async(bus, nullptr, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus", member, on_reply, this, signature,
                                           argument.c_str()),
                  member);
        } else {
            check(sd_bus_call_method_async(bus, nullptr, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus", member, on_reply, this, signature,
                                           argument.c_str(), 0u),
                  member);
        }
        ++outstanding;
        done = false;
    }
    void wait(sd_bus* bus) { drive(bus, done); }
};

// A connection served by its own thread until the object goes away.
class ServedConnection {
  public:
    explicit ServedConnection(Bus bus) : bus_(std::move(bus)) {}
    ~ServedConnection() { stop(); }
    ServedConnection(const ServedConnection&) = delete;
    ServedConnection& operator=(const ServedConnection&) = delete;

    sd_bus* get() const { return bus_.get(); }
    // After this, only the thread touches the connection.
    void start(std::function<void()> after_drain = {}) {
        thread_ = std::thread([this, after_drain = std::move(after_drain)] {
            while (!stopping_.load(std::memory_order_relaxed)) {
                if (check(sd_bus_process(bus_.get(), nullptr), "sd_bus_process") > 0) {
                    continue;
                }
                if (after_drain) {
                    after_drain();
                }
                check(sd_bus_wait(bus_.get(), 100 * 1000), "sd_bus_wait");
            }
        });
    }
    void stop() {
        stopping_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }

  private:
    Bus bus_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

int answer_ping(sd_bus_message* message, void*, sd_bus_error*) {
    if (sd_bus_message_is_method_call(message, interface_name, "Ping") > 0) {
        check(sd_bus_reply_method_return(message, nullptr), "reply");
        return 1;
    }
    return 0;
}

// Calls Ping on the service with `depth` in flight until `seconds` have passed, then lets the
// outstanding calls come back.
struct Pipeline {
    sd_bus* bus = nullptr;
    Clock::time_point deadline;
    long issued = 0;
    long answered = 0;
    long errors = 0;
    bool done = false;

    void issue() {
        check(sd_bus_call_method_async(bus, nullptr, service_name, object_path, interface_name, "Ping",
                                       on_reply, this, ""),
              "call Ping");
        ++issued;
    }

    static int on_reply(sd_bus_message* reply, void* userdata, sd_bus_error*) {
        auto* self = static_cast<Pipeline*>(userdata);
        if (sd_bus_message_is_method_error(reply, nullptr)) {
            if (self->errors++ == 0) {
                std::fprintf(stderr, "bench-bus-scaling: Ping failed: %s\n",
                             sd_bus_message_get_error(reply)->message);
            }
        }
        ++self->answered;
        if (Clock::now() < self->deadline) {
            self->issue();
        } else if (self->answered == self->issued) {
            self->done = true;
        }
        return 0;
    }

    void run(double seconds, int depth) {
        deadline = Clock::now() +
                   std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
        for (int i = 0; i < depth; ++i) {
            issue();
        }
        drive(bus, done);
    }
};

// What the bus spent on one window of work.
struct Sample {
    double microseconds_per_message = 0;
    double wake_ups_per_message = 0;
    double messages = 0;
    double seconds = 0;
};

// Runs `work` (which returns how many messages it routed) and reads the bus's scheduler counters
// around it.
template <typename Work>
Sample sample(const Options& options, Work&& work) {
    const auto before = options.bus.scheduled();
    const double cpu_before = options.bus.cpu_precise_seconds();
    const auto start = Clock::now();
    const double messages = static_cast<double>(work());
    Sample result;
    result.seconds = seconds_since(start);
    const double cpu = options.bus.cpu_precise_seconds() - cpu_before;
    const auto after = options.bus.scheduled();
    result.messages = std::max(messages, 1.0);
    result.microseconds_per_message = cpu * 1e6 / result.messages;
    result.wake_ups_per_message =
        before.slices >= 0 ? static_cast<double>(after.slices - before.slices) / result.messages : -1;
    return result;
}

// The measured time is split into windows and the median window reported: a burst of other load on
// the machine then moves one window, not the figure.
constexpr int windows = 5;

void report(const std::string& key, std::vector<Sample> samples) {
    double messages = 0;
    double seconds = 0;
    for (const auto& one : samples) {
        messages += one.messages;
        seconds += one.seconds;
    }
    const auto middle = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
    std::nth_element(samples.begin(), middle, samples.end(), [](const Sample& a, const Sample& b) {
        return a.microseconds_per_message < b.microseconds_per_message;
    });
    print(key + "_us_per_msg", middle->microseconds_per_message);
    std::nth_element(samples.begin(), middle, samples.end(), [](const Sample& a, const Sample& b) {
        return a.wake_ups_per_message < b.wake_ups_per_message;
    });
    print(key + "_wake_ups_per_msg", middle->wake_ups_per_message);
    print(key + "_msgs", messages);
    print(key + "_msgs_per_s", messages / seconds);
}

// Bus CPU per routed message of Ping calls from `caller`: each call is two messages through the
// bus, the call and its reply.
void measure_unicast(const Options& options, sd_bus* caller, const std::string& key) {
    long errors = 0;
    const auto calls = [&](double seconds) {
        Pipeline pipeline;
        pipeline.bus = caller;
        pipeline.run(seconds, pipeline_depth);
        errors += pipeline.errors;
        return 2 * pipeline.answered;
    };
    calls(0.2);  // warm-up
    std::vector<Sample> samples;
    for (int i = 0; i < windows; ++i) {
        samples.push_back(sample(options, [&] { return calls(options.seconds / windows); }));
    }
    report(key, std::move(samples));
    print(key + "_errors", static_cast<double>(errors));
}

// The subscriber counts its Ticks in its own thread and wakes the emitter whenever it has read all
// that arrived, so the emitter keeps between one and two windows of signals in flight.
struct TickCount {
    std::atomic<long> received{0};
    std::mutex lock;
    std::condition_variable changed;

    static int on_message(sd_bus_message* message, void* userdata, sd_bus_error*) {
        if (sd_bus_message_is_signal(message, interface_name, "Tick") > 0) {
            static_cast<TickCount*>(userdata)->received.fetch_add(1, std::memory_order_relaxed);
        }
        return 0;
    }
    void drained() {
        { const std::lock_guard<std::mutex> held(lock); }
        changed.notify_one();
    }
    // Waits until at least `count` Ticks arrived or `timeout` passed; returns whether they did.
    bool wait_for(long count, std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> held(lock);
        return changed.wait_for(held, timeout, [&] { return received.load() >= count; });
    }
};

void emit_ticks(sd_bus* emitter, TickCount& ticks, double seconds, long& emitted, long& lost) {
    const auto start = Clock::now();
    const long first = ticks.received.load();
    long sent = 0;
    while (seconds_since(start) < seconds) {
        for (int i = 0; i < pipeline_depth; ++i) {
            check(sd_bus_emit_signal(emitter, object_path, interface_name, "Tick", "s", "tick"), "emit Tick");
        }
        sent += pipeline_depth;
        check(sd_bus_flush(emitter), "flush");
        if (!ticks.wait_for(first + sent - pipeline_depth, std::chrono::seconds(5))) {
            break;
        }
    }
    ticks.wait_for(first + sent, std::chrono::seconds(5));
    emitted = sent;
    lost = first + sent - ticks.received.load();
}

void measure_broadcast(const Options& options, sd_bus* emitter, TickCount& ticks) {
    long lost = 0;
    const auto signals = [&](double seconds) {
        long emitted = 0;
        long missing = 0;
        emit_ticks(emitter, ticks, seconds, emitted, missing);
        lost += missing;
        return emitted;
    };
    signals(0.2);  // warm-up
    std::vector<Sample> samples;
    for (int i = 0; i < windows; ++i) {
        samples.push_back(sample(options, [&] { return signals(options.seconds / windows); }));
    }
    report("broadcast", std::move(samples));
    print("broadcast_lost", static_cast<double>(lost));
}

// Bus CPU per connection of connect + Hello + disconnect, one after the other: `connects` in all,
// or as many as fit into the measured time where a bus takes longer (at least a few per window).
// The bus and this thread share one CPU meanwhile, as in run-bus-benchmarks' storm on one CPU:
// without that the figure jumps between two values by where the scheduler put them.
void measure_connect(const Options& options) {
    const int per_window = std::max(1, options.connects / windows);
    const bench::OneCpu pinned({0, options.bus.pid});
    // The first connections of a fresh bus also grow its tables and buffers: not what is measured.
    for (int c = 0; c < 20; ++c) {
        bench::wait_registered(bench::connect(options.address).get());
    }
    std::vector<Sample> samples;
    for (int i = 0; i < windows; ++i) {
        samples.push_back(sample(options, [&] {
            const auto start = Clock::now();
            int made = 0;
            while (made < per_window && (made < 5 || seconds_since(start) < options.seconds / windows)) {
                Bus bus = bench::connect(options.address);
                bench::wait_registered(bus.get());
                ++made;
            }
            return made;
        }));
    }
    report("connect", std::move(samples));
}

// Connects `count` clients to `address`, a few Hellos in flight at a time so that no bus meets an
// unbounded burst of new sockets.
void connect_many(const std::string& address, int count, std::vector<Bus>& into) {
    const std::size_t first = into.size();
    for (int i = 0; i < count; ++i) {
        into.push_back(bench::connect(address));
        if (i % 64 == 63) {
            for (std::size_t j = into.size() - 64; j < into.size(); ++j) {
                bench::wait_registered(into[j].get());
            }
        }
    }
    for (std::size_t j = first; j < into.size(); ++j) {
        bench::wait_registered(into[j].get());
    }
}

// Rules a real client holds, none of which matches the measured traffic, so every one is work a
// bus must skip: NameOwnerChanged watches by arg0, the measured signal from another sender or with
// another arg0, other interfaces, members and paths. Each is unique to its connection and index.
std::string background_rule(int connection, int index) {
    const std::string tag = std::to_string(connection) + "x" + std::to_string(index);
    switch (index % 8) {
        case 0:
            return "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                   "member='NameOwnerChanged',arg0='org.busgate.Watched" +
                   tag + "'";
        case 1:
            return "type='signal',sender='org.busgate.Other" + tag +
                   "',interface='org.busgate.Bench',member='Tick'";
        case 2:
            return "type='signal',interface='org.busgate.Other" + tag + "',member='Changed'";
        case 3:
            return std::string("type='signal',sender='") + emitter_name +
                   "',interface='org.busgate.Bench',member='Tick',arg0='nomatch" + tag + "'";
        case 4:
            return "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                   "path='/org/busgate/Other/o" +
                   tag + "'";
        case 5:
            return std::string("type='signal',sender='") + emitter_name +
                   "',interface='org.busgate.Bench',member='Other" + tag + "'";
        case 6:
            return "type='signal',path_namespace='/org/busgate/Other" + tag + "'";
        default:
            return std::string("type='signal',sender='") + emitter_name + "',path='/org/busgate/Bench/o" +
                   tag + "'";
    }
}

// The connections that will hold the axis's rules or names, made before the setup is measured so
// that its cost per item is that of AddMatch or RequestName alone.
void connect_owners(const Options& options, std::vector<Bus>& background) {
    if (options.axis == "matches") {
        connect_many(options.address, background_owners, background);
    } else if (options.axis == "names") {
        connect_many(options.address, std::min(background_owners, options.size), background);
    }
}

// Sets up the axis's background and returns how many items (connections, rules, names, endpoint
// clients) it holds.
long set_up_background(const Options& options, std::vector<Bus>& background) {
    if (options.axis == "connections") {
        connect_many(options.address, options.size, background);
        return options.size;
    }
    if (options.axis == "matches") {
        for (int c = 0; c < background_owners; ++c) {
            PendingCalls pending{0, true, "AddMatch"};
            for (int r = 0; r < options.size; ++r) {
                pending.call(background[static_cast<std::size_t>(c)].get(), "AddMatch", "s",
                             background_rule(c, r));
            }
            pending.wait(background[static_cast<std::size_t>(c)].get());
        }
        return static_cast<long>(background_owners) * options.size;
    }
    if (options.axis == "names") {
        const int owners = static_cast<int>(background.size());
        for (int c = 0; c < owners; ++c) {
            PendingCalls pending{0, true, "RequestName"};
            for (int n = c; n < options.size; n += owners) {
                pending.call(background[static_cast<std::size_t>(c)].get(), "RequestName", "su",
                             "org.busgate.Scaling.c" + std::to_string(c) + ".n" + std::to_string(n));
            }
            pending.wait(background[static_cast<std::size_t>(c)].get());
        }
        return options.size;
    }
    if (options.axis == "endpoints") {
        for (int e = 0; e < options.size; ++e) {
            connect_many("unix:path=" + options.endpoint_dir + "/ep" + std::to_string(e), 1, background);
        }
        return options.size;
    }
    die("unknown axis", EINVAL);
}

int usage() {
    std::fprintf(stderr,
                 "usage: bench-bus-scaling ADDRESS --bus-pid=PID --axis=AXIS --size=N [--seconds=S]\n"
                 "                         [--connects=N] [--endpoint-dir=DIR]\n"
                 "axes: connections (idle connections), matches (rules on each of 100 connections),\n"
                 "      names (well-known names over at most 100 connections), endpoints (container\n"
                 "      endpoints DIR/ep0 .. DIR/epN-1 that the bus was configured with, one client each;\n"
                 "      endpoint ep0 must let its clients talk to org.busgate.Bench)\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        return usage();
    }
    Options options;
    options.address = argv[1];
    for (int i = 2; i < argc; ++i) {
        const std::string argument = argv[i];
        const auto value = [&](const char* prefix) {
            return argument.rfind(prefix, 0) == 0 ? argument.substr(std::string(prefix).size())
                                                  : std::string();
        };
        if (argument.rfind("--bus-pid=", 0) == 0) {
            options.bus.pid = std::stoi(value("--bus-pid="));
        } else if (argument.rfind("--axis=", 0) == 0) {
            options.axis = value("--axis=");
        } else if (argument.rfind("--size=", 0) == 0) {
            options.size = std::stoi(value("--size="));
        } else if (argument.rfind("--seconds=", 0) == 0) {
            options.seconds = std::stod(value("--seconds="));
        } else if (argument.rfind("--connects=", 0) == 0) {
            options.connects = std::stoi(value("--connects="));
        } else if (argument.rfind("--endpoint-dir=", 0) == 0) {
            options.endpoint_dir = value("--endpoint-dir=");
        } else {
            return usage();
        }
    }
    const bool known_axis = options.axis == "connections" || options.axis == "matches" ||
                            options.axis == "names" || options.axis == "endpoints";
    if (options.bus.pid <= 0 || !known_axis || options.size <= 0 ||
        (options.axis == "endpoints" && options.endpoint_dir.empty())) {
        return usage();
    }
    bench::raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, nullptr, _IOLBF, 0);

    // The measured parties come first, so that the background is all that differs between points.
    ServedConnection service(bench::connect(options.address));
    check(sd_bus_request_name(service.get(), service_name, 0), "RequestName service");
    check(sd_bus_add_filter(service.get(), nullptr, answer_ping, nullptr), "add_filter");
    service.start();

    Bus caller = bench::connect(options.address);
    bench::wait_registered(caller.get());
    Bus emitter = bench::connect(options.address);
    check(sd_bus_request_name(emitter.get(), emitter_name, 0), "RequestName emitter");

    // The subscriber's rule goes to the bus through AddMatch itself: sd-bus's own matching of a
    // well-known sender would depend on its name tracking, and a filter counts just as well.
    TickCount ticks;
    ServedConnection subscriber(bench::connect(options.address));
    const std::string rule = std::string("type='signal',sender='") + emitter_name + "',path='" + object_path +
                             "',interface='" + interface_name + "',member='Tick'";
    PendingCalls added{0, true, "AddMatch"};
    added.call(subscriber.get(), "AddMatch", "s", rule);
    added.wait(subscriber.get());
    check(sd_bus_add_filter(subscriber.get(), nullptr, TickCount::on_message, &ticks), "add_filter");
    subscriber.start([&ticks] { ticks.drained(); });

    Bus endpoint_caller;
    if (options.axis == "endpoints") {
        endpoint_caller = bench::connect("unix:path=" + options.endpoint_dir + "/ep0");
        bench::wait_registered(endpoint_caller.get());
    }

    std::vector<Bus> background;
    connect_owners(options, background);
    const double setup_cpu_before = options.bus.cpu_precise_seconds();
    const auto setup_start = Clock::now();
    const long items = set_up_background(options, background);
    const double setup_seconds = seconds_since(setup_start);
    const double setup_cpu = options.bus.cpu_precise_seconds() - setup_cpu_before;
    print("axis_" + options.axis, options.size);
    print("setup_items", static_cast<double>(items));
    print("setup_s", setup_seconds);
    print("setup_us_per_item", setup_cpu * 1e6 / static_cast<double>(items));
    print("bus_rss_kib", static_cast<double>(options.bus.status_kib("VmRSS")));

    measure_unicast(options, caller.get(), "unicast");
    measure_broadcast(options, emitter.get(), ticks);
    if (endpoint_caller) {
        measure_unicast(options, endpoint_caller.get(), "epcall");
    }
    measure_connect(options);

    subscriber.stop();
    service.stop();
    return 0;
}
