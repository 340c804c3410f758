// Starting a child for the `spawn` transport: what to run, and the stream
// that ends up connected to it.
#pragma once

#include <map>
#include <memory>
#include <pickleway/stream.hpp>
#include <pickleway/transport.hpp>
#include <string>
#include <vector>

namespace pickleway::spawn {

enum class stderr_mode { inherit, discard, log };
enum class channel_mode { stdio, fds };

// A child as the options describe it; validated by the factory.
struct child_options {
  std::vector<std::string> command;        // argv, not empty
  std::map<std::string, std::string> env;  // added to or overriding the inherited environment
  std::string cwd;                         // empty: pickleway's own
  stderr_mode stderr_to = stderr_mode::inherit;
  channel_mode channel = channel_mode::stdio;
};

// Starts a child and returns the stream to it, or nullptr and `error`, a
// sentence for the user ("spawn: cannot run 'python4': No such file or
// directory"). Returns once the program is running (or failed to exec),
// without waiting for anything else.
//
// `log` receives the lines of the child's standard error (`stderr: log`)
// and, with `channel: fds`, of its standard output. They are read when
// `loop` (the core's, open_context::watch) finds their pipes readable, on
// its thread; the stream's destructor forwards what is left. Both must
// outlive the stream; `loop` may be null only when nothing goes to the
// log. With no sink, the lines go to pickleway's standard error.
std::unique_ptr<byte_stream> start_child(const child_options& options, log_sink* log,
                                         watcher* loop, std::string& error);

// "python3 producer.py", with shell quoting where a word needs it.
std::string command_line(const std::vector<std::string>& command);

}  // namespace pickleway::spawn
