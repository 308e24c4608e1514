// libFuzzer target for the busconfig parser: any text either parses into a Configuration or throws a
// ConfigError that names the file, and parsing is deterministic (a second parse of accepted text gives
// an equal Configuration). Inputs that could make expat read other files (<include>, <includedir>,
// entity declarations that could spell them) are skipped: the parser's file handling is not what
// is fuzzed, and /dev/zero or / would only measure the disk.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "busgate/policy/configuration.h"

using namespace busgate::policy;

namespace {

std::optional<std::uint32_t> fake_id(std::string_view name) {
    if (name == "root") {
        return 0;
    }
    if (name == "messagebus" || name == "nobody") {
        return 100;
    }
    std::uint32_t id = 0;
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (error == std::errc() && end == name.data() + name.size() && id < 65536) {
        return id;
    }
    return std::nullopt;
}

LoadOptions fuzz_options() {
    LoadOptions options;
    options.users = UserDatabase{fake_id, fake_id};
    options.getenv = [](std::string_view name) -> std::optional<std::string> {
        if (name == "XDG_RUNTIME_DIR") {
            return "/run/user/1000";
        }
        return std::nullopt;
    };
    options.home_directory = "/home/fuzz";
    options.require_listen = false;  // the corpus has fragments without <listen>
    return options;
}

bool reads_other_files(std::string_view text) {
    return text.find("include") != std::string_view::npos || text.find("ENTITY") != std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (reads_other_files(text)) {
        return 0;
    }
    static const LoadOptions options = fuzz_options();
    const std::string path = "/nonexistent/busgate-fuzz/bus.conf";
    std::optional<Configuration> first;
    try {
        first = parse_configuration(text, path, options);
    } catch (const ConfigError& error) {
        if (error.file().empty() || error.describe().empty()) {
            std::abort();
        }
        return 0;
    }
    try {
        if (!(parse_configuration(text, path, options) == *first)) {
            std::abort();
        }
    } catch (const ConfigError&) {
        std::abort();  // accepted once, refused the second time
    }
    return 0;
}
