#include "line_ends.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <pickleway/opcode_reader.hpp>

namespace pickleway::newline {

namespace {

// The output is judged only for being one whole pickle: the source's framer
// already applied the session's memo and size rules to what came in.
framer_options check_options() {
  framer_options o;
  o.max_message = largest_max_message;
  o.on_stray = stray_policy::error;
  o.memo = memo_policy::allow;
  return o;
}

std::string hex_byte(std::uint8_t b) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02x", b);
  return text;
}

// Whether the opcode at `pos` has a signed length field holding a negative
// number (which read_opcode() refuses, as the framer does).
bool negative_length(bytes_view in, std::size_t pos, const opcode_info& info) {
  return has_signed_length(info.arg) && in.size() - pos > 4 && (in[pos + 4] & 0x80) != 0;
}

std::string label(line_end to) {
  return to == line_end::lf ? "newline: translating CRLF to LF" : "newline: translating LF to CRLF";
}

// What went wrong with `bytes` as one whole pickle, with offsets from its
// start. Only on the failure path, so a fresh framer is cheap enough; one
// protocol 0 message is fed first, so that a message without a PROTO marker
// is read as a message and its own error is told (not "stray bytes").
framing_error whole_pickle_error(bytes_view bytes) {
  static constexpr std::uint8_t primer[] = {'N', '.'};
  framer f(check_options());
  (void)f.next(primer);
  frame_status status = f.next(bytes);
  if (status == frame_status::need_more) status = f.finish(bytes);
  if (status == frame_status::error) {
    framing_error e = f.error();
    e.offset -= sizeof primer;
    return e;
  }
  if (status == frame_status::message && f.message().size < bytes.size())
    return {errc::ok, f.message().size, -1,
            std::to_string(bytes.size() - f.message().size) + " bytes follow the STOP opcode"};
  return {errc::ok, 0, -1, "it holds no pickle"};
}

// The cause of a framing error without the "offset N: " that describe()
// begins with (the caller names offsets in both the input and the output).
std::string cause(const framing_error& e) {
  if (e.code == errc::ok) return e.detail;
  const std::string text = e.describe();
  const auto colon = text.find(": ");
  return colon == std::string::npos ? text : text.substr(colon + 2);
}

}  // namespace

translator::translator() : check_(check_options()) {}

translator::result translator::translate(bytes_view message, line_end to, std::string& error) {
  if (!plan(message, to, error)) return result::failed;
  if (line_edits_ == 0) return result::unchanged;
  apply(message);
  if (!check(to, error)) return result::failed;
  return result::translated;
}

// Walks the opcodes up to STOP and lists the edits, with each FRAME's new
// length. Frames follow one another and never nest, so the edits that fall
// inside the frame last met are the ones that change its length.
bool translator::plan(bytes_view in, line_end to, std::string& error) {
  edits_.clear();
  line_edits_ = 0;
  frame_begin_ = frame_end_ = 0;
  out_size_ = in.size();
  for (std::size_t pos = 0;;) {
    const auto o = read_opcode(in, pos);
    if (!o) {
      error = label(to) + ": not a pickle: ";
      if (pos >= in.size())
        error += "the message ends at byte " + std::to_string(pos) + " without a STOP opcode";
      else if (const opcode_info* info = find_opcode(in[pos]))
        error += "the " + std::string(info->name) + " at byte " + std::to_string(pos) +
                 (negative_length(in, pos, *info) ? " has a negative length"
                                                  : " runs past the end of the message");
      else
        error += "byte " + std::to_string(pos) + " is " + hex_byte(in[pos]) + ", no opcode";
      return false;
    }
    const arg_kind kind = o->info->arg;
    if (o->info->code == op::FRAME) {
      std::uint64_t length = 0;
      for (std::size_t i = 8; i-- > 0;) length = (length << 8) | in[o->arg + i];
      frame_edit_ = edits_.size();
      edits_.push_back({edit::kind::frame_length, o->arg, length});
      frame_begin_ = o->end;
      const std::uint64_t rest = in.size() - o->end;
      frame_end_ = o->end + static_cast<std::size_t>(std::min(length, rest));
    } else if (is_text(kind)) {
      std::size_t line = o->arg;
      if (kind == arg_kind::stringnl_noescape_pair) {
        const auto* first = static_cast<const std::uint8_t*>(
            std::memchr(in.data() + o->arg, '\n', o->arg_end - o->arg));
        const auto split = static_cast<std::size_t>(first - in.data());
        add_line_end(in, line, split, to);
        line = split + 1;
      }
      add_line_end(in, line, o->arg_end, to);
    } else if (o->info->code == op::STOP) {
      return true;
    }
    pos = o->end;
  }
}

// The line [line, nl) ends with the '\n' at `nl`.
void translator::add_line_end(bytes_view in, std::size_t line, std::size_t nl, line_end to) {
  edit e{edit::kind::insert_cr, nl};
  if (to == line_end::lf) {
    if (nl == line || in[nl - 1] != '\r') return;  // a bare LF: nothing to do
    e = {edit::kind::drop_cr, nl - 1};
  }
  const bool grows = e.what == edit::kind::insert_cr;
  edits_.push_back(e);
  ++line_edits_;
  out_size_ = grows ? out_size_ + 1 : out_size_ - 1;
  // The byte left out, or the '\n' the new '\r' goes before, says which
  // frame the change belongs to.
  if (frame_begin_ <= e.pos && e.pos < frame_end_) {
    std::uint64_t& length = edits_[frame_edit_].length;
    length = grows ? length + 1 : length - 1;
  }
}

void translator::apply(bytes_view in) {
  out_.clear();
  out_.reserve(out_size_);
  std::size_t at = 0;
  const auto copy_to = [&](std::size_t end) {
    out_.insert(out_.end(), in.begin() + static_cast<std::ptrdiff_t>(at),
                in.begin() + static_cast<std::ptrdiff_t>(end));
  };
  for (const edit& e : edits_) {
    copy_to(e.pos);
    switch (e.what) {
      case edit::kind::drop_cr:
        at = e.pos + 1;
        break;
      case edit::kind::insert_cr:
        out_.push_back('\r');
        at = e.pos;
        break;
      case edit::kind::frame_length:
        for (int i = 0; i < 8; ++i) out_.push_back(static_cast<std::uint8_t>(e.length >> (8 * i)));
        at = e.pos + 8;
        break;
    }
  }
  copy_to(in.size());
}

// The output must be one whole pickle and nothing more; the framer says so
// (its buffers are reused: no allocation here in steady state).
bool translator::check(line_end to, std::string& error) {
  const bytes_view out(out_);
  if (check_.next(out) == frame_status::message && check_.message().size == out.size())
    return true;
  check_ = framer(check_options());  // it may be inside a message, or failed
  const framing_error e = whole_pickle_error(out);
  const auto at = static_cast<std::size_t>(e.offset);
  error = label(to) + " would leave no whole pickle: at byte " + std::to_string(at) +
          " of the translated message (byte " + std::to_string(received_offset(at)) +
          " of the message as received): " + cause(e);
  return false;
}

// Where the byte at `out_offset` of the output came from in the input; an
// inserted '\r' maps to the '\n' it precedes.
std::size_t translator::received_offset(std::size_t out_offset) const {
  std::ptrdiff_t shift = 0;  // output offset - input offset, so far
  const auto offset = static_cast<std::ptrdiff_t>(out_offset);
  for (const edit& e : edits_) {
    const auto here = static_cast<std::ptrdiff_t>(e.pos) + shift;
    if (e.what == edit::kind::frame_length) continue;
    if (offset < here) break;
    if (e.what == edit::kind::insert_cr) {
      if (offset == here) return e.pos;
      ++shift;
    } else {
      --shift;
    }
  }
  return static_cast<std::size_t>(offset - shift);
}

}  // namespace pickleway::newline
