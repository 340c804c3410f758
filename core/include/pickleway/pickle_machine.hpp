// One model of the unpickler's stack and memo: the machine `dis`, the log
// filter and the firewall run messages on, and that a plugin extends for
// the opcodes it cares about.
//
// It follows CPython's Unpickler (Modules/_pickle.c and Lib/pickle.py agree
// on this), driven by the opcode table's stack effects:
// - a mark fences the stack: an opcode pops only items above the topmost
//   mark, and one that pops to a mark takes the items above it, then the
//   mark (APPENDS, SETITEMS and ADDITEMS then pop their target below it);
// - POP with nothing above the topmost mark pops the mark itself;
// - OBJ needs its class above its mark;
// - PUT, BINPUT and LONG_BINPUT store the top item at their key, MEMOIZE at
//   len(memo); a key may be stored again; GET fetches;
// - STOP pops the result; what is left below it does not matter.
//
// An extension derives from pickle_machine<Derived, Value> (CRTP) and keeps
// a Value per stack item. It hides only the hooks it needs; every opcode it
// leaves alone gets the table's effect, with a Value{} pushed:
//
//   bool before(const pickle_op&)      each opcode, before its effect
//   bool apply(const pickle_op&, std::span<Value> items,
//              std::span<Value> slice, Value& result)
//        every opcode but MARK, DUP, PROTO, FRAME, GET and the memo stores:
//        `items` are the plain items it pops (bottom first), `slice` those
//        above the mark it pops; `result` is what it pushes, if it pushes
//   bool store(const pickle_op&, std::uint64_t key, const Value& top)
//        PUT, BINPUT, LONG_BINPUT, MEMOIZE, before the machine stores `top`
//   bool fetch(const pickle_op&, std::uint64_t key, const Value* stored,
//              Value& result)
//        GET, BINGET, LONG_BINGET; `stored` is null for a key this message
//        never stored, which fails by default (errc::undefined_memo)
//
// A hook that returns false stops the run; it may say why with fail().
//
// Bounded by construction: iterative, and the stack, the marks and the memo
// hold at most an entry per opcode read (a memo key far from those used
// goes to a hash map, so no key makes a large array). Allocation failure
// throws std::bad_alloc, which the caller turns into the message's error.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "pickleway/pickle_walk.hpp"

namespace pickleway {

// The Value of a machine that follows only the stack's shape.
struct no_value {};

template <class Derived, class Value = no_value>
class pickle_machine {
 public:
  // Runs `message` from its first opcode through its STOP. False when it is
  // malformed (error() says where and why, offsets from its start) or a
  // hook returned false (error() is then errc::ok unless the hook failed
  // with a cause). The views of every pickle_op point into `message`.
  bool run(bytes_view message) {
    reset();
    message_ = message;
    pickle_walk walk(message);
    for (pickle_op o; walk.next(o);) {
      highest_ = std::max<int>(highest_, o.info->proto);
      if (!self().before(o) || !step(o)) return false;
    }
    if (walk.failed()) {
      error_ = walk.error();
      return false;
    }
    stop_end_ = walk.stop_end();
    return true;
  }

  const framing_error& error() const { return error_; }
  // One past STOP, after a run that got there.
  std::size_t stop_end() const { return stop_end_; }
  // PROTO's argument, or -1 when the message has none.
  int protocol() const { return protocol_; }
  // The highest protocol among the opcodes run.
  int highest_protocol() const { return highest_; }

 protected:
  pickle_machine() = default;
  ~pickle_machine() = default;

  // The stack's items, bottom first (marks are not items).
  std::span<const Value> stack() const { return stack_; }
  std::span<Value> stack() { return stack_; }
  // Items below this index are fenced off by the topmost mark.
  std::size_t fence() const { return marks_.empty() ? 0 : marks_.back().depth; }
  std::size_t mark_count() const { return marks_.size(); }
  // The offset of the MARK opcode that pushed the topmost mark.
  std::size_t top_mark_pos() const { return marks_.back().pos; }
  // Whether `o` pops the topmost mark: it pops to a mark, or it is a POP
  // with nothing above the mark.
  bool pops_mark(const pickle_op& o) const {
    return o.info->pops_to_mark ||
           (o.code() == op::POP && !marks_.empty() && stack_.size() == fence());
  }
  const Value* memo_find(std::uint64_t key) const {
    if (key < dense_.size()) return dense_[key].defined ? &dense_[key].value : nullptr;
    const auto it = sparse_.find(key);
    return it == sparse_.end() ? nullptr : &it->second;
  }
  // len(memo): the key MEMOIZE stores at.
  std::uint64_t memo_size() const { return memo_count_; }

  bool fail(errc code, std::size_t at, std::string detail) {
    const bytes_view m = message_;
    error_ = {code, at, at < m.size() ? m[at] : -1, std::move(detail)};
    return false;
  }

  // The default hooks.
  bool before(const pickle_op&) { return true; }
  bool apply(const pickle_op&, std::span<Value>, std::span<Value>, Value&) { return true; }
  bool store(const pickle_op&, std::uint64_t, const Value&) { return true; }
  bool fetch(const pickle_op& o, std::uint64_t key, const Value* stored, Value& result) {
    if (!stored) return fail(errc::undefined_memo, o.pos, "memo key " + std::to_string(key));
    result = *stored;
    return true;
  }

 private:
  struct mark {
    std::size_t depth;  // stack size when it was pushed
    std::size_t pos;    // of its MARK opcode
  };

  Derived& self() { return static_cast<Derived&>(*this); }

  void reset() {
    stack_.clear();
    marks_.clear();
    dense_.clear();
    if (!sparse_.empty()) sparse_.clear();
    memo_count_ = 0;
    protocol_ = -1;
    highest_ = 0;
    stop_end_ = 0;
    error_ = {};
  }

  // `wanted` items popped where only `above` are above the fence.
  bool underflow(const pickle_op& o, std::size_t wanted, std::size_t above) {
    return fail(errc::stack_underflow, o.pos,
                "tries to pop " + std::to_string(wanted) + " items from stack with only " +
                    std::to_string(above) + " items");
  }

  void memo_put(std::uint64_t key, const Value& value) {
    if (key == dense_.size()) {  // the common case: the next key
      dense_.push_back({value, true});
      ++memo_count_;
      return;
    }
    // Keys come in order from MEMOIZE and from Python's PUTs: those stay
    // in the dense part, grown at most twice as far as the keys stored.
    if (key > dense_.size() && key < std::max<std::uint64_t>(256, 2 * memo_count_ + 64))
      dense_.resize(static_cast<std::size_t>(key) + 1);
    if (key < dense_.size()) {
      slot& s = dense_[static_cast<std::size_t>(key)];
      memo_count_ += !s.defined;
      s = {value, true};
    } else {
      memo_count_ += sparse_.insert_or_assign(key, value).second;
    }
  }

  bool step(const pickle_op& o) {
    const opcode_info& info = *o.info;
    switch (o.code()) {
      case op::MARK:
        marks_.push_back({stack_.size(), o.pos});
        return true;
      case op::PROTO:
        protocol_ = static_cast<int>(o.integer);
        return true;
      case op::FRAME:
        return true;
      case op::DUP: {
        if (stack_.size() == fence()) return underflow(o, 1, 0);
        const Value top = stack_.back();
        stack_.push_back(top);
        return true;
      }
      case op::PUT: case op::BINPUT: case op::LONG_BINPUT: case op::MEMOIZE: {
        if (stack_.size() == fence()) return underflow(o, 1, 0);
        const std::uint64_t key =
            o.code() == op::MEMOIZE ? memo_count_ : static_cast<std::uint64_t>(o.integer);
        if (!self().store(o, key, stack_.back())) return false;
        memo_put(key, stack_.back());
        return true;
      }
      case op::GET: case op::BINGET: case op::LONG_BINGET: {
        const auto key = static_cast<std::uint64_t>(o.integer);
        Value fetched{};
        if (!self().fetch(o, key, memo_find(key), fetched)) return false;
        stack_.push_back(fetched);
        return true;
      }
      default:
        break;
    }
    // The table's effect: the slice above the mark and the mark, then the
    // plain items.
    std::size_t slice_begin = stack_.size();
    const bool takes_mark = pops_mark(o);
    if (takes_mark) {
      if (marks_.empty()) return fail(errc::missing_mark, o.pos, "no MARK exists on stack");
      slice_begin = marks_.back().depth;
      marks_.pop_back();
    }
    const std::size_t plain = o.code() == op::POP && takes_mark ? 0 : info.pops;
    if (slice_begin - fence() < plain) return underflow(o, plain, slice_begin - fence());
    // OBJ's class is the first item above its mark (the table counts it in the slice).
    if (o.code() == op::OBJ && slice_begin == stack_.size()) return underflow(o, 1, 0);
    const std::size_t items_begin = slice_begin - plain;
    const std::span<Value> all(stack_);
    Value result{};
    if (!self().apply(o, all.subspan(items_begin, plain), all.subspan(slice_begin), result))
      return false;
    stack_.resize(items_begin);
    if (info.pushes) stack_.push_back(result);
    return true;
  }

  bytes_view message_;
  std::vector<Value> stack_;
  std::vector<mark> marks_;
  struct slot {
    Value value{};
    bool defined = false;
  };
  std::vector<slot> dense_;  // memo keys 0 .. dense_.size() - 1
  std::unordered_map<std::uint64_t, Value> sparse_;
  std::uint64_t memo_count_ = 0;
  int protocol_ = -1;
  int highest_ = 0;
  std::size_t stop_end_ = 0;
  framing_error error_;
};

}  // namespace pickleway
