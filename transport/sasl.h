// The server side of the D-Bus authentication protocol (SASL over CRLF lines), as dbus-daemon
// speaks it: the leading nul byte, AUTH with EXTERNAL, DBUS_COOKIE_SHA1 and ANONYMOUS, DATA,
// CANCEL, ERROR, NEGOTIATE_UNIX_FD and BEGIN, six rejections before disconnecting, 16 KiB of
// buffered lines at most. It does no I/O: the connection feeds it bytes and sends what it answers.
// The replies, error texts and state changes match dbus-daemon's exactly; the test runs the
// upstream dbus-tests auth scripts against it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/peer_credentials.h"

namespace busgate::transport {

struct SaslOptions {
    std::string guid;                     // 32 hex digits, sent with OK
    std::vector<std::string> mechanisms;  // the <auth> elements; empty allows all
    bool unix_fd_possible = true;
    uid_t server_uid = 0;                     // DBUS_COOKIE_SHA1 only authenticates this user
    std::filesystem::path keyring_directory;  // where DBUS_COOKIE_SHA1 keeps its cookies
};

// What an authentication established: the connection keeps this once the exchange itself is freed.
struct SaslOutcome {
    bool unix_fd_negotiated = false;
    std::optional<uid_t> authorized_uid;  // nothing for ANONYMOUS
    bool anonymous = false;
    pid_t authorized_pid = 0;
};

class SaslServer {
  public:
    enum class State { waiting_for_input, authenticated, need_disconnect };

    SaslServer(SaslOptions options, PeerCredentials socket_credentials);

    // Takes bytes from the client and processes every complete line.
    void receive(std::string_view bytes);
    // Bytes to send to the client; the caller sends them all.
    std::string take_output();
    State state() const { return state_; }
    // After BEGIN: what followed it, the start of the message stream.
    std::string_view unused_bytes() const {
        return state_ == State::authenticated ? std::string_view(incoming_) : "";
    }

    bool unix_fd_negotiated() const { return unix_fd_negotiated_; }
    // The identity authenticated: a uid, or nothing for ANONYMOUS.
    std::optional<uid_t> authorized_uid() const { return authorized_uid_; }
    bool authenticated_anonymously() const { return anonymous_; }
    pid_t authorized_pid() const { return authorized_pid_; }
    SaslOutcome outcome() const { return {unix_fd_negotiated_, authorized_uid_, anonymous_, authorized_pid_}; }

  private:
    enum class Phase { waiting_for_auth, waiting_for_data, waiting_for_begin };
    enum class Command {
        auth,
        cancel,
        data,
        begin,
        rejected,
        ok,
        error,
        negotiate_unix_fd,
        agree_unix_fd,
        unknown
    };
    enum class Mechanism { none, external, cookie_sha1, anonymous };

    void process_line(std::string_view line);
    void handle(Command command, std::string_view arguments);
    void handle_auth(std::string_view arguments);
    void process_data(std::string_view hex);
    void mechanism_data(const std::string& data);
    void external_data(const std::string& data);
    void cookie_first_response(const std::string& data);
    void cookie_second_response(const std::string& data);
    void anonymous_data(const std::string& data);

    void send_rejected();
    void send_error(std::string_view message);
    void send_ok();
    void send_data(std::string_view data);
    void shutdown_mechanism();
    bool allowed(std::string_view mechanism) const;

    SaslOptions options_;
    PeerCredentials credentials_;
    std::string incoming_;
    std::string outgoing_;
    State state_ = State::waiting_for_input;
    Phase phase_ = Phase::waiting_for_auth;
    Mechanism mechanism_ = Mechanism::none;
    bool seen_nul_byte_ = false;
    int failures_ = 0;
    std::string identity_;
    bool already_asked_for_initial_response_ = false;
    bool unix_fd_negotiated_ = false;
    std::optional<uid_t> desired_uid_;
    std::optional<uid_t> authorized_uid_;
    pid_t authorized_pid_ = 0;
    bool anonymous_ = false;
    long cookie_id_ = -1;
    std::string challenge_;
};

}  // namespace busgate::transport
