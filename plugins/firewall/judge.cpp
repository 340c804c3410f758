#include "judge.hpp"

#include <algorithm>
#include <array>

#include "fix_imports.hpp"

namespace pickleway::firewall {

namespace {

constexpr std::uint32_t no_object = 0xFFFF'FFFFu;

std::string_view view(bytes_view m, std::size_t begin, std::size_t end) {
  return {reinterpret_cast<const char*>(m.data()) + begin, end - begin};
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

std::string describe(const refusal& r, std::uint64_t base) {
  return "refused " + r.subject + " at offset " + std::to_string(base + r.offset) + ": " +
         r.cause;
}

void judge::reset() {
  // The shared objects come first and are never changed: made once, kept.
  constexpr std::size_t shared = a_tuple_of_values + 4;
  if (objects_.size() < shared) {
    objects_.clear();
    for (const kind k : {kind::value, kind::container, kind::instance, kind::foreign}) {
      object o;
      o.what = k;
      objects_.push_back(o);
    }
    for (std::uint32_t size = 0; size <= 3; ++size) {
      object t;
      t.what = kind::tuple;
      t.count = size;
      t.first = t.pos = a_value;
      objects_.push_back(t);
    }
  }
  objects_.resize(shared);
  globals_.clear();
  if (!continued_memo_.empty()) continued_memo_.clear();
  continued_size_ = carried_.size();
  if (!names_.empty()) names_.clear();
  refusal_.reset();
}

std::uint32_t judge::add(const object& o) {
  const auto id = static_cast<std::uint32_t>(objects_.size());
  objects_.push_back(o);
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

// What the machine found wrong with the message itself: not a pickle, or
// a stack the unpickler's and this one would part on.
bool judge::refuse_malformed(const framing_error& e) {
  switch (e.code) {
    case errc::stack_underflow:
      return refuse(e.offset, "message",
                    "stack underflow: the unpickler's stack and this one would part");
    case errc::missing_mark:
      return refuse(e.offset, "message", "no MARK to pop to");
    default:
      return refuse(e.offset, "message", "not a whole pickle: " + e.cause());
  }
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

// Items popped together (to a MARK, or a TUPLE2's), bottom first.
bool judge::use_all(std::span<const std::uint32_t> ids) {
  return std::all_of(ids.begin(), ids.end(), [&](std::uint32_t id) { return use(id); });
}

// GLOBAL, INST, STACK_GLOBAL: the name as find_class resolves it, judged
// where it is imported (importing a module can run code of its own).
bool judge::import(std::size_t pos, std::string_view module, std::string_view name,
                   std::uint32_t& id) {
  if (std::max(protocol(), 0) < 3) std::tie(module, name) = fix_imports(module, name);
  const grant g = policy_->judge_global(module, name);
  if (g == grant::denied) return refuse(pos, dotted(module, name), "global not allowed");
  object o;
  o.what = g == grant::get_attribute ? kind::getter : kind::global;
  o.how = g;
  o.pos = static_cast<std::uint32_t>(pos);
  o.first = static_cast<std::uint32_t>(globals_.size());
  globals_.push_back({module, name});
  id = add(o);
  return true;
}

// STACK_GLOBAL's operands must be strs the firewall knows for certain. A
// Python 2 str is one only for some of the consumer's encodings (bytes for
// encoding='bytes'): refused, but named.
bool judge::stack_global(std::size_t pos, std::uint32_t module, std::uint32_t name,
                         std::uint32_t& id) {
  const object& m = objects_[module];
  const object& n = objects_[name];
  const bool texts = m.what == kind::text && n.what == kind::text;
  if (texts && m.sure == certainty::str && n.sure == certainty::str)
    return import(pos, text_of(m), text_of(n), id);
  if (texts && m.sure != certainty::unknown && n.sure != certainty::unknown)
    return refuse(pos, dotted(text_of(m), text_of(n)),
                  "a STACK_GLOBAL operand is a Python 2 str, which the consumer's encoding may "
                  "make bytes");
  return refuse(pos, "a computed global", "a STACK_GLOBAL operand is not a str known for certain");
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
      arg(1).sure == certainty::str && text_of(arg(1)) == "__new__") {
    objects_[callee].applied = true;
    object made;
    made.what = kind::constructor;
    made.first = args[0];
    objects_.push_back(made);
    result = static_cast<std::uint32_t>(objects_.size() - 1);
    return true;
  }
  if (is_getattr && args.size() == 2 && arg(0).what == kind::global &&
      !name_of(arg(0)).module.empty() && arg(1).what == kind::text && arg(1).sure == certainty::str) {
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
      if (args.size() == 2 && arg(1).what == kind::text && arg(1).sure == certainty::str &&
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
bool judge::instantiate(std::size_t pos, std::uint32_t cls, std::uint32_t& result) {
  const object& c = objects_[cls];
  if (c.what != kind::global || c.how != grant::allowed)
    return refuse(pos, c.what == kind::global ? describe_global(c) : "a computed class",
                  "only an allowed class may be instantiated");
  result = an_instance;
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
bool judge::update(std::size_t pos, std::uint32_t target, std::string_view what) {
  const object& o = objects_[target];
  if (o.what == kind::container || o.what == kind::instance) return true;
  return refuse(pos, o.what == kind::global ? describe_global(o) : "an object",
                std::string(what) + " would change an object this message did not make");
}

// functools.partial's __setstate__ takes (func, args, kwargs, dict): only
// the state pickle gives it, func the partial's own C.__new__ and args
// starting with an allowed class, so that calling it makes that class.
// kwargs and dict are data, judged as they were built.
bool judge::build_partial(std::size_t pos, std::uint32_t target, std::uint32_t state) {
  object& p = objects_[target];
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

// Only a global, a str, a C.__new__ or a tuple of them can meet a call's
// (or a BUILD's) condition: any other element is as good as a plain
// value, and a tuple of those is shared.
std::uint32_t judge::tuple_of(std::span<const std::uint32_t> elements) {
  const auto element = [&](std::size_t i) {
    if (i >= elements.size()) return a_value;
    const kind k = objects_[elements[i]].what;
    return k == kind::global || k == kind::text || k == kind::constructor || k == kind::tuple
               ? elements[i]
               : a_value;
  };
  const auto size = static_cast<std::uint32_t>(std::min<std::size_t>(elements.size(), 3));
  if (element(0) == a_value && element(1) == a_value) return a_tuple_of_values + size;
  object t;
  t.what = kind::tuple;
  t.first = element(0);
  t.pos = element(1);
  t.count = size;
  return add(t);
}

bool judge::store(const pickle_op& o, std::uint64_t key, const std::uint32_t& top) {
  if (!policy_->reused_unpickler()) return true;
  // In a reused Unpickler's memo, MEMOIZE stores at that memo's length.
  const std::uint64_t continued_key = o.code() == op::MEMOIZE ? continued_size_ : key;
  const bool added = continued_memo_.insert_or_assign(continued_key, top).second;
  continued_size_ += added && !carried_.contains(continued_key);
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

bool judge::fetch(const pickle_op& o, std::uint64_t key, const std::uint32_t* stored,
                  std::uint32_t& result) {
  if (!stored)
    return refuse(o.pos, "memo entry " + std::to_string(key),
                  "not defined by this message (a name from elsewhere cannot be known)");
  std::uint32_t id = *stored;
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
  result = id;
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
  if (!run(m)) {
    if (!refusal_) refuse_malformed(error());
    return refusal_;
  }
  if (stop_end() != m.size()) {
    refuse(stop_end(), "message", "bytes after its STOP: not exactly one pickle");
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

bool judge::apply(const pickle_op& o, std::span<std::uint32_t> items,
                  std::span<std::uint32_t> slice, std::uint32_t& result) {
  const std::size_t pos = o.pos;
  // The target of an update stays on the stack: it is the result.
  const auto target = [&] { return result = items[0]; };
  switch (o.code()) {
    case op::INT: case op::BININT: case op::BININT1: case op::BININT2: case op::LONG:
    case op::LONG1: case op::LONG4: case op::FLOAT: case op::BINFLOAT: case op::NONE:
    case op::NEWTRUE: case op::NEWFALSE: case op::BINBYTES: case op::SHORT_BINBYTES:
    case op::BINBYTES8: case op::NEXT_BUFFER:
      result = a_value;
      return true;
    case op::BYTEARRAY8: case op::EMPTY_LIST: case op::EMPTY_DICT: case op::EMPTY_SET:
      result = a_container;
      return true;
    case op::EMPTY_TUPLE:
      result = a_tuple_of_values;
      return true;

    // A str is certain when its bytes are the str (pickle_walk.hpp's
    // string_constant): UTF-8, UNICODE without escapes or bytes above 0x7f.
    // A Python 2 str is what the consumer's encoding makes of it.
    case op::STRING: case op::BINSTRING: case op::SHORT_BINSTRING: case op::UNICODE:
    case op::SHORT_BINUNICODE: case op::BINUNICODE: case op::BINUNICODE8: {
      object x;
      x.what = kind::text;
      x.pos = static_cast<std::uint32_t>(pos);
      if (const auto constant = string_constant(o)) {
        x.sure = constant->python2 ? certainty::python2 : certainty::str;
        x.first = static_cast<std::uint32_t>(constant->text.data() -
                                             reinterpret_cast<const char*>(message_.data()));
        x.count = static_cast<std::uint32_t>(constant->text.size());
      }
      result = add(x);
      return true;
    }

    case op::READONLY_BUFFER:
      result = a_value;
      return true;

    case op::APPEND:
      return use(items[1]) && update(pos, target(), "APPEND");
    case op::SETITEM:
      return use(items[2]) && use(items[1]) && update(pos, target(), "SETITEM");
    case op::APPENDS: case op::SETITEMS: case op::ADDITEMS:
      return use_all(slice) && update(pos, target(), o.info->name);
    case op::BUILD:
      if (!use(items[1])) return false;
      if (objects_[target()].what == kind::partial) return build_partial(pos, items[0], items[1]);
      return update(pos, items[0], "BUILD");

    case op::LIST: case op::DICT:
      result = a_container;
      return use_all(slice);
    case op::FROZENSET:
      result = a_value;
      return use_all(slice);
    case op::TUPLE:
      if (!use_all(slice)) return false;
      result = tuple_of(slice);
      return true;
    case op::TUPLE1: case op::TUPLE2: case op::TUPLE3:
      if (!use_all(items)) return false;
      result = tuple_of(items);
      return true;

    case op::POP:  // an item, or (CPython pops it) the mark with nothing above it
      return use_all(items);
    case op::POP_MARK:
      return use_all(slice);

    case op::EXT1: case op::EXT2: case op::EXT4: {
      if (!policy_->allows_ext(o.integer))
        return refuse(pos, "extension code " + std::to_string(o.integer),
                      policy_->ext() == ext_mode::deny ? "extension codes are denied"
                                                       : "not an allowed extension code");
      // The registry's class: callable like an allowed global, never named.
      object g;
      g.what = kind::global;
      g.pos = static_cast<std::uint32_t>(pos);
      g.first = static_cast<std::uint32_t>(globals_.size());
      globals_.push_back({});
      result = add(g);
      return true;
    }
    case op::PERSID: case op::BINPERSID:
      if (!use_all(items)) return false;
      if (!policy_->allows_persid())
        return refuse(pos, "persistent id", "persistent ids are denied");
      result = a_foreign;
      return true;

    case op::GLOBAL:
      return import(pos, o.text, o.second, result);
    case op::INST: {
      // klass(*args) with the items above the mark.
      std::uint32_t klass = 0;
      return import(pos, o.text, o.second, klass) && use_all(slice) &&
             call(pos, klass, slice, result);
    }
    case op::STACK_GLOBAL:
      return use(items[1]) && use(items[0]) && stack_global(pos, items[0], items[1], result);
    case op::REDUCE: {
      if (!use(items[1])) return false;  // the arguments; the callable is call()'s to judge
      const object& t = objects_[items[1]];
      // What call() looks at: the size, 3 standing for 3 or more, and the
      // first two elements.
      const std::array<std::uint32_t, 3> elements{t.first, t.pos, a_value};
      std::span<const std::uint32_t> args;
      if (t.what == kind::tuple) args = std::span(elements).first(t.count);
      // func(*args): the conditions need the arguments, which only a tuple
      // made here shows.
      if (conditional(objects_[items[0]]) && t.what != kind::tuple)
        return refuse(pos, "a call", "arguments that are not a tuple made in this message");
      return call(pos, items[0], args, result);
    }
    case op::OBJ:
      return use_all(slice) && call(pos, slice[0], slice.subspan(1), result);
    case op::NEWOBJ: case op::NEWOBJ_EX:
      // kwargs (NEWOBJ_EX), args, then the class
      for (std::size_t i = items.size(); i-- > 0;)
        if (!use(items[i])) return false;
      return instantiate(pos, items[0], result);

    case op::STOP:
      return use(items[0]);
    default:
      break;
  }
  return refuse(pos, "message", "an opcode the firewall does not know");
}

}  // namespace pickleway::firewall
