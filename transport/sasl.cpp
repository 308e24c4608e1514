#include "transport/sasl.h"

#include <charconv>
#include <cstdint>
#include <utility>

#include "busgate/marshal/names.h"
#include "busgate/util/encoding.h"
#include "busgate/util/users.h"
#include "transport/cookie_keyring.h"

namespace busgate::transport {
namespace {

constexpr std::size_t max_buffered = 16 * 1024;
constexpr int max_failures = 6;
constexpr std::string_view cookie_context = "org_freedesktop_general";
constexpr std::size_t challenge_bytes = 16;

// In dbus-daemon's order of preference, which is also the order REJECTED lists them in.
constexpr std::string_view all_mechanisms[] = {"EXTERNAL", "DBUS_COOKIE_SHA1", "ANONYMOUS"};

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::optional<uid_t> parse_uid(std::string_view text) {
    std::uint32_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
        value == static_cast<uid_t>(-1)) {
        return std::nullopt;
    }
    return static_cast<uid_t>(value);
}

// A numeric uid, or for DBUS_COOKIE_SHA1 also a login name from the user database.
std::optional<uid_t> uid_from_user(std::string_view user, bool use_user_database) {
    if (auto uid = parse_uid(user)) {
        return uid;
    }
    if (!use_user_database || user.empty()) {
        return std::nullopt;
    }
    const auto account = util::user_by_name(user);
    return account ? std::optional<uid_t>(account->uid) : std::nullopt;
}

}  // namespace

SaslServer::SaslServer(SaslOptions options, PeerCredentials socket_credentials)
    : options_(std::move(options)), credentials_(std::move(socket_credentials)) {}

std::string SaslServer::take_output() {
    return std::exchange(outgoing_, {});
}

bool SaslServer::allowed(std::string_view mechanism) const {
    if (options_.mechanisms.empty()) {
        return true;
    }
    for (const auto& name : options_.mechanisms) {
        if (name == mechanism) {
            return true;
        }
    }
    return false;
}

void SaslServer::receive(std::string_view bytes) {
    if (!seen_nul_byte_ && !bytes.empty() && state_ == State::waiting_for_input) {
        // Every client starts with one nul byte (which on some systems carries credentials).
        if (bytes.front() != '\0') {
            state_ = State::need_disconnect;
            return;
        }
        seen_nul_byte_ = true;
        bytes.remove_prefix(1);
    }
    incoming_.append(bytes);
    while (state_ == State::waiting_for_input) {
        if (incoming_.size() > max_buffered || outgoing_.size() > max_buffered) {
            state_ = State::need_disconnect;
            break;
        }
        const std::size_t end_of_line = incoming_.find("\r\n");
        if (end_of_line == std::string::npos) {
            break;
        }
        const std::string line = incoming_.substr(0, end_of_line);
        incoming_.erase(0, end_of_line + 2);
        process_line(line);
    }
}

void SaslServer::process_line(std::string_view line) {
    for (unsigned char c : line) {
        if (c == 0 || c >= 0x80) {
            send_error("Command contained non-ASCII");
            return;
        }
    }
    std::size_t blank = 0;
    while (blank < line.size() && !is_blank(line[blank])) {
        ++blank;
    }
    std::size_t arguments = blank;
    while (arguments < line.size() && is_blank(line[arguments])) {
        ++arguments;
    }
    static constexpr std::pair<std::string_view, Command> names[] = {
        {"AUTH", Command::auth},
        {"CANCEL", Command::cancel},
        {"DATA", Command::data},
        {"BEGIN", Command::begin},
        {"REJECTED", Command::rejected},
        {"OK", Command::ok},
        {"ERROR", Command::error},
        {"NEGOTIATE_UNIX_FD", Command::negotiate_unix_fd},
        {"AGREE_UNIX_FD", Command::agree_unix_fd},
    };
    Command command = Command::unknown;
    for (const auto& [name, value] : names) {
        if (line.substr(0, blank) == name) {
            command = value;
        }
    }
    handle(command, line.substr(arguments));
}

void SaslServer::handle(Command command, std::string_view arguments) {
    switch (phase_) {
        case Phase::waiting_for_auth:
            switch (command) {
                case Command::auth:
                    return handle_auth(arguments);
                case Command::cancel:
                case Command::data:
                    return send_error("Not currently in an auth conversation");
                case Command::begin:
                    state_ = State::need_disconnect;
                    return;
                case Command::error:
                    return send_rejected();
                case Command::negotiate_unix_fd:
                    return send_error("Need to authenticate first");
                default:
                    return send_error("Unknown command");
            }
        case Phase::waiting_for_data:
            switch (command) {
                case Command::auth:
                    return send_error("Sent AUTH while another AUTH in progress");
                case Command::cancel:
                case Command::error:
                    return send_rejected();
                case Command::data:
                    return process_data(arguments);
                case Command::begin:
                    state_ = State::need_disconnect;
                    return;
                case Command::negotiate_unix_fd:
                    return send_error("Need to authenticate first");
                default:
                    return send_error("Unknown command");
            }
        case Phase::waiting_for_begin:
            switch (command) {
                case Command::auth:
                    return send_error("Sent AUTH while expecting BEGIN");
                case Command::data:
                    return send_error("Sent DATA while expecting BEGIN");
                case Command::begin:
                    state_ = State::authenticated;
                    return;
                case Command::negotiate_unix_fd:
                    if (options_.unix_fd_possible) {
                        unix_fd_negotiated_ = true;
                        outgoing_ += "AGREE_UNIX_FD\r\n";
                        return;
                    }
                    return send_error(
                        "Unix FD passing not supported, not authenticated or otherwise not possible");
                case Command::cancel:
                case Command::error:
                    return send_rejected();
                default:
                    return send_error("Unknown command");
            }
    }
}

void SaslServer::handle_auth(std::string_view arguments) {
    if (arguments.empty()) {
        return send_rejected();
    }
    std::size_t blank = 0;
    while (blank < arguments.size() && !is_blank(arguments[blank])) {
        ++blank;
    }
    const std::string_view name = arguments.substr(0, blank);
    std::size_t response = blank;
    while (response < arguments.size() && is_blank(arguments[response])) {
        ++response;
    }
    mechanism_ = Mechanism::none;
    if (allowed(name)) {
        if (name == all_mechanisms[0]) {
            mechanism_ = Mechanism::external;
        } else if (name == all_mechanisms[1]) {
            mechanism_ = Mechanism::cookie_sha1;
        } else if (name == all_mechanisms[2]) {
            mechanism_ = Mechanism::anonymous;
        }
    }
    if (mechanism_ == Mechanism::none) {
        return send_rejected();
    }
    process_data(arguments.substr(response));
}

void SaslServer::process_data(std::string_view hex) {
    std::size_t consumed = 0;
    const std::string data = util::hex_decode(hex, consumed);
    if (consumed != hex.size()) {
        return send_error("Invalid hex encoding");
    }
    mechanism_data(data);
}

void SaslServer::mechanism_data(const std::string& data) {
    switch (mechanism_) {
        case Mechanism::external:
            return external_data(data);
        case Mechanism::cookie_sha1:
            return cookie_id_ < 0 ? cookie_first_response(data) : cookie_second_response(data);
        case Mechanism::anonymous:
            return anonymous_data(data);
        case Mechanism::none:
            return send_error("Unknown command");
    }
}

void SaslServer::external_data(const std::string& data) {
    if (!credentials_.uid) {
        return send_rejected();  // no socket credentials: EXTERNAL cannot work
    }
    if (!data.empty()) {
        if (!identity_.empty()) {
            return send_rejected();  // a second identity
        }
        identity_ = data;
    }
    if (identity_.empty() && !already_asked_for_initial_response_) {
        send_data({});
        already_asked_for_initial_response_ = true;
        phase_ = Phase::waiting_for_data;
        return;
    }
    // An empty answer to our empty challenge means "whoever the socket says I am".
    desired_uid_ = identity_.empty() ? credentials_.uid : uid_from_user(identity_, false);
    if (!desired_uid_ || *desired_uid_ != *credentials_.uid) {
        return send_rejected();
    }
    authorized_uid_ = desired_uid_;
    authorized_pid_ = credentials_.pid;
    send_ok();
}

void SaslServer::cookie_first_response(const std::string& data) {
    challenge_.clear();
    if (!data.empty()) {
        if (!identity_.empty()) {
            return send_rejected();
        }
        identity_ = data;
    }
    desired_uid_ = uid_from_user(data, true);
    // Only the user running the bus can be authenticated: we must not touch other users' homes.
    if (!desired_uid_ || *desired_uid_ != options_.server_uid) {
        return send_rejected();
    }
    std::string error;
    auto keyring = CookieKeyring::open(options_.keyring_directory, cookie_context, error);
    if (!keyring) {
        return send_rejected();
    }
    cookie_id_ = keyring->best_key_id(error);
    if (cookie_id_ < 0) {
        return send_rejected();
    }
    challenge_ = util::hex_encode(util::random_bytes(challenge_bytes));
    send_data(std::string(cookie_context) + " " + std::to_string(cookie_id_) + " " + challenge_);
    phase_ = Phase::waiting_for_data;
}

void SaslServer::cookie_second_response(const std::string& data) {
    const std::size_t blank = data.find_first_of(" \t");
    if (blank == std::string::npos) {
        return send_rejected();
    }
    const std::string client_challenge = data.substr(0, blank);
    std::size_t hash_start = blank;
    while (hash_start < data.size() && is_blank(data[hash_start])) {
        ++hash_start;
    }
    const std::string client_hash = data.substr(hash_start);
    if (client_challenge.empty() || client_hash.empty()) {
        return send_rejected();
    }
    std::string error;
    const auto keyring = CookieKeyring::open(options_.keyring_directory, cookie_context, error);
    const std::string cookie = keyring ? keyring->cookie(cookie_id_) : std::string();
    if (cookie.empty() || client_hash != sha1_hex(challenge_ + ":" + client_challenge + ":" + cookie)) {
        return send_rejected();
    }
    authorized_uid_ = desired_uid_;
    authorized_pid_ = credentials_.pid;
    send_ok();
}

void SaslServer::anonymous_data(const std::string& data) {
    // An optional trace string, which must be UTF-8.
    if (!data.empty() && !marshal::is_valid_utf8(data)) {
        return send_rejected();
    }
    desired_uid_.reset();
    anonymous_ = true;
    authorized_pid_ = credentials_.pid;
    send_ok();
}

void SaslServer::send_rejected() {
    outgoing_ += "REJECTED";
    for (std::string_view name : all_mechanisms) {
        if (allowed(name)) {
            outgoing_ += ' ';
            outgoing_ += name;
        }
    }
    outgoing_ += "\r\n";
    shutdown_mechanism();
    phase_ = Phase::waiting_for_auth;
    if (++failures_ >= max_failures) {
        state_ = State::need_disconnect;
    }
}

void SaslServer::send_error(std::string_view message) {
    outgoing_ += "ERROR \"";
    outgoing_ += message;
    outgoing_ += "\"\r\n";
}

void SaslServer::send_ok() {
    outgoing_ += "OK " + options_.guid + "\r\n";
    phase_ = Phase::waiting_for_begin;
}

void SaslServer::send_data(std::string_view data) {
    outgoing_ += data.empty() ? "DATA\r\n" : "DATA " + util::hex_encode(data) + "\r\n";
}

void SaslServer::shutdown_mechanism() {
    already_asked_for_initial_response_ = false;
    identity_.clear();
    authorized_uid_.reset();
    desired_uid_.reset();
    anonymous_ = false;
    cookie_id_ = -1;
    challenge_.clear();
    mechanism_ = Mechanism::none;
}

}  // namespace busgate::transport
