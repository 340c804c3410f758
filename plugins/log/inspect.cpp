#include "inspect.hpp"

#include <charconv>

#include <pickleway/opcode_reader.hpp>

namespace pickleway::log {

namespace {

// A little-endian unsigned integer argument (BINGET, EXT2, ...).
std::uint64_t little_endian(bytes_view arg) {
  std::uint64_t value = 0;
  for (std::size_t i = arg.size(); i-- > 0;) value = (value << 8) | arg[i];
  return value;
}

// A decimal text argument (GET, PUT); nullopt when it is none.
std::optional<std::uint64_t> decimal(bytes_view arg) {
  std::string_view text(reinterpret_cast<const char*>(arg.data()), arg.size());
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

bool is_builtins(std::string_view module) { return module == "builtins" || module == "__builtin__"; }

bool is_copyreg(std::string_view module) { return module == "copyreg" || module == "copy_reg"; }

}  // namespace

std::uint32_t type_walker::push(object o) {
  const auto id = static_cast<std::uint32_t>(objects_.size());
  objects_.push_back(o);
  stack_.push_back(id);
  return id;
}

std::uint32_t type_walker::push_container(kind k, std::size_t count, std::uint32_t first) {
  object o{k};
  o.counted = count <= 0xFFFF'FFFFu;
  o.count = static_cast<std::uint32_t>(count);
  o.first = first;
  return push(o);
}

std::optional<std::size_t> type_walker::pop_to_mark(std::uint32_t* first) {
  for (std::size_t i = stack_.size(); i-- > 0;) {
    if (stack_[i] != mark) continue;
    const std::size_t count = stack_.size() - i - 1;
    if (first) *first = count > 0 ? stack_[i + 1] : no_object;
    stack_.resize(i);
    return count;
  }
  return std::nullopt;
}

std::optional<std::uint32_t> type_walker::pop() {
  if (stack_.empty() || stack_.back() == mark) return std::nullopt;
  const std::uint32_t id = stack_.back();
  stack_.pop_back();
  return id;
}

type_walker::object type_walker::instance_of(std::uint32_t cls) const {
  object o = objects_[cls];
  if (o.what != kind::global) return object{kind::instance};
  o.what = kind::instance;
  return o;
}

type_walker::object type_walker::call(std::uint32_t callable, std::uint32_t args) const {
  const object& c = objects_[callable];
  const object& a = objects_[args];
  if (c.what == kind::global && c.resolved) {
    if (is_copyreg(c.module) && c.name == "_reconstructor" && a.what == kind::tuple &&
        a.first != no_object)
      return instance_of(a.first);
    if (c.module == "_codecs" && c.name == "encode") return object{kind::bytes};
    if (is_builtins(c.module) && (c.name == "set" || c.name == "frozenset")) {
      object s{c.name == "set" ? kind::set : kind::frozenset};
      if (a.what == kind::tuple && a.counted && a.count == 0) {
        s.counted = true;
      } else if (a.what == kind::tuple && a.first != no_object) {
        const object& items = objects_[a.first];
        if ((items.what == kind::list || items.what == kind::tuple) && items.counted) {
          s.counted = true;
          s.count = items.count;
        }
      }
      return s;
    }
  }
  return instance_of(callable);
}

void type_walker::memo_store(std::uint64_t key) {
  const std::uint32_t id = stack_.back();
  if (key < dense_limit_) {
    if (key >= memo_.size()) memo_.resize(static_cast<std::size_t>(key) + 1, no_object);
    auto& slot = memo_[static_cast<std::size_t>(key)];
    if (slot == no_object) ++memo_count_;
    slot = id;
  } else {
    if (sparse_memo_.insert_or_assign(key, id).second) ++memo_count_;
  }
}

std::uint32_t type_walker::memo_fetch(std::uint64_t key) const {
  if (key < memo_.size()) return memo_[static_cast<std::size_t>(key)];
  const auto it = sparse_memo_.find(key);
  return it == sparse_memo_.end() ? no_object : it->second;
}

std::string type_walker::describe(std::uint32_t id) const {
  const object& o = objects_[id];
  const auto counted = [&](const char* name) {
    return o.counted ? std::string(name) + "(" + std::to_string(o.count) + ")" : std::string(name);
  };
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
      if (o.extension >= 0) return "<extension " + std::to_string(o.extension) + ">";
      if (!o.resolved) return "<global ?>";
      return "<global " + std::string(o.module) + "." + std::string(o.name) + ">";
    case kind::instance:
      if (o.extension >= 0) return "<instance of extension " + std::to_string(o.extension) + ">";
      if (!o.resolved) return "<instance>";
      if (is_builtins(o.module)) return std::string(o.name);
      return std::string(o.module) + "." + std::string(o.name);
  }
  return "<unknown>";
}

std::string type_walker::walk(bytes_view message, const message_info& info) {
  objects_.clear();
  stack_.clear();
  memo_.clear();
  sparse_memo_.clear();
  memo_count_ = 0;
  // MEMOIZE's keys stay below the opcode count; a PUT far beyond goes to the map.
  dense_limit_ = message.size() + 1;
  std::size_t next_global = 0;
  // The framer's report of the GLOBAL, INST or STACK_GLOBAL at `pos`.
  const auto global_at = [&](std::size_t pos) {
    object o{kind::global};
    if (next_global < info.globals.size() && info.globals[next_global].offset == pos) {
      const global_ref& g = info.globals[next_global++];
      o.resolved = g.resolved;
      o.module = g.module;
      o.name = g.name;
    }
    return o;
  };
  const std::string unknown = "<unknown>";

  for (std::size_t pos = 0;;) {
    const auto o = read_opcode(message, pos);
    if (!o) return unknown;
    // Object ids must stay clear of the mark; no real pickle comes near.
    if (objects_.size() >= mark - 1) return unknown;
    const bytes_view arg = message.subspan(o->arg, o->arg_end - o->arg);
    // The container the opcode adds to, on top of the stack once its
    // operands are popped.
    const auto target = [&]() -> object* {
      if (stack_.empty() || stack_.back() == mark) return nullptr;
      return &objects_[stack_.back()];
    };
    switch (o->info->code) {
      case op::INT: {
        const std::string_view text(reinterpret_cast<const char*>(arg.data()), arg.size());
        push(text == "00" || text == "01" ? kind::boolean : kind::integer);  // pickle's True, False
        break;
      }
      case op::BININT: case op::BININT1: case op::BININT2: case op::LONG: case op::LONG1:
      case op::LONG4:
        push(kind::integer);
        break;
      case op::FLOAT: case op::BINFLOAT:
        push(kind::floating);
        break;
      case op::STRING: case op::BINSTRING: case op::SHORT_BINSTRING: case op::UNICODE:
      case op::SHORT_BINUNICODE: case op::BINUNICODE: case op::BINUNICODE8:
        push(kind::str);
        break;
      case op::BINBYTES: case op::SHORT_BINBYTES: case op::BINBYTES8:
        push(kind::bytes);
        break;
      case op::BYTEARRAY8:
        push(kind::bytearray);
        break;
      case op::NEXT_BUFFER:
        push(kind::buffer);
        break;
      case op::NONE:
        push(kind::none);
        break;
      case op::NEWTRUE: case op::NEWFALSE:
        push(kind::boolean);
        break;
      case op::EMPTY_LIST:
        push_container(kind::list, 0);
        break;
      case op::EMPTY_TUPLE:
        push_container(kind::tuple, 0);
        break;
      case op::EMPTY_DICT:
        push_container(kind::dict, 0);
        break;
      case op::EMPTY_SET:
        push_container(kind::set, 0);
        break;
      case op::LIST: case op::TUPLE: case op::DICT: case op::FROZENSET: {
        std::uint32_t first = no_object;
        const auto n = pop_to_mark(&first);
        if (!n) return unknown;
        const op code = o->info->code;
        if (code == op::LIST) push_container(kind::list, *n);
        if (code == op::TUPLE) push_container(kind::tuple, *n, first);
        if (code == op::DICT) push_container(kind::dict, *n / 2);
        if (code == op::FROZENSET) push_container(kind::frozenset, *n);
        break;
      }
      case op::TUPLE1: case op::TUPLE2: case op::TUPLE3: {
        const std::size_t n = o->info->pops;
        std::uint32_t first = no_object;
        for (std::size_t i = 0; i < n; ++i) {
          const auto item = pop();
          if (!item) return unknown;
          first = *item;
        }
        push_container(kind::tuple, n, first);
        break;
      }
      case op::APPEND: case op::SETITEM: {
        for (std::size_t i = 0; i < o->info->pops - 1u; ++i)
          if (!pop()) return unknown;
        object* t = target();
        if (!t) return unknown;
        const kind grows = o->info->code == op::APPEND ? kind::list : kind::dict;
        if (t->what == grows) ++t->count;
        break;
      }
      case op::APPENDS: case op::SETITEMS: case op::ADDITEMS: {
        const auto n = pop_to_mark();
        object* t = target();
        if (!n || !t) return unknown;
        const op code = o->info->code;
        if (code == op::APPENDS && t->what == kind::list) t->count += static_cast<std::uint32_t>(*n);
        if (code == op::SETITEMS && t->what == kind::dict) t->count += static_cast<std::uint32_t>(*n / 2);
        if (code == op::ADDITEMS && t->what == kind::set) t->count += static_cast<std::uint32_t>(*n);
        break;
      }
      case op::POP:
        if (stack_.empty()) return unknown;
        stack_.pop_back();  // an object, or (as CPython allows) a mark
        break;
      case op::POP_MARK:
        if (!pop_to_mark()) return unknown;
        break;
      case op::DUP:
        if (!target()) return unknown;
        stack_.push_back(stack_.back());
        break;
      case op::MARK:
        stack_.push_back(mark);
        break;
      case op::GET: case op::BINGET: case op::LONG_BINGET: {
        const auto key = o->info->code == op::GET ? decimal(arg) : little_endian(arg);
        const std::uint32_t id = key ? memo_fetch(*key) : no_object;
        if (id == no_object) {
          push(kind::unknown);  // defined by an earlier message (memo: allow)
        } else {
          stack_.push_back(id);
        }
        break;
      }
      case op::PUT: case op::BINPUT: case op::LONG_BINPUT: case op::MEMOIZE: {
        if (!target()) return unknown;
        const op code = o->info->code;
        const auto key = code == op::MEMOIZE ? std::optional<std::uint64_t>(memo_count_)
                         : code == op::PUT  ? decimal(arg)
                                            : little_endian(arg);
        if (!key) return unknown;
        memo_store(*key);
        break;
      }
      case op::GLOBAL:
        push(global_at(pos));
        break;
      case op::STACK_GLOBAL:
        if (!pop() || !pop()) return unknown;
        push(global_at(pos));
        break;
      case op::INST: {
        if (!pop_to_mark()) return unknown;
        object cls = global_at(pos);
        cls.what = kind::instance;
        push(cls);
        break;
      }
      case op::OBJ: {
        std::uint32_t cls = no_object;
        if (!pop_to_mark(&cls) || cls == no_object) return unknown;
        push(instance_of(cls));
        break;
      }
      case op::EXT1: case op::EXT2: case op::EXT4: {
        object ext{kind::global};
        const std::uint64_t code = little_endian(arg);
        // EXT4's argument is signed: a negative code is no extension.
        ext.extension = o->info->code == op::EXT4 && code > 0x7FFF'FFFFu ? -1
                                                                          : static_cast<std::int64_t>(code);
        push(ext);
        break;
      }
      case op::REDUCE: {
        const auto args = pop();
        const auto callable = pop();
        if (!args || !callable) return unknown;
        push(call(*callable, *args));
        break;
      }
      case op::NEWOBJ: case op::NEWOBJ_EX: {
        for (std::size_t i = 0; i + 1 < o->info->pops; ++i)
          if (!pop()) return unknown;  // args, and NEWOBJ_EX's kwargs
        const auto cls = pop();
        if (!cls) return unknown;
        push(instance_of(*cls));
        break;
      }
      case op::BUILD: case op::READONLY_BUFFER:
        if (o->info->code == op::BUILD && !pop()) return unknown;  // the state
        if (!target()) return unknown;  // the object stays, as it was
        break;
      case op::PERSID:
        push(kind::persistent_id);
        break;
      case op::BINPERSID:
        if (!pop()) return unknown;
        push(kind::persistent_id);
        break;
      case op::PROTO: case op::FRAME:
        break;
      case op::STOP: {
        const auto top = pop();
        return top ? describe(*top) : unknown;
      }
    }
    pos = o->end;
  }
}

void inspector::inspect(bytes_view message, message_facts& facts) {
  facts.protocol.reset();
  facts.type.clear();
  facts.globals.clear();
  facts.error.clear();
  if (message.empty()) {
    facts.error = "empty message";
    return;
  }
  if (!framer_) {
    framer_options options;
    options.max_message = largest_max_message;
    options.memo = memo_policy::allow;  // the endpoint's framer judged the memo already
    framer_.emplace(options);
  }
  // Error offsets are made relative to the message.
  const std::uint64_t start = framer_->stream_offset();
  frame_status status = framer_->next(message);
  if (status == frame_status::need_more) status = framer_->finish(message);
  if (status == frame_status::message) {
    const message_info& info = framer_->message();
    facts.protocol = info.protocol;
    for (const global_ref& g : info.globals) {
      std::string& name = facts.globals.emplace_back();
      if (g.resolved) {
        name.reserve(g.module.size() + 1 + g.name.size());
        name.append(g.module).append(".").append(g.name);
      } else {
        name.push_back('?');
      }
    }
    facts.type = walker_.walk(message.first(info.size), info);
    if (info.size < message.size()) {
      facts.error = std::to_string(message.size() - info.size) +
                    " bytes after the pickle's STOP at offset " + std::to_string(info.size - 1);
      framer_.reset();  // those bytes were not consumed: start afresh
    }
    return;
  }
  if (status == frame_status::error) {
    framing_error e = framer_->error();
    e.offset -= start;
    facts.error = e.describe();
  } else {
    facts.error = "no pickle";
  }
  framer_.reset();  // failed for good: the next message gets a fresh one
}

}  // namespace pickleway::log
