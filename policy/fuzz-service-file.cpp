// libFuzzer target for service files: any text is parsed as a [D-BUS Service] file (with and without strict
// naming); what is accepted must name a valid bus name and a non-empty Exec=, and Exec= must split without
// crashing; a split that succeeds gives non-empty arguments.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "busgate/marshal/names.h"
#include "busgate/policy/service_file.h"

using namespace busgate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const bool strict : {false, true}) {
        const policy::ServiceFileResult parsed =
            policy::parse_service_file(text, "/fuzz/org.example.Fuzz.service", strict);
        if (!parsed.service) {
            if (parsed.error.empty()) {
                std::abort();  // a refusal always says why
            }
            continue;
        }
        if (!marshal::is_valid_bus_name(parsed.service->name) ||
            marshal::is_unique_name(parsed.service->name)) {
            std::abort();
        }
        std::string error;
        const auto arguments = policy::split_command_line(parsed.service->exec, error);
        if (arguments.empty() == error.empty()) {
            std::abort();  // either arguments or a reason, never both or neither
        }
    }
    // Exec= lines on their own, beyond what a desktop-entry line can hold.
    std::string error;
    const auto arguments = policy::split_command_line(text, error);
    if (arguments.empty() == error.empty()) {
        std::abort();
    }
    return 0;
}
