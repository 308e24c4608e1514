// bench-bus-workloads: the side-by-side bus workloads of `make bench` (issues 8 and 19), one sd-bus
// client program run against any bus address. It measures what clients see (rates, latencies, losses)
// and, given the bus's pid, what the bus process spends (CPU time from /proc/PID/stat, VmHWM/VmRSS from
// /proc/PID/status). Results are printed as "key value" lines for tools/run-bus-benchmarks.
//
// Two kinds of rows. Real clients: sd-bus on both ends (caller, an sd-bus service, sd-bus
// subscribers), each writing one message per sendmsg and reading what arrives, as applications do;
// `p2p` runs the same calls over a socketpair with no bus, the physical limit. Raw frames: once sd-bus
// has set the connections up, the callers, a raw service and the subscribers write and read dbus1
// frames themselves, in batches, so that the clients do not set the pace.
//
// The one rule: a workload never hides a lost message. Fan-out counts every delivery per subscriber
// and reports what did not arrive; --quick exits non-zero if anything was lost.
//
// It also carries `launch-broker`: dbus-broker-launch needs a passed listening socket and the
// journal socket, which this container lacks, so that mode gives it a private /run/systemd.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "clients.h"

namespace {

constexpr const char* service_name = "org.busgate.Bench";              // answers from raw frames
constexpr const char* sd_bus_service_name = "org.busgate.BenchSdBus";  // an sd-bus service
constexpr const char* object_path = "/org/busgate/Bench";
constexpr const char* interface_name = "org.busgate.Bench";

using bench::Clock;
using bench::seconds_since;

[[noreturn]] void die(const char* what, int error) {
    std::fprintf(stderr, "bench-bus-workloads: %s: %s\n", what, std::strerror(error < 0 ? -error : error));
    std::exit(2);
}

int check(int result, const char* what) {
    if (result < 0) {
        die(what, result);
    }
    return result;
}

struct BusDeleter {
    void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
using Bus = std::unique_ptr<sd_bus, BusDeleter>;

struct MessageDeleter {
    void operator()(sd_bus_message* message) const { sd_bus_message_unref(message); }
};
using Message = std::unique_ptr<sd_bus_message, MessageDeleter>;

// Buses listen with dbus-daemon's backlog of 30, so a burst of connects meets a full backlog
// (EAGAIN); a client then retries, as it would after any transient failure.
Bus connect(const std::string& address) {
    const auto start = Clock::now();
    for (;;) {
        sd_bus* bus = nullptr;
        check(sd_bus_new(&bus), "sd_bus_new");
        Bus owned(bus);
        check(sd_bus_set_address(bus, address.c_str()), "sd_bus_set_address");
        check(sd_bus_set_bus_client(bus, 1), "sd_bus_set_bus_client");
        const int started = sd_bus_start(bus);
        if (started >= 0) {
            return owned;
        }
        if (started != -EAGAIN || seconds_since(start) > 10) {
            die("sd_bus_start", started);
        }
        usleep(500);
    }
}

// Waits for the Hello reply, so a connection counts only once the bus has registered it.
void wait_registered(sd_bus* bus) {
    const char* unique = nullptr;
    check(sd_bus_get_unique_name(bus, &unique), "Hello");
}

// The bus process as /proc shows it.
struct BusProcess {
    pid_t pid = 0;

    double cpu_seconds() const { return bench::process_cpu_seconds(pid); }

    // A line of /proc/PID/status such as VmHWM or VmRSS, in KiB.
    long status_kib(const std::string& key) const {
        if (pid <= 0) {
            return 0;
        }
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind(key + ":", 0) == 0) {
                return std::stol(line.substr(key.size() + 1));
            }
        }
        return 0;
    }
};

struct Options {
    std::string address;
    BusProcess bus;
    bool quick = false;
    std::vector<std::string> workloads;
};

void print(const char* key, double value) {
    std::printf("%s %.6g\n", key, value);
}

// ---- Raw data paths. sd-bus spends more CPU per message than a bus does, so with sd-bus on both
// ends of a pipelined call the clients, not the bus, set the pace on two CPUs. After sd-bus has set
// a connection up (SASL, Hello, names), the throughput workloads write and read dbus1 frames
// themselves: little-endian messages built once, and replies counted from their headers.

std::uint32_t load_u32(const std::uint8_t* p, bool little) {
    return little ? std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                        std::uint32_t(p[3]) << 24
                  : std::uint32_t(p[3]) | std::uint32_t(p[2]) << 8 | std::uint32_t(p[1]) << 16 |
                        std::uint32_t(p[0]) << 24;
}

// The size of the message starting at `header` (at least 16 bytes).
std::size_t frame_total(const std::uint8_t* header) {
    const bool little = header[0] == 'l';
    return ((16 + std::size_t{load_u32(header + 12, little)} + 7) & ~std::size_t{7}) +
           load_u32(header + 4, little);
}

class RawMessage {
  public:
    RawMessage(std::uint8_t type, std::uint8_t flags) {
        bytes_ = {'l', type, flags, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    }
    RawMessage& text_field(std::uint8_t code, char type, std::string_view value) {
        begin_field(code, type);
        u32(static_cast<std::uint32_t>(value.size()));
        bytes_.insert(bytes_.end(), value.begin(), value.end());
        bytes_.push_back(0);
        return *this;
    }
    RawMessage& signature_field(std::string_view value) {
        begin_field(8, 'g');
        bytes_.push_back(static_cast<std::uint8_t>(value.size()));
        bytes_.insert(bytes_.end(), value.begin(), value.end());
        bytes_.push_back(0);
        return *this;
    }
    RawMessage& u32_field(std::uint8_t code, std::uint32_t value) {
        begin_field(code, 'u');
        u32(value);
        return *this;
    }
    // Ends the header fields and appends the body.
    std::vector<std::uint8_t> finish(std::span<const std::uint8_t> body = {}) {
        store(12, static_cast<std::uint32_t>(bytes_.size() - 16));
        align(8);
        store(4, static_cast<std::uint32_t>(body.size()));
        bytes_.insert(bytes_.end(), body.begin(), body.end());
        return std::move(bytes_);
    }

  private:
    void align(std::size_t to) {
        while (bytes_.size() % to != 0) {
            bytes_.push_back(0);
        }
    }
    void begin_field(std::uint8_t code, char type) {
        align(8);
        bytes_.insert(bytes_.end(), {code, 1, static_cast<std::uint8_t>(type), 0});
    }
    void u32(std::uint32_t value) {
        align(4);
        for (int shift = 0; shift < 32; shift += 8) {
            bytes_.push_back(static_cast<std::uint8_t>(value >> shift));
        }
    }
    void store(std::size_t at, std::uint32_t value) {
        for (int i = 0; i < 4; ++i) {
            bytes_[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
        }
    }
    std::vector<std::uint8_t> bytes_;
};

void set_serial(std::vector<std::uint8_t>& message, std::uint32_t serial) {
    for (int i = 0; i < 4; ++i) {
        message[8 + i] = static_cast<std::uint8_t>(serial >> (8 * i));  // built little-endian
    }
}

// A string header field of a received message (the bus's own fields: o, s, g, u only).
std::string_view header_text(const std::uint8_t* message, std::uint8_t wanted) {
    const bool little = message[0] == 'l';
    const std::size_t end = 16 + load_u32(message + 12, little);
    std::size_t at = 16;
    while (at + 4 <= end) {
        at = (at + 7) & ~std::size_t{7};
        const std::uint8_t code = message[at];
        const char type = static_cast<char>(message[at + 2]);
        at += 4;
        std::string_view value;
        if (type == 'u') {
            at = ((at + 3) & ~std::size_t{3}) + 4;
        } else if (type == 'g') {
            const std::size_t length = message[at];
            at += 1 + length + 1;
        } else {
            at = (at + 3) & ~std::size_t{3};
            const std::size_t length = load_u32(message + at, little);
            value = std::string_view(reinterpret_cast<const char*>(message + at + 4), length);
            at += 4 + length + 1;
        }
        if (code == wanted) {
            return value;
        }
    }
    return {};
}

// A connection whose frames this program reads and writes itself once sd-bus has set it up.
class RawConnection {
  public:
    explicit RawConnection(sd_bus* bus) : fd_(sd_bus_get_fd(bus)) {
        // sd-bus has dispatched what was sent so far; from now on the socket is ours.
        while (check(sd_bus_process(bus, nullptr), "drain") > 0) {
        }
    }

    // Reads what is there (waiting up to `timeout_ms` for something) and calls on_message for every
    // whole frame. Returns false when the bus hung up.
    template <typename OnMessage>
    bool read(int timeout_ms, OnMessage&& on_message) {
        pollfd ready{fd_, POLLIN, 0};
        if (poll(&ready, 1, timeout_ms) <= 0) {
            return true;
        }
        const std::size_t used = input_.size();
        input_.resize(used + 256 * 1024);
        const ssize_t got = recv(fd_, input_.data() + used, 256 * 1024, MSG_DONTWAIT);
        input_.resize(used + static_cast<std::size_t>(std::max<ssize_t>(got, 0)));
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
            return false;
        }
        std::size_t at = 0;
        while (input_.size() - at >= 16 && input_.size() - at >= frame_total(input_.data() + at)) {
            on_message(input_.data() + at);
            at += frame_total(input_.data() + at);
        }
        input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(at));
        return true;
    }
    void queue(std::span<const std::uint8_t> message) {
        output_.insert(output_.end(), message.begin(), message.end());
    }
    // Writes everything queued, waiting for the socket as needed.
    bool flush() {
        std::size_t at = 0;
        while (at < output_.size()) {
            const ssize_t sent =
                send(fd_, output_.data() + at, output_.size() - at, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (sent > 0) {
                at += static_cast<std::size_t>(sent);
            } else if (sent < 0 && errno == EAGAIN) {
                pollfd ready{fd_, POLLOUT, 0};
                poll(&ready, 1, 100);
            } else {
                return false;
            }
        }
        output_.clear();
        return true;
    }
    // Sends one large message without copying it into the output queue.
    bool send_now(std::span<const std::uint8_t> message) {
        if (!flush()) {
            return false;
        }
        output_.assign(message.begin(), message.end());
        return flush();
    }

  private:
    int fd_;
    std::vector<std::uint8_t> input_;
    std::vector<std::uint8_t> output_;
};

// The service side of a) b) c): answers every method call with an empty reply, from raw frames.
[[noreturn]] void run_service(const std::string& address) {
    Bus bus = connect(address);
    check(sd_bus_request_name(bus.get(), service_name, 0), "RequestName");
    RawConnection raw(bus.get());
    std::uint32_t serial = 1000;
    for (;;) {
        const bool alive = raw.read(-1, [&](const std::uint8_t* message) {
            if (message[1] != 1) {
                return;  // only method calls need an answer
            }
            const std::uint32_t call_serial = load_u32(message + 8, message[0] == 'l');
            std::vector<std::uint8_t> reply = RawMessage(2, 1)
                                                  .u32_field(5, call_serial)
                                                  .text_field(6, 's', header_text(message, 7))
                                                  .finish();
            set_serial(reply, ++serial);
            raw.queue(reply);
        });
        if (!alive || !raw.flush()) {
            std::_Exit(0);  // the bus went away: the run is over
        }
    }
}

// The service of the real-client rows: an sd-bus object answering every method call under
// object_path with an empty reply, one sd_bus_send per reply as sd-bus services do.
int answer_call(sd_bus_message* call, void*, sd_bus_error*) {
    const int sent = sd_bus_reply_method_return(call, "");
    return sent < 0 ? sent : 1;
}

[[noreturn]] void serve_sd_bus(sd_bus* bus) {
    for (;;) {
        const int processed = sd_bus_process(bus, nullptr);
        if (processed < 0 || (processed == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)) {
            std::_Exit(0);  // the peer went away: the run is over
        }
    }
}

[[noreturn]] void run_sd_bus_service(const std::string& address) {
    Bus bus = connect(address);
    check(sd_bus_add_object(bus.get(), nullptr, object_path, answer_call, nullptr), "add_object");
    check(sd_bus_request_name(bus.get(), sd_bus_service_name, 0), "RequestName");
    serve_sd_bus(bus.get());
}

template <typename Service>
pid_t start_child(Service&& service) {
    const pid_t child = fork();
    if (child < 0) {
        die("fork", errno);
    }
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        service();
    }
    return child;
}

void wait_for_service(sd_bus* bus, const char* name) {
    const auto start = Clock::now();
    for (;;) {
        sd_bus_error error{};
        const int result =
            sd_bus_call_method(bus, name, object_path, interface_name, "Ping", &error, nullptr, "");
        sd_bus_error_free(&error);
        if (result >= 0) {
            return;
        }
        if (seconds_since(start) > 10) {
            die("the bench service never answered", result);
        }
        usleep(10000);
    }
}

// a) one call at a time, sd-bus on both ends: the round trip a blocking client sees. `destination`
// is null peer to peer.
void sequential_calls(const Options& options, sd_bus* bus, const char* destination, const std::string& key) {
    const int calls = options.quick ? 500 : 10000;
    bench::Latencies latencies;
    const double cpu_before = options.bus.cpu_seconds();
    const auto start = Clock::now();
    for (int i = 0; i < calls; ++i) {
        const auto sent = Clock::now();
        sd_bus_error error{};
        check(sd_bus_call_method(bus, destination, object_path, interface_name, "Ping", &error, nullptr, ""),
              "sequential Ping");
        latencies.add(seconds_since(sent) * 1e6);
    }
    const double elapsed = seconds_since(start);
    const double cpu = options.bus.cpu_seconds() - cpu_before;
    print((key + "_calls_per_s").c_str(), calls / elapsed);
    print((key + "_p50_us").c_str(), latencies.percentile(50));
    print((key + "_p99_us").c_str(), latencies.percentile(99));
    if (options.bus.pid > 0) {
        print((key + "_bus_cpu_us_per_call").c_str(), cpu * 1e6 / calls);
    }
    print((key + "_replies").c_str(), calls);
}

void drive(sd_bus* bus, const bool& done) {
    while (!done) {
        const int processed = check(sd_bus_process(bus, nullptr), "sd_bus_process");
        if (processed == 0) {
            check(sd_bus_wait(bus, UINT64_MAX), "sd_bus_wait");
        }
    }
}

struct Pipeline {
    sd_bus* bus = nullptr;
    const char* destination = nullptr;  // null peer to peer
    const char* member = nullptr;
    int total = 0;
    int issued = 0;
    int answered = 0;
    int errors = 0;
    std::vector<std::uint8_t> payload;
    bool done = false;

    void issue() {
        sd_bus_message* raw = nullptr;
        check(sd_bus_message_new_method_call(bus, &raw, destination, object_path, interface_name, member),
              "new_method_call");
        Message call(raw);
        if (!payload.empty()) {
            check(sd_bus_message_append_array(raw, 'y', payload.data(), payload.size()), "append_array");
        }
        check(sd_bus_call_async(bus, nullptr, raw, on_reply, this, 0), "call_async");
        ++issued;
    }

    static int on_reply(sd_bus_message* reply, void* userdata, sd_bus_error*) {
        auto* self = static_cast<Pipeline*>(userdata);
        if (sd_bus_message_is_method_error(reply, nullptr)) {
            ++self->errors;
        }
        ++self->answered;
        if (self->issued < self->total) {
            self->issue();
        }
        if (self->answered == self->total) {
            self->done = true;
        }
        return 0;
    }

    // Runs `total` calls with `depth` outstanding; returns the seconds it took.
    double run(int depth) {
        const auto start = Clock::now();
        for (int i = 0; i < depth && issued < total; ++i) {
            issue();
        }
        drive(bus, done);
        return seconds_since(start);
    }
};

// b) as sd-bus applications make them: sd-bus on both ends, one message per write, 64 in flight.
void pipelined_sd_bus_calls(const Options& options, sd_bus* bus, const char* destination,
                            const std::string& key) {
    Pipeline pipeline;
    pipeline.bus = bus;
    pipeline.destination = destination;
    pipeline.member = "Ping";
    pipeline.total = options.quick ? 2000 : 50000;
    const double cpu_before = options.bus.cpu_seconds();
    const double elapsed = pipeline.run(64);
    const double cpu = options.bus.cpu_seconds() - cpu_before;
    print((key + "_msgs_per_s").c_str(), 2.0 * pipeline.answered / elapsed);
    if (options.bus.pid > 0) {
        print((key + "_bus_cpu_us_per_msg").c_str(), cpu * 1e6 / (2.0 * pipeline.total));
    }
    print((key + "_replies").c_str(), pipeline.answered);
    print((key + "_errors").c_str(), pipeline.errors);
    if (options.quick && pipeline.errors > 0) {
        std::exit(1);
    }
}

// c) 1 MiB byte arrays through sd-bus on both ends, 4 in flight.
void large_sd_bus_calls(const Options& options, sd_bus* bus) {
    constexpr std::size_t size = 1 << 20;
    Pipeline pipeline;
    pipeline.bus = bus;
    pipeline.destination = sd_bus_service_name;
    pipeline.member = "Sink";
    pipeline.total = options.quick ? 50 : 500;
    pipeline.payload.assign(size, 0x5a);
    const double cpu_before = options.bus.cpu_seconds();
    const double elapsed = pipeline.run(4);
    const double cpu = options.bus.cpu_seconds() - cpu_before;
    print("largesd_mb_per_s", static_cast<double>(pipeline.answered) * size / elapsed / 1e6);
    print("largesd_bus_cpu_us_per_call", cpu * 1e6 / pipeline.total);
    print("largesd_replies", pipeline.answered);
    print("largesd_errors", pipeline.errors);
    if (options.quick && pipeline.errors > 0) {
        std::exit(1);
    }
}

// The physical limit: the same sd-bus calls between two sd-bus connections over a socketpair, no
// bus between them (the service end is an sd-bus server, authenticating the caller by EXTERNAL).
void peer_to_peer(const Options& options) {
    int pair[2];
    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0 ? -errno : 0, "socketpair");
    const pid_t service = start_child([&] {
        close(pair[0]);
        sd_bus* raw = nullptr;
        check(sd_bus_new(&raw), "sd_bus_new");
        Bus bus(raw);
        sd_id128_t id;
        check(sd_id128_randomize(&id), "sd_id128_randomize");
        check(sd_bus_set_fd(raw, pair[1], pair[1]), "sd_bus_set_fd");
        check(sd_bus_set_server(raw, 1, id), "sd_bus_set_server");
        check(sd_bus_add_object(raw, nullptr, object_path, answer_call, nullptr), "add_object");
        check(sd_bus_start(raw), "sd_bus_start server");
        serve_sd_bus(raw);
    });
    close(pair[1]);
    sd_bus* raw = nullptr;
    check(sd_bus_new(&raw), "sd_bus_new");
    Bus bus(raw);
    check(sd_bus_set_fd(raw, pair[0], pair[0]), "sd_bus_set_fd");
    check(sd_bus_start(raw), "sd_bus_start peer");
    Options no_bus = options;
    no_bus.bus.pid = 0;
    sequential_calls(no_bus, raw, nullptr, "p2p_sd_seq");
    pipelined_sd_bus_calls(no_bus, raw, nullptr, "p2p_sd_pipe");
    bus.reset();
    kill(service, SIGTERM);
    waitpid(service, nullptr, 0);
}

// `total` calls of `member` with `depth` outstanding, written and read raw.
struct RawPipeline {
    int total = 0;
    int answered = 0;
    int errors = 0;

    double run(const Options& options, const char* member, int depth, std::span<const std::uint8_t> payload) {
        Bus bus = connect(options.address);
        wait_registered(bus.get());
        RawConnection raw(bus.get());
        RawMessage call(1, 0);
        call.text_field(1, 'o', object_path)
            .text_field(2, 's', interface_name)
            .text_field(3, 's', member)
            .text_field(6, 's', service_name);
        std::vector<std::uint8_t> body;
        if (!payload.empty()) {
            call.signature_field("ay");
            const auto size = static_cast<std::uint32_t>(payload.size());
            body = {static_cast<std::uint8_t>(size), static_cast<std::uint8_t>(size >> 8),
                    static_cast<std::uint8_t>(size >> 16), static_cast<std::uint8_t>(size >> 24)};
            body.insert(body.end(), payload.begin(), payload.end());
        }
        std::vector<std::uint8_t> message = call.finish(body);
        std::uint32_t serial = 0;
        int issued = 0;
        const bool large = message.size() > 64 * 1024;
        auto issue = [&] {
            set_serial(message, ++serial);
            ++issued;
            if (large) {
                check(raw.send_now(message) ? 0 : -EPIPE, "send call");
            } else {
                raw.queue(message);
            }
        };
        const auto start = Clock::now();
        for (int i = 0; i < depth && issued < total; ++i) {
            issue();
        }
        check(raw.flush() ? 0 : -EPIPE, "send calls");
        while (answered < total) {
            const bool alive = raw.read(5000, [&](const std::uint8_t* reply) {
                if (reply[1] != 2 && reply[1] != 3) {
                    return;
                }
                errors += reply[1] == 3 ? 1 : 0;
                ++answered;
                if (issued < total) {
                    issue();
                }
            });
            check(alive && raw.flush() ? 0 : -ECONNRESET, "pipelined calls");
        }
        return seconds_since(start);
    }
};

// b) 64 calls outstanding, and f) the bus's CPU time per message routed.
void pipelined_calls(const Options& options) {
    RawPipeline pipeline{options.quick ? 5000 : 100000};
    const double cpu_before = options.bus.cpu_seconds();
    const double elapsed = pipeline.run(options, "Ping", 64, {});
    const double cpu = options.bus.cpu_seconds() - cpu_before;
    // Each call is two messages through the bus: the call and its reply.
    print("pipe_msgs_per_s", 2.0 * pipeline.total / elapsed);
    print("pipe_calls_per_s", pipeline.total / elapsed);
    print("pipe_errors", pipeline.errors);
    print("pipe_replies", pipeline.answered);
    print("pipe_bus_cpu_s", cpu);
    print("cpu_us_per_msg", cpu * 1e6 / (2.0 * pipeline.total));
    if (options.quick && (pipeline.errors > 0 || pipeline.answered != pipeline.total)) {
        std::exit(1);
    }
}

// c) 1 MiB byte arrays, 4 outstanding so that neither side waits on the other.
void large_calls(const Options& options) {
    constexpr std::size_t size = 1 << 20;
    RawPipeline pipeline{options.quick ? 50 : 500};
    const std::vector<std::uint8_t> payload(size, 0x5a);
    const double cpu_before = options.bus.cpu_seconds();
    const double elapsed = pipeline.run(options, "Sink", 4, payload);
    const double cpu = options.bus.cpu_seconds() - cpu_before;
    print("large_mb_per_s", static_cast<double>(pipeline.total) * size / elapsed / 1e6);
    print("large_errors", pipeline.errors);
    print("large_replies", pipeline.answered);
    print("large_bus_cpu_s", cpu);
    print("large_bus_cpu_us_per_call", cpu * 1e6 / pipeline.total);
}

// d) One emitter, many subscribers, each with one matching and 20 non-matching rules.
struct Subscriber {
    Bus bus;
    long received = 0;
    bool disconnected = false;
    std::vector<std::uint8_t> pending;  // an unfinished message read raw
};

// Counts the whole signals that arrived, by their frame headers alone, so that the subscribers'
// parsing does not compete with the bus for the CPUs: sd-bus would spend more per message than the
// bus does. Returns what recv failed with, or 0.
int count_signals(Subscriber& subscriber, std::vector<std::uint8_t>& scratch) {
    const int fd = sd_bus_get_fd(subscriber.bus.get());
    for (;;) {
        const ssize_t got = recv(fd, scratch.data(), scratch.size(), MSG_DONTWAIT);
        if (got == 0) {
            return -ECONNRESET;
        }
        if (got < 0) {
            return errno == EAGAIN ? 0 : -errno;
        }
        auto& pending = subscriber.pending;
        pending.insert(pending.end(), scratch.begin(), scratch.begin() + got);
        std::size_t at = 0;
        while (pending.size() - at >= 16) {
            const std::uint8_t* header = pending.data() + at;
            const auto load = [little = header[0] == 'l'](const std::uint8_t* p) {
                return little ? std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                                    std::uint32_t(p[3]) << 24
                              : std::uint32_t(p[3]) | std::uint32_t(p[2]) << 8 | std::uint32_t(p[1]) << 16 |
                                    std::uint32_t(p[0]) << 24;
            };
            const std::size_t total =
                ((16 + std::size_t{load(header + 12)} + 7) & ~std::size_t{7}) + load(header + 4);
            if (pending.size() - at < total) {
                break;
            }
            if (header[1] == 4) {  // a signal; only the matched Tick is sent to subscribers now
                ++subscriber.received;
            }
            at += total;
        }
        pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(at));
    }
}

int count_tick(sd_bus_message* message, void* userdata, sd_bus_error*) {
    if (sd_bus_message_is_signal(message, interface_name, "Tick") > 0) {
        ++static_cast<Subscriber*>(userdata)->received;
    }
    return 0;
}

int count_reply(sd_bus_message* reply, void* userdata, sd_bus_error*) {
    if (sd_bus_message_is_method_error(reply, nullptr)) {
        std::fprintf(stderr, "AddMatch failed: %s\n", sd_bus_message_get_error(reply)->message);
        std::exit(2);
    }
    --*static_cast<int*>(userdata);
    return 0;
}

void add_matches(Subscriber& subscriber) {
    int pending = 0;
    auto add = [&](const std::string& rule) {
        check(sd_bus_call_method_async(subscriber.bus.get(), nullptr, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch",
                                       count_reply, &pending, "s", rule.c_str()),
              "AddMatch");
        ++pending;
    };
    for (int i = 0; i < 20; ++i) {
        // Rules a real client holds: other members, other interfaces, argument filters.
        switch (i % 3) {
            case 0:
                add("type='signal',interface='org.busgate.Bench',member='Other" + std::to_string(i) + "'");
                break;
            case 1:
                add("type='signal',interface='org.busgate.Other" + std::to_string(i) + "',member='Tick'");
                break;
            default:
                add("type='signal',interface='org.busgate.Bench',member='Tick',arg0='nomatch" +
                    std::to_string(i) + "'");
                break;
        }
    }
    add("type='signal',interface='org.busgate.Bench',member='Tick',path='/org/busgate/Bench'");
    while (pending > 0) {
        if (check(sd_bus_process(subscriber.bus.get(), nullptr), "process") == 0) {
            check(sd_bus_wait(subscriber.bus.get(), UINT64_MAX), "wait");
        }
    }
}

// Dispatches what arrived for one sd-bus subscriber (its filter counts the Ticks). Returns what
// sd_bus_process failed with (the bus dropped the subscriber), or 0.
int dispatch_signals(Subscriber& subscriber) {
    for (;;) {
        const int processed = sd_bus_process(subscriber.bus.get(), nullptr);
        if (processed <= 0) {
            return processed;
        }
    }
}

// `raw`: the subscribers' sockets are read as frames once the matches are in (the raw-frame table);
// otherwise every subscriber is an sd-bus connection dispatching each signal to its filter, as
// applications receive them.
void fan_out(const Options& options, int subscriber_count, int signals, const char* prefix, bool raw) {
    std::vector<Subscriber> subscribers(subscriber_count);
    for (auto& subscriber : subscribers) {
        subscriber.bus = connect(options.address);
        wait_registered(subscriber.bus.get());
        check(sd_bus_add_filter(subscriber.bus.get(), nullptr, count_tick, &subscriber), "add_filter");
    }
    for (auto& subscriber : subscribers) {
        add_matches(subscriber);
    }
    // Read raw, the subscribers' sockets are ours from here on: sd-bus has dispatched everything
    // sent to them so far (the AddMatch replies came after their NameAcquired), and nothing but the
    // emitter's signals arrives any more.
    for (auto& subscriber : subscribers) {
        while (raw && check(sd_bus_process(subscriber.bus.get(), nullptr), "drain") > 0) {
        }
        subscriber.received = 0;
    }
    Bus emitter = connect(options.address);
    wait_registered(emitter.get());

    // Two reader threads, each polling its half of the subscribers.
    constexpr int reader_count = 2;
    std::atomic<long> delivered{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> readers;
    for (int reader = 0; reader < reader_count; ++reader) {
        readers.emplace_back([&, reader] {
            const int poller = epoll_create1(EPOLL_CLOEXEC);
            for (int i = reader; i < subscriber_count; i += reader_count) {
                epoll_event event{};
                event.events = EPOLLIN;
                event.data.u32 = static_cast<std::uint32_t>(i);
                check(epoll_ctl(poller, EPOLL_CTL_ADD, sd_bus_get_fd(subscribers[i].bus.get()), &event) < 0
                          ? -errno
                          : 0,
                      "epoll_ctl");
            }
            std::vector<epoll_event> events(256);
            std::vector<std::uint8_t> scratch(256 * 1024);
            while (!stop.load(std::memory_order_relaxed)) {
                const int ready = epoll_wait(poller, events.data(), static_cast<int>(events.size()), 50);
                for (int e = 0; e < ready; ++e) {
                    Subscriber& subscriber = subscribers[events[e].data.u32];
                    const long before = subscriber.received;
                    const int processed =
                        raw ? count_signals(subscriber, scratch) : dispatch_signals(subscriber);
                    if (processed < 0) {
                        // The bus dropped this subscriber (a queue limit): what it missed counts as lost.
                        epoll_ctl(poller, EPOLL_CTL_DEL, sd_bus_get_fd(subscriber.bus.get()), nullptr);
                        subscriber.disconnected = true;
                    }
                    delivered.fetch_add(subscriber.received - before, std::memory_order_relaxed);
                }
            }
            close(poller);
        });
    }

    const long expected = static_cast<long>(signals) * subscriber_count;
    const double cpu_before = options.bus.cpu_seconds();
    double blocked = 0;  // seconds the emitter waited for the bus to take its signals
    // sd-bus subscribers read one message per recvmsg and dispatch each, so a burst of thousands of
    // signals would only measure how the buses treat queues that grow without end (dbus-broker drops
    // the subscribers over its quota). An emitter keeping up to `window` deliveries in flight measures
    // the steady state instead; raw readers keep up with the burst.
    const long window = raw ? expected : std::max(4L, 16384L / subscriber_count) * subscriber_count;
    const auto start = Clock::now();
    for (int i = 0; i < signals; ++i) {
        auto waiting_since = Clock::now();
        long waited_for = -1;
        while (static_cast<long>(i) * subscriber_count - delivered.load(std::memory_order_relaxed) > window) {
            // A delivery that never comes must not stop the run: it is counted as lost at the end.
            const long now = delivered.load(std::memory_order_relaxed);
            if (now != waited_for) {
                waited_for = now;
                waiting_since = Clock::now();
            } else if (seconds_since(waiting_since) > 3) {
                break;
            }
            usleep(50);
        }
        check(sd_bus_emit_signal(emitter.get(), object_path, interface_name, "Tick", "s", "tick"), "emit");
        std::uint64_t queued = 0;
        check(sd_bus_get_n_queued_write(emitter.get(), &queued), "queued");
        if (queued > 0) {
            const auto wait_start = Clock::now();
            check(sd_bus_flush(emitter.get()), "flush");
            blocked += seconds_since(wait_start);
        }
    }
    const double emitted_after = seconds_since(start);
    auto last_progress = Clock::now();
    long seen = 0;
    while (delivered.load() < expected) {
        const long now = delivered.load();
        if (now != seen) {
            seen = now;
            last_progress = Clock::now();
        } else if (seconds_since(last_progress) > 3) {
            break;
        }
        usleep(200);
    }
    const double elapsed =
        std::max(seconds_since(start) - (delivered.load() < expected ? 3.0 : 0.0), emitted_after);
    const double cpu = options.bus.cpu_seconds() - cpu_before;
    stop = true;
    for (auto& reader : readers) {
        reader.join();
    }
    long fewest = signals;
    long most = 0;
    int disconnected = 0;
    for (const auto& subscriber : subscribers) {
        fewest = std::min(fewest, subscriber.received);
        most = std::max(most, subscriber.received);
        disconnected += subscriber.disconnected ? 1 : 0;
    }
    const std::string key = prefix;
    print((key + "_deliveries_per_s").c_str(), static_cast<double>(delivered.load()) / elapsed);
    print((key + "_expected").c_str(), static_cast<double>(expected));
    print((key + "_lost").c_str(), static_cast<double>(expected - delivered.load()));
    print((key + "_fewest").c_str(), static_cast<double>(fewest));
    print((key + "_most").c_str(), static_cast<double>(most));
    print((key + "_disconnected").c_str(), disconnected);
    print((key + "_sender_blocked_ms").c_str(), blocked * 1e3);
    print((key + "_bus_cpu_us_per_delivery").c_str(),
          cpu * 1e6 / std::max(1.0, static_cast<double>(delivered.load())));
    if (options.quick && delivered.load() != expected) {
        std::fprintf(stderr, "%s: %ld of %ld deliveries arrived\n", prefix, delivered.load(), expected);
        std::exit(1);
    }
}

// e) Hello, RequestName, disconnect, one connection after the other.
void connect_storm(const Options& options, const std::string& key) {
    const int connections = options.quick ? 200 : 3000;
    const double cpu_before = options.bus.cpu_seconds();
    const auto start = Clock::now();
    for (int i = 0; i < connections; ++i) {
        Bus bus = connect(options.address);
        const std::string name = "org.busgate.Storm.c" + std::to_string(i);
        check(sd_bus_request_name(bus.get(), name.c_str(), 0), "storm RequestName");
    }
    const double elapsed = seconds_since(start);
    const double cpu = options.bus.cpu_seconds() - cpu_before;
    print((key + "_per_s").c_str(), connections / elapsed);
    print((key + "_bus_cpu_us_per_connection").c_str(), cpu * 1e6 / connections);
    print((key + "_done").c_str(), connections);
}

// g) The bus's memory with many idle connections; run first, while the bus is fresh.
std::size_t count_names(sd_bus* bus) {
    char** names = nullptr;
    check(sd_bus_list_names(bus, &names, nullptr), "ListNames");
    std::size_t count = 0;
    for (char** name = names; name && *name; ++name, ++count) {
        std::free(*name);
    }
    std::free(names);
    return count;
}

void idle_connections(const Options& options) {
    const int count = options.quick ? 200 : 10000;
    Bus observer = connect(options.address);
    const std::size_t names_before = count_names(observer.get());
    const long rss_before = options.bus.status_kib("VmRSS");
    std::vector<Bus> idle;
    idle.reserve(count);
    for (int i = 0; i < count; ++i) {
        idle.push_back(connect(options.address));
        // Keep only a few Hellos in flight so the bus never sees an unbounded burst of new sockets.
        if (i % 64 == 63) {
            for (int j = i - 63; j <= i; ++j) {
                wait_registered(idle[j].get());
            }
        }
    }
    for (auto& bus : idle) {
        wait_registered(bus.get());
    }
    const long rss_with = options.bus.status_kib("VmRSS");
    const long peak = options.bus.status_kib("VmHWM");
    print("idle_connections", count);
    print("idle_rss_before_kib", static_cast<double>(rss_before));
    print("idle_peak_rss_kib", static_cast<double>(peak));
    print("idle_bytes_per_connection", static_cast<double>(rss_with - rss_before) * 1024.0 / count);
    // The next workload must not pay for these disconnects: wait until the bus has seen them all
    // (dbus-daemon takes seconds for 10,000, which would land on the sequential calls' CPU and p99).
    idle.clear();
    const auto start = Clock::now();
    while (count_names(observer.get()) > names_before && seconds_since(start) < 60) {
        usleep(20000);
    }
}

// Round trips one at a time measure wake-up latency as much as the bus: on this kind of VM a wake-up
// on the other CPU costs ~40 us, one on the same CPU ~3 us, and where the scheduler puts the bus and
// its clients differs from one start to the next (storms of 4,000/s or 20,000/s for the same bus).
// The "one CPU" variants put the bus, the service and this client on one CPU, so every bus is
// measured with the same placement.
class OneCpu {
  public:
    OneCpu(std::vector<pid_t> pids) : pids_(std::move(pids)) {
        cpu_set_t own;
        CPU_ZERO(&own);
        sched_getaffinity(0, sizeof own, &own);
        int first = 0;
        while (first < CPU_SETSIZE && !CPU_ISSET(first, &own)) {
            ++first;
        }
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(first, &one);
        for (const pid_t pid : pids_) {
            cpu_set_t saved;
            CPU_ZERO(&saved);
            sched_getaffinity(pid, sizeof saved, &saved);
            saved_.push_back(saved);
            sched_setaffinity(pid, sizeof one, &one);
        }
    }
    ~OneCpu() {
        for (std::size_t i = 0; i < pids_.size(); ++i) {
            sched_setaffinity(pids_[i], sizeof saved_[i], &saved_[i]);
        }
    }
    OneCpu(const OneCpu&) = delete;
    OneCpu& operator=(const OneCpu&) = delete;

  private:
    std::vector<pid_t> pids_;
    std::vector<cpu_set_t> saved_;
};

void raise_fd_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

// dbus-broker-launch: a private /run/systemd with a journal socket that this process drains (the
// launcher refuses to start without one), the listening socket passed as fd 3 (LISTEN_FDS), and its
// own bus as "session bus" so that its regular connection succeeds. This process stays the parent:
// SIGTERM to it stops the launcher, whose broker then follows (PR_SET_PDEATHSIG).
[[noreturn]] void launch_broker(const std::string& socket_path, const std::string& config) {
    check(unshare(CLONE_NEWNS) < 0 ? -errno : 0, "unshare(CLONE_NEWNS)");
    check(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0 ? -errno : 0, "make mounts private");
    check(mount("tmpfs", "/run/systemd", "tmpfs", 0, "mode=0755") < 0 ? -errno : 0, "mount /run/systemd");
    mkdir("/run/systemd/journal", 0755);
    const int journal = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un journal_address{};
    journal_address.sun_family = AF_UNIX;
    std::strcpy(journal_address.sun_path, "/run/systemd/journal/socket");
    check(
        bind(journal, reinterpret_cast<sockaddr*>(&journal_address), sizeof journal_address) < 0 ? -errno : 0,
        "bind journal");

    const int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
    unlink(socket_path.c_str());
    check(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0 ? -errno : 0, "bind");
    check(listen(listener, 30) < 0 ? -errno : 0, "listen");  // dbus-daemon's and busgate's backlog

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    // The broker outlives the launcher by a moment; as subreaper this process reaps it too.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const pid_t launcher = fork();
    if (launcher < 0) {
        die("fork", errno);
    }
    if (launcher == 0) {
        sigprocmask(SIG_UNBLOCK, &stop_signals, nullptr);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (listener != 3) {
            check(dup2(listener, 3) < 0 ? -errno : 0, "dup2");
            close(listener);
        }
        const std::string pid = std::to_string(getpid());
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_PID", pid.c_str(), 1);
        const std::string session = "unix:path=" + socket_path;
        setenv("DBUS_SESSION_BUS_ADDRESS", session.c_str(), 1);
        const std::string config_option = "--config-file=" + config;
        execlp("dbus-broker-launch", "dbus-broker-launch", "--scope=user", config_option.c_str(), nullptr);
        die("exec dbus-broker-launch", errno);
    }
    close(listener);
    const int stop = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    for (;;) {
        pollfd fds[2] = {{journal, POLLIN, 0}, {stop, POLLIN, 0}};
        if (poll(fds, 2, 500) < 0 && errno != EINTR) {
            die("poll", errno);
        }
        if (fds[0].revents & POLLIN) {
            char discard[65536];
            recv(journal, discard, sizeof discard, MSG_DONTWAIT);
        }
        if (fds[1].revents & POLLIN) {
            kill(launcher, SIGTERM);
            while (wait(nullptr) > 0 || errno == EINTR) {
            }
            std::exit(0);
        }
        int status = 0;
        if (waitpid(launcher, &status, WNOHANG) == launcher) {
            std::fprintf(stderr, "dbus-broker-launch exited (status %d)\n", status);
            std::exit(1);
        }
    }
}

int usage() {
    std::fprintf(stderr,
                 "usage: bench-bus-workloads ADDRESS [--bus-pid=PID] [--quick] [WORKLOAD...]\n"
                 "       bench-bus-workloads p2p [--quick]\n"
                 "       bench-bus-workloads launch-broker SOCKET_PATH CONFIG_FILE\n"
                 "workloads: idle sequential pipelined large fanout50 fanout1000 storm (default: all, in "
                 "this order), fansd1000 (the sd-bus half of fanout1000 alone, for profiles);\n"
                 "p2p: sequential and pipelined sd-bus calls with no bus between\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        return usage();
    }
    if (std::string(argv[1]) == "launch-broker") {
        if (argc != 4) {
            return usage();
        }
        launch_broker(argv[2], argv[3]);
    }
    Options options;
    options.address = argv[1];
    const bool p2p = options.address == "p2p";
    for (int i = 2; i < argc; ++i) {
        const std::string argument = argv[i];
        if (argument.rfind("--bus-pid=", 0) == 0) {
            options.bus.pid = std::stoi(argument.substr(10));
        } else if (argument == "--quick") {
            options.quick = true;
        } else if (argument.rfind("--", 0) == 0 || p2p) {
            return usage();
        } else {
            options.workloads.push_back(argument);
        }
    }
    if (options.workloads.empty()) {
        options.workloads = {"idle", "sequential", "pipelined", "large", "fanout50", "fanout1000", "storm"};
    }
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, nullptr, _IOLBF, 0);
    if (p2p) {
        peer_to_peer(options);
        return 0;
    }

    const bool needs_service =
        std::any_of(options.workloads.begin(), options.workloads.end(),
                    [](const auto& w) { return w == "sequential" || w == "pipelined" || w == "large"; });
    pid_t raw_service = 0;
    pid_t service = 0;
    Bus client;
    if (needs_service) {
        raw_service = start_child([&] { run_service(options.address); });
        service = start_child([&] { run_sd_bus_service(options.address); });
        client = connect(options.address);
        wait_for_service(client.get(), service_name);
        wait_for_service(client.get(), sd_bus_service_name);
    }
    for (const auto& workload : options.workloads) {
        if (workload == "idle") {
            idle_connections(options);
        } else if (workload == "sequential") {
            sequential_calls(options, client.get(), sd_bus_service_name, "seq");
            const OneCpu pinned({0, service, options.bus.pid});
            sequential_calls(options, client.get(), sd_bus_service_name, "seq1");
        } else if (workload == "pipelined") {
            pipelined_calls(options);
            pipelined_sd_bus_calls(options, client.get(), sd_bus_service_name, "pipesd");
        } else if (workload == "large") {
            large_calls(options);
            large_sd_bus_calls(options, client.get());
        } else if (workload == "fanout50") {
            fan_out(options, 50, options.quick ? 200 : 6000, "fan50", true);
            fan_out(options, 50, options.quick ? 200 : 3000, "fansd50", false);
        } else if (workload == "fanout1000") {
            fan_out(options, 1000, options.quick ? 20 : 400, "fan1000", true);
            fan_out(options, 1000, options.quick ? 20 : 200, "fansd1000", false);
        } else if (workload == "fansd1000") {  // the sd-bus half alone, for profiles
            fan_out(options, 1000, options.quick ? 20 : 200, "fansd1000", false);
        } else if (workload == "storm") {
            connect_storm(options, "storm");
            const OneCpu pinned({0, options.bus.pid});
            connect_storm(options, "storm1");
        } else {
            return usage();
        }
    }
    client.reset();
    for (const pid_t child : {raw_service, service}) {
        if (child > 0) {
            kill(child, SIGTERM);
            waitpid(child, nullptr, 0);
        }
    }
    return 0;
}
