// The clocks the bus reads. Every deadline (timers, authentication, reply and start timeouts) is in
// monotonic nanoseconds, the unit the core and the event loop's timerfd take, so no caller converts.
#pragma once

#include <cstdint>
#include <ctime>

namespace busgate::util {

namespace detail {
inline std::uint64_t nanoseconds_of(clockid_t clock) {
    timespec now{};
    ::clock_gettime(clock, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
}
}  // namespace detail

// CLOCK_MONOTONIC: what deadlines are measured against; it never jumps when the wall clock is set.
inline std::uint64_t monotonic_ns() {
    return detail::nanoseconds_of(CLOCK_MONOTONIC);
}

// CLOCK_REALTIME: for timestamps shown to people or written to captures, never for deadlines.
inline std::uint64_t realtime_ns() {
    return detail::nanoseconds_of(CLOCK_REALTIME);
}

}  // namespace busgate::util
