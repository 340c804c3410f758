#include "engine/metrics_server.hpp"

#include <chrono>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "engine/status_page.hpp"
#include "http_request.hpp"

namespace pickleway {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

// A client gets this long to send its request head.
constexpr std::chrono::seconds request_timeout{5};

std::string response(std::string_view status, std::string_view type, std::string_view body,
                     bool with_body) {
  std::string r = "HTTP/1.1 " + std::string(status) + "\r\nContent-Type: " + std::string(type) +
                  "\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (with_body) r += body;
  return r;
}

std::string plain(std::string_view status, std::string_view text) {
  return response(status, "text/plain; charset=utf-8", std::string(text) + "\n", true);
}

}  // namespace

std::unique_ptr<metrics_server> metrics_server::listen(asio::io_context& io, const std::string& address,
                                                       snapshot_fn snapshot, std::string& error) {
  const std::size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  const auto found = resolver.resolve(host, port, asio::ip::tcp::resolver::numeric_service, ec);
  if (ec || found.empty()) {
    error = "cannot resolve " + address + ": " + (ec ? ec.message() : "no address");
    return nullptr;
  }
  asio::ip::tcp::acceptor acceptor(io);
  const asio::ip::tcp::endpoint at = *found.begin();
  if (acceptor.open(at.protocol(), ec) ||
      acceptor.set_option(asio::socket_base::reuse_address(true), ec) || acceptor.bind(at, ec) ||
      acceptor.listen(asio::socket_base::max_listen_connections, ec)) {
    error = "cannot listen on " + address + ": " + ec.message();
    return nullptr;
  }
  return std::make_unique<metrics_server>(io, std::move(acceptor), std::move(snapshot));
}

metrics_server::metrics_server(asio::io_context& io, asio::ip::tcp::acceptor acceptor, snapshot_fn snapshot)
    : io_(io), acceptor_(std::move(acceptor)), snapshot_(std::move(snapshot)), slot_freed_(io) {}

metrics_server::~metrics_server() { stop(); }

void metrics_server::start() {
  // Nothing the loop awaits throws but std::bad_alloc, which ends the
  // server and leaves the sessions running.
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

void metrics_server::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& s : open_) s->close(ignored);
  open_.clear();
  slot_freed_.notify();
}

std::string metrics_server::describe() const {
  std::error_code ec;
  const auto at = acceptor_.local_endpoint(ec);
  if (ec) return "?";
  const std::string host = at.address().to_string();
  return (at.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(at.port());
}

asio::awaitable<void> metrics_server::accept_loop() {
  while (!stopped_) {
    // At the limit, further clients wait in the listen backlog.
    if (open_.size() >= most_connections) {
      co_await slot_freed_.changed();
      continue;
    }
    auto socket = std::make_shared<asio::ip::tcp::socket>(io_);
    const auto [error] = co_await acceptor_.async_accept(*socket, tuple_awaitable);
    if (stopped_ || error == asio::error::operation_aborted) co_return;
    if (error) continue;  // the client gave up before we took it
    open_.insert(socket);
    asio::co_spawn(io_, serve(socket), asio::detached);
  }
}

asio::awaitable<void> metrics_server::serve(std::shared_ptr<asio::ip::tcp::socket> socket) {
  std::string head;
  std::string answer;
  asio::steady_timer timeout(io_);
  timeout.expires_after(request_timeout);
  for (;;) {
    char chunk[1024];
    const auto which = co_await (socket->async_read_some(asio::buffer(chunk), tuple_awaitable) ||
                                 timeout.async_wait(tuple_awaitable));
    if (stopped_) co_return;
    if (which.index() == 1) {
      answer = plain("408 Request Timeout", "no complete request within 5 s");
      break;
    }
    const auto [error, n] = std::get<0>(which);
    if (error) break;  // gone: nothing to answer
    head.append(chunk, n);
    if (parse_http_head(head).status != http_head::state::incomplete) {
      answer = co_await respond(head);
      break;
    }
  }
  if (!answer.empty()) co_await asio::async_write(*socket, asio::buffer(answer), tuple_awaitable);
  if (stopped_) co_return;
  std::error_code ignored;
  socket->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket->close(ignored);
  open_.erase(socket);
  slot_freed_.notify();
}

asio::awaitable<std::string> metrics_server::respond(std::string request_head) {
  const http_head h = parse_http_head(request_head);
  if (h.status == http_head::state::bad) co_return plain("400 Bad Request", h.error);
  const bool body = h.method != "HEAD";
  if (h.method != "GET" && h.method != "HEAD") co_return plain("405 Method Not Allowed", "GET only");
  if (h.path == "/metrics" || h.path == "/status") {
    const gateway_status now = co_await snapshot_();
    if (h.path == "/metrics")
      co_return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_metrics(now), body);
    co_return response("200 OK", "application/json", render_status_json(now), body);
  }
  if (h.path == "/") co_return response("200 OK", "text/html; charset=utf-8", status_page(), body);
  co_return plain("404 Not Found", "not found: /metrics, /status and / are served");
}

}  // namespace pickleway
