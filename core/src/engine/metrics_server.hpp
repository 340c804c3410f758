// `metrics: {listen: HOST:PORT}`: /metrics, /status and / over HTTP/1.1,
// served by the engine's own loop. Each request is read (at most
// max_http_head bytes, within a few seconds), answered and its connection
// closed; a bounded number are served at once, and nothing else is.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "engine/event.hpp"
#include "engine/status.hpp"

namespace pickleway {

class metrics_server {
 public:
  // Reads every session's counters, on the loops that hold them.
  using snapshot_fn = std::function<asio::awaitable<gateway_status>()>;

  // Listening on `address` ("127.0.0.1:9464"; port 0 takes any), or
  // nullptr and `error`.
  static std::unique_ptr<metrics_server> listen(asio::io_context& io, const std::string& address,
                                                snapshot_fn snapshot, std::string& error);
  metrics_server(asio::io_context& io, asio::ip::tcp::acceptor acceptor, snapshot_fn snapshot);
  ~metrics_server();

  void start();
  void stop();  // stops listening; requests being answered are closed
  std::string describe() const;  // "127.0.0.1:9464"

  // The connections served at once; more wait in the listen backlog.
  static constexpr std::size_t most_connections = 32;

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<asio::ip::tcp::socket> socket);
  asio::awaitable<std::string> respond(std::string request_head);

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;
  snapshot_fn snapshot_;
  std::set<std::shared_ptr<asio::ip::tcp::socket>> open_;
  event slot_freed_;  // a request's connection closed
  bool stopped_ = false;
};

}  // namespace pickleway
