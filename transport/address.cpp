#include "transport/address.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>

#include "busgate/util/encoding.h"

namespace busgate::transport {
namespace {

constexpr int listen_backlog = 30;  // dbus-daemon's

bool is_optionally_escaped(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '_' || c == '/' || c == '.' || c == '\\' || c == '*';
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool unescape(std::string_view text, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) {
                return false;
            }
            const int high = hex_digit(text[i + 1]);
            const int low = hex_digit(text[i + 2]);
            if (high < 0 || low < 0) {
                return false;
            }
            out.push_back(static_cast<char>(high << 4 | low));
            i += 2;
        } else if (is_optionally_escaped(static_cast<unsigned char>(c))) {
            out.push_back(c);
        } else {
            return false;
        }
    }
    return true;
}

std::string errno_text(std::string_view what, int error) {
    return std::string(what) + ": " + std::strerror(error);
}

util::UniqueFd unix_socket() {
    return util::UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

ListenResult listen_unix(std::string_view path, bool abstract) {
    ListenResult result;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    // Abstract names start with a nul byte and are not nul-terminated.
    const std::size_t offset = abstract ? 1 : 0;
    if (path.size() + offset >= sizeof(address.sun_path)) {
        result.error = "Socket name too long";
        return result;
    }
    std::memcpy(address.sun_path + offset, path.data(), path.size());
    util::UniqueFd fd = unix_socket();
    if (!fd) {
        result.error = errno_text("Failed to create socket", errno);
        return result;
    }
    if (!abstract) {
        // As dbus-daemon: a stale socket file from an earlier bus would make bind fail.
        struct stat status {};
        const std::string name(path);
        if (::lstat(name.c_str(), &status) == 0 && S_ISSOCK(status.st_mode)) {
            ::unlink(name.c_str());
        }
    }
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + offset + path.size());
    // Anyone may connect, as to dbus-daemon's sockets; the bus's policy decides what they may do. The mode
    // comes with bind itself: a chmod by path afterwards would follow whatever stands there by then.
    const mode_t umask_before = ::umask(0);
    const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length);
    const int bind_errno = errno;
    ::umask(umask_before);
    if (bound != 0) {
        result.error = errno_text("Failed to bind socket \"" + std::string(path) + "\"", bind_errno);
        return result;
    }
    if (::listen(fd.get(), listen_backlog) != 0) {
        result.error = errno_text("Failed to listen on socket \"" + std::string(path) + "\"", errno);
        return result;
    }
    Listener listener;
    listener.fd = std::move(fd);
    listener.is_unix = true;
    listener.connectable =
        std::string(abstract ? "unix:abstract=" : "unix:path=") + escape_address_value(path);
    if (!abstract) {
        listener.unlink_path = path;
    }
    result.listeners.push_back(std::move(listener));
    return result;
}

ListenResult listen_tcp(const AddressEntry& entry, bool with_nonce) {
    ListenResult result;
    const std::string* host = entry.find("host");
    const std::string* bind_host = entry.find("bind");
    const std::string* port = entry.find("port");
    const std::string* family = entry.find("family");
    const std::string host_name = host ? *host : "localhost";
    std::string bind_name = bind_host ? *bind_host : host_name;

    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_PASSIVE;
    hints.ai_family = AF_UNSPEC;
    if (family) {
        if (*family == "ipv4") {
            hints.ai_family = AF_INET;
        } else if (*family == "ipv6") {
            hints.ai_family = AF_INET6;
        } else {
            result.error = "Unknown address family " + *family;
            return result;
        }
    }
    std::string port_text = port ? *port : "0";
    addrinfo* found = nullptr;
    const char* node = bind_name == "*" ? nullptr : bind_name.c_str();
    if (const int status = ::getaddrinfo(node, port_text.c_str(), &hints, &found); status != 0) {
        result.error =
            "Failed to lookup host/port: \"" + bind_name + ":" + port_text + "\": " + gai_strerror(status);
        return result;
    }
    for (addrinfo* info = found; info != nullptr; info = info->ai_next) {
        util::UniqueFd fd(
            ::socket(info->ai_family, info->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, info->ai_protocol));
        if (!fd) {
            continue;
        }
        const int yes = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        if (info->ai_family == AF_INET6) {
            ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof yes);
        }
        // With port 0, every further socket takes the port the first one got.
        if (!result.listeners.empty()) {
            const auto network_port = htons(static_cast<std::uint16_t>(std::stoi(port_text)));
            if (info->ai_family == AF_INET6) {
                reinterpret_cast<sockaddr_in6*>(info->ai_addr)->sin6_port = network_port;
            } else {
                reinterpret_cast<sockaddr_in*>(info->ai_addr)->sin_port = network_port;
            }
        }
        if (::bind(fd.get(), info->ai_addr, info->ai_addrlen) != 0 ||
            ::listen(fd.get(), listen_backlog) != 0) {
            result.error = errno_text("Failed to bind socket \"" + bind_name + ":" + port_text + "\"", errno);
            continue;
        }
        if (result.listeners.empty()) {  // the port actually bound, numeric even if given as a name or 0
            sockaddr_storage bound{};
            socklen_t length = sizeof bound;
            ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length);
            const std::uint16_t actual = bound.ss_family == AF_INET6
                                             ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                             : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
            port_text = std::to_string(actual);
        }
        Listener listener;
        listener.fd = std::move(fd);
        result.listeners.push_back(std::move(listener));
    }
    ::freeaddrinfo(found);
    if (result.listeners.empty()) {
        if (result.error.empty()) {
            result.error = "Failed to bind socket \"" + bind_name + ":" + port_text + "\"";
        }
        return result;
    }
    result.error.clear();

    std::string connectable = std::string(with_nonce ? "nonce-tcp:" : "tcp:") +
                              "host=" + escape_address_value(host_name) + ",port=" + port_text;
    if (family) {
        connectable += ",family=" + *family;
    }
    std::string nonce, nonce_file;
    if (with_nonce) {
        nonce = util::random_bytes(16);
        char directory[] = "/tmp/dbus-XXXXXXXXXX";
        if (::mkdtemp(directory) == nullptr) {
            result.error = errno_text("Failed to create nonce directory", errno);
            result.listeners.clear();
            return result;
        }
        nonce_file = std::string(directory) + "/nonce";
        std::ofstream(nonce_file, std::ios::binary) << nonce;
        connectable += ",noncefile=" + escape_address_value(nonce_file);
    }
    for (Listener& listener : result.listeners) {
        listener.connectable = connectable;
        listener.nonce = nonce;
    }
    result.listeners.front().nonce_file = nonce_file;
    return result;
}

}  // namespace

const std::string* AddressEntry::find(std::string_view key) const {
    for (const auto& [name, value] : parameters) {
        if (name == key) {
            return &value;
        }
    }
    return nullptr;
}

std::string escape_address_value(std::string_view value) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string escaped;
    for (unsigned char c : value) {
        if (is_optionally_escaped(c)) {
            escaped.push_back(static_cast<char>(c));
        } else {
            escaped.push_back('%');
            escaped.push_back(digits[c >> 4]);
            escaped.push_back(digits[c & 0xf]);
        }
    }
    return escaped;
}

ParsedAddress parse_address(std::string_view text) {
    ParsedAddress parsed;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find(';', start), text.size());
        const std::string_view part = text.substr(start, end - start);
        start = end + 1;
        if (part.empty()) {
            if (end >= text.size()) {
                break;
            }
            continue;
        }
        const std::size_t colon = part.find(':');
        if (colon == std::string_view::npos) {
            parsed.error = "Address does not contain a colon";
            return parsed;
        }
        AddressEntry entry;
        entry.transport = part.substr(0, colon);
        std::string_view rest = part.substr(colon + 1);
        while (!rest.empty()) {
            const std::size_t comma = std::min(rest.find(','), rest.size());
            const std::string_view pair = rest.substr(0, comma);
            rest = comma < rest.size() ? rest.substr(comma + 1) : std::string_view();
            const std::size_t equals = pair.find('=');
            if (equals == std::string_view::npos) {
                parsed.error = "Address element does not contain an equals sign";
                return parsed;
            }
            if (equals == 0) {
                parsed.error = "Address element has empty key";
                return parsed;
            }
            if (equals + 1 == pair.size()) {
                parsed.error = "Address element has empty value";
                return parsed;
            }
            std::string value;
            if (!unescape(pair.substr(equals + 1), value)) {
                parsed.error = "Invalid escaping in address value";
                return parsed;
            }
            entry.parameters.emplace_back(std::string(pair.substr(0, equals)), std::move(value));
        }
        parsed.entries.push_back(std::move(entry));
        if (end >= text.size()) {
            break;
        }
    }
    if (parsed.entries.empty() && parsed.error.empty()) {
        parsed.error = "Empty address";
    }
    return parsed;
}

ListenResult listen_on(const AddressEntry& entry, std::string_view runtime_directory) {
    if (entry.transport == "unix") {
        const char* keys[] = {"path", "abstract", "runtime", "dir", "tmpdir"};
        int given = 0;
        for (const char* key : keys) {
            given += entry.find(key) != nullptr;
        }
        if (given != 1) {
            return {{},
                    "Must specify exactly one of \"path\", \"abstract\", \"dir\", \"tmpdir\" or \"runtime\""};
        }
        if (const std::string* path = entry.find("path")) {
            return listen_unix(*path, false);
        }
        if (const std::string* name = entry.find("abstract")) {
            return listen_unix(*name, true);
        }
        if (const std::string* runtime = entry.find("runtime")) {
            if (*runtime != "yes") {
                return {{}, "if given, runtime must be \"yes\", not \"" + *runtime + "\""};
            }
            if (runtime_directory.empty()) {
                return {{}, "\"runtime=yes\" requires XDG_RUNTIME_DIR to be set"};
            }
            return listen_unix(std::string(runtime_directory) + "/bus", false);
        }
        // dir and tmpdir: a random name in the directory (dbus-daemon 1.14 never uses abstract sockets here).
        const std::string* directory = entry.find("dir");
        if (!directory) {
            directory = entry.find("tmpdir");
        }
        static constexpr char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        std::string name = *directory + "/dbus-";
        for (char byte : util::random_bytes(10)) {
            name.push_back(letters[static_cast<unsigned char>(byte) % (sizeof letters - 1)]);
        }
        return listen_unix(name, false);
    }
    if (entry.transport == "tcp" || entry.transport == "nonce-tcp") {
        return listen_tcp(entry, entry.transport == "nonce-tcp");
    }
    if (entry.transport == "systemd") {
        return listen_on_systemd_sockets();
    }
    return {{}, "Unknown address type (examples of valid types are \"tcp\" and on UNIX \"unix\")"};
}

ListenResult listen_on_systemd_sockets() {
    ListenResult result;
    const int count = sd_listen_fds(true);
    if (count <= 0) {
        result.error = count < 0 ? errno_text("Failed to read systemd's passed sockets", -count)
                                 : "No socket received from systemd.";
        return result;
    }
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + count; ++fd) {
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            result.error = "Passed socket has wrong type.";
            result.listeners.clear();
            return result;
        }
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        Listener listener;
        listener.fd = util::UniqueFd(fd);
        sockaddr_storage address{};
        socklen_t length = sizeof address;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
        if (address.ss_family == AF_UNIX) {
            const auto* unix_address = reinterpret_cast<const sockaddr_un*>(&address);
            const std::size_t name_length = length - offsetof(sockaddr_un, sun_path);
            listener.is_unix = true;
            if (name_length > 0 && unix_address->sun_path[0] == '\0') {
                listener.connectable = "unix:abstract=" + escape_address_value(std::string_view(
                                                              unix_address->sun_path + 1, name_length - 1));
            } else {
                listener.connectable = "unix:path=" + escape_address_value(unix_address->sun_path);
            }
        } else {
            char host[NI_MAXHOST], service[NI_MAXSERV];
            ::getnameinfo(reinterpret_cast<sockaddr*>(&address), length, host, sizeof host, service,
                          sizeof service, NI_NUMERICHOST | NI_NUMERICSERV);
            listener.connectable = std::string("tcp:host=") + escape_address_value(host) + ",port=" + service;
        }
        result.listeners.push_back(std::move(listener));
    }
    return result;
}

std::string make_guid() {
    std::string bytes = util::random_bytes(12);
    const auto now = static_cast<std::uint32_t>(std::time(nullptr));
    for (int shift = 24; shift >= 0; shift -= 8) {
        bytes.push_back(static_cast<char>((now >> shift) & 0xff));
    }
    return util::hex_encode(bytes);
}

}  // namespace busgate::transport
