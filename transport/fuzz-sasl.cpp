// libFuzzer target for the SASL server: any bytes, fed in two pieces, must leave it in a sane state:
// every reply is complete CRLF lines, bytes past BEGIN exist only once authenticated, and it never
// keeps more than its 16 KiB limit of unprocessed input while still talking.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "transport/sasl.h"

using namespace busgate;
using namespace busgate::transport;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    SaslServer server({.guid = "0123456789abcdef0123456789abcdef",
                       .mechanisms = {},
                       .unix_fd_possible = (size & 1) != 0,
                       .server_uid = 1000,
                       .keyring_directory = "/nonexistent/busgate-fuzz"},
                      {.uid = size % 3 == 0 ? std::optional<uid_t>() : std::optional<uid_t>(1000), .pid = 1});
    const std::size_t split = size / 2;
    server.receive(input.substr(0, split));
    server.receive(input.substr(split));
    const std::string output = server.take_output();
    if (!output.empty() && !output.ends_with("\r\n")) {
        std::abort();
    }
    if (!server.unused_bytes().empty() && server.state() != SaslServer::State::authenticated) {
        std::abort();
    }
    if (server.state() == SaslServer::State::authenticated && !server.authorized_uid() &&
        !server.authenticated_anonymously()) {
        std::abort();
    }
    return 0;
}
