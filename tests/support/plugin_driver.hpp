// Drives a plugin from a test without the engine: loads it from the build
// tree, makes it from options, and opens, reads and writes synchronously
// with poll(2), each wait bounded by a deadline.
#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pickleway/filter.hpp"
#include "pickleway/plugin.hpp"
#include "pickleway/transport.hpp"
#include "plugin_registry.hpp"

namespace pickleway::test {

// The plugins built into build/plugins, loaded once per test process.
const plugin_registry& built_plugins();

// Options as a plugin receives them, written by hand in a test.
option_values options(std::initializer_list<std::pair<std::string, option_value>> values);

// Makes a transport from options, given the defaults of those its schema
// has and `values` lacks, as the core would; fails the test when the
// plugin refuses, unless `error` is given (then it receives the refusal).
std::unique_ptr<transport> make_transport(const std::string& name, const option_values& values,
                                          option_error* error = nullptr);

// Makes a filter factory from options, as make_transport does.
std::unique_ptr<filter_factory> make_filter(const std::string& name, const option_values& values,
                                            option_error* error = nullptr);

using namespace std::chrono_literals;

// An opener for one instance, or a filter, as the core asks for them;
// fails the test (and returns nullptr) when the plugin gives an error.
std::unique_ptr<opener> open_endpoint(transport& t, const open_context& context);
std::unique_ptr<filter> make_instance(filter_factory& f, const open_context& context);

// Runs an opener to its end; nullptr with `error` set when it failed or the
// deadline passed.
std::unique_ptr<byte_stream> open_now(opener& o, std::string& error,
                                      std::chrono::milliseconds deadline = 10s);

// Accepts one connection on a listener and opens it.
std::unique_ptr<byte_stream> accept_now(listener& l, std::string& error,
                                        std::chrono::milliseconds deadline = 10s);

// Writes all of `bytes`, waiting as needed; false on failure or timeout.
bool write_all(byte_stream& s, std::string_view bytes, std::chrono::milliseconds deadline = 10s);

// Reads until EOF (true) or failure/timeout (false); what came is in `out`.
bool read_to_end(byte_stream& s, std::string& out, std::chrono::milliseconds deadline = 10s);

// Two ends of one connection, as a test opens them.
struct connection {
  std::unique_ptr<byte_stream> client;
  std::unique_ptr<byte_stream> server;
};

// Carries `a_to_b` from a to b and `b_to_a` back at the same time, each
// direction half-closed once written, so that neither side's buffers can
// stall the other; returns what each side read until EOF.
std::pair<std::string, std::string> carry(byte_stream& a, byte_stream& b, std::string_view a_to_b,
                                          std::string_view b_to_a);

// The sequence a user relies on: one side half-closes, the other reads
// EOF, and can still answer.
void exchange_with_half_close(connection& c);

// Waits until `handle` is ready; false on timeout.
bool wait_ready(int handle, bool writable, std::chrono::milliseconds timeout);

// A watcher (transport.hpp) for a test without the engine: the test's own
// thread is its loop, running the callbacks of the descriptors it watches
// whenever it waits with run_once().
class poll_watcher final : public watcher {
 public:
  poll_watcher();
  ~poll_watcher() override;
  std::unique_ptr<watch> watch_readable(int fd, std::function<void()> readable) noexcept override;
  std::unique_ptr<socket_watch> watch_socket(int fd, std::function<void()> readable,
                                             std::function<void()> writable) noexcept override;

  // Waits up to `timeout` for a watched descriptor, or one of `also`
  // (whose revents it fills), to be ready, and runs the callbacks of the
  // watched that are; false when the timeout passed first.
  bool run_once(std::chrono::milliseconds timeout, std::vector<pollfd>* also = nullptr);
  std::size_t watched() const;

  struct entry;

 private:
  std::shared_ptr<std::vector<std::shared_ptr<entry>>> entries_;
};

}  // namespace pickleway::test
