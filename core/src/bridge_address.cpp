#include "bridge_address.hpp"

#include <cstdint>
#include <cstdio>
#include <vector>

#include "config.hpp"
#include "nearest_word.hpp"

namespace pickleway {
namespace {

// The words an address may start with, and what MAIN is for each. Any
// other word names a transport plugin of that name that takes keys only.
struct address_form {
  std::string_view word;
  std::string_view transport;  // the plugin
  std::string_view main_key;   // the option MAIN gives; "" for none
  std::string_view main_text;  // MAIN in messages
  bool split_words = false;    // MAIN is a command, split as sh splits it
  bool needs_main = false;     // the word means nothing without MAIN
};

constexpr address_form forms[] = {
    {"spawn", "spawn", "command", "COMMAND", true, false},
    {"stdio", "stdio", "", "", false, false},
    {"tcp", "tcp", "connect", "HOST:PORT", false, false},
    {"tcp-listen", "tcp", "listen", "HOST:PORT", false, true},
    {"unix", "unix", "connect", "PATH", false, false},
    {"unix-listen", "unix", "listen", "PATH", false, true},
    // fifo:PATH reads PATH; write=PATH adds the way back.
    {"fifo", "fifo", "read", "PATH", false, false},
    {"redis", "redis", "address", "ADDRESS", false, false},
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Where `text` stops being UTF-8 (a stray byte, an overlong form, a
// surrogate, a code point past U+10FFFF), or npos.
std::size_t first_invalid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t point = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      length = 2;
      point = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
      length = 3;
      point = b & 0x0Fu;
    } else if (b >= 0xF0 && b <= 0xF4) {
      length = 4;
      point = b & 0x07u;
    } else {
      return i;
    }
    if (i + length > text.size()) return i;
    for (std::size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      point = (point << 6) | (c & 0x3Fu);
    }
    const bool overlong = (length == 3 && point < 0x800) || (length == 4 && point < 0x10000);
    if (overlong || (point >= 0xD800 && point <= 0xDFFF) || point > 0x10FFFF) return i;
    i += length;
  }
  return std::string_view::npos;
}

// A character for a message: 'x', or its byte when it is not printable.
std::string shown(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7F) return std::string("'") + c + "'";
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", byte);
  return std::string("byte ") + hex;
}

class address_parser {
 public:
  address_parser(std::string_view text, std::size_t argument, node_origins& origins)
      : text_(text), argument_(argument), origins_(origins) {}

  YAML::Node endpoint() {
    check_text();
    if (text_.empty())
      fail(0, "an endpoint is TRANSPORT:MAIN[,key=value]..., and this one is empty");
    const std::string word(name("an endpoint is TRANSPORT:MAIN[,key=value]...", "transport"));
    const address_form* known = nullptr;
    for (const auto& f : forms)
      if (f.word == word) known = &f;
    const address_form form = known ? *known : address_form{word, word, "", "", false, false};
    YAML::Node map(YAML::NodeType::Map);
    note(map, 0);
    YAML::Node transport{std::string(form.transport)};
    note(transport, 0);
    put(map, {{"transport", 0}}, transport);
    transport_word_ = word;
    if (!at_end() && peek() == ':') {
      const std::size_t colon = pos_++;
      if (!known) {
        std::vector<std::string_view> known_words;
        for (const auto& f : forms) known_words.push_back(f.word);
        const std::string hint = did_you_mean(word, known_words);
        fail(0, "bridge knows the main option of spawn, stdio, tcp, tcp-listen, unix, unix-listen, "
                "fifo and redis, not of '" + word + "'" +
                    (hint.empty() ? "; for a transport of its own, write " + word + ",key=value"
                                  : hint));
      }
      if (form.main_key.empty())
        fail(colon, word + " takes no main option: write " + word + " or " + word + ",key=value");
      const std::size_t main_at = pos_;
      if (at_end() || peek() == ',')
        fail(main_at, word + ": the " + std::string(form.main_text) + " after '" + word + ":' is missing");
      YAML::Node main = value(form.split_words);
      if (main.IsSequence() && main.size() == 0)
        fail(main_at, word + ": the " + std::string(form.main_text) + " after '" + word + ":' is missing");
      put(map, {{std::string(form.main_key), main_at}}, main);
    } else if (form.needs_main) {
      fail(pos_, word + " needs its " + std::string(form.main_text) + ": " + word + ":" +
                     std::string(form.main_text));
    }
    items(map);
    return map;
  }

  YAML::Node filter() {
    check_text();
    if (text_.empty()) fail(0, "a filter is NAME[,key=value]..., and this one is empty");
    const std::string word(name("a filter is NAME[,key=value]...", "filter"));
    if (!at_end() && peek() == ':')
      fail(pos_, "a filter takes no main option: write " + word + ",key=value");
    YAML::Node named{word};
    note(named, 0);
    if (at_end()) return named;
    YAML::Node options(YAML::NodeType::Map);
    note(options, pos_ + 1);
    items(options);
    YAML::Node item(YAML::NodeType::Map);
    note(item, 0);
    put(item, {{word, 0}}, options);
    return item;
  }

 private:
  // A word, or one part of a dotted key, and where it starts.
  struct located_word {
    std::string text;
    std::size_t at;
  };

  std::string place(std::size_t at) const {
    std::size_t character = 1;
    for (std::size_t i = 0; i < at && i < text_.size(); ++i)
      if ((static_cast<unsigned char>(text_[i]) & 0xC0) != 0x80) ++character;  // not a UTF-8 continuation
    return command_line_place(argument_, character);
  }
  [[noreturn]] void fail(std::size_t at, const std::string& message) const {
    throw config_error(place(at) + ": " + message);
  }
  void note(const YAML::Node& node, std::size_t at) { origins_.add(node, place(at)); }

  // YAML is UTF-8 text, and an argument becomes YAML.
  void check_text() const {
    if (const std::size_t bad = first_invalid_utf8(text_); bad != std::string_view::npos)
      fail(bad, "not UTF-8 text at " + shown(text_[bad]));
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  // A transport or filter name, up to ':' or ','.
  std::string_view name(const std::string& grammar, const std::string& what) {
    const std::size_t start = pos_;
    while (!at_end() && peek() != ':' && peek() != ',') {
      if (!is_name_char(peek()))
        fail(pos_, "a " + what + " name is letters, digits, '-', '_' and '.', not " + shown(peek()));
      ++pos_;
    }
    if (pos_ == start) fail(start, grammar + ", and this one names no " + what);
    return text_.substr(start, pos_ - start);
  }

  // A value up to an unquoted ',' or the end, unquoted as sh does it; with
  // `split`, the words unquoted blanks separate (each with where it starts).
  std::vector<located_word> words(bool split) {
    std::vector<located_word> out;
    std::string current;
    bool in_word = !split;  // a value is there even when it is empty
    std::size_t word_at = pos_;
    while (!at_end() && peek() != ',') {
      const char c = peek();
      if (split && (c == ' ' || c == '\t')) {
        if (in_word) out.push_back({std::move(current), word_at});
        current.clear();
        in_word = false;
        ++pos_;
        continue;
      }
      if (!in_word) {
        in_word = true;
        word_at = pos_;
      }
      if (c == '\'') {
        const std::size_t close = text_.find('\'', pos_ + 1);
        if (close == std::string_view::npos) fail(pos_, "a quote (') that is not closed");
        current.append(text_.substr(pos_ + 1, close - pos_ - 1));
        pos_ = close + 1;
      } else if (c == '"') {
        const std::size_t open = pos_++;
        for (;;) {
          if (at_end()) fail(open, "a quote (\") that is not closed");
          const char d = text_[pos_++];
          if (d == '"') break;
          if (d == '\\' && !at_end()) {
            const char e = peek();
            if (e == '"' || e == '\\' || e == '$' || e == '`') {
              current += e;
              ++pos_;
              continue;
            }
            if (e == '\n') {  // a line continued
              ++pos_;
              continue;
            }
          }
          current += d;
        }
      } else if (c == '\\') {
        if (pos_ + 1 >= text_.size()) fail(pos_, "a backslash at the end escapes nothing");
        if (text_[pos_ + 1] != '\n') current += text_[pos_ + 1];
        pos_ += 2;
      } else {
        current += c;
        ++pos_;
      }
    }
    if (in_word) out.push_back({std::move(current), word_at});
    return out;
  }

  // Where the YAML flow value at pos_ ([...] or {...}) ends: past its
  // closing bracket; commas inside it are its own.
  std::size_t flow_end() const {
    std::size_t at = pos_;
    std::vector<char> open;  // the closers awaited
    while (at < text_.size()) {
      const char c = text_[at];
      if (c == '[' || c == '{') {
        open.push_back(c == '[' ? ']' : '}');
      } else if (c == ']' || c == '}') {
        if (open.back() != c) fail(at, "a " + shown(c) + " where " + shown(open.back()) + " closes");
        open.pop_back();
        if (open.empty()) return at + 1;
      } else if (c == '\'' || c == '"') {
        const std::size_t quote = at;
        for (++at;; ++at) {
          if (at >= text_.size()) fail(quote, "a quote (" + std::string(1, c) + ") that is not closed");
          if (c == '"' && text_[at] == '\\') {
            if (++at >= text_.size()) fail(quote, "a quote (\") that is not closed");
            continue;
          }
          if (text_[at] == c) {
            if (c == '\'' && at + 1 < text_.size() && text_[at + 1] == '\'') {
              ++at;  // '' is a quote inside single quotes
              continue;
            }
            break;
          }
        }
      }
      ++at;
    }
    fail(pos_, "a " + shown(text_[pos_]) + " that is not closed");
  }

  // A YAML flow value from pos_ to `end`.
  YAML::Node flow(std::size_t end) {
    const std::size_t start = pos_;
    pos_ = end;
    const std::string_view raw = text_.substr(start, pos_ - start);
    YAML::Node node;
    try {
      node = YAML::Load(std::string(raw));
    } catch (const YAML::Exception& e) {
      const std::size_t offset =
          e.mark.pos < 0 ? 0 : std::min(static_cast<std::size_t>(e.mark.pos), raw.size());
      fail(start + offset, "not YAML: " + e.msg);
    }
    std::vector<YAML::Node> seen;
    note_all(node, start, seen);
    return node;
  }

  // Every node of a flow value, at its mark within it. A node met twice is
  // an anchor (&name) used again by an alias (*name), which may even hold
  // itself: refused, so that the document stays a tree. It is located at
  // the anchor: an alias has no mark of its own.
  void note_all(const YAML::Node& node, std::size_t base, std::vector<YAML::Node>& seen) {
    const int pos = node.Mark().pos;
    const std::size_t at = base + (pos < 0 ? 0 : static_cast<std::size_t>(pos));
    for (const auto& s : seen)
      if (s.is(node)) fail(at, "a YAML anchor used by an alias (&name, *name) is not taken here: write the value out");
    seen.push_back(node);
    note(node, at);
    if (node.IsMap()) {
      for (const auto& item : node) {
        note_all(item.first, base, seen);
        note_all(item.second, base, seen);
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) note_all(item, base, seen);
    }
  }

  YAML::Node value(bool split) {
    const std::size_t at = pos_;
    // [...] and {...} are YAML, but for text that only starts so: an IPv6
    // address, [::1]:7000, goes on after its bracket.
    if (!at_end() && (peek() == '[' || peek() == '{')) {
      const std::size_t end = flow_end();
      if (end == text_.size() || text_[end] == ',') return flow(end);
    }
    auto parts = words(split);
    if (!split) {
      YAML::Node scalar{parts.front().text};
      note(scalar, at);
      return scalar;
    }
    YAML::Node list(YAML::NodeType::Sequence);
    note(list, at);
    for (auto& w : parts) {
      YAML::Node word{std::move(w.text)};
      note(word, w.at);
      list.push_back(word);
    }
    return list;
  }

  // (,key=value)... to the end.
  void items(YAML::Node& map) {
    while (!at_end()) {
      ++pos_;  // the ',' that ended what came before
      const std::size_t key_at = pos_;
      while (!at_end() && peek() != '=' && peek() != ',') ++pos_;
      const std::string_view key = text_.substr(key_at, pos_ - key_at);
      if (at_end() || peek() == ',') {
        if (key.empty()) fail(key_at, "a key=value is missing after ','");
        fail(key_at, "'" + std::string(key) + "' has no '=': write KEY=VALUE");
      }
      if (key.empty()) fail(key_at, "a key is missing before '='");
      std::vector<located_word> parts{{"", key_at}};
      for (std::size_t i = 0; i < key.size(); ++i) {
        const char c = key[i];
        if (c == '.') {
          if (parts.back().text.empty()) fail(key_at + i, "an empty part in the key '" + std::string(key) + "'");
          parts.push_back({"", key_at + i + 1});
        } else if (is_key_char(c)) {
          parts.back().text += c;
        } else {
          fail(key_at + i, "a key is letters, digits and '_', parts joined by '.', not " + shown(c));
        }
      }
      if (parts.back().text.empty())
        fail(key_at + key.size(), "an empty part in the key '" + std::string(key) + "'");
      ++pos_;  // '='
      put(map, parts, value(false));
    }
  }

  // map[parts...] = value, making the sections on the way.
  void put(YAML::Node& map, const std::vector<located_word>& parts, const YAML::Node& value) {
    std::string key;
    YAML::Node at;
    at.reset(map);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const located_word& part = parts[i];
      key += (i ? "." : "") + part.text;
      if (i == 0 && part.text == "transport" && !transport_word_.empty())
        fail(part.at, "the transport is the word before ':' (" + transport_word_ + "), not a key");
      const bool last = i + 1 == parts.size();
      if (at[part.text].IsDefined()) {
        if (last || !at[part.text].IsMap())
          fail(part.at, last && !at[part.text].IsMap()
                            ? "'" + key + "' is given twice"
                            : "'" + key + "' is given a value and keys under it");
      } else {
        if (last) {
          at[part.text] = value;
        } else {
          YAML::Node section(YAML::NodeType::Map);
          note(section, part.at);
          at[part.text] = section;
        }
        for (const auto& item : at)
          if (item.first.Scalar() == part.text) note(item.first, part.at);
      }
      if (!last) at.reset(at[part.text]);
    }
  }

  std::string_view text_;
  std::size_t argument_;
  node_origins& origins_;
  std::size_t pos_ = 0;
  std::string transport_word_;  // an endpoint's, once its transport is in the map
};

}  // namespace

std::string command_line_place(std::size_t argument, std::size_t character) {
  return "argument " + std::to_string(argument) + ", character " + std::to_string(character);
}

std::optional<command_line_position> read_command_line_place(std::string_view message) {
  command_line_position p;
  int consumed = 0;
  const std::string text(message.substr(0, 64));
  if (std::sscanf(text.c_str(), "argument %zu, character %zu: %n", &p.argument, &p.character,
                  &consumed) != 2 ||
      consumed == 0)
    return std::nullopt;
  return p;
}

YAML::Node parse_endpoint_address(std::string_view text, std::size_t argument,
                                  node_origins& origins) {
  return address_parser(text, argument, origins).endpoint();
}

YAML::Node parse_filter_address(std::string_view text, std::size_t argument,
                                node_origins& origins) {
  return address_parser(text, argument, origins).filter();
}

}  // namespace pickleway
