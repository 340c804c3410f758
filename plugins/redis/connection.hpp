// One asynchronous hiredis connection on the core's event loop: hiredis's
// socket is watched through the loop's socket watch, so a redis endpoint
// needs no thread.
//
// Commands are pipelined; each reply reaches its handler in the order the
// commands were sent. A connection that breaks (or fails to connect) calls
// no more handlers and says so once through `lost`, later, from the loop:
// the owner then throws it away and makes a new one.
#pragma once

#include <hiredis/async.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <pickleway/transport.hpp>

namespace pickleway::redis {

// Where Redis is: `HOST:PORT` or `unix:PATH`.
struct server_address {
  std::string text;  // as written
  std::string host;  // empty for a Unix socket
  int port = 0;
  std::string path;
};

class connection {
 public:
  // A reply, never nullptr: the connection calls no handler once broken.
  using reply_handler = std::function<void(const redisReply&)>;

  // Starts connecting; `lost` (why) comes from a later loop callback.
  connection(const server_address& at, watcher& loop, std::function<void(std::string)> lost);
  ~connection();  // disconnects, calling no handler
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Queues a command (binary-safe arguments). False when it cannot (broken).
  bool command(const std::vector<std::string_view>& args, reply_handler handler);
  bool broken() const { return context_ == nullptr; }
  // Gives the connection up (from a handler too): no more handlers are
  // called, and `lost` comes as for a break.
  void abandon(std::string why);

 private:
  static void on_reply(redisAsyncContext* context, void* reply, void* handler);
  void break_off(std::string why);

  redisAsyncContext* context_ = nullptr;
  std::unique_ptr<socket_watch> watch_;
  watcher& loop_;
  std::function<void(std::string)> lost_;
  std::unique_ptr<watch> lost_signal_;  // an eventfd's watch: `lost` runs from the loop
  int lost_fd_ = -1;
  std::string why_;
  bool closing_ = false;  // our own free: handlers are dropped, not called
  bool abandoned_ = false;
};

}  // namespace pickleway::redis
