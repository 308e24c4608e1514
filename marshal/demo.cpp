// busgate-marshal-demo: what `make run` shows until the daemon exists. Builds the Hello call a
// client sends first, parses and validates it, stamps a sender, and validates any message files
// named on the command line (raw dbus1 messages, as in dbus-tests' data/valid-messages).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "busgate/marshal/message.h"
#include "busgate/marshal/reader.h"
#include "busgate/marshal/rewrite.h"
#include "busgate/marshal/writer.h"

using namespace busgate::marshal;

namespace {

void print_header(const MessageHeader& header) {
    std::printf("  type %u, flags %#x, serial %u, body %u bytes\n", header.raw_type, header.flags,
                header.serial, header.body_length);
    const std::pair<const char*, std::string_view> fields[] = {
        {"path", header.path},           {"interface", header.interface},     {"member", header.member},
        {"error", header.error_name},    {"destination", header.destination}, {"sender", header.sender},
        {"signature", header.signature},
    };
    for (const auto& [name, value] : fields) {
        if (!value.empty()) {
            std::printf("  %-11s %.*s\n", name, static_cast<int>(value.size()), value.data());
        }
    }
}

int validate_file(const char* path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        std::fprintf(stderr, "%s: cannot open\n", path);
        return 1;
    }
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                                          std::istreambuf_iterator<char>());
    MessageHeader header;
    const Validity validity = parse_message(bytes, header);
    std::printf("%s: %.*s\n", path, static_cast<int>(describe(validity).size()), describe(validity).data());
    if (validity == Validity::valid) {
        print_header(header);
    }
    return validity == Validity::valid ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1) {
        int status = 0;
        for (int i = 1; i < argc; ++i) {
            status |= validate_file(argv[i]);
        }
        return status;
    }

    const std::vector<std::uint8_t> hello = build_message({
        .type = MessageType::method_call,
        .serial = 1,
        .path = "/org/freedesktop/DBus",
        .interface = "org.freedesktop.DBus",
        .member = "Hello",
        .destination = "org.freedesktop.DBus",
    });
    MessageHeader header;
    std::printf("Hello call, %zu bytes: %.*s\n", hello.size(),
                static_cast<int>(describe(parse_message(hello, header)).size()),
                describe(parse_message(hello, header)).data());
    print_header(header);

    std::vector<std::uint8_t> stamped;
    rewrite_header_with_sender(hello, header, ":1.1", stamped);
    stamped.insert(stamped.end(), body_of(hello, header).begin(), body_of(hello, header).end());
    MessageHeader stamped_header;
    std::printf("as routed by the bus, %zu bytes: %.*s\n", stamped.size(),
                static_cast<int>(describe(parse_message(stamped, stamped_header)).size()),
                describe(parse_message(stamped, stamped_header)).data());
    print_header(stamped_header);

    BodyWriter body;
    body.string("org.example.Name").open_array("{sv}");
    body.open_dict_entry().string("answer").open_variant("i").int32(42).close_variant().close_dict_entry();
    body.close_array();
    const std::vector<std::uint8_t> signal = build_message({.type = MessageType::signal,
                                                            .path = "/org/example",
                                                            .interface = "org.example.Iface",
                                                            .member = "Changed"},
                                                           body);
    MessageHeader signal_header;
    std::printf("a signal with body %s: %.*s\n", body.written_signature().c_str(),
                static_cast<int>(describe(parse_message(signal, signal_header)).size()),
                describe(parse_message(signal, signal_header)).data());
    BodyReader reader(signal, signal_header);
    const auto name = reader.read_string();
    reader.enter();
    reader.enter();
    const auto key = reader.read_string();
    reader.enter();
    const auto value = reader.read_int32();
    std::printf("  read back: %.*s, %.*s = %d\n", static_cast<int>(name->size()), name->data(),
                static_cast<int>(key->size()), key->data(), *value);
    return 0;
}
