#include "judge.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace pickleway::firewall {

namespace {

constexpr std::uint32_t no_object = 0xFFFF'FFFFu;

struct name_mapping {
  std::string_view module, name, new_module, new_name;
};
struct import_mapping {
  std::string_view module, new_module;
};

constexpr name_mapping name_mappings[] = {
#define PICKLEWAY_NAME_MAPPING(m, n, nm, nn) {m, n, nm, nn},
#include "compat_pickle.inc"
#undef PICKLEWAY_NAME_MAPPING
};
constexpr import_mapping import_mappings[] = {
#define PICKLEWAY_IMPORT_MAPPING(m, nm) {m, nm},
#include "compat_pickle.inc"
#undef PICKLEWAY_IMPORT_MAPPING
};

std::string_view view(bytes_view m, std::size_t begin, std::size_t end) {
  return {reinterpret_cast<const char*>(m.data()) + begin, end - begin};
}

std::uint64_t little_endian(bytes_view m, std::size_t begin, std::size_t end) {
  std::uint64_t value = 0;
  for (std::size_t i = end; i-- > begin;) value = (value << 8) | m[i];
  return value;
}

// A GET or PUT index: decimal digits, then the '\r' of a CRLF line at most.
// CPython's int() also takes signs, spaces and underscores; no pickler
// writes them, so they are refused rather than interpreted.
std::optional<std::uint64_t> decimal(std::string_view text) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A name or code for a message: bytes outside printable ASCII as \xNN.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) {
      out += c;
    } else {
      constexpr char digits[] = "0123456789abcdef";
      out += "\\x";
      out += digits[u >> 4];
      out += digits[u & 0xF];
    }
  }
  return out;
}

std::string dotted(std::string_view module, std::string_view name) {
  return printable(module) + "." + printable(name);
}

}  // namespace

std::pair<std::string_view, std::string_view> fix_imports(std::string_view module,
                                                          std::string_view name) {
  // CPython: the (module, name) pair first, else the module alone.
  const auto n = std::lower_bound(
      std::begin(name_mappings), std::end(name_mappings), std::pair{module, name},
      [](const name_mapping& e, const auto& key) {
        return std::pair{e.module, e.name} < key;
      });
  if (n != std::end(name_mappings) && n->module == module && n->name == name)
    return {n->new_module, n->new_name};
  const auto i = std::lower_bound(std::begin(import_mappings), std::end(import_mappings), module,
                                  [](const import_mapping& e, std::string_view key) {
                                    return e.module < key;
                                  });
  if (i != std::end(import_mappings) && i->module == module) return {i->new_module, name};
  return {module, name};
}

std::string describe(const refusal& r, std::uint64_t base) {
  return "refused " + r.subject + " at offset " + std::to_string(base + r.offset) + ": " +
         r.cause;
}

void judge::reset() {
  proto_ = 0;
  objects_.clear();
  for (const kind k : {kind::value, kind::container, kind::instance, kind::foreign}) {
    object shared;
    shared.what = k;
    objects_.push_back(shared);
  }
  for (std::uint32_t size = 0; size <= 3; ++size) {
    object t;
    t.what = kind::tuple;
    t.count = size;
    t.first = t.pos = a_value;
    objects_.push_back(t);
  }
  globals_.clear();
  stack_.clear();
  marks_.clear();
  memo_.clear();
  sparse_memo_.clear();
  memo_size_ = 0;
  continued_memo_.clear();
  continued_size_ = carried_.size();
  names_.clear();
  refusal_.reset();
}

std::uint32_t judge::push(const object& o) {
  const auto id = static_cast<std::uint32_t>(objects_.size());
  objects_.push_back(o);
  stack_.push_back(id);
  return id;
}

std::string_view judge::text_of(const object& o) const {
  return view(message_, o.first, std::size_t{o.first} + o.count);
}

std::string judge::describe_global(const object& o) const {
  const global_name& g = name_of(o);
  return g.module.empty() ? "an extension code's class" : dotted(g.module, g.name);
}

bool judge::refuse(std::size_t pos, std::string subject, std::string cause) {
  refusal_ = refusal{pos, std::move(subject), std::move(cause)};
  return false;
}

bool judge::underflow(std::size_t pos) {
  return refuse(pos, "message", "stack underflow: the unpickler's stack and this one would part");
}

// An item leaves the stack to be stored, passed or returned. A getattr that
// was never applied to an allowed global and a name is refused here: held,
// it could be called later by code we cannot see.
//
// So is a global allowed only under conditions on its arguments: the
// conditions are checked where it is called, and held as a value it could
// be called elsewhere unchecked; e.g. stored in an instance's __dict__ as
// `__setstate__`, which a second BUILD calls with any state.
bool judge::use(std::uint32_t id) {
  const object& o = objects_[id];
  if (o.what == kind::getter)
    return refuse(o.pos, "builtins.getattr",
                  "not allowed, except as getattr(allowed global, 'name') judged as that name");
  if (o.what == kind::global && o.how != grant::allowed)
    return refuse(o.pos, describe_global(o), "allowed only as the callable of a call");
  return true;
}

bool judge::pop(std::size_t pos, std::uint32_t& id) {
  if (stack_.size() <= base()) return underflow(pos);
  id = stack_.back();
  stack_.pop_back();
  return use(id);
}

bool judge::top(std::size_t pos, std::uint32_t& id) {
  if (stack_.size() <= base()) return underflow(pos);
  id = stack_.back();
  return true;
}

bool judge::pop_mark(std::size_t pos) {
  if (marks_.empty()) return refuse(pos, "message", "no MARK to pop to");
  const std::size_t from = marks_.back();
  marks_.pop_back();
  popped_.assign(stack_.begin() + static_cast<std::ptrdiff_t>(from), stack_.end());
  stack_.resize(from);
  for (const std::uint32_t id : popped_)
    if (!use(id)) return false;
  return true;
}

// GLOBAL, INST, STACK_GLOBAL: the name as find_class resolves it, judged
// where it is imported (importing a module can run code of its own).
bool judge::import(std::size_t pos, std::string_view module, std::string_view name) {
  if (proto_ < 3) std::tie(module, name) = fix_imports(module, name);
  const grant g = policy_->judge_global(module, name);
  if (g == grant::denied) return refuse(pos, dotted(module, name), "global not allowed");
  object o;
  o.what = g == grant::get_attribute ? kind::getter : kind::global;
  o.how = g;
  o.pos = static_cast<std::uint32_t>(pos);
  o.first = static_cast<std::uint32_t>(globals_.size());
  globals_.push_back({module, name});
  push(o);
  return true;
}

// What calling `callee` with `args` makes (REDUCE, OBJ, INST): only an
// allowed global may be called, and a conditional one only on what its
// condition names.
bool judge::call(std::size_t pos, std::uint32_t callee, std::span<const std::uint32_t> args,
                 std::uint32_t& result) {
  const object c = objects_[callee];
  const auto arg = [&](std::size_t i) -> const object& { return objects_[args[i]]; };
  const auto allowed_class = [&](std::size_t i) {
    return args.size() > i && arg(i).what == kind::global && arg(i).how == grant::allowed;
  };
  result = an_instance;
  // getattr(G, 'name') on a named global is the global G.name, judged as
  // that name: how protocols 0-3 reach a nested class. Anything else
  // getattr does is refused, unless the allowlist names builtins.getattr.
  const bool is_getattr =
      c.what == kind::getter || (c.what == kind::global && name_of(c).module == "builtins" &&
                                 name_of(c).name == "getattr");
  // getattr(C, '__new__') of an allowed class: what protocols 2-3 hand
  // functools.partial for an object made with keyword arguments.
  if (is_getattr && allowed_class(0) && args.size() == 2 && arg(1).what == kind::text &&
      arg(1).known && text_of(arg(1)) == "__new__") {
    objects_[callee].applied = true;
    object made;
    made.what = kind::constructor;
    made.first = args[0];
    objects_.push_back(made);
    result = static_cast<std::uint32_t>(objects_.size() - 1);
    return true;
  }
  if (is_getattr && args.size() == 2 && arg(0).what == kind::global &&
      !name_of(arg(0)).module.empty() && arg(1).what == kind::text && arg(1).known) {
    // Each dotted name is a new string: a long one applied over and over
    // would make the judge's memory grow with the square of the message.
    if (arg(1).count > largest_attribute_name)
      return refuse(pos, "a call", "getattr with a name longer than 1024 bytes");
    const std::string_view module = name_of(arg(0)).module;
    const std::string& name = names_.emplace_back(std::string(name_of(arg(0)).name) + "." +
                                                  std::string(text_of(arg(1))));
    const grant g = policy_->judge_global(module, name);
    if (g != grant::denied) {
      objects_[callee].applied = true;
      object made;
      made.what = g == grant::get_attribute ? kind::getter : kind::global;
      made.how = g;
      made.pos = static_cast<std::uint32_t>(pos);
      made.first = static_cast<std::uint32_t>(globals_.size());
      globals_.push_back({module, name});
      objects_.push_back(made);
      result = static_cast<std::uint32_t>(objects_.size() - 1);
      return true;
    }
    if (c.what == kind::getter) return refuse(pos, dotted(module, name), "global not allowed");
  } else if (c.what == kind::getter) {
    return refuse(c.pos, "builtins.getattr",
                  "not allowed, except as getattr(allowed global, 'name') judged as that name");
  }
  if (is_getattr) {
    // The allowlist names getattr: what it returns is data, never a class
    // to call or an object to change (it could be a module's __dict__).
    result = a_value;
    return true;
  }
  // C.__new__(X, ...) makes an X, which must be an allowed class too; a
  // partial of it, once given its arguments, makes a C.
  if (c.what == kind::constructor) {
    if (allowed_class(0)) return true;
    return refuse(pos, "a call", "an allowed class's __new__ applied to anything but an allowed class");
  }
  if (c.what == kind::partial) {
    if (c.applied) return true;
    return refuse(pos, "a call", "a functools.partial called before BUILD gave it its arguments");
  }
  if (c.what != kind::global)
    return refuse(pos, "a computed callable",
                  "only an allowed global may be called, not a value made at load time");
  // functools.partial(C.__new__), by the safe defaults or by name in the
  // allowlist: a partial the judge follows through its BUILD and call.
  const bool partial_of_constructor = name_of(c).module == "functools" &&
                                      name_of(c).name == "partial" && args.size() == 1 &&
                                      arg(0).what == kind::constructor;
  if (partial_of_constructor) {
    object made;
    made.what = kind::partial;
    made.first = args[0];
    objects_.push_back(made);
    result = static_cast<std::uint32_t>(objects_.size() - 1);
  }
  switch (c.how) {
    case grant::allowed:
      return true;
    case grant::partial:  // partial(C.__new__): its arguments come with BUILD
      if (partial_of_constructor) return true;
      return refuse(pos, describe_global(c), "allowed only as partial(an allowed class's __new__)");
    case grant::reconstructor:  // _reconstructor(cls, base, state)
      if (allowed_class(0) && allowed_class(1)) return true;
      return refuse(pos, describe_global(c),
                    "allowed only on an allowed class and base, which these are not");
    case grant::new_object:  // __newobj__(cls, *args), __newobj_ex__(cls, args, kwargs)
      if (allowed_class(0)) return true;
      return refuse(pos, describe_global(c), "allowed only on an allowed class, which this is not");
    case grant::latin1_encode:  // encode(text, 'latin1'): protocol 0-2 bytes
      result = a_value;
      if (args.size() == 2 && arg(1).what == kind::text && arg(1).known &&
          (text_of(arg(1)) == "latin1" || text_of(arg(1)) == "latin-1"))
        return true;
      return refuse(pos, describe_global(c), "allowed only as encode(text, 'latin1')");
    case grant::denied:
    case grant::get_attribute:
      break;
  }
  return refuse(pos, describe_global(c), "global not allowed");
}

// NEWOBJ, NEWOBJ_EX: cls.__new__(cls, ...) of an allowed class.
bool judge::instantiate(std::size_t pos, std::uint32_t cls) {
  const object& c = objects_[cls];
  if (c.what != kind::global || c.how != grant::allowed)
    return refuse(pos, c.what == kind::global ? describe_global(c) : "a computed class",
                  "only an allowed class may be instantiated");
  stack_.push_back(an_instance);
  return true;
}

// BUILD, APPEND(S), SETITEM(S), ADDITEMS change the object on top of the
// stack: its __setstate__, its __dict__ and attributes (setattr), its
// items. On a global (a class, a function, a module-level object) that
// would change state the whole process shares, e.g. replace a class
// attribute or a module's function for every later caller; on an object
// the application handed in (a persistent id's) its state. So the target
// must be something this message made: a container or an instance of an
// allowed class.
bool judge::update(std::size_t pos, std::string_view what) {
  std::uint32_t id = 0;
  if (!top(pos, id)) return false;
  const object& o = objects_[id];
  if (o.what == kind::container || o.what == kind::instance) return true;
  return refuse(pos, o.what == kind::global ? describe_global(o) : "an object",
                std::string(what) + " would change an object this message did not make");
}

// functools.partial's __setstate__ takes (func, args, kwargs, dict): only
// the state pickle gives it, func the partial's own C.__new__ and args
// starting with an allowed class, so that calling it makes that class.
// kwargs and dict are data, judged as they were built.
bool judge::build_partial(std::size_t pos, std::uint32_t state) {
  object& p = objects_[stack_.back()];
  const object& s = objects_[state];
  const object* const args = s.what == kind::tuple ? &objects_[s.pos] : nullptr;
  const bool fits = !p.applied && s.what == kind::tuple && s.count == 3 && s.first == p.first &&
                    args->what == kind::tuple && args->count >= 1 &&
                    objects_[args->first].what == kind::global &&
                    objects_[args->first].how == grant::allowed;
  if (!fits)
    return refuse(pos, "functools.partial",
                  "BUILD may give it only (its C.__new__, (allowed class, ...), kwargs, dict)");
  p.applied = true;
  return true;
}

bool judge::memo_put(std::size_t pos, std::uint64_t key, std::uint64_t continued_key) {
  std::uint32_t id = 0;
  if (!top(pos, id)) return false;
  if (key < dense_limit_) {
    if (key >= memo_.size()) memo_.resize(static_cast<std::size_t>(key) + 1, no_object);
    auto& slot = memo_[static_cast<std::size_t>(key)];
    memo_size_ += slot == no_object;
    slot = id;
  } else {
    memo_size_ += sparse_memo_.insert_or_assign(key, id).second;
  }
  if (policy_->reused_unpickler()) {
    const bool added = continued_memo_.insert_or_assign(continued_key, id).second;
    continued_size_ += added && !carried_.contains(continued_key);
  }
  return true;
}

// A global allowed only on conditions, or getattr: harmless only where the
// judge sees what it is applied to.
bool judge::conditional(const object& o) const {
  return o.what == kind::getter || o.what == kind::constructor || o.what == kind::partial ||
         (o.what == kind::global && o.how != grant::allowed);
}

// After a message passed: what it left in a reused Unpickler's memo.
void judge::carry_memo() {
  for (const auto& [key, id] : continued_memo_) {
    carried_.insert(key);
    carried_conditional_ = carried_conditional_ || conditional(objects_[id]);
  }
}

bool judge::memo_get(std::size_t pos, std::uint64_t key) {
  std::uint32_t id = no_object;
  if (key < memo_.size()) {
    id = memo_[static_cast<std::size_t>(key)];
  } else if (const auto it = sparse_memo_.find(key); it != sparse_memo_.end()) {
    id = it->second;
  }
  if (id == no_object)
    return refuse(pos, "memo entry " + std::to_string(key),
                  "not defined by this message (a name from elsewhere cannot be known)");
  // A reused Unpickler fetches what it stored at `key`: this message's
  // object, or an earlier message's. Where that differs from a fresh
  // Unpickler's, the item is only what is harmless in both worlds: a
  // global to call or pass when the other world's item cannot be a
  // conditional global or getattr (earlier messages left only globals
  // that may be called with anything, objects made of them, and data),
  // else plain data, which may be stored or passed but not called,
  // changed or used as a name.
  const auto it = continued_memo_.find(key);
  const std::uint32_t other = it == continued_memo_.end() ? no_object : it->second;
  if (policy_->reused_unpickler() && other != id) {
    const object& here = objects_[id];
    const bool other_conditional =
        other == no_object ? carried_conditional_ : conditional(objects_[other]);
    const bool global = here.what == kind::global || here.what == kind::getter;
    if (!(global && !other_conditional)) id = a_value;
  }
  stack_.push_back(id);
  return true;
}


std::optional<refusal> judge::check(bytes_view m) {
  reset();
  message_ = m;
  if (carried_.size() > largest_carried_memo) {
    refuse(0, "message",
           "the memo that earlier messages left a reused Unpickler is too large to follow");
    return refusal_;
  }
  if (m.size() > 0xFFFF'FFFFu) {
    refuse(0, "message", "larger than 4 GiB, more than the firewall judges");
    return refusal_;
  }
  // Each memo entry takes an opcode, so a message of N bytes that keys its
  // memo densely needs fewer than N slots; larger keys (and keys past 4M,
  // 16 MiB of slots) go to the map.
  dense_limit_ = std::min<std::size_t>(m.size(), std::size_t{1} << 22);
  std::size_t pos = 0;
  std::size_t frame_end = 0;
  bool in_frame = false;
  for (;;) {
    const auto o = read_opcode(m, pos);
    if (!o) {
      refuse(pos, "message",
             pos >= m.size() ? "it ends before its STOP" : "not a whole pickle here");
      return refusal_;
    }
    if (in_frame && o->end > frame_end) {
      refuse(pos, "message", "an opcode crosses the end of its FRAME");
      return refusal_;
    }
    if (o->info->code == op::FRAME) {
      if (in_frame) {
        refuse(pos, "message", "a FRAME inside a frame");
        return refusal_;
      }
      const std::uint64_t length = little_endian(m, o->arg, o->arg_end);
      if (length > m.size() - o->end) {
        refuse(pos, "message", "a FRAME longer than the message");
        return refusal_;
      }
      frame_end = o->end + static_cast<std::size_t>(length);
      in_frame = frame_end > o->end;
      pos = o->end;
      continue;
    }
    if (!step(*o)) return refusal_;
    pos = o->end;
    if (in_frame && pos == frame_end) in_frame = false;
    if (o->info->code == op::STOP) {
      if (pos != m.size()) {
        refuse(pos, "message", "bytes after its STOP: not exactly one pickle");
        return refusal_;
      }
      // builtins.getattr is imported only to be applied: one left over was
      // imported for nothing the firewall allows.
      for (const object& x : objects_) {
        if (x.what == kind::getter && !x.applied) {
          refuse(x.pos, "builtins.getattr",
                 "not allowed, except as getattr(allowed global, 'name') judged as that name");
          return refusal_;
        }
      }
      if (policy_->reused_unpickler()) carry_memo();
      return std::nullopt;
    }
  }
}

// One opcode, as _Unpickler.load_<name> does it.
bool judge::step(const opcode_at& o) {
  const bytes_view m = message_;
  const std::size_t pos = o.pos;
  const auto push_kind = [&](kind k) {
    switch (k) {
      case kind::container: stack_.push_back(a_container); break;
      case kind::foreign: stack_.push_back(a_foreign); break;
      default: stack_.push_back(a_value); break;
    }
    return true;
  };
  const auto push_text = [&](bool known) {
    object x;
    x.what = kind::text;
    x.pos = static_cast<std::uint32_t>(pos);
    x.known = known;
    x.first = static_cast<std::uint32_t>(o.arg);
    x.count = static_cast<std::uint32_t>(o.arg_end - o.arg);
    push(x);
    return true;
  };
  std::uint32_t a = 0;
  std::uint32_t b = 0;
  switch (o.info->code) {
    case op::INT: case op::BININT: case op::BININT1: case op::BININT2: case op::LONG:
    case op::LONG1: case op::LONG4: case op::FLOAT: case op::BINFLOAT: case op::NONE:
    case op::NEWTRUE: case op::NEWFALSE: case op::BINBYTES: case op::SHORT_BINBYTES:
    case op::BINBYTES8: case op::NEXT_BUFFER:
      return push_kind(kind::value);
    case op::BYTEARRAY8: case op::EMPTY_LIST: case op::EMPTY_DICT: case op::EMPTY_SET:
      return push_kind(kind::container);
    case op::EMPTY_TUPLE:
      stack_.push_back(a_tuple_of_values);
      return true;

    // A Python 2 str becomes what the consumer's `encoding` makes of it
    // (str, or bytes), which the firewall cannot know: never a name.
    case op::STRING: case op::BINSTRING: case op::SHORT_BINSTRING:
      return push_text(false);
    // raw-unicode-escape: certain only without escapes and non-ASCII bytes
    // (latin-1 there, not UTF-8).
    case op::UNICODE: {
      const std::string_view t = view(m, o.arg, o.arg_end);
      return push_text(std::none_of(t.begin(), t.end(), [](char c) {
        return c == '\\' || static_cast<unsigned char>(c) >= 0x80;
      }));
    }
    // UTF-8: compared as bytes; bytes CPython would not decode to the same
    // text (invalid, overlong) it does not decode at all.
    case op::SHORT_BINUNICODE: case op::BINUNICODE: case op::BINUNICODE8:
      return push_text(true);

    case op::READONLY_BUFFER:
      if (!top(pos, a)) return false;
      stack_.pop_back();
      return push_kind(kind::value);

    case op::APPEND:
      return pop(pos, a) && update(pos, "APPEND");
    case op::APPENDS:
      return pop_mark(pos) && update(pos, "APPENDS");
    case op::SETITEM:
      return pop(pos, a) && pop(pos, b) && update(pos, "SETITEM");
    case op::SETITEMS:
      return pop_mark(pos) && update(pos, "SETITEMS");
    case op::ADDITEMS:
      return pop_mark(pos) && update(pos, "ADDITEMS");
    case op::BUILD:
      if (!pop(pos, a)) return false;
      if (stack_.size() > base() && objects_[stack_.back()].what == kind::partial)
        return build_partial(pos, a);
      return update(pos, "BUILD");

    case op::LIST: case op::DICT:
      return pop_mark(pos) && push_kind(kind::container);
    case op::FROZENSET:
      return pop_mark(pos) && push_kind(kind::value);
    case op::TUPLE: case op::TUPLE1: case op::TUPLE2: case op::TUPLE3: {
      if (o.info->code == op::TUPLE) {
        if (!pop_mark(pos)) return false;
      } else {
        const std::size_t n = o.info->pops;
        if (stack_.size() < base() + n) return underflow(pos);
        popped_.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        for (const std::uint32_t id : popped_)
          if (!use(id)) return false;
      }
      // Only a global, a str, a C.__new__ or a tuple of them can meet a
      // call's (or a BUILD's) condition: any other element is as good as a
      // plain value, and a tuple of those is shared.
      const auto element = [&](std::size_t i) {
        if (i >= popped_.size()) return a_value;
        const kind k = objects_[popped_[i]].what;
        return k == kind::global || k == kind::text || k == kind::constructor || k == kind::tuple
                   ? popped_[i]
                   : a_value;
      };
      const std::uint32_t size = static_cast<std::uint32_t>(std::min<std::size_t>(popped_.size(), 3));
      if (element(0) == a_value && element(1) == a_value) {
        stack_.push_back(a_tuple_of_values + size);
        return true;
      }
      object t;
      t.what = kind::tuple;
      t.first = element(0);
      t.pos = element(1);
      t.count = size;
      push(t);
      return true;
    }

    case op::POP:
      // CPython pops the mark itself when the stack above it is empty.
      if (stack_.size() > base()) return pop(pos, a);
      return pop_mark(pos);
    case op::POP_MARK:
      return pop_mark(pos);
    case op::DUP:
      if (!top(pos, a)) return false;
      stack_.push_back(a);
      return true;
    case op::MARK:
      marks_.push_back(static_cast<std::uint32_t>(stack_.size()));
      return true;

    case op::GET: case op::PUT: {
      const auto key = decimal(view(m, o.arg, o.arg_end));
      if (!key) return refuse(pos, "message", "a memo index that is not plain decimal digits");
      return o.info->code == op::GET ? memo_get(pos, *key) : memo_put(pos, *key, *key);
    }
    case op::BINGET: case op::LONG_BINGET:
      return memo_get(pos, little_endian(m, o.arg, o.arg_end));
    case op::BINPUT: case op::LONG_BINPUT:
      return memo_put(pos, little_endian(m, o.arg, o.arg_end), little_endian(m, o.arg, o.arg_end));
    case op::MEMOIZE:
      return memo_put(pos, memo_size_, continued_size_);

    case op::EXT1: case op::EXT2: case op::EXT4: {
      std::int64_t code = static_cast<std::int64_t>(little_endian(m, o.arg, o.arg_end));
      if (o.info->code == op::EXT4 && code >= 0x8000'0000) code -= 0x1'0000'0000;
      if (!policy_->allows_ext(code))
        return refuse(pos, "extension code " + std::to_string(code),
                      policy_->ext() == ext_mode::deny ? "extension codes are denied"
                                                       : "not an allowed extension code");
      // The registry's class: callable like an allowed global, never named.
      object g;
      g.what = kind::global;
      g.pos = static_cast<std::uint32_t>(pos);
      g.first = static_cast<std::uint32_t>(globals_.size());
      globals_.push_back({});
      push(g);
      return true;
    }
    case op::PERSID: case op::BINPERSID:
      if (o.info->code == op::BINPERSID && !pop(pos, a)) return false;
      if (!policy_->allows_persid())
        return refuse(pos, "persistent id", "persistent ids are denied");
      return push_kind(kind::foreign);

    case op::GLOBAL: case op::INST: {
      const std::string_view line = view(m, o.arg, o.arg_end);
      const auto nl = line.find('\n');
      if (!import(pos, line.substr(0, nl), line.substr(nl + 1))) return false;
      if (o.info->code == op::GLOBAL) return true;
      // INST: klass(*args) with the items above the mark.
      const std::uint32_t klass = stack_.back();
      stack_.pop_back();
      if (!pop_mark(pos) || !call(pos, klass, popped_, a)) return false;
      stack_.push_back(a);
      return true;
    }
    case op::STACK_GLOBAL: {
      if (!pop(pos, b) || !pop(pos, a)) return false;
      const object& module = objects_[a];
      const object& name = objects_[b];
      if (module.what != kind::text || !module.known || name.what != kind::text || !name.known)
        return refuse(pos, "a computed global",
                      "a STACK_GLOBAL operand is not a str known for certain");
      return import(pos, text_of(module), text_of(name));
    }
    case op::REDUCE: {
      std::uint32_t args = 0;
      if (!pop(pos, args) || !top(pos, a)) return false;
      const object& t = objects_[args];
      // What call() looks at: the size, 3 standing for 3 or more, and the
      // first two elements.
      const std::array<std::uint32_t, 3> elements{t.first, t.pos, a_value};
      std::span<const std::uint32_t> items;
      if (t.what == kind::tuple) items = std::span(elements).first(t.count);
      // func(*args): the conditions need the arguments, which only a tuple
      // made here shows.
      if (conditional(objects_[a]) && t.what != kind::tuple)
        return refuse(pos, "a call", "arguments that are not a tuple made in this message");
      if (!call(pos, a, items, b)) return false;
      stack_.back() = b;
      return true;
    }
    case op::OBJ: {
      if (!pop_mark(pos)) return false;
      if (popped_.empty()) return underflow(pos);
      const std::uint32_t cls = popped_.front();
      if (!call(pos, cls, std::span(popped_).subspan(1), a)) return false;
      stack_.push_back(a);
      return true;
    }
    case op::NEWOBJ: case op::NEWOBJ_EX: {
      if (!pop(pos, a)) return false;  // args, or kwargs
      if (o.info->code == op::NEWOBJ_EX && !pop(pos, a)) return false;  // args
      return pop(pos, b) && instantiate(pos, b);
    }

    case op::PROTO: {
      const int p = m[o.arg];
      if (p > highest_protocol) return refuse(pos, "message", "an unsupported protocol");
      proto_ = p;
      return true;
    }
    case op::STOP:
      return pop(pos, a);
    case op::FRAME:
      return true;  // check() follows frames
  }
  return refuse(pos, "message", "an opcode the firewall does not know");
}

}  // namespace pickleway::firewall
