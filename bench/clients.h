// What the real-client benchmark programs share (bench-bus-workloads, libdbus-bench-client,
// gdbus-bench-client): the bus process's CPU time, latency percentiles, the "key value" lines that
// tools/run-bus-benchmarks reads, and the command line of the per-library clients.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// User plus system time of a process from /proc/PID/stat; 0 without a pid.
inline double process_cpu_seconds(pid_t pid) {
    if (pid <= 0) {
        return 0;
    }
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The command name may hold spaces; the fields after it start behind the last ')'.
    const auto close = text.rfind(')');
    if (close == std::string::npos) {
        return 0;
    }
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    for (int index = 3; fields >> field; ++index) {
        if (index == 14) {
            utime = std::stoull(field);
        } else if (index == 15) {
            stime = std::stoull(field);
            break;
        }
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

inline void print(const std::string& key, double value) {
    std::printf("%s %.6g\n", key.c_str(), value);
}

// Round-trip times in microseconds.
class Latencies {
  public:
    void add(double microseconds) { values_.push_back(microseconds); }
    double percentile(int which) {
        if (values_.empty()) {
            return 0;
        }
        std::sort(values_.begin(), values_.end());
        return values_[values_.size() * static_cast<std::size_t>(which) / 100];
    }

  private:
    std::vector<double> values_;
};

// Sequential and pipelined calls of one client library, on a bus or peer to peer.
struct ClientOptions {
    std::string address;  // empty: peer to peer over a socketpair, no bus
    // Where the caller connects, when not to `address` (a sandbox's socket); the service stays on `address`.
    std::string caller_address;
    pid_t bus_pid = 0;
    bool quick = false;

    int sequential_calls() const { return quick ? 500 : 10000; }
    int pipelined_calls() const { return quick ? 2000 : 50000; }
    static constexpr int depth = 64;  // calls in flight
};

// PROGRAM ADDRESS [--caller-address=ADDRESS] [--bus-pid=PID] [--quick]  or  PROGRAM --p2p [--quick]
inline ClientOptions parse_client_options(int argc, char** argv) {
    ClientOptions options;
    bool p2p = false;
    for (int i = 1; i < argc; ++i) {
        const std::string argument = argv[i];
        if (argument.rfind("--bus-pid=", 0) == 0) {
            options.bus_pid = std::atoi(argument.c_str() + 10);
        } else if (argument == "--quick") {
            options.quick = true;
        } else if (argument == "--p2p") {
            p2p = true;
        } else if (argument.rfind("--caller-address=", 0) == 0) {
            options.caller_address = argument.substr(17);
        } else if (argument.rfind("--", 0) != 0 && options.address.empty()) {
            options.address = argument;
        } else {
            options.address.clear();
            p2p = false;
            break;
        }
    }
    if (p2p == !options.address.empty()) {
        std::fprintf(stderr,
                     "usage: %s ADDRESS [--caller-address=ADDRESS] [--bus-pid=PID] [--quick]\n"
                     "       %s --p2p [--quick]\n",
                     argv[0], argv[0]);
        std::exit(2);
    }
    return options;
}

}  // namespace bench
