// What the bus benchmarks share: sd-bus connections that retry a full listen backlog, and the bus
// process as /proc shows it (CPU time, memory). Header-only, so that each benchmark program stays
// one source file; the programs print "key value" lines that the tools/run-bus-* scripts read.
#pragma once

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] inline void die(const char* what, int error) {
    std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
                 std::strerror(error < 0 ? -error : error));
    std::exit(2);
}

inline int check(int result, const char* what) {
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

struct SlotDeleter {
    void operator()(sd_bus_slot* slot) const { sd_bus_slot_unref(slot); }
};
using Slot = std::unique_ptr<sd_bus_slot, SlotDeleter>;

// Buses listen with dbus-daemon's backlog of 30, so a burst of connects meets a full backlog
// (EAGAIN); a client then retries, as it would after any transient failure. The Hello is sent but
// not waited for: wait_registered does that, so that many connections can be set up at once.
inline Bus connect(const std::string& address) {
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
inline void wait_registered(sd_bus* bus) {
    const char* unique = nullptr;
    check(sd_bus_get_unique_name(bus, &unique), "Hello");
}

// Connections to a bus may pass the open-file limit's soft value in no time.
inline void raise_fd_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

// The bus process as /proc shows it.
struct BusProcess {
    pid_t pid = 0;

    // utime + stime from /proc/PID/stat: all threads, but in clock ticks (10 ms here).
    double cpu_seconds() const {
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

    // What the scheduler counted for the process: the time it ran, in nanoseconds, and how often it
    // was put on a CPU (about its wake-ups), the first and third fields of each thread's
    // /proc/PID/task/TID/schedstat, summed. The run time is far finer than cpu_seconds(), so a short
    // window still gives a precise figure. A thread that ended meanwhile no longer counts, so this
    // suits buses whose threads live as long as they do. Both are -1 where the kernel lacks schedstat.
    struct Scheduled {
        std::int64_t run_nanoseconds = -1;
        std::int64_t slices = -1;
    };
    Scheduled scheduled() const {
        Scheduled total;
        if (pid <= 0) {
            return total;
        }
        const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
        DIR* directory = opendir(tasks.c_str());
        if (directory == nullptr) {
            return total;
        }
        while (const dirent* entry = readdir(directory)) {
            if (entry->d_name[0] == '.') {
                continue;
            }
            std::ifstream in(tasks + "/" + entry->d_name + "/schedstat");
            long long ran = 0;
            long long waited = 0;
            long long slices = 0;
            if (in >> ran >> waited >> slices) {
                total.run_nanoseconds = std::max<std::int64_t>(total.run_nanoseconds, 0) + ran;
                total.slices = std::max<std::int64_t>(total.slices, 0) + slices;
            }
        }
        closedir(directory);
        return total;
    }

    // Bus CPU in seconds from the finest source there is.
    double cpu_precise_seconds() const {
        const std::int64_t nanoseconds = scheduled().run_nanoseconds;
        return nanoseconds >= 0 ? static_cast<double>(nanoseconds) / 1e9 : cpu_seconds();
    }

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

// Round trips one at a time measure wake-up placement as much as the bus: on this kind of VM a
// wake-up on the other CPU costs far more than one on the same CPU, and where the scheduler puts the
// bus and its client differs from one start to the next. While this object lives, the given threads
// (0: the calling one) share the first CPU this process may use, so every bus gets the same placement.
class OneCpu {
  public:
    explicit OneCpu(std::vector<pid_t> pids) : pids_(std::move(pids)) {
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

}  // namespace bench
