#include "pickleway/framer.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstring>

#include "pickleway/python_repr.hpp"
#include "text_arguments.hpp"

namespace pickleway {
namespace {

// What the framer does with an opcode besides stepping over it.
enum class action : std::uint8_t {
  invalid,  // the byte is no opcode
  plain,    // nothing: the framer does not follow the stack
  stop,
  proto,
  frame,
  memoize,
  put,
  get,
};

constexpr action action_of(op code) {
  switch (code) {
    case op::STOP: return action::stop;
    case op::PROTO: return action::proto;
    case op::FRAME: return action::frame;
    case op::MEMOIZE: return action::memoize;
    case op::PUT: case op::BINPUT: case op::LONG_BINPUT: return action::put;
    case op::GET: case op::BINGET: case op::LONG_BINGET: return action::get;
    default: return action::plain;
  }
}

// Where an opcode's argument ends, decided once per byte in `steps` rather
// than by switches on arg_kind for every opcode.
enum class layout : std::uint8_t { fixed, prefixed, text };

// The opcodes parse()'s fast loop handles: binary ones by argument width,
// MEMOIZE, text ones whose line is only checked (INT, FLOAT, UNICODE, ...),
// and PUT. Dense values, so that its switch becomes one jump table: an
// indirect branch the CPU predicts, where if-converted code would wait for
// the table load.
enum class shape : std::uint8_t {
  slow, none, fixed1, fixed2, fixed4, fixed8, prefix1, prefix4, prefix8, memoize, line, put_line
};

constexpr shape shape_of(layout lay, int width) {
  if (lay == layout::fixed) {
    switch (width) {
      case 0: return shape::none;
      case 1: return shape::fixed1;
      case 2: return shape::fixed2;
      case 4: return shape::fixed4;
      default: return shape::fixed8;
    }
  }
  switch (width) {
    case 1: return shape::prefix1;
    case 4: return shape::prefix4;
    default: return shape::prefix8;
  }
}

// The opcode table, re-indexed by byte and cut down to what the hot loop
// reads; 8 bytes, so that one load fetches a row.
struct alignas(8) step {
  arg_kind arg = arg_kind::none;
  action act = action::invalid;
  layout lay = layout::fixed;
  std::uint8_t width = 0;  // of a fixed argument (0: none), or of a length prefix
  shape form = shape::slow;
  std::uint8_t proto_bit = 0;  // 1 << proto
};

constexpr std::array<step, 256> steps = [] {
  std::array<step, 256> s{};
  for (const auto& row : opcode_table) {
    const int prefix = length_prefix_width(row.arg);
    const layout lay = prefix ? layout::prefixed : is_text(row.arg) ? layout::text : layout::fixed;
    const action act = action_of(row.code);
    step& st = s[static_cast<std::uint8_t>(row.code)];
    st = {row.arg, act, lay, static_cast<std::uint8_t>(prefix ? prefix : fixed_width(row.arg)),
          shape::slow, static_cast<std::uint8_t>(1u << row.proto)};
    if (act == action::memoize)
      st.form = shape::memoize;
    else if (lay == layout::text && act == action::put)
      st.form = shape::put_line;
    else if (lay == layout::text && act == action::plain && row.arg != arg_kind::stringnl_noescape_pair)
      st.form = shape::line;
    else if ((lay == layout::fixed || (lay == layout::prefixed && !has_signed_length(row.arg))) &&
             act == action::plain)
      st.form = shape_of(lay, st.width);
  }
  return s;
}();

bool is_protocol_marker(const std::uint8_t* p) {
  return p[0] == static_cast<std::uint8_t>(op::PROTO) && p[1] >= 2 &&
         p[1] <= highest_protocol;
}

// The first '\n' in [p, end), or nullptr. Most text arguments are a few
// bytes long: the first 16 bytes are tested 8 at a time in registers, which
// costs less than a call to memchr.
const std::uint8_t* find_newline(const std::uint8_t* p, const std::uint8_t* end) {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t ones = 0x0101'0101'0101'0101u;
    for (int word = 0; word < 2 && end - p >= 8; ++word, p += 8) {
      std::uint64_t x;
      std::memcpy(&x, p, 8);
      x ^= ones * '\n';  // a '\n' becomes a zero byte
      // The lowest set bit marks the first zero byte (bits above it may be
      // false).
      const std::uint64_t zeros = (x - ones) & ~x & (ones << 7);
      if (zeros != 0) return p + std::countr_zero(zeros) / 8;
    }
  }
  return static_cast<const std::uint8_t*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
}

// A text argument without its '\n' and the '\r' of a CRLF writer.
std::string_view text_line(const std::uint8_t* begin, const std::uint8_t* nl) {
  return without_cr(
      {reinterpret_cast<const char*>(begin), static_cast<std::size_t>(nl - begin)});
}

}  // namespace

std::string framing_error::describe() const {
  return "offset " + std::to_string(offset) + ": " + cause();
}

std::string framing_error::cause() const {
  std::string out = make_error_code(code).message();
  if (opcode >= 0) {
    const opcode_info* info = find_opcode(static_cast<std::uint8_t>(opcode));
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%02x", opcode);
    out += info ? " in " + std::string(info->name) : std::string(" ") + hex;
  }
  if (!detail.empty()) out += " (" + detail + ")";
  return out;
}

framer::framer(framer_options options) : options_(options) {
  options_.max_message = std::min(options_.max_message, largest_max_message);
}

void framer::restart() {
  std::vector<std::uint8_t> memo = std::move(memo_);
  std::vector<std::uint32_t> line_ends = std::move(info_.line_ends);
  std::vector<std::uint32_t> frames = std::move(info_.frames);
  *this = framer(options_);
  memo.clear();
  line_ends.clear();
  frames.clear();
  memo_ = std::move(memo);
  info_.line_ends = std::move(line_ends);
  info_.frames = std::move(frames);
}

frame_status framer::next(bytes_view data) {
  if (error_.code != errc::ok) return frame_status::error;
  if (!in_message_) return start_message(data);
  return parse(data);
}

frame_status framer::finish(bytes_view data) {
  if (error_.code != errc::ok) return frame_status::error;
  if (data.empty()) return frame_status::end;
  // A lone 0x80 is the start of a PROTO marker cut short, not stray bytes.
  const bool maybe_stray =
      in_message_ ? tentative_
                  : data[0] != static_cast<std::uint8_t>(op::PROTO) && !protocol01_stream_;
  if (maybe_stray) {
    in_message_ = false;
    tentative_ = false;
    return divert_stray(data, true);
  }
  const std::uint64_t begin = stream_offset_;
  const char* unit = data.size() == 1 ? " byte" : " bytes";
  return fail(errc::truncated_message, data.size(), -1,
              std::to_string(data.size()) + unit + " lost of a message that began at offset " +
                  std::to_string(begin));
}

frame_status framer::start_message(bytes_view data) {
  if (data.empty()) return want(1);
  const bool proto = data[0] == static_cast<std::uint8_t>(op::PROTO);
  if (proto && data.size() < 2) return want(2);
  const bool marker = proto && is_protocol_marker(data.data());
  reset_message();
  in_message_ = true;
  // Where no PROTO marker opens a message, the bytes may be stray text (a
  // `print`): unless the stream has shown itself to be protocol 0/1, they
  // count as a message only if they parse as one.
  tentative_ = !marker && !protocol01_stream_;
  info_.starts_with_proto = marker;
  if (marker && options_.max_message >= 2) {
    // The PROTO marker, checked above, taken here as parse() would take it,
    // without a turn of its loop.
    declared_proto_ = data[1];
    pos_ = 2;
    // And the FRAME that protocol 4+ pickles open with, when it is whole
    // and within max_message (else parse() says why).
    constexpr std::size_t framed = 2 + 1 + 8;
    if (data.size() >= framed && data[2] == static_cast<std::uint8_t>(op::FRAME) &&
        options_.max_message >= framed) {
      const std::uint64_t length = detail::load_le(data.data() + 3, 8);
      if (length <= options_.max_message - framed) {
        frame_end_ = framed + static_cast<std::size_t>(length);
        info_.frames.push_back(2);
        pos_ = framed;
      }
    }
  }
  return parse(data);
}

void framer::reset_message() {
  pos_ = scan_from_ = pair_split_ = frame_end_ = 0;
  protocols_ = 0;
  declared_proto_ = -1;
  memo_.clear();
  if (!sparse_memo_.empty()) sparse_memo_.clear();
  memo_count_ = 0;
  info_.undefined_memo_uses = 0;
  info_.line_ends.clear();
  info_.frames.clear();
}

// parse()'s fast loop: steps over the opcodes most messages are made of,
// while they lie wholly below `bound`, and returns where it stopped; parse()
// reads that opcode again and does the rest, errors included. A function of
// its own so that its few variables get registers: in parse() they are
// spilled to the stack, adding a store-to-load delay to every opcode.
//
// A message that opens with PROTO has the protocol it declares; for the
// others (`collect`) the loop gathers the protocols of their opcodes.
template <bool collect>
std::size_t framer::skim(const std::uint8_t* base, std::size_t pos, std::size_t bound,
                         unsigned& protocols) {
  // MEMOIZE's key is the count so far, and Python's PUTs count up too: the
  // next dense slot, unless the message PUT keys out of order or far off;
  // then parse() does it all. The loop counts them, and they are stored
  // once it ends.
  if (pos >= bound || memo_count_ != memo_.size() || !sparse_memo_.empty()) return pos;
  std::size_t memoized = 0;
  unsigned bits = protocols;
  for (;;) {
    // Fields of the row read where they are used: a copy of the whole row
    // costs a few instructions per opcode.
    const std::uint8_t code = base[pos];
    const std::size_t arg = pos + 1;
    std::size_t end = SIZE_MAX;  // stays so for anything the loop leaves
    switch (steps[code].form) {
      case shape::slow: break;
      case shape::none: end = arg; break;
      case shape::fixed1: end = arg + 1; break;
      case shape::fixed2: end = arg + 2; break;
      case shape::fixed4: end = arg + 4; break;
      case shape::fixed8: end = arg + 8; break;
      case shape::prefix1:
        if (arg + 1 <= bound) end = arg + 1 + base[arg];
        break;
      case shape::prefix4:
        if (arg + 4 <= bound) end = arg + 4 + detail::load_le(base + arg, 4);
        break;
      case shape::prefix8:
        if (arg + 8 <= bound) {
          const std::uint64_t length = detail::load_le(base + arg, 8);
          if (length <= bound) end = arg + 8 + static_cast<std::size_t>(length);
        }
        break;
      case shape::memoize:
        end = arg;
        ++memoized;
        break;
      case shape::line:
      case shape::put_line: {
        const std::uint8_t* nl = find_newline(base + arg, base + bound);
        if (!nl) break;
        const std::string_view text = text_line(base + arg, nl);
        if (steps[code].form == shape::line) {
          if (!detail::text_argument_is_valid(steps[code].arg, text)) break;
        } else {
          std::uint64_t key;
          if (!detail::parse_memo_key(text, key) || key != memo_.size() + memoized) break;
          ++memoized;
        }
        // Taken, whatever follows: nl < bound.
        info_.line_ends.push_back(static_cast<std::uint32_t>(nl - base));
        end = static_cast<std::size_t>(nl - base) + 1;
        break;
      }
      default:  // `steps` holds no other value; no range test per opcode
        __builtin_unreachable();
    }
    if constexpr (collect) bits |= steps[code].proto_bit;
    // One test per opcode: below the bound, go on; at it, take the opcode
    // and stop. An opcode counted above always ends at or below it.
    if (end >= bound) {
      if (end == bound) pos = end;
      break;
    }
    pos = end;
  }
  if (memoized > 0) {
    memo_.resize(memo_.size() + memoized, 1);
    memo_count_ += memoized;
  }
  protocols = bits;
  return pos;
}

frame_status framer::parse(bytes_view data) {
  const std::uint8_t* const base = data.data();
  const std::size_t size = data.size();
  const std::size_t max = options_.max_message;
  std::size_t pos = pos_;
  unsigned protocols = protocols_;  // in a register
  const std::size_t limit = std::min(size, max);
  // end <= bound means the opcode is wholly in `data`, within max_message,
  // and does not cross the end of the current FRAME: one test per opcode.
  std::size_t bound = pos < frame_end_ ? std::min(limit, frame_end_) : limit;
  const bool declared = info_.starts_with_proto;

  // Saves the resume point and asks for `total` bytes (or fails when a
  // message that long would exceed max_message).
  // Small enough to be inlined: an out-of-line lambda that captures the
  // loop's variables by reference keeps them in memory, not registers.
  const auto need = [&](std::size_t total) {
    pos_ = pos;
    protocols_ = protocols;
    return need_bytes(data, total);
  };
  // Finds the '\n' ending a text line that starts at `from`.
  const auto find_newline = [&](std::size_t from) -> const std::uint8_t* {
    const std::size_t end = std::min(size, max);
    if (from >= end) return nullptr;
    return static_cast<const std::uint8_t*>(std::memchr(base + from, '\n', end - from));
  };

  for (;;) {
    // Not where a text line is half searched (scan_from_): the fast loop
    // would search it again and leave scan_from_ behind.
    if (pos < bound && scan_from_ == 0 && steps[base[pos]].form != shape::slow)
      pos = declared ? skim<false>(base, pos, bound, protocols) : skim<true>(base, pos, bound, protocols);

    // Bytes past max_message are never read, so the error a stream gets
    // does not depend on how much of it the caller had at hand.
    if (pos >= limit) return need(pos + 1);
    const std::uint8_t code = base[pos];
    const step s = steps[code];
    std::size_t arg = pos + 1;   // where the argument (or payload) starts
    std::size_t end;             // one past the opcode and its argument

    if (s.act == action::invalid) {
      pos_ = pos;
      return reject(data, errc::unknown_opcode, pos, code, {});
    }
    if (s.lay == layout::fixed) {
      // Constant widths on each path: the branch is predicted, so the next
      // opcode's position does not wait for the table load.
      switch (s.width) {
        case 0: end = arg; break;
        case 1: end = arg + 1; break;
        case 2: end = arg + 2; break;
        case 4: end = arg + 4; break;
        default: end = arg + 8; break;
      }
    } else if (s.lay == layout::prefixed) {
      // As above: constant widths, so only the length load is waited for.
      std::size_t width;
      switch (s.width) {
        case 1: width = 1; break;
        case 4: width = 4; break;
        default: width = 8; break;
      }
      if (arg + width > limit) return need(arg + width);
      std::uint64_t length = detail::load_le(base + arg, width);
      if (has_signed_length(s.arg) && (length & 0x8000'0000u)) {
        pos_ = pos;
        return reject(data, errc::bad_length, pos, code,
                      std::to_string(static_cast<std::int32_t>(length)));
      }
      arg += width;
      if (length > max) return need(max + 1);  // also guards the sum below
      end = arg + static_cast<std::size_t>(length);
    } else {
      // scan_from_ remembers how far the current line was searched, so a
      // long line arriving in pieces is scanned once.
      std::size_t line = arg;
      if (s.arg == arg_kind::stringnl_noescape_pair) {
        if (pair_split_ == 0) {
          const std::uint8_t* nl = find_newline(std::max(arg, scan_from_));
          if (!nl) {
            scan_from_ = std::min(size, max);
            return need(scan_from_ + 1);
          }
          pair_split_ = static_cast<std::size_t>(nl - base) + 1;
          scan_from_ = 0;
        }
        line = pair_split_;
      }
      const std::uint8_t* nl = find_newline(std::max(line, scan_from_));
      if (!nl) {
        scan_from_ = std::max(line, std::min(size, max));
        return need(std::min(size, max) + 1);
      }
      end = static_cast<std::size_t>(nl - base) + 1;
    }
    if (end > bound) {
      if (end > limit) return need(end);
      if (pos < frame_end_ && end > frame_end_) {
        pos_ = pos;
        return reject(data, errc::frame_misaligned, pos, code,
                      "an opcode crosses the end of the FRAME at " +
                          std::to_string(frame_end_));
      }
      bound = limit;  // the FRAME has ended
    }
    protocols |= s.proto_bit;

    if (s.lay == layout::text) {
      const std::size_t split = pair_split_;  // start of a pair's second line
      scan_from_ = pair_split_ = 0;
      if (s.arg == arg_kind::stringnl_noescape_pair) {
        info_.line_ends.push_back(static_cast<std::uint32_t>(split - 1));
      } else if (s.act != action::put && s.act != action::get &&  // their keys are read below
                 !detail::text_argument_is_valid(s.arg, text_line(base + arg, base + end - 1))) {
        pos_ = pos;
        return reject(data, errc::bad_text_argument, pos, code,
                      preview(data.subspan(arg, end - arg)));
      }
      info_.line_ends.push_back(static_cast<std::uint32_t>(end - 1));
    }

    switch (s.act) {
      case action::invalid:
      case action::plain:
        break;
      case action::stop:
        protocols_ = protocols;
        if (frame_end_ > end) {
          pos_ = pos;
          return reject(data, errc::frame_misaligned, pos, code,
                        "the message ends inside the FRAME that ends at " +
                            std::to_string(frame_end_));
        }
        return complete(end);
      case action::proto:
        if (base[arg] > highest_protocol) {
          pos_ = pos;
          return reject(data, errc::unsupported_protocol, pos, code,
                        std::to_string(base[arg]));
        }
        declared_proto_ = base[arg];
        break;
      case action::frame: {
        if (pos < frame_end_) {
          pos_ = pos;
          return reject(data, errc::frame_misaligned, pos, code,
                        "a FRAME begins inside the FRAME that ends at " +
                            std::to_string(frame_end_));
        }
        const std::uint64_t length = detail::load_le(base + arg, 8);
        if (length > max - end) return need(max + 1);
        frame_end_ = end + static_cast<std::size_t>(length);
        bound = std::min(limit, frame_end_);
          info_.frames.push_back(static_cast<std::uint32_t>(pos));
        break;
      }
      case action::memoize:
        // MEMOIZE's key is the count so far.
        define_memo(memo_count_);
        break;
      case action::put:
      case action::get: {
        std::uint64_t key;
        if (s.arg == arg_kind::decimalnl_short) {
          if (!detail::parse_memo_key(text_line(base + arg, base + end - 1), key)) {
            pos_ = pos;
            return reject(data, errc::bad_text_argument, pos, code,
                          preview(data.subspan(arg, end - arg)));
          }
        } else {
          key = detail::load_le(base + arg, static_cast<std::size_t>(fixed_width(s.arg)));
        }
        if (s.act == action::put) {
          define_memo(key);
        } else if (!use_memo(key)) {
          pos_ = pos;
          return reject(data, errc::undefined_memo, pos, code,
                        "memo key " + std::to_string(key) +
                            "; was the Pickler reused without clear_memo()?");
        }
        break;
      }
    }
    pos = end;
  }
}

void framer::define_memo(std::uint64_t key) {
  // Keys arrive in order from MEMOIZE and from Python's PUTs; a key far
  // beyond the dense range (hand-made or hostile) goes to the sparse set so
  // that one opcode cannot make the framer allocate a huge array.
  constexpr std::uint64_t dense_reach = 4096;
  if (key == memo_.size() && sparse_memo_.empty()) {
    memo_.push_back(1);
    ++memo_count_;
    return;
  }
  if (key >= memo_.size() && key < memo_.size() + dense_reach) grow_memo(static_cast<std::size_t>(key) + 1);
  if (key < memo_.size()) {
    memo_count_ += memo_[key] == 0;
    memo_[key] = 1;
  } else {
    memo_count_ += sparse_memo_.insert(key).second;
  }
}

void framer::grow_memo(std::size_t size) {
  memo_.resize(size, 0);
  // Far-off keys the dense range now takes in move into it: each key is
  // counted once (MEMOIZE's key is the count, as len(memo) is CPython's)
  // and found where use_memo() looks. No sparse key is below memo_.size().
  while (!sparse_memo_.empty() && *sparse_memo_.begin() < size) {
    memo_[static_cast<std::size_t>(*sparse_memo_.begin())] = 1;
    sparse_memo_.erase(sparse_memo_.begin());
  }
}

bool framer::use_memo(std::uint64_t key) {
  const bool defined = key < memo_.size() ? memo_[key] != 0
                                          : !sparse_memo_.empty() && sparse_memo_.contains(key);
  if (defined) return true;
  ++info_.undefined_memo_uses;
  return options_.memo != memo_policy::error;
}

frame_status framer::complete(std::size_t size) {
  info_.stream_offset = stream_offset_;
  info_.size = size;
  const int highest = static_cast<int>(std::bit_width(protocols_)) - 1;
  info_.protocol = declared_proto_ >= 0 ? declared_proto_ : highest;
  protocol01_stream_ = !info_.starts_with_proto;
  stream_offset_ += size;
  in_message_ = false;
  tentative_ = false;
  return frame_status::message;
}

frame_status framer::need_bytes(bytes_view data, std::size_t total) {
  const std::size_t max = options_.max_message;
  if (total > max)
    return reject(data, errc::message_too_large, pos_,
                  pos_ < data.size() ? data[pos_] : -1,
                  "needs " + std::to_string(total) + " bytes, max_message is " +
                      std::to_string(max));
  return want(total);
}

frame_status framer::want(std::size_t total) {
  wanted_ = total;
  return frame_status::need_more;
}

frame_status framer::reject(bytes_view data, errc code, std::size_t at, int opcode,
                            std::string detail) {
  if (!tentative_) return fail(code, at, opcode, std::move(detail));
  // The first bytes of a stream that did not open with PROTO did not parse:
  // they are stray bytes (a `print` before the first pickle), not a message.
  in_message_ = false;
  tentative_ = false;
  const std::string as_pickle = framing_error{code, stream_offset_ + at, opcode, std::move(detail)}.describe();
  const frame_status status = divert_stray(data, false);
  if (status == frame_status::error) error_.detail += "; read as a pickle: " + as_pickle;
  return status;
}

// Stray bytes run from data[0] through the end of their line, or up to the
// next PROTO 2..5 marker, whichever comes first, and at most stray_limit
// bytes, so that they are set aside alike however the stream is chunked.
frame_status framer::divert_stray(bytes_view data, bool at_end) {
  constexpr std::size_t stray_limit = 4096;
  const std::size_t scan_end = std::min(data.size(), stray_limit);
  std::size_t end = 0;
  for (std::size_t i = 1; i < scan_end && end == 0; ++i) {
    if (data[i] == '\n') {
      end = i + 1;
    } else if (data[i] == static_cast<std::uint8_t>(op::PROTO)) {
      if (i + 1 == data.size() && !at_end) return want(i + 2);  // a marker, perhaps
      if (i + 1 < data.size() && is_protocol_marker(&data[i])) end = i;
    }
  }
  if (end == 0) {
    if (data.size() < stray_limit && !at_end) return want(data.size() + 1);
    end = scan_end;
  }
  if (options_.on_stray == stray_policy::error)
    return fail(errc::stray_bytes, 0, -1, preview(data.first(end)));
  stray_size_ = end;
  stream_offset_ += end;
  return frame_status::stray;
}

frame_status framer::fail(errc code, std::size_t at, int opcode, std::string detail) {
  error_ = {code, stream_offset_ + at, opcode, std::move(detail)};
  return frame_status::error;
}

}  // namespace pickleway
