#include "line_ends.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <pickleway/pickle_walk.hpp>

namespace pickleway::newline {

namespace {

std::string label(line_end to) {
  return to == line_end::lf ? "newline: translating CRLF to LF" : "newline: translating LF to CRLF";
}

}  // namespace

translator::result translator::translate(bytes_view message, const message_info* info,
                                         line_end to, std::string& error) {
  start(message);
  if (info) {
    plan_by_info(message, *info, to);
  } else if (!plan_by_walk(message, to, error)) {
    return result::failed;
  }
  if (line_edits_ == 0) return result::unchanged;
  apply(message);
  if (!check(to, error)) return result::failed;
  return result::translated;
}

void translator::start(bytes_view in) {
  edits_.clear();
  line_edits_ = 0;
  frame_begin_ = frame_end_ = 0;
  out_size_ = in.size();
}

// The framer has found the line ends and frames: merged in message order.
void translator::plan_by_info(bytes_view in, const message_info& info, line_end to) {
  auto frame = info.frames.begin();
  for (const std::uint32_t nl : info.line_ends) {
    for (; frame != info.frames.end() && *frame < nl; ++frame) add_frame(in, *frame);
    add_line_end(in, nl, to);
  }
  for (; frame != info.frames.end(); ++frame) add_frame(in, *frame);
}

// Walks the message to its STOP for the same; refuses what is no pickle.
bool translator::plan_by_walk(bytes_view in, line_end to, std::string& error) {
  pickle_walk walk(in);
  const auto at = [&](std::string_view part) {
    return static_cast<std::size_t>(part.data() - reinterpret_cast<const char*>(in.data()));
  };
  for (pickle_op o; walk.next(o);) {
    if (o.code() == op::FRAME) {
      add_frame(in, o.pos);
    } else if (is_text(o.info->arg)) {
      if (o.form == value_form::name_pair) add_line_end(in, at(o.second) - 1, to);
      add_line_end(in, o.end - 1, to);
    }
  }
  if (walk.failed()) {
    error = label(to) + ": not a pickle: " + walk.error().describe();
    return false;
  }
  if (walk.stop_end() < in.size()) {
    error = label(to) + ": not one pickle: " + std::to_string(in.size() - walk.stop_end()) +
            " bytes follow the STOP opcode at offset " + std::to_string(walk.stop_end() - 1);
    return false;
  }
  return true;
}

// Frames follow one another and never nest, so the edits that fall inside
// the frame last met are the ones that change its length.
void translator::add_frame(bytes_view in, std::size_t pos) {
  std::uint64_t length = 0;
  for (std::size_t i = 8; i-- > 0;) length = (length << 8) | in[pos + 1 + i];
  frame_edit_ = edits_.size();
  edits_.push_back({edit::kind::frame_length, pos + 1, length});
  frame_begin_ = pos + 9;
  frame_end_ = frame_begin_ + static_cast<std::size_t>(length);
}

// A text argument's line ends with the '\n' at `nl`. (The byte before an
// empty line's '\n' is its opcode or the line before's '\n', never '\r'.)
void translator::add_line_end(bytes_view in, std::size_t nl, line_end to) {
  edit e{edit::kind::insert_cr, nl};
  if (to == line_end::lf) {
    if (in[nl - 1] != '\r') return;  // a bare LF: nothing to do
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

// The output of a whole pickle is one by construction, but for a line an
// LF writer ended in '\r' where that is no data (INT 1\r): walked to be sure.
bool translator::check(line_end to, std::string& error) const {
  const bytes_view out(out_);
  pickle_walk walk(out);
  for (pickle_op o; walk.next(o);) {
  }
  if (!walk.failed()) return true;  // its STOP is where the input's was: at the end
  const framing_error& e = walk.error();
  error = label(to) + " would leave no whole pickle: at byte " + std::to_string(e.offset) +
          " of the translated message (byte " + std::to_string(received_offset(e.offset)) +
          " of the message as received): " + e.cause();
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
