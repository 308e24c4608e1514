// WebServer: busgate's HTTP/WebSocket interface (Boost.Beast on its own Asio thread). It serves
// /metrics (OpenMetrics), /api/... (JSON), /monitor (a WebSocket stream of routed messages, filtered by a
// match rule), /capture.pcapng and the page in the web data directory. It never touches bus state: every
// answer comes from the bus thread through a WebHub. Access: a Unix socket admits root and the bus's user
// only (SO_PEERCRED); a TCP listener must be on a loopback address and every request must carry the token
// of a file only its owner can read (Authorization: Bearer, or the cookie POST /login sets).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "web/web_hub.h"

namespace busgate::web {

struct WebOptions {
    std::string address;  // unix:path=FILE or tcp:host=LOOPBACK,port=N (0: any free port)
    std::string token_file;
    std::filesystem::path data_directory;
    std::size_t monitor_queue = 4096;  // events a monitor may have unread before it loses some
    // Run on the bus thread (through the hub).
    std::function<bus::BusSnapshot()> snapshot;
    std::function<bus::PolicyCheckResult(const bus::PolicyCheckRequest&)> policy_check;
};

// Where the web interface listens, checked before anything is opened.
struct WebAddress {
    bool tcp = false;
    std::string path;  // unix
    std::string host;  // tcp: a loopback address
    std::uint16_t port = 0;
};
std::optional<WebAddress> parse_web_address(std::string_view text, std::string& error);

// Reads the token; refuses a file that its group or others may read, or that another user owns.
std::optional<std::string> read_token_file(const std::string& path, uid_t owner, std::string& error);

class WebServer {
  public:
    WebServer(WebOptions options, std::shared_ptr<WebHub> hub);
    ~WebServer();
    WebServer(const WebServer&) = delete;
    WebServer& operator=(const WebServer&) = delete;

    // Listens and starts the server's thread; the uid allowed on the Unix socket (besides root) and the
    // owner the token file must have is the process's effective uid at this call.
    bool start(std::string& error);
    void stop();
    // http://127.0.0.1:PORT/ or unix:path=FILE, once started.
    std::string url() const;

  private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace busgate::web
