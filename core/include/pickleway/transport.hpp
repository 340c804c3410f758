// Transport plugins: they open endpoints; the core's session code does the
// rest (reads, frames, filters, writes).
//
// Calls come from the core's event loop thread and must not block. Every
// entry point is noexcept and returns its error (open_step::fail, nullptr
// and an error string): no exception crosses the plugin boundary; a plugin
// runs a body that can throw inside guarded() (guarded.hpp). A failure ends
// its instance (or, for a listener, its session) with the text.
// Opening takes time (a connect that retries, a TLS handshake), so it is a
// step function the core calls again whenever what it waits for is ready.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "pickleway/guarded.hpp"
#include "pickleway/stream.hpp"

namespace pickleway {

// Where the core reports lines a plugin wants logged (a child's stderr with
// `stderr: log`, a filter's count of dropped records). It outlives
// everything the instance it was given for holds (streams, openers,
// filters, down to their destructors). Call it from the core's event loop
// thread only: from a plugin's entry points, or from a watch's callback.
class log_sink {
 public:
  virtual ~log_sink() = default;
  virtual void line(std::string_view text) noexcept = 0;
};

// A descriptor the core's loop (that of the instance the plugin opened it
// for) watches for a plugin; destroying it stops the watch (on the loop
// thread: from an entry point or a callback, the watch's own included).
// Destroy it before closing the descriptor.
class watch {
 public:
  virtual ~watch() = default;
};

// A socket the core's loop watches both ways for a plugin (a client
// library's connection, hiredis's): which ways it waits for change as the
// library asks. Destroying it stops the watch, as for `watch`.
class socket_watch : public watch {
 public:
  virtual void want_readable(bool on) noexcept = 0;
  virtual void want_writable(bool on) noexcept = 0;
};

// The core's event loop, for descriptors a plugin reads outside the
// session's streams (spawn's pipes of a child's log lines, a broker's
// connection, a timerfd), so that it needs no thread of its own.
class watcher {
 public:
  virtual ~watcher() = default;
  // Calls `readable` on the loop thread whenever `fd` is readable, until
  // the returned watch is destroyed; the plugin still owns `fd`. The
  // callback must not throw nor block; it reads until the descriptor
  // would block, or the loop calls it again at once. nullptr when the
  // loop cannot watch `fd`.
  virtual std::unique_ptr<watch> watch_readable(int fd, std::function<void()> readable) noexcept = 0;
  // As watch_readable, but waiting for neither way until the plugin asks:
  // `readable` and `writable` are called on the loop thread while that way
  // is wanted and ready. nullptr when the loop cannot watch `fd`.
  virtual std::unique_ptr<socket_watch> watch_socket(int fd, std::function<void()> readable,
                                                     std::function<void()> writable) noexcept = 0;
};

// What the core says of the instance an endpoint is opened for.
struct open_context {
  std::string session;    // the session's name
  std::uint64_t instance = 0;
  log_sink* log = nullptr;
  // The core's loop; it outlives everything the instance holds, as `log`.
  watcher* watch = nullptr;
  // With `instances: N`, this instance's place among them, from 1 (a
  // redis reader's consumer is CONSUMER-slot when slots > 1).
  std::uint64_t slot = 1;
  std::uint64_t slots = 1;
};

// One step of opening: the stream, a wait, or a failure.
struct open_step {
  enum class kind : std::uint8_t { ready, wait, failed };
  kind what = kind::failed;
  std::unique_ptr<byte_stream> stream;  // ready
  // wait: until `handle` is readable (writable if `writable`), or until
  // `timeout` passes; a handle of -1 waits for the timeout alone.
  int handle = -1;
  bool writable = false;
  std::chrono::milliseconds timeout{-1};  // -1: no timeout
  std::string error;  // failed: why, e.g. "connect to 127.0.0.1:7000: connection refused"

  static open_step ready(std::unique_ptr<byte_stream> s) {
    open_step o;
    o.what = kind::ready;
    o.stream = std::move(s);
    return o;
  }
  static open_step wait_for(int handle, bool writable, std::chrono::milliseconds timeout) {
    open_step o;
    o.what = kind::wait;
    o.handle = handle;
    o.writable = writable;
    o.timeout = timeout;
    return o;
  }
  static open_step fail(std::string why) {
    open_step o;
    o.error = std::move(why);
    return o;
  }
};

class opener {
 public:
  virtual ~opener() = default;  // abandons the open, closing what it holds
  // First call starts; later calls go on after the wait the last step asked
  // for is over (`timed_out` says whether its timeout passed).
  virtual open_step step(bool timed_out) noexcept = 0;
};

// A listening endpoint: each accepted connection starts an instance.
class listener {
 public:
  virtual ~listener() = default;  // stops listening (and removes a socket file)
  virtual int handle() const noexcept = 0;  // readable when accept() may succeed
  // An opener for the next connection (it may have a handshake to do), or
  // nullptr with `error` empty when none is waiting.
  virtual std::unique_ptr<opener> accept(std::string& error) noexcept = 0;
  virtual std::string describe() const noexcept = 0;  // "unix /run/x.sock"
};

// One configured endpoint: made once from validated options, then asked for
// a listener or an opener per instance.
class transport {
 public:
  virtual ~transport() = default;
  virtual bool listens() const noexcept { return false; }
  // For a listening endpoint: starts listening (nullptr and `error` on failure).
  virtual std::unique_ptr<listener> listen(std::string& error) noexcept {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<listener>(); },
                   [&] {
                     error = "this transport does not listen";
                     return std::unique_ptr<listener>();
                   });
  }
  // For the others: opens the endpoint for one instance. Called when its
  // turn comes, after the instance's accepted connection (if any) has
  // opened and passed its handshakes, so a stranger starts nothing.
  // nullptr and `error` when it cannot.
  virtual std::unique_ptr<opener> open(const open_context& context, std::string& error) noexcept = 0;
  // The resolved endpoint for `pickleway check`: "tcp connect 10.0.0.2:7000".
  virtual std::string describe() const noexcept = 0;
};

}  // namespace pickleway
