// libFuzzer target for the driver as a container endpoint's client reaches it: each input is a sequence of
// driver calls (the method picked from a list of every driver method, its arguments made from the input
// bytes, with the signature the method expects or, now and then, any other), sent through an endpoint
// socket of one long-lived bus, followed by a call from the host. The bus must survive every sequence
// (the sanitizers watch its memory) and keep answering its host client.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "bus/bus_daemon.h"
#include "busgate/marshal/writer.h"

using namespace busgate;
using namespace busgate::bus;

namespace {

struct Call {
    std::string_view interface;
    std::string_view member;
    std::string_view signature;
};

constexpr std::string_view bus = "org.freedesktop.DBus";
constexpr std::array calls = {
    Call{bus, "Hello", ""},
    Call{bus, "RequestName", "su"},
    Call{bus, "ReleaseName", "s"},
    Call{bus, "StartServiceByName", "su"},
    Call{bus, "UpdateActivationEnvironment", "a{ss}"},
    Call{bus, "NameHasOwner", "s"},
    Call{bus, "ListNames", ""},
    Call{bus, "ListActivatableNames", ""},
    Call{bus, "AddMatch", "s"},
    Call{bus, "RemoveMatch", "s"},
    Call{bus, "GetNameOwner", "s"},
    Call{bus, "ListQueuedOwners", "s"},
    Call{bus, "GetConnectionUnixUser", "s"},
    Call{bus, "GetConnectionUnixProcessID", "s"},
    Call{bus, "GetAdtAuditSessionData", "s"},
    Call{bus, "GetConnectionSELinuxSecurityContext", "s"},
    Call{bus, "ReloadConfig", ""},
    Call{bus, "GetId", ""},
    Call{bus, "GetConnectionCredentials", "s"},
    Call{"org.freedesktop.DBus.Properties", "Get", "ss"},
    Call{"org.freedesktop.DBus.Properties", "GetAll", "s"},
    Call{"org.freedesktop.DBus.Introspectable", "Introspect", ""},
    Call{"org.freedesktop.DBus.Monitoring", "BecomeMonitor", "asu"},
    Call{"org.freedesktop.DBus.Debug.Stats", "GetStats", ""},
    Call{"org.freedesktop.DBus.Debug.Stats", "GetConnectionStats", "s"},
    Call{"org.freedesktop.DBus.Debug.Stats", "GetAllMatchRules", ""},
    Call{"org.freedesktop.DBus.Peer", "Ping", ""},
    Call{"org.freedesktop.DBus.Peer", "GetMachineId", ""},
    Call{"org.busgate.Endpoints1", "AddEndpoint", "a{sv}"},
    Call{"org.busgate.Endpoints1", "ListEndpoints", ""},
    Call{"org.busgate.Endpoints1", "StopListening", "s"},
    Call{"org.busgate.Endpoints1", "RemoveEndpoint", "s"},
};

// Input bytes, taken a few at a time; zeros once they run out.
class Input {
  public:
    Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool empty() const { return at_ >= size_; }
    std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
    std::uint32_t uint32() {
        std::uint32_t value = 0;
        for (int i = 0; i < 4; ++i) {
            value = (value << 8) | byte();
        }
        return value;
    }
    // Strings are what a name, rule or property is made of, plus the characters that make them wrong.
    std::string text() {
        static constexpr std::string_view alphabet = "abcxyz019.:_-/*=',\\ ";
        std::string out;
        const std::size_t length = byte() % 48;
        for (std::size_t i = 0; i < length; ++i) {
            out += alphabet[byte() % alphabet.size()];
        }
        if (byte() % 4 == 0) {  // a familiar prefix makes names that mean something
            static constexpr std::array<std::string_view, 5> prefixes = {
                ":1.", "org.freedesktop.DBus", "org.example.", "type='signal',", "eavesdrop='true',"};
            out.insert(0, prefixes[byte() % prefixes.size()]);
        }
        return out;
    }

  private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

// Writes values for `signature` (the few types the driver takes) from the input.
void write_arguments(marshal::BodyWriter& body, std::string_view signature, Input& input) {
    for (std::size_t i = 0; i < signature.size(); ++i) {
        switch (signature[i]) {
            case 's':
                body.string(input.text());
                break;
            case 'u':
                body.uint32(input.uint32());
                break;
            case 'a': {
                const std::string_view element = signature.substr(i + 1, signature[i + 1] == '{' ? 4 : 1);
                body.open_array(element);
                for (std::uint8_t n = input.byte() % 4; n > 0; --n) {
                    if (element == "{ss}") {
                        body.open_dict_entry().string(input.text()).string(input.text()).close_dict_entry();
                    } else if (element == "{sv}") {
                        body.open_dict_entry().string(input.text()).open_variant("s").string(input.text());
                        body.close_variant().close_dict_entry();
                    } else {
                        body.string(input.text());
                    }
                }
                body.close_array();
                i += element.size();
                break;
            }
            default:
                break;
        }
    }
}

std::vector<std::uint8_t> driver_call(const Call& call, std::uint32_t serial, Input& input) {
    marshal::BodyWriter body;
    // Now and then the arguments of another method: the driver must refuse them cleanly.
    const std::string_view signature =
        input.byte() % 8 == 0 ? calls[input.byte() % calls.size()].signature : call.signature;
    write_arguments(body, signature, input);
    const std::string_view path = input.byte() % 8 == 0 ? "/elsewhere" : "/org/freedesktop/DBus";
    return marshal::build_message({.type = marshal::MessageType::method_call,
                                   .serial = serial,
                                   .path = path,
                                   .interface = call.interface,
                                   .member = call.member,
                                   .destination = bus},
                                  body);
}

int connect_to(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        std::abort();
    }
    const std::string uid = std::to_string(::getuid());
    std::string hex;
    for (const char c : uid) {
        hex += "3" + std::string(1, c);
    }
    const std::string auth = std::string(1, '\0') + "AUTH EXTERNAL " + hex + "\r\nBEGIN\r\n";
    (void)::write(fd, auth.data(), auth.size());
    return fd;
}

// Reads what is there, so the bus never stalls on a full socket; returns how many bytes came.
std::size_t drain(int fd) {
    std::size_t total = 0;
    std::array<char, 65536> buffer{};
    for (;;) {
        const ssize_t got = ::read(fd, buffer.data(), buffer.size());
        if (got <= 0) {
            return total;
        }
        total += static_cast<std::size_t>(got);
    }
}

struct Bus {
    std::filesystem::path directory;
    transport::EventLoop loop;
    std::unique_ptr<BusDaemon> daemon;

    Bus() {
        std::string pattern = (std::filesystem::temp_directory_path() / "busgate-fuzz-XXXXXX").string();
        directory = ::mkdtemp(pattern.data());
        DaemonOptions options;
        options.listen = {"unix:path=" + (directory / "bus").string()};
        options.bus_uid = ::getuid();
        options.auth_mechanisms = {"EXTERNAL"};
        options.runtime_directory = directory.string();
        policy::EndpointConfig endpoint;
        endpoint.name = "fuzz";
        endpoint.path = (directory / "endpoint").string();
        endpoint.talk = {"org.example.Talk"};
        endpoint.see = {"org.example.*"};
        endpoint.own = {"org.example.Own"};
        endpoint.calls = {"org.example.Seen=org.example.Seen.Call@/x"};
        options.endpoints = {endpoint};
        daemon = std::make_unique<BusDaemon>(loop, options);
        std::string error;
        if (!daemon->start(error)) {
            std::abort();
        }
    }
    void spin() {
        for (int i = 0; i < 8; ++i) {
            loop.run_once(0);
        }
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Bus* bus = new Bus();  // one bus for the whole run, as a real one lives through many clients
    Input input(data, size);
    const int inside = connect_to((bus->directory / "endpoint").string());
    const int host = connect_to((bus->directory / "bus").string());
    std::uint32_t serial = 1;
    Input hello(nullptr, 0);
    for (const int fd : {inside, host}) {
        const auto bytes = driver_call(calls[0], serial, hello);
        (void)::write(fd, bytes.data(), bytes.size());
    }
    for (int n = 0; n < 16 && !input.empty(); ++n) {
        const auto bytes = driver_call(calls[input.byte() % calls.size()], ++serial, input);
        (void)::write(inside, bytes.data(), bytes.size());
        bus->spin();
        drain(inside);
    }
    bus->spin();
    drain(host);
    Input none(nullptr, 0);
    const auto ping = driver_call(calls[17], ++serial, none);  // GetId from the host
    (void)::write(host, ping.data(), ping.size());
    bus->spin();
    if (drain(host) == 0) {
        std::abort();  // the bus stopped answering its host
    }
    ::close(inside);
    ::close(host);
    bus->spin();
    return 0;
}
