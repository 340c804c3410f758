// Filter plugins: they see each whole message on its way from one endpoint
// to the other.
//
// The chain belongs to the core: a filter never calls the next one. a->b
// runs the session's filters in list order, b->a in reverse, so the filter
// nearest an endpoint is the first to see what comes from it and the last
// to touch what goes to it. Calls come from the core's event loop thread and
// must not block. Every entry point is noexcept and returns its error
// (filter_result::fail and its text, nullptr and an error string): no
// exception crosses the plugin boundary; a body that can throw runs inside
// guarded() (guarded.hpp). A failure ends its instance with the text.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "pickleway/framer.hpp"
#include "pickleway/options.hpp"
#include "pickleway/transport.hpp"

namespace pickleway {

enum class direction : std::uint8_t { a_to_b, b_to_a };

constexpr std::string_view to_string(direction d) { return d == direction::a_to_b ? "a>b" : "b>a"; }

// One message as a filter sees it.
class message {
 public:
  message(bytes_view bytes, std::uint64_t sequence, std::uint64_t offset = 0,
          const message_info* info = nullptr)
      : bytes_(bytes), sequence_(sequence), offset_(offset), info_(info) {}

  bytes_view bytes() const { return replaced_ ? bytes_view(*replaced_) : bytes_; }
  // What the endpoint's framer found of bytes(): its protocol,
  // line ends and frames. Null when nobody framed these bytes: the message
  // came from a length-framed endpoint, or a filter replaced it. A filter
  // that then needs to know walks the bytes (pickle_walk.hpp); it never
  // frames a message again.
  const message_info* info() const { return replaced_ ? nullptr : info_; }
  std::uint64_t sequence() const { return sequence_; }  // 1, 2, ... per direction
  // Where the message's first byte is in its source endpoint's stream (for
  // a length-framed source, its first byte after the length). Offsets into
  // bytes() map onto the stream only while the message is not replaced().
  std::uint64_t offset() const { return offset_; }

  // Gives the message new bytes; later filters and the endpoint see them.
  void replace(std::vector<std::uint8_t> bytes) { replaced_ = std::move(bytes); }
  bool replaced() const { return replaced_.has_value(); }
  std::vector<std::uint8_t> take_replacement() { return std::move(*replaced_); }

 private:
  bytes_view bytes_;
  std::uint64_t sequence_;
  std::uint64_t offset_;
  const message_info* info_;
  std::optional<std::vector<std::uint8_t>> replaced_;
};

enum class filter_result : std::uint8_t {
  pass,  // go on with the (possibly replaced) message
  drop,  // the message goes no further; the instance goes on
  fail,  // the instance ends with the error the filter gave
};

// A filter's state for one instance.
class filter {
 public:
  virtual ~filter() = default;
  virtual filter_result on_message(direction d, message& m, std::string& error) noexcept = 0;
  // The stream in direction `d` has ended cleanly; nothing follows.
  virtual filter_result on_end(direction, std::string&) noexcept { return filter_result::pass; }
};

// How the endpoints on either side of the chain frame their streams, for
// filters that depend on it (compress needs a length-framed b side: a
// `link` between gateways is one too).
enum class framing_kind : std::uint8_t { pickle, length, link };
struct chain_context {
  framing_kind a_framing = framing_kind::pickle;
  framing_kind b_framing = framing_kind::pickle;
  // The largest message each endpoint takes (`max_message`): a filter
  // that makes messages (compress restoring b->a) stops there.
  std::uint64_t a_max_message = std::uint64_t{64} << 20;
  std::uint64_t b_max_message = std::uint64_t{64} << 20;
};

// One configured filter: made once from validated options, then asked for
// a fresh filter per instance.
class filter_factory {
 public:
  virtual ~filter_factory() = default;
  // Refuses a chain the filter cannot work in; nullopt when fine. Called
  // once, before any make(): a factory may keep what it needs of the chain.
  virtual std::optional<option_error> check(const chain_context&) noexcept { return std::nullopt; }
  // nullptr and `error` when it cannot.
  virtual std::unique_ptr<filter> make(const open_context& context, std::string& error) noexcept = 0;
  virtual std::string describe() const noexcept = 0;  // "compress codec=zstd level=3"
};

}  // namespace pickleway
