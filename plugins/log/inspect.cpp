#include "inspect.hpp"

#include <new>

namespace pickleway::log {

namespace {

bool is_builtins(std::string_view module) { return module == "builtins" || module == "__builtin__"; }

bool is_copyreg(std::string_view module) { return module == "copyreg" || module == "copy_reg"; }

}  // namespace

void inspector::reset() {
  objects_.clear();
  names_.clear();
  result_ = no_object;
  // The shared objects of the plain kinds, at ids equal to their kinds.
  for (const kind k : {kind::unknown, kind::none, kind::boolean, kind::integer, kind::floating,
                       kind::str, kind::bytes, kind::bytearray, kind::buffer, kind::persistent_id})
    objects_.push_back(object{k});
}

std::uint32_t inspector::add(object o) {
  const auto id = static_cast<std::uint32_t>(objects_.size());
  objects_.push_back(o);
  return id;
}

std::uint32_t inspector::container(kind k, std::size_t count, std::uint32_t first) {
  object o{k};
  o.counted = count <= 0xFFFF'FFFFu;
  o.count = static_cast<std::uint32_t>(count);
  o.first = first;
  return add(o);
}

std::uint32_t inspector::global(std::string_view module, std::string_view name,
                                std::int64_t extension) {
  object o{kind::global};
  o.name = static_cast<std::uint32_t>(names_.size());
  names_.push_back({module, name, extension});
  if (extension < 0 && globals_) globals_->push_back(std::string(module) + "." + std::string(name));
  return add(o);
}

// A str the machine may use as a STACK_GLOBAL operand: one it knows.
std::uint32_t inspector::str(const pickle_op& o) {
  const auto constant = string_constant(o);
  if (!constant) return static_cast<std::uint32_t>(kind::str);
  object s{kind::str};
  s.counted = true;
  s.first = static_cast<std::uint32_t>(constant->text.data() -
                                       reinterpret_cast<const char*>(message_.data()));
  s.count = static_cast<std::uint32_t>(constant->text.size());
  return add(s);
}

std::optional<std::string_view> inspector::text_of(std::uint32_t id) const {
  const object& o = objects_[id];
  if (o.what != kind::str || !o.counted) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(message_.data()) + o.first, o.count);
}

std::uint32_t inspector::instance_of(std::uint32_t cls) {
  object o = objects_[cls];
  if (o.what != kind::global) return add(object{kind::instance});
  o.what = kind::instance;
  return add(o);
}

std::uint32_t inspector::call(std::uint32_t callable, std::uint32_t args) {
  const object c = objects_[callable];
  const object a = objects_[args];
  if (c.what == kind::global && c.name != no_object && names_[c.name].extension < 0) {
    const global_name g = names_[c.name];
    if (is_copyreg(g.module) && g.name == "_reconstructor" && a.what == kind::tuple &&
        a.first != no_object)
      return instance_of(a.first);
    if (g.module == "_codecs" && g.name == "encode") return static_cast<std::uint32_t>(kind::bytes);
    if (is_builtins(g.module) && (g.name == "set" || g.name == "frozenset")) {
      object s{g.name == "set" ? kind::set : kind::frozenset};
      if (a.what == kind::tuple && a.counted && a.count == 0) {
        s.counted = true;
      } else if (a.what == kind::tuple && a.first != no_object) {
        const object& items = objects_[a.first];
        if ((items.what == kind::list || items.what == kind::tuple) && items.counted) {
          s.counted = true;
          s.count = items.count;
        }
      }
      return add(s);
    }
  }
  return instance_of(callable);
}

std::string inspector::describe(std::uint32_t id) const {
  const object& o = objects_[id];
  const auto counted = [&](const char* name) {
    return o.counted ? std::string(name) + "(" + std::to_string(o.count) + ")" : std::string(name);
  };
  const global_name* g = o.name == no_object ? nullptr : &names_[o.name];
  switch (o.what) {
    case kind::unknown: return "<unknown>";
    case kind::none: return "None";
    case kind::boolean: return "bool";
    case kind::integer: return "int";
    case kind::floating: return "float";
    case kind::str: return "str";
    case kind::bytes: return "bytes";
    case kind::bytearray: return "bytearray";
    case kind::buffer: return "<buffer>";
    case kind::list: return counted("list");
    case kind::tuple: return counted("tuple");
    case kind::dict: return counted("dict");
    case kind::set: return counted("set");
    case kind::frozenset: return counted("frozenset");
    case kind::persistent_id: return "<persistent id>";
    case kind::global:
      if (g && g->extension >= 0) return "<extension " + std::to_string(g->extension) + ">";
      if (!g) return "<global ?>";
      return "<global " + std::string(g->module) + "." + std::string(g->name) + ">";
    case kind::instance:
      if (g && g->extension >= 0) return "<instance of extension " + std::to_string(g->extension) + ">";
      if (!g) return "<instance>";
      if (is_builtins(g->module) && !g->name.empty()) return std::string(g->name);
      return std::string(g->module) + "." + std::string(g->name);
  }
  return "<unknown>";
}

bool inspector::fetch(const pickle_op&, std::uint64_t, const std::uint32_t* stored,
                      std::uint32_t& result) {
  // A key of an earlier message (the endpoint's `memo: allow` let it by).
  result = stored ? *stored : static_cast<std::uint32_t>(kind::unknown);
  return true;
}

bool inspector::apply(const pickle_op& o, std::span<std::uint32_t> items,
                      std::span<std::uint32_t> slice, std::uint32_t& result) {
  const auto plain = [&](kind k) { result = static_cast<std::uint32_t>(k); };
  switch (o.code()) {
    case op::INT:
      plain(o.form == value_form::boolean ? kind::boolean : kind::integer);  // pickle's True, False
      break;
    case op::BININT: case op::BININT1: case op::BININT2: case op::LONG: case op::LONG1:
    case op::LONG4:
      plain(kind::integer);
      break;
    case op::FLOAT: case op::BINFLOAT:
      plain(kind::floating);
      break;
    case op::STRING: case op::BINSTRING: case op::SHORT_BINSTRING: case op::UNICODE:
    case op::SHORT_BINUNICODE: case op::BINUNICODE: case op::BINUNICODE8:
      result = str(o);
      break;
    case op::BINBYTES: case op::SHORT_BINBYTES: case op::BINBYTES8:
      plain(kind::bytes);
      break;
    case op::BYTEARRAY8:
      plain(kind::bytearray);
      break;
    case op::NEXT_BUFFER:
      plain(kind::buffer);
      break;
    case op::NONE:
      plain(kind::none);
      break;
    case op::NEWTRUE: case op::NEWFALSE:
      plain(kind::boolean);
      break;
    case op::EMPTY_LIST: result = container(kind::list, 0); break;
    case op::EMPTY_TUPLE: result = container(kind::tuple, 0); break;
    case op::EMPTY_DICT: result = container(kind::dict, 0); break;
    case op::EMPTY_SET: result = container(kind::set, 0); break;
    case op::LIST: result = container(kind::list, slice.size()); break;
    case op::DICT: result = container(kind::dict, slice.size() / 2); break;
    case op::FROZENSET: result = container(kind::frozenset, slice.size()); break;
    case op::TUPLE:
      result = container(kind::tuple, slice.size(), slice.empty() ? no_object : slice[0]);
      break;
    case op::TUPLE1: case op::TUPLE2: case op::TUPLE3:
      result = container(kind::tuple, items.size(), items[0]);
      break;
    case op::APPEND: case op::SETITEM: case op::APPENDS: case op::SETITEMS: case op::ADDITEMS: {
      result = items[0];  // the container, which stays on the stack
      object& t = objects_[result];
      const op code = o.code();
      const std::size_t added = code == op::APPEND || code == op::SETITEM ? 1
                                : code == op::SETITEMS                   ? slice.size() / 2
                                                                         : slice.size();
      const bool grows = ((code == op::APPEND || code == op::APPENDS) && t.what == kind::list) ||
                         ((code == op::SETITEM || code == op::SETITEMS) && t.what == kind::dict) ||
                         (code == op::ADDITEMS && t.what == kind::set);
      if (grows) t.count += static_cast<std::uint32_t>(added);
      break;
    }
    case op::GLOBAL: case op::INST: {
      const std::uint32_t g = global(without_cr(o.text), without_cr(o.second));
      result = o.code() == op::GLOBAL ? g : instance_of(g);
      break;
    }
    case op::STACK_GLOBAL: {
      const auto module = text_of(items[0]);
      const auto name = text_of(items[1]);
      if (module && name) {
        result = global(*module, *name);
      } else {
        if (globals_) globals_->push_back("?");
        result = add(object{kind::global});
      }
      break;
    }
    case op::OBJ:
      result = instance_of(slice[0]);
      break;
    case op::EXT1: case op::EXT2: case op::EXT4:
      // EXT4's argument is signed: a negative code is no extension.
      result = o.integer < 0 ? add(object{kind::global}) : global({}, {}, o.integer);
      break;
    case op::REDUCE:
      result = call(items[0], items[1]);
      break;
    case op::NEWOBJ: case op::NEWOBJ_EX:
      result = instance_of(items[0]);
      break;
    case op::BUILD: case op::READONLY_BUFFER:
      result = items[0];  // the object stays, as it was
      break;
    case op::PERSID: case op::BINPERSID:
      plain(kind::persistent_id);
      break;
    case op::STOP:
      result_ = items[0];
      break;
    default:  // POP, POP_MARK: nothing is pushed
      break;
  }
  return true;
}

void inspector::inspect(bytes_view message, message_facts& facts) noexcept {
  facts.protocol.reset();
  facts.type.clear();
  facts.globals.clear();
  facts.error.clear();
  if (message.empty()) {
    facts.error = "empty message";
    return;
  }
  try {
    reset();
    message_ = message;
    globals_ = &facts.globals;
    const bool ran = run(message);
    globals_ = nullptr;
    const framing_error& e = error();
    if (!ran && e.code != errc::stack_underflow && e.code != errc::missing_mark) {
      facts.globals.clear();  // not a pickle: nothing it names counts
      facts.error = e.describe();
      return;
    }
    facts.protocol = protocol() >= 0 ? protocol() : highest_protocol();
    facts.type = ran ? describe(result_) : "<unknown>";
    if (!ran) {
      facts.error = e.describe();
    } else if (stop_end() < message.size()) {
      facts.error = std::to_string(message.size() - stop_end()) +
                    " bytes after the pickle's STOP at offset " + std::to_string(stop_end() - 1);
    }
  } catch (const std::bad_alloc&) {
    globals_ = nullptr;
    facts.protocol.reset();
    facts.type.clear();
    facts.globals.clear();
    facts.error = make_error_code(errc::out_of_memory).message();
  }
}

}  // namespace pickleway::log
