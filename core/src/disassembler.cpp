#include "pickleway/disassembler.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <istream>
#include <ostream>
#include <unordered_set>
#include <vector>

#include "pickleway/opcode_reader.hpp"
#include "pickleway/python_repr.hpp"

namespace pickleway {
namespace {

std::string_view as_text(bytes_view b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bytes_view as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::uint64_t load_le(bytes_view b) {
  std::uint64_t v = 0;
  for (std::size_t i = b.size(); i-- > 0;) v = (v << 8) | b[i];
  return v;
}

// Python's int() and float() ignore surrounding whitespace, such as the
// '\r' of a CRLF writer.
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
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

std::u32string widen(std::string_view ascii) {
  return {ascii.begin(), ascii.end()};
}

// The repr() of an opcode's argument as pickletools shows it, or nullopt
// (with `error` set) when pickletools could not decode it.
std::optional<std::string> argument_repr(const opcode_at& o, bytes_view msg,
                                         std::string& error) {
  const bytes_view arg = msg.subspan(o.arg, o.arg_end - o.arg);
  const std::string_view text = as_text(arg);
  switch (o.info->arg) {
    case arg_kind::none:
      return std::nullopt;
    case arg_kind::uint1: case arg_kind::uint2: case arg_kind::uint4:
    case arg_kind::uint8:
      return std::to_string(load_le(arg));
    case arg_kind::int4:
      return std::to_string(static_cast<std::int32_t>(load_le(arg)));
    case arg_kind::float8: {
      std::uint64_t bits = 0;
      for (const std::uint8_t b : arg) bits = (bits << 8) | b;  // big-endian
      return float_repr(std::bit_cast<double>(bits));
    }
    case arg_kind::long1: case arg_kind::long4:
      return long_repr(arg);
    case arg_kind::string1: case arg_kind::string4:
      return str_repr(decode_latin1(arg));
    case arg_kind::bytes1: case arg_kind::bytes4: case arg_kind::bytes8:
      return bytes_repr(arg);
    case arg_kind::bytearray8:
      return "bytearray(" + bytes_repr(arg) + ")";
    case arg_kind::unicodestring1: case arg_kind::unicodestring4:
    case arg_kind::unicodestring8:
      if (auto s = decode_utf8(arg)) return str_repr(*s);
      error = "'utf-8' codec can't decode the argument of " + std::string(o.info->name);
      return std::nullopt;
    case arg_kind::decimalnl_short:
      if (text == "00") return "False";
      if (text == "01") return "True";
      return decimal_repr(trim(text));
    case arg_kind::decimalnl_long: {
      std::string_view digits = trim(text);
      if (!digits.empty() && digits.back() == 'L') digits.remove_suffix(1);
      return decimal_repr(digits);
    }
    case arg_kind::floatnl: {
      std::string_view s = trim(text);
      if (!s.empty() && s[0] == '+') s.remove_prefix(1);
      double value = 0;
      std::from_chars(s.data(), s.data() + s.size(), value);
      return float_repr(value);
    }
    case arg_kind::stringnl:
      if (auto s = read_stringnl(text, true, error)) return str_repr(widen(*s));
      return std::nullopt;
    case arg_kind::stringnl_noescape:
      if (auto s = read_stringnl(text, false, error)) return str_repr(widen(*s));
      return std::nullopt;
    case arg_kind::stringnl_noescape_pair: {
      const std::size_t nl = text.find('\n');
      auto module = read_stringnl(text.substr(0, nl), false, error);
      auto name = module ? read_stringnl(text.substr(nl + 1), false, error) : std::nullopt;
      if (!name) return std::nullopt;
      return str_repr(widen(*module + " " + *name));
    }
    case arg_kind::unicodestringnl:
      if (auto s = decode_raw_unicode_escape(arg)) return str_repr(*s);
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

// A pickletools.dis stack: only whether each item is the mark matters here.
class dis_machine {
 public:
  // Returns pickletools' complaint about this opcode, or "".
  std::string step(const opcode_at& o, const std::optional<std::string>& arg,
                   std::string& out);
  std::string finish(std::string& out) const;

 private:
  std::vector<bool> stack_;  // true = the mark
  std::vector<std::size_t> marks_;
  std::unordered_set<std::uint64_t> memo_;
  int max_proto_ = -1;
};

std::string dis_machine::step(const opcode_at& o, const std::optional<std::string>& arg,
                              std::string& out) {
  const opcode_info& info = *o.info;
  max_proto_ = std::max<int>(max_proto_, info.proto);
  char pos[32];
  std::snprintf(pos, sizeof pos, "%5zu: ", o.pos);
  std::string line = pos + code_column(static_cast<std::uint8_t>(info.code)) + " " +
                     std::string(4 * marks_.size(), ' ') + std::string(info.name);

  std::string error, markmsg;
  std::size_t to_pop = info.pops;
  const bool pop_of_mark = info.code == op::POP && !stack_.empty() && stack_.back();
  if (info.pops_to_mark || pop_of_mark) {
    if (!marks_.empty()) {
      markmsg = "(MARK at " + std::to_string(marks_.back()) + ")";
      marks_.pop_back();
      while (!stack_.back()) stack_.pop_back();
      stack_.pop_back();
      if (pop_of_mark) to_pop = 0;  // POP took the mark itself
    } else {
      error = markmsg = "no MARK exists on stack";
    }
  }

  const op code = info.code;
  std::uint64_t key = 0;
  if (arg && (code == op::PUT || code == op::BINPUT || code == op::LONG_BINPUT ||
              code == op::GET || code == op::BINGET || code == op::LONG_BINGET))
    std::from_chars(arg->data(), arg->data() + arg->size(), key);
  if (code == op::PUT || code == op::BINPUT || code == op::LONG_BINPUT ||
      code == op::MEMOIZE) {
    if (code == op::MEMOIZE) {
      key = memo_.size();
      markmsg = "(as " + std::to_string(key) + ")";
    }
    if (memo_.count(key))
      error = "memo key " + (arg ? *arg : std::string("None")) + " already defined";
    else if (stack_.empty())
      error = "stack is empty -- can't store into memo";
    else if (stack_.back())
      error = "can't store markobject in the memo";
    else
      memo_.insert(key);
  } else if (code == op::GET || code == op::BINGET || code == op::LONG_BINGET) {
    if (!memo_.count(key)) error = "memo key " + *arg + " has never been stored into";
  }

  if (arg || !markmsg.empty()) {
    line.append(info.name.size() < 10 ? 10 - info.name.size() : 0, ' ');
    if (arg) line += " " + *arg;
    if (!markmsg.empty()) line += " " + markmsg;
  }
  out += line;
  out += '\n';
  if (!error.empty()) return error;
  if (stack_.size() < to_pop)
    return "tries to pop " + std::to_string(to_pop) + " items from stack with only " +
           std::to_string(stack_.size()) + " items";
  stack_.resize(stack_.size() - to_pop);
  if (info.pushes_mark) {
    marks_.push_back(o.pos);
    stack_.push_back(true);
  }
  stack_.insert(stack_.end(), info.pushes, false);
  return {};
}

std::string dis_machine::finish(std::string& out) const {
  out += "highest protocol among opcodes = " + std::to_string(max_proto_) + "\n";
  if (!stack_.empty()) return "stack not empty after STOP";
  return {};
}

}  // namespace

std::string disassemble_message(bytes_view message, std::string& out) {
  dis_machine machine;
  for (std::size_t pos = 0;;) {
    const auto o = read_opcode(message, pos);
    if (!o) return "pickle exhausted before seeing STOP";  // the framer rules this out
    std::string error;
    const auto arg = argument_repr(*o, message, error);
    if (!error.empty()) return error;
    if (auto complaint = machine.step(*o, arg, out); !complaint.empty()) return complaint;
    if (o->info->code == op::STOP) break;
    pos = o->end;
  }
  return machine.finish(out);
}

int disassemble_stream(std::istream& in, std::ostream& out, std::ostream& err) {
  framer splitter;  // strict defaults: a stray byte is an error here
  std::vector<std::uint8_t> buffer;
  std::size_t start = 0;  // first unconsumed byte of buffer
  std::size_t count = 0;
  bool eof = false;
  for (;;) {
    const bytes_view data(buffer.data() + start, buffer.size() - start);
    frame_status status = eof ? splitter.finish(data) : splitter.next(data);
    if (status == frame_status::end) return 0;
    if (status == frame_status::message) {
      const message_info& m = splitter.message();
      std::string text = "=== message " + std::to_string(++count) + " at offset " +
                         std::to_string(m.stream_offset) + " (" + std::to_string(m.size) +
                         " bytes)\n";
      const std::string problem = disassemble_message(data.first(m.size), text);
      out << text;
      if (!problem.empty()) {
        err << "pickleway dis: message " << count << " at offset " << m.stream_offset
            << ": " << problem << "\n";
        return 1;
      }
      start += m.size;
      continue;
    }
    if (status == frame_status::error || status == frame_status::stray) {
      err << "pickleway dis: " << splitter.error().describe() << "\n";
      return 1;
    }
    // need_more: drop what is consumed, then read at least what is wanted.
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(start));
    start = 0;
    const std::size_t want = std::max<std::size_t>(splitter.bytes_wanted(), buffer.size() + 65536);
    const std::size_t old = buffer.size();
    buffer.resize(want);
    in.read(reinterpret_cast<char*>(buffer.data() + old), static_cast<std::streamsize>(want - old));
    buffer.resize(old + static_cast<std::size_t>(in.gcount()));
    eof = in.gcount() == 0;
  }
}

}  // namespace pickleway
