// libFuzzer target for the restart state's decoder: the input is the records, sealed here with a valid
// header and check (a fuzzer would never get past the check otherwise). Whatever decodes must encode to
// bytes that decode to an equal state.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "bus/state.h"
#include "core/siphash.h"

using namespace busgate;

namespace {

void put(std::vector<std::uint8_t>& out, std::uint64_t value, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i) {
        out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> bytes = {'B', 'G', 'S', 'T', 'A', 'T', 'E', '\0'};
    put(bytes, bus::state_format_version, 4);
    put(bytes, 1, 4);
    put(bytes, size, 8);
    bytes.insert(bytes.end(), data, data + size);
    put(bytes,
        core::SipHash24::hash({}, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())),
        8);
    const bus::DecodedState decoded = bus::decode_state(bytes);
    if (!decoded.state) {
        if (decoded.error.empty()) {
            std::abort();
        }
        return 0;
    }
    const bus::DecodedState again = bus::decode_state(bus::encode_state(*decoded.state));
    if (!again.state || !(*again.state == *decoded.state)) {
        std::abort();
    }
    return 0;
}
