#include "pickleway/disassembler.hpp"

#include <algorithm>
#include <cstdio>
#include <istream>
#include <new>
#include <optional>
#include <ostream>
#include <vector>

#include "pickleway/pickle_machine.hpp"
#include "pickleway/python_repr.hpp"

namespace pickleway {
namespace {

bytes_view as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// pickletools' read_stringnl(decode=True): quotes stripped when asked, then
// escape-decoded and read as ASCII.
std::optional<std::string> read_stringnl(std::string_view line, bool strip_quotes,
                                         std::string& error) {
  if (strip_quotes) {
    if (line.empty() || (line[0] != '\'' && line[0] != '"')) {
      error = "no string quotes around " + bytes_repr(as_bytes(line));
      return std::nullopt;
    }
    if (line.size() < 2 || line.back() != line[0]) {
      error = "strinq quote " + bytes_repr(as_bytes(line.substr(0, 1))) +
              " not found at both ends of " + bytes_repr(as_bytes(line));
      return std::nullopt;
    }
    line = line.substr(1, line.size() - 2);
  }
  auto decoded = escape_decode(line);
  if (!decoded || !is_ascii(*decoded)) {
    error = "cannot decode " + bytes_repr(as_bytes(line)) + " as an ASCII string literal";
    return std::nullopt;
  }
  return decoded;
}

std::u32string widen(std::string_view ascii) { return {ascii.begin(), ascii.end()}; }

// The repr() of an opcode's argument as pickletools shows it: nullopt for
// none, or (with `error` set) when pickletools could not decode it.
std::optional<std::string> argument_repr(const pickle_op& o, std::string& error) {
  const bytes_view text = as_bytes(o.text);
  switch (o.form) {
    case value_form::none: return std::nullopt;
    case value_form::integer: return std::to_string(o.integer);
    case value_form::boolean: return o.integer ? "True" : "False";
    case value_form::decimal: return decimal_repr(o.text);
    case value_form::long_bytes: return long_repr(text);
    case value_form::floating: return float_repr(o.floating);
    case value_form::bytes:
      if (o.code() == op::BYTEARRAY8) return "bytearray(" + bytes_repr(text) + ")";
      return bytes_repr(text);
    case value_form::name_pair: {
      auto module = read_stringnl(o.text, false, error);
      auto name = module ? read_stringnl(o.second, false, error) : std::nullopt;
      if (!name) return std::nullopt;
      return str_repr(widen(*module + " " + *name));
    }
    case value_form::text:
      break;
  }
  switch (o.encoding) {
    case text_encoding::utf8:
      if (auto s = decode_utf8(text)) return str_repr(*s);
      error = "'utf-8' codec can't decode the argument of " + std::string(o.info->name);
      return std::nullopt;
    case text_encoding::latin1:
      return str_repr(decode_latin1(text));
    case text_encoding::escaped:
    case text_encoding::line:
      if (auto s = read_stringnl(o.text, o.encoding == text_encoding::escaped, error))
        return str_repr(widen(*s));
      return std::nullopt;
    case text_encoding::raw_unicode_escape:
      if (auto s = decode_raw_unicode_escape(text)) return str_repr(*s);
      error = "'rawunicodeescape' codec can't decode the argument of UNICODE";
      return std::nullopt;
  }
  return std::nullopt;
}

// "%-4s" of repr(opcode.code)[1:-1]: the opcode byte as a Python str literal.
std::string code_column(std::uint8_t code) {
  std::string c = str_repr(std::u32string(1, code));
  c = c.substr(1, c.size() - 2);
  c.resize(std::max<std::size_t>(c.size(), 4), ' ');
  return c;
}

bool is_memo_store(op code) {
  return code == op::PUT || code == op::BINPUT || code == op::LONG_BINPUT || code == op::MEMOIZE;
}

bool is_memo_fetch(op code) {
  return code == op::GET || code == op::BINGET || code == op::LONG_BINGET;
}

// pickletools.dis on the machine: before each opcode's effect, its line
// and pickletools' own complaints (memo misuse, a MARK missing), which it
// makes after printing the line; the machine finds the stack underflows.
class dis_machine final : public pickle_machine<dis_machine> {
  friend class pickle_machine<dis_machine>;

 public:
  explicit dis_machine(dis_sink& sink) : sink_(sink) {}

  // pickletools' reason for stopping, or "".
  std::string disassemble(bytes_view message) {
    if (run(message)) {
      if (!emit("highest protocol among opcodes = " + std::to_string(highest_protocol()) + "\n"))
        return {};
      if (!stack().empty() || mark_count() > 0) return "stack not empty after STOP";
      return {};
    }
    if (!problem_.empty() || stopped_) return problem_;
    // The walk or the stack: the framer rules out the first for `dis`.
    const framing_error& e = error();
    return e.code == errc::stack_underflow ? e.detail : e.describe();
  }

 private:
  bool emit(const std::string& text) {
    if (sink_.line(text)) return true;
    stopped_ = true;
    return false;
  }

  bool before(const pickle_op& o) {
    std::string error;
    const auto arg = argument_repr(o, error);
    if (!error.empty()) {  // genops fails before dis prints the line
      problem_ = std::move(error);
      return false;
    }
    char pos[32];
    std::snprintf(pos, sizeof pos, "%5zu: ", o.pos);
    const std::size_t depth = std::min(mark_count(), dis_max_indent_depth);
    std::string line = pos + code_column(static_cast<std::uint8_t>(o.code())) + " " +
                       std::string(4 * depth, ' ') + std::string(o.info->name);

    std::string markmsg;
    if (pops_mark(o)) {
      if (mark_count() > 0) {
        markmsg = "(MARK at " + std::to_string(top_mark_pos()) + ")";
      } else {
        problem_ = markmsg = "no MARK exists on stack";
      }
    }
    if (is_memo_store(o.code())) {
      std::uint64_t key = static_cast<std::uint64_t>(o.integer);
      if (o.code() == op::MEMOIZE) {
        key = memo_size();
        markmsg = "(as " + std::to_string(key) + ")";
      }
      if (memo_find(key))
        problem_ = "memo key " + (arg ? *arg : std::string("None")) + " already defined";
      else if (stack().empty() && mark_count() == 0)
        problem_ = "stack is empty -- can't store into memo";
      else if (stack().size() == fence())
        problem_ = "can't store markobject in the memo";
    } else if (is_memo_fetch(o.code()) && !memo_find(static_cast<std::uint64_t>(o.integer))) {
      problem_ = "memo key " + *arg + " has never been stored into";
    }

    if (arg || !markmsg.empty()) {
      line.append(o.info->name.size() < 10 ? 10 - o.info->name.size() : 0, ' ');
      if (arg) line += " " + *arg;
      if (!markmsg.empty()) line += " " + markmsg;
    }
    line += '\n';
    return emit(line) && problem_.empty();
  }

  dis_sink& sink_;
  std::string problem_;
  bool stopped_ = false;  // the sink wanted no more
};

// A string that stops growing at `limit`.
class string_sink final : public dis_sink {
 public:
  string_sink(dis_text& out, std::size_t limit) : out_(out), limit_(limit) {}

  bool line(std::string_view text) override {
    const std::size_t room = limit_ - std::min(limit_, out_.text.size());
    if (text.size() <= room) {
      out_.text += text;
      return true;
    }
    out_.text += text.substr(0, room);
    out_.truncated = true;
    return false;
  }

 private:
  dis_text& out_;
  std::size_t limit_;
};

// An ostream, written a line at a time.
class stream_sink final : public dis_sink {
 public:
  explicit stream_sink(std::ostream& out) : out_(out) {}
  bool line(std::string_view text) override {
    out_ << text;
    return static_cast<bool>(out_);
  }

 private:
  std::ostream& out_;
};

}  // namespace

std::string disassemble_message(bytes_view message, dis_sink& sink) {
  return dis_machine(sink).disassemble(message);
}

dis_text disassemble_message(bytes_view message, std::size_t limit) {
  dis_text out;
  string_sink sink(out, limit);
  out.problem = disassemble_message(message, sink);
  return out;
}

int disassemble_stream(std::istream& in, std::ostream& out, std::ostream& err,
                       std::uint64_t max_message) {
  framer_options options;  // strict defaults: a stray byte is an error here
  options.max_message = std::min(max_message, largest_max_message);
  std::size_t count = 0;
  std::uint64_t offset = 0;
  try {
    framer splitter(options);
    std::vector<std::uint8_t> buffer;
    std::size_t start = 0;  // first unconsumed byte of buffer
    bool eof = false;
    stream_sink sink(out);
    for (;;) {
      const bytes_view data(buffer.data() + start, buffer.size() - start);
      const frame_status status = eof ? splitter.finish(data) : splitter.next(data);
      if (status == frame_status::end) return 0;
      if (status == frame_status::message) {
        const message_info& m = splitter.message();
        ++count;
        offset = m.stream_offset;
        out << "=== message " << count << " at offset " << m.stream_offset << " (" << m.size
            << " bytes)\n";
        const std::string problem = disassemble_message(data.first(m.size), sink);
        if (!problem.empty()) {
          err << "pickleway dis: message " << count << " at offset " << m.stream_offset << ": "
              << problem << "\n";
          return 1;
        }
        start += m.size;
        continue;
      }
      if (status == frame_status::error || status == frame_status::stray) {
        const framing_error& e = splitter.error();
        err << "pickleway dis: " << e.describe();
        if (e.code == errc::message_too_large) err << "; raise it with --max-message SIZE";
        err << "\n";
        return 1;
      }
      // need_more: drop what is consumed, then read more. The buffer grows
      // with what arrives, at most doubling, never to a length the stream
      // only declares.
      offset = splitter.stream_offset();
      buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(start));
      start = 0;
      const std::size_t want = std::max(buffer.size() + 65536, 2 * buffer.size());
      const std::size_t old = buffer.size();
      buffer.resize(want);
      in.read(reinterpret_cast<char*>(buffer.data() + old), static_cast<std::streamsize>(want - old));
      buffer.resize(old + static_cast<std::size_t>(in.gcount()));
      eof = in.gcount() == 0;
    }
  } catch (const std::bad_alloc&) {
    out.flush();
    err << "pickleway dis: offset " << offset << ": " << make_error_code(errc::out_of_memory).message()
        << "\n";
    return 1;
  }
}

}  // namespace pickleway
