// The HTTP/WebSocket interface (see web_server.h). One Asio thread; sessions follow the Beast examples:
// each owns its socket and keeps itself alive through shared_from_this in its pending handlers.
#include "web/web_server.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <boost/json/src.hpp>  // Boost.JSON header-only: compiled in this one file
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "bus/match_rule.h"
#include "busgate/marshal/message.h"
#include "web/dbus_json.h"
#include "web/metrics.h"
#include "web/pcapng.h"

namespace busgate::web {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

constexpr std::string_view token_cookie = "busgate_token";
constexpr auto monitor_tick = std::chrono::milliseconds(50);
constexpr std::size_t max_request_body = 64 * 1024;
constexpr std::size_t max_capture_messages = 100000;
constexpr unsigned max_capture_seconds = 600;

// Everything the sessions share; lives as long as the io_context's handlers.
struct Context {
    WebOptions options;
    std::shared_ptr<WebHub> hub;
    std::string token;  // empty: no TCP listener
    uid_t allowed_uid = 0;
};

bool equal_in_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    unsigned char difference = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        difference |= static_cast<unsigned char>(a[i] ^ b[i]);
    }
    return difference == 0;
}

std::string percent_decoded(std::string_view text) {
    std::string decoded;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            decoded += ' ';
        } else if (text[i] == '%' && i + 2 < text.size()) {
            unsigned value = 0;
            const auto [end, error] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
            if (error == std::errc() && end == text.data() + i + 3) {
                decoded += static_cast<char>(value);
                i += 2;
            } else {
                decoded += text[i];
            }
        } else {
            decoded += text[i];
        }
    }
    return decoded;
}

std::map<std::string, std::string> parse_form(std::string_view text) {
    std::map<std::string, std::string> values;
    while (!text.empty()) {
        const auto amp = text.find('&');
        const std::string_view pair = text.substr(0, amp);
        const auto equals = pair.find('=');
        values[percent_decoded(pair.substr(0, equals))] =
            equals == std::string_view::npos ? std::string() : percent_decoded(pair.substr(equals + 1));
        text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    }
    return values;
}

std::optional<unsigned> parse_unsigned(const std::map<std::string, std::string>& query,
                                       const std::string& key) {
    const auto found = query.find(key);
    if (found == query.end()) {
        return std::nullopt;
    }
    unsigned value = 0;
    const auto [end, error] =
        std::from_chars(found->second.data(), found->second.data() + found->second.size(), value);
    if (error != std::errc() || end != found->second.data() + found->second.size()) {
        return std::nullopt;
    }
    return value;
}

// A monitor's filter: a dbus1 match rule, evaluated as a monitor's (eavesdropping) rule.
struct Filter {
    std::optional<bus::MatchRule> rule;  // none: everything
    bool matches(std::span<const std::uint8_t> bytes, const marshal::MessageHeader& header) const {
        if (!rule) {
            return true;
        }
        const bus::MessageView view(bytes, header);
        const std::string_view recipient =
            header.destination.starts_with(':') ? header.destination : std::string_view();
        return bus::matches(*rule, view, {.sender = header.sender, .addressed_recipient = recipient});
    }
};

std::optional<Filter> parse_filter(std::string_view text, std::string& error) {
    Filter filter;
    if (text.empty()) {
        return filter;
    }
    bus::ParsedMatchRule parsed = bus::parse_match_rule(text);
    if (!parsed) {
        error = parsed.error_message;
        while (!error.empty() && error.back() == '\n') {
            error.pop_back();
        }
        return std::nullopt;
    }
    parsed.rule->eavesdrop = true;  // monitors see what is addressed to others too
    filter.rule = std::move(parsed.rule);
    return filter;
}

constexpr std::string_view api_routes[] = {"names", "connections", "endpoints", "match-rules", "limits"};

std::string content_type_of(const std::filesystem::path& path) {
    const std::string extension = path.extension().string();
    if (extension == ".html") {
        return "text/html; charset=utf-8";
    }
    if (extension == ".js") {
        return "text/javascript; charset=utf-8";
    }
    if (extension == ".css") {
        return "text/css; charset=utf-8";
    }
    return "application/octet-stream";
}

// Live monitor over a WebSocket: a batch of events every tick, never more than one write outstanding; what
// piles up meanwhile waits in the subscriber's bounded queue, and what overflows it is counted and reported.
template <typename Socket>
class MonitorSession : public std::enable_shared_from_this<MonitorSession<Socket>> {
  public:
    MonitorSession(Socket socket, std::shared_ptr<Context> context)
        : ws_(std::move(socket)), timer_(ws_.get_executor()), context_(std::move(context)) {}

    void run(http::request<http::string_body> request, Filter filter, bool with_body) {
        filter_ = std::move(filter);
        with_body_ = with_body;
        ws_.auto_fragment(false);  // one frame per batch
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& response) { response.set(http::field::server, "busgate"); }));
        ws_.async_accept(request, [self = this->shared_from_this()](beast::error_code error) {
            if (!error) {
                self->subscriber_ = self->context_->hub->subscribe(self->context_->options.monitor_queue);
                self->read();
                self->tick();
            }
        });
    }

  private:
    void read() {
        ws_.async_read(input_, [self = this->shared_from_this()](beast::error_code error, std::size_t) {
            if (error) {
                return self->close();
            }
            self->control(beast::buffers_to_string(self->input_.data()));
            self->input_.consume(self->input_.size());
            self->read();
        });
    }

    // {"match": "type='signal'", "body": true} replaces the filter.
    void control(const std::string& text) {
        boost::system::error_code error;
        const json::value message = json::parse(text, error);
        json::object status;
        if (error || !message.is_object()) {
            status["error"] = "expected a JSON object with \"match\" and \"body\"";
        } else {
            const json::object& object = message.as_object();
            std::string match;
            if (const auto* value = object.if_contains("match"); value && value->is_string()) {
                match = std::string(value->as_string());
            }
            std::string problem;
            if (auto filter = parse_filter(match, problem)) {
                filter_ = std::move(*filter);
                status["match"] = match;
            } else {
                status["error"] = problem;
            }
            if (const auto* value = object.if_contains("body"); value && value->is_bool()) {
                with_body_ = value->as_bool();
            }
        }
        pending_status_ = json::serialize(status);
    }

    void tick() {
        timer_.expires_after(monitor_tick);
        timer_.async_wait([self = this->shared_from_this()](beast::error_code error) {
            if (error || self->closed_) {
                return;
            }
            self->flush();
            self->tick();
        });
    }

    void flush() {
        if (writing_) {
            return;  // the client is slow: events wait in the subscriber's queue, or are dropped there
        }
        std::uint64_t dropped = 0;
        const auto events = subscriber_->take(dropped);
        json::array out;
        for (const auto& event : events) {
            const std::span<const std::uint8_t> bytes(event->bytes);
            marshal::MessageHeader header;
            if (marshal::parse_header(bytes, header) != marshal::Validity::valid ||
                !filter_.matches(bytes, header)) {
                continue;
            }
            json::object object = message_to_json(bytes, header, with_body_);
            object["time"] = static_cast<double>(event->realtime_ns) / 1e9;
            out.push_back(std::move(object));
        }
        if (out.empty() && dropped == 0 && pending_status_.empty()) {
            return;
        }
        dropped_total_ += dropped;
        json::object batch{
            {"events", std::move(out)}, {"dropped", dropped}, {"dropped_total", dropped_total_}};
        if (!pending_status_.empty()) {
            batch["status"] = json::parse(pending_status_);
            pending_status_.clear();
        }
        output_ = json::serialize(batch);
        writing_ = true;
        ws_.text(true);
        ws_.async_write(asio::buffer(output_),
                        [self = this->shared_from_this()](beast::error_code error, std::size_t) {
                            self->writing_ = false;
                            if (error) {
                                self->close();
                            }
                        });
    }

    void close() {
        if (closed_) {
            return;
        }
        closed_ = true;
        timer_.cancel();
        if (subscriber_) {
            context_->hub->unsubscribe(subscriber_);
        }
    }

    websocket::stream<Socket> ws_;
    asio::steady_timer timer_;
    std::shared_ptr<Context> context_;
    std::shared_ptr<MonitorSubscriber> subscriber_;
    beast::flat_buffer input_;
    Filter filter_;
    bool with_body_ = false;
    bool writing_ = false;
    bool closed_ = false;
    std::uint64_t dropped_total_ = 0;
    std::string output_;
    std::string pending_status_;
};

template <typename Socket>
class HttpSession : public std::enable_shared_from_this<HttpSession<Socket>> {
  public:
    HttpSession(Socket socket, std::shared_ptr<Context> context, bool peer_allowed, bool needs_token)
        : socket_(std::move(socket)),
          timer_(socket_.get_executor()),
          context_(std::move(context)),
          peer_allowed_(peer_allowed),
          needs_token_(needs_token) {}

    void run() { read(); }

  private:
    using Response = http::response<http::string_body>;

    void read() {
        parser_.emplace();
        parser_->body_limit(max_request_body);
        http::async_read(socket_, buffer_, *parser_,
                         [self = this->shared_from_this()](beast::error_code error, std::size_t) {
                             if (error) {
                                 return self->shutdown();
                             }
                             self->request_ = self->parser_->release();
                             self->handle();
                         });
    }

    Response response(http::status status, std::string_view content_type, std::string body) {
        Response out{status, request_.version()};
        out.set(http::field::server, "busgate");
        out.set(http::field::content_type, content_type);
        out.set(http::field::cache_control, "no-store");
        out.set("X-Content-Type-Options", "nosniff");
        out.keep_alive(request_.keep_alive());
        out.body() = std::move(body);
        out.prepare_payload();
        return out;
    }

    Response error(http::status status, std::string_view text) {
        return response(status, "application/json", json::serialize(json::object{{"error", text}}));
    }

    void send(Response out) {
        auto shared = std::make_shared<Response>(std::move(out));
        http::async_write(socket_, *shared,
                          [self = this->shared_from_this(), shared](beast::error_code error, std::size_t) {
                              if (error || !shared->keep_alive()) {
                                  return self->shutdown();
                              }
                              self->read();
                          });
    }

    void shutdown() {
        beast::error_code ignored;
        socket_.shutdown(Socket::shutdown_send, ignored);
    }

    bool token_presented() const {
        const std::string& token = context_->token;
        if (const auto authorization = request_.find(http::field::authorization);
            authorization != request_.end()) {
            const std::string_view value = authorization->value();
            if (value.starts_with("Bearer ") && equal_in_constant_time(value.substr(7), token)) {
                return true;
            }
        }
        if (const auto cookies = request_.find(http::field::cookie); cookies != request_.end()) {
            std::string_view rest = cookies->value();
            while (!rest.empty()) {
                const auto semicolon = rest.find(';');
                std::string_view cookie = rest.substr(0, semicolon);
                while (cookie.starts_with(' ')) {
                    cookie.remove_prefix(1);
                }
                if (cookie.starts_with(token_cookie) && cookie.size() > token_cookie.size() &&
                    cookie[token_cookie.size()] == '=' &&
                    equal_in_constant_time(cookie.substr(token_cookie.size() + 1), token)) {
                    return true;
                }
                rest = semicolon == std::string_view::npos ? std::string_view() : rest.substr(semicolon + 1);
            }
        }
        return false;
    }

    void handle() {
        const std::string_view target = request_.target();
        const auto question = target.find('?');
        const std::string path(target.substr(0, question));
        const auto query = question == std::string_view::npos ? std::map<std::string, std::string>()
                                                              : parse_form(target.substr(question + 1));
        if (!peer_allowed_) {
            Response out = error(http::status::forbidden, "only root and the bus's user may use this socket");
            out.keep_alive(false);
            return send(std::move(out));
        }
        const bool get = request_.method() == http::verb::get || request_.method() == http::verb::head;
        // The page holds no data, so it is served to anyone who reached the listener; it asks for the token.
        if (get && (path == "/" || path.find('/', 1) == std::string::npos) && path != "/metrics" &&
            path != "/monitor" && path != "/capture.pcapng" && path != "/api") {
            return serve_file(path == "/" ? "index.html" : path.substr(1));
        }
        if (path == "/login" && request_.method() == http::verb::post) {
            return login();
        }
        if (needs_token_ && !token_presented()) {
            Response out = error(http::status::unauthorized, "a bearer token is required");
            out.set(http::field::www_authenticate, "Bearer realm=\"busgate\"");
            return send(std::move(out));
        }
        if (path == "/monitor" && get) {
            if (!websocket::is_upgrade(request_)) {
                return send(error(http::status::upgrade_required, "/monitor is a WebSocket"));
            }
            std::string problem;
            auto filter = parse_filter(query.contains("match") ? query.at("match") : std::string(), problem);
            if (!filter) {
                return send(error(http::status::bad_request, problem));
            }
            const bool with_body = query.contains("body") && query.at("body") != "0";
            std::make_shared<MonitorSession<Socket>>(std::move(socket_), context_)
                ->run(std::move(request_), std::move(*filter), with_body);
            return;
        }
        if (path == "/metrics" && get) {
            return with_snapshot([self = this->shared_from_this()](const bus::BusSnapshot& snapshot) {
                self->send(
                    self->response(http::status::ok, openmetrics_content_type, render_openmetrics(snapshot)));
            });
        }
        if (path == "/api" && get) {
            json::array routes;
            for (const std::string_view route : api_routes) {
                routes.emplace_back("/api/" + std::string(route));
            }
            routes.emplace_back("/api/policy-check");
            return send(response(http::status::ok, "application/json", json::serialize(routes)));
        }
        if (path.starts_with("/api/") && get) {
            const std::string route = path.substr(5);
            if (std::find(std::begin(api_routes), std::end(api_routes), route) == std::end(api_routes)) {
                return send(error(http::status::not_found, "no such route"));
            }
            return with_snapshot([self = this->shared_from_this(), route](const bus::BusSnapshot& snapshot) {
                self->send(self->response(http::status::ok, "application/json",
                                          json::serialize(snapshot_route(snapshot, route))));
            });
        }
        if (path == "/api/policy-check" && request_.method() == http::verb::post) {
            return policy_check();
        }
        if (path == "/capture.pcapng" && get) {
            return capture(query);
        }
        send(error(http::status::not_found, "no such route"));
    }

    void serve_file(const std::string& name) {
        if (name.empty() || name.front() == '.' ||
            name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") != std::string::npos) {
            return send(error(http::status::not_found, "no such file"));
        }
        std::ifstream file(context_->options.data_directory / name, std::ios::binary);
        if (!file) {
            return send(error(http::status::not_found, "no such file"));
        }
        std::ostringstream contents;
        contents << file.rdbuf();
        Response out = response(http::status::ok, content_type_of(name), contents.str());
        out.set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; frame-ancestors 'none'");
        send(std::move(out));
    }

    void login() {
        const auto form = parse_form(request_.body());
        const auto token = form.find("token");
        if (!needs_token_ || token == form.end() || !equal_in_constant_time(token->second, context_->token)) {
            return send(error(http::status::unauthorized, "wrong token"));
        }
        Response out = response(http::status::see_other, "text/plain", "");
        out.set(http::field::location, "/");
        out.set(http::field::set_cookie,
                std::string(token_cookie) + "=" + context_->token + "; Path=/; HttpOnly; SameSite=Strict");
        send(std::move(out));
    }

    // Runs `then` on this thread with a snapshot the bus thread made.
    template <typename Then>
    void with_snapshot(Then then) {
        auto executor = socket_.get_executor();
        auto context = context_;
        context_->hub->post_to_bus([executor, context, then = std::move(then)]() mutable {
            bus::BusSnapshot snapshot = context->options.snapshot();
            asio::post(executor, [context, then = std::move(then), snapshot = std::move(snapshot)]() mutable {
                snapshot.monitor_events_dropped = context->hub->dropped_total();
                then(snapshot);
            });
        });
    }

    void policy_check() {
        boost::system::error_code problem;
        const json::value body = json::parse(request_.body(), problem);
        if (problem || !body.is_object()) {
            return send(error(http::status::bad_request, "expected a JSON object"));
        }
        const json::object& object = body.as_object();
        bus::PolicyCheckRequest check;
        const auto text = [&object](std::string_view key, std::string& into) {
            if (const auto* value = object.if_contains(key); value && value->is_string()) {
                into = std::string(value->as_string());
            }
        };
        text("sender", check.sender);
        text("type", check.type);
        text("destination", check.destination);
        text("path", check.path);
        text("interface", check.interface);
        text("member", check.member);
        text("error_name", check.error_name);
        if (const auto* uid = object.if_contains("uid"); uid && (uid->is_int64() || uid->is_uint64())) {
            check.uid = static_cast<std::uint32_t>(uid->to_number<std::uint64_t>());
        }
        auto executor = socket_.get_executor();
        auto context = context_;
        context_->hub->post_to_bus([executor, context, check, self = this->shared_from_this()]() {
            bus::PolicyCheckResult result = context->options.policy_check(check);
            asio::post(executor, [self, result = std::move(result)]() {
                if (!result.error.empty()) {
                    return self->send(self->error(http::status::bad_request, result.error));
                }
                json::object answer{{"allowed", result.allowed},
                                    {"verdict", result.verdict},
                                    {"matched_rules", result.matched_rules}};
                answer["recipient"] =
                    result.recipient.empty() ? json::value(nullptr) : json::value(result.recipient);
                answer["rule"] = result.rule ? json::value(*result.rule) : json::value(nullptr);
                answer["where"] = result.where ? json::value(*result.where) : json::value(nullptr);
                self->send(self->response(http::status::ok, "application/json", json::serialize(answer)));
            });
        });
    }

    // A bounded capture: messages matching `match` until `count` of them or `seconds` have passed.
    void capture(const std::map<std::string, std::string>& query) {
        std::string problem;
        auto filter = parse_filter(query.contains("match") ? query.at("match") : std::string(), problem);
        if (!filter) {
            return send(error(http::status::bad_request, problem));
        }
        capture_filter_ = std::move(*filter);
        capture_limit_ =
            std::min<std::size_t>(parse_unsigned(query, "count").value_or(1000), max_capture_messages);
        const unsigned seconds = std::min(parse_unsigned(query, "seconds").value_or(10), max_capture_seconds);
        capture_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        capture_file_ = pcapng_header();
        capture_count_ = 0;
        capture_subscriber_ = context_->hub->subscribe(context_->options.monitor_queue);
        capture_tick();
    }

    void capture_tick() {
        std::uint64_t dropped = 0;
        for (const auto& event : capture_subscriber_->take(dropped)) {
            const std::span<const std::uint8_t> bytes(event->bytes);
            marshal::MessageHeader header;
            if (capture_count_ < capture_limit_ &&
                marshal::parse_header(bytes, header) == marshal::Validity::valid &&
                capture_filter_.matches(bytes, header)) {
                capture_file_ += pcapng_packet(event->realtime_ns, bytes);
                ++capture_count_;
            }
        }
        capture_dropped_ += dropped;
        if (capture_count_ >= capture_limit_ || std::chrono::steady_clock::now() >= capture_deadline_) {
            context_->hub->unsubscribe(capture_subscriber_);
            capture_subscriber_.reset();
            Response out = response(http::status::ok, "application/x-pcapng", std::move(capture_file_));
            out.set("X-Busgate-Messages", std::to_string(capture_count_));
            out.set("X-Busgate-Dropped", std::to_string(capture_dropped_));
            out.set(http::field::content_disposition, "attachment; filename=\"busgate.pcapng\"");
            return send(std::move(out));
        }
        timer_.expires_after(monitor_tick);
        timer_.async_wait([self = this->shared_from_this()](beast::error_code error) {
            if (error) {
                if (self->capture_subscriber_) {
                    self->context_->hub->unsubscribe(self->capture_subscriber_);
                }
                return;
            }
            self->capture_tick();
        });
    }

    Socket socket_;
    asio::steady_timer timer_;
    std::shared_ptr<Context> context_;
    bool peer_allowed_;
    bool needs_token_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::request<http::string_body> request_;
    Filter capture_filter_;
    std::shared_ptr<MonitorSubscriber> capture_subscriber_;
    std::size_t capture_limit_ = 0;
    std::size_t capture_count_ = 0;
    std::uint64_t capture_dropped_ = 0;
    std::chrono::steady_clock::time_point capture_deadline_;
    std::string capture_file_;
};

}  // namespace

struct WebServer::State {
    asio::io_context io{1};
    std::shared_ptr<Context> context;
    WebAddress address;
    std::optional<tcp::acceptor> tcp_acceptor;
    std::optional<local::acceptor> unix_acceptor;
    std::thread thread;
    std::string url;

    void accept_tcp() {
        tcp_acceptor->async_accept([this](beast::error_code error, tcp::socket socket) {
            if (error == asio::error::operation_aborted) {
                return;
            }
            if (!error) {
                std::make_shared<HttpSession<tcp::socket>>(std::move(socket), context, true, true)->run();
            }
            accept_tcp();
        });
    }

    void accept_unix() {
        unix_acceptor->async_accept([this](beast::error_code error, local::socket socket) {
            if (error == asio::error::operation_aborted) {
                return;
            }
            if (!error) {
                ucred peer{};
                socklen_t length = sizeof peer;
                const bool known =
                    ::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0;
                const bool allowed = known && (peer.uid == 0 || peer.uid == context->allowed_uid);
                std::make_shared<HttpSession<local::socket>>(std::move(socket), context, allowed, false)
                    ->run();
            }
            accept_unix();
        });
    }
};

WebServer::WebServer(WebOptions options, std::shared_ptr<WebHub> hub) : state_(std::make_unique<State>()) {
    state_->context = std::make_shared<Context>();
    state_->context->options = std::move(options);
    if (state_->context->options.data_directory.empty()) {
        state_->context->options.data_directory = BUSGATE_WEB_DATA_DIR;
    }
    state_->context->hub = std::move(hub);
}

WebServer::~WebServer() {
    stop();
}

bool WebServer::start(std::string& error) {
    Context& context = *state_->context;
    const auto address = parse_web_address(context.options.address, error);
    if (!address) {
        return false;
    }
    state_->address = *address;
    context.allowed_uid = ::geteuid();
    boost::system::error_code problem;
    if (address->tcp) {
        if (context.options.token_file.empty()) {
            error = "a tcp web address needs --web-token-file";
            return false;
        }
        const auto token = read_token_file(context.options.token_file, context.allowed_uid, error);
        if (!token) {
            return false;
        }
        context.token = *token;
        const tcp::endpoint endpoint(asio::ip::make_address(address->host), address->port);
        auto& acceptor = state_->tcp_acceptor.emplace(state_->io);
        if (acceptor.open(endpoint.protocol(), problem) ||
            acceptor.set_option(tcp::acceptor::reuse_address(true), problem) ||
            acceptor.bind(endpoint, problem) ||
            acceptor.listen(asio::socket_base::max_listen_connections, problem)) {
            error = "cannot listen on " + address->host + ":" + std::to_string(address->port) + ": " +
                    problem.message();
            return false;
        }
        const tcp::endpoint bound = acceptor.local_endpoint();
        const std::string host =
            bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
        state_->url = "http://" + host + ":" + std::to_string(bound.port()) + "/";
        state_->accept_tcp();
    } else {
        struct stat existing {};
        if (::lstat(address->path.c_str(), &existing) == 0 && S_ISSOCK(existing.st_mode)) {
            ::unlink(address->path.c_str());  // left by a bus that did not stop cleanly
        }
        auto& acceptor = state_->unix_acceptor.emplace(state_->io);
        const local::endpoint endpoint(address->path);
        if (acceptor.open(endpoint.protocol(), problem) || acceptor.bind(endpoint, problem) ||
            acceptor.listen(asio::socket_base::max_listen_connections, problem)) {
            error = "cannot listen on " + address->path + ": " + problem.message();
            return false;
        }
        // Anyone may connect so that a refused peer gets an answer saying why; SO_PEERCRED decides.
        ::chmod(address->path.c_str(), 0666);
        state_->url = "unix:path=" + address->path;
        state_->accept_unix();
    }
    // Signals (SIGHUP, SIGTERM) are the bus thread's, read from its signalfd: this thread must never take
    // one.
    sigset_t all;
    sigset_t previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    state_->thread = std::thread([this] { state_->io.run(); });
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return true;
}

void WebServer::stop() {
    if (!state_->thread.joinable()) {
        return;
    }
    state_->io.stop();
    state_->thread.join();
    state_->context->hub->discard_tasks();
    if (!state_->address.tcp && !state_->address.path.empty()) {
        ::unlink(state_->address.path.c_str());
    }
}

std::string WebServer::url() const {
    return state_->url;
}

}  // namespace busgate::web
