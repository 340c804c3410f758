// Rewrites the line terminators of a pickle's text arguments, and nothing
// else: the newline filter's pure part (no I/O, no knowledge of sessions).
//
// Only protocol 0/1 text arguments end in a line terminator (INT, LONG,
// FLOAT, STRING, UNICODE, GET, PUT, PERSID: one line; GLOBAL, INST: two).
// Every other byte, binary payloads included, is copied as it is; FRAME
// lengths are rewritten to count the bytes their frame holds afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <pickleway/framer.hpp>

namespace pickleway::newline {

enum class line_end : std::uint8_t { lf, crlf };

constexpr std::string_view to_string(line_end e) { return e == line_end::lf ? "lf" : "crlf"; }

// Translates whole messages (one pickle each) to one kind of line end. A
// message that is not one whole pickle is refused; one that is stays one.
//
// To LF, a '\r' just before a text argument's '\n' is removed, and a bare
// '\n' stays; to CRLF, a '\r' is put before every text argument's '\n' (an
// LF writer's '\r' just before it is data, as Python 2 writes u'x\r').
//
// Not thread-safe; meant to live in one filter instance. Its buffers are
// reused from message to message, so in steady state a translation allocates
// only the output it hands over.
class translator {
 public:
  enum class result : std::uint8_t {
    unchanged,   // nothing to rewrite: the message goes on as it came
    translated,  // take_output() holds the rewritten message
    failed,      // `error` says why, naming the offset
  };

  // `info` is what the endpoint's framer found of `message` (its line ends
  // and frames), or null: the translator then walks the message itself.
  result translate(bytes_view message, const message_info* info, line_end to, std::string& error);

  // The message translate() last rewrote; the buffer is handed over.
  std::vector<std::uint8_t> take_output() { return std::move(out_); }

 private:
  // One change, in message order.
  struct edit {
    enum class kind : std::uint8_t {
      drop_cr,       // `pos` is a '\r' to leave out
      insert_cr,     // a '\r' goes before the '\n' at `pos`
      frame_length,  // `pos` is a FRAME's 8-byte length; `length` the new one
    };
    kind what;
    std::size_t pos;
    std::uint64_t length = 0;
  };

  void start(bytes_view in);
  bool plan_by_walk(bytes_view in, line_end to, std::string& error);
  void plan_by_info(bytes_view in, const message_info& info, line_end to);
  void add_frame(bytes_view in, std::size_t pos);
  void add_line_end(bytes_view in, std::size_t nl, line_end to);
  void apply(bytes_view in);
  bool check(line_end to, std::string& error) const;
  std::size_t received_offset(std::size_t out_offset) const;

  std::vector<edit> edits_;
  std::size_t line_edits_ = 0;
  // The FRAME whose bytes are being walked: its edit and its extent.
  std::size_t frame_edit_ = 0;
  std::size_t frame_begin_ = 0;
  std::size_t frame_end_ = 0;
  std::size_t out_size_ = 0;  // the size the output will have
  std::vector<std::uint8_t> out_;
};

}  // namespace pickleway::newline
