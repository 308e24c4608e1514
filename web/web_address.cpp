// The --web address and the token file: parsed and checked before the server starts.
#include <sys/stat.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include "web/web_server.h"

namespace busgate::web {

namespace asio = boost::asio;

std::optional<WebAddress> parse_web_address(std::string_view text, std::string& error) {
    WebAddress address;
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        error = "a web address is unix:path=FILE or tcp:host=127.0.0.1,port=N";
        return std::nullopt;
    }
    const std::string_view transport = text.substr(0, colon);
    std::map<std::string, std::string> keys;
    std::string_view rest = text.substr(colon + 1);
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view pair = rest.substr(0, comma);
        const auto equals = pair.find('=');
        if (equals == std::string_view::npos) {
            error = "\"" + std::string(pair) + "\" is not key=value";
            return std::nullopt;
        }
        keys[std::string(pair.substr(0, equals))] = std::string(pair.substr(equals + 1));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    if (transport == "unix") {
        if (keys.size() != 1 || !keys.contains("path") || keys["path"].empty()) {
            error = "a unix web address takes path= only";
            return std::nullopt;
        }
        address.path = keys["path"];
        return address;
    }
    if (transport != "tcp") {
        error = "the web interface listens on unix: or tcp: addresses only";
        return std::nullopt;
    }
    address.tcp = true;
    address.host = keys.contains("host") ? keys["host"] : "127.0.0.1";
    if (address.host == "localhost") {
        address.host = "127.0.0.1";
    }
    boost::system::error_code problem;
    const auto ip = asio::ip::make_address(address.host, problem);
    if (problem || !ip.is_loopback()) {
        error = "the web interface listens on loopback addresses only, not \"" + address.host + "\"";
        return std::nullopt;
    }
    unsigned port = 0;
    const std::string& port_text = keys.contains("port") ? keys["port"] : "0";
    const auto [end, parse_error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (parse_error != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
        error = "bad port \"" + port_text + "\"";
        return std::nullopt;
    }
    address.port = static_cast<std::uint16_t>(port);
    for (const auto& [key, value] : keys) {
        if (key != "host" && key != "port") {
            error = "a tcp web address takes host= and port= only, not " + key + "=";
            return std::nullopt;
        }
    }
    return address;
}

std::optional<std::string> read_token_file(const std::string& path, uid_t owner, std::string& error) {
    struct stat status {};
    if (::stat(path.c_str(), &status) != 0) {
        error = "cannot read the web token file \"" + path + "\": " + std::strerror(errno);
        return std::nullopt;
    }
    if (status.st_uid != owner || (status.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        error = "the web token file \"" + path + "\" must belong to uid " + std::to_string(owner) +
                " and be readable by it alone (chmod 600)";
        return std::nullopt;
    }
    std::ifstream file(path);
    std::string token;
    std::getline(file, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) {
        token.pop_back();
    }
    if (token.size() < 16) {
        error = "the web token in \"" + path + "\" is shorter than 16 characters";
        return std::nullopt;
    }
    return token;
}

}  // namespace busgate::web
