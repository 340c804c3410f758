// The firewall's judge: decides whether one message may pass, without
// running it.
//
// It runs the message on the SDK's model of CPython's Unpickler
// (pickle_machine.hpp: the stack, the marks and the memo, with CPython's
// exact memo semantics), so a name built through STACK_GLOBAL from strings,
// directly or through the memo, is seen as CPython will see it. It tracks
// what each stack item is only as far as judging needs: a str known for
// certain, a tuple's elements, an allowed global, an object made in this
// message. Every global is judged where it is imported; every call, BUILD
// and container update is judged on what it applies to.
//
// The memo may outlive a message: a consumer that unpickles each message
// with a fresh Unpickler (pickle.load) starts each with an empty memo, one
// that reuses an Unpickler keeps what earlier messages stored, so MEMOIZE
// stores at another index and a GET may fetch an earlier message's object.
// The judge follows the first world; with the policy's reused_unpickler,
// both, one judge per direction: a GET whose two worlds disagree then
// yields only what is harmless in both (see memo_get).
//
// When in doubt it refuses: a stack underflow, a GET of an entry this
// message did not define, a STACK_GLOBAL operand that is not a str known
// for certain, a call of anything but an allowed global, a message that is
// not exactly one pickle. Pure: no I/O; one judge per filter instance, its
// buffers reused from message to message.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <pickleway/pickle_machine.hpp>

#include "policy.hpp"

namespace pickleway::firewall {

struct refusal {
  std::size_t offset = 0;  // of the opcode that imports or does it, from the message start
  std::string subject;     // "os.system", "extension code 7", "persistent id", ...
  std::string cause;       // why, in a few words
};

// "refused SUBJECT at offset N: CAUSE", N being `base` + the refusal's offset.
std::string describe(const refusal& r, std::uint64_t base);

class judge final : public pickle_machine<judge, std::uint32_t> {
  friend class pickle_machine<judge, std::uint32_t>;

 public:
  // `p` outlives the judge.
  explicit judge(const policy& p) : policy_(&p) {}

  // nullopt when the message may pass. With a reused Unpickler, every
  // message passed on must be checked, in order, by the same judge. Throws
  // only std::bad_alloc.
  std::optional<refusal> check(bytes_view message);

  // What earlier messages may leave in a reused Unpickler's memo, at most.
  static constexpr std::size_t largest_carried_memo = std::size_t{1} << 20;
  // The longest name getattr(global, 'name') may add to a global's.
  static constexpr std::size_t largest_attribute_name = 1024;

 private:
  enum class kind : std::uint8_t {
    value,      // a number, None, bytes, a buffer: nothing to judge
    text,       // a str, or a Python 2 str; `sure` says how certain its value is
    container,  // a list, dict, set or bytearray made here: may be filled or given state
    tuple,      // its size (3 for any more) and first two elements, all a call's conditions need
    global,     // an allowed global (or the class of an allowed extension code)
    getter,     // builtins.getattr, imported but not yet applied
    instance,   // made here by calling an allowed global
    foreign,    // the application's object for a persistent id
    constructor,  // C.__new__ of an allowed class C (`first`: C), from getattr
    partial,      // functools.partial(C.__new__) (`first`: it); `applied` once
                  // BUILD gave it (C.__new__, (C, ...), kwargs, dict)
  };
  // What a text's value is to the consumer's Unpickler.
  enum class certainty : std::uint8_t {
    unknown,  // computed, escaped: the firewall cannot know it
    str,      // exactly these bytes' str
    python2,  // a Python 2 str: these bytes' str, or bytes, as the consumer's encoding says
  };
  // 16 bytes: a message of N opcodes costs the judge at most N of them,
  // and plain values, containers, instances and tuples of them none (they
  // share one each).
  struct object {
    kind what = kind::value;
    grant how = grant::allowed;  // global
    certainty sure = certainty::unknown;  // text
    bool applied = false;        // getter: applied to a global and a name at least once
    std::uint32_t pos = 0;       // global, getter: its opcode; tuple: its second element
    std::uint32_t first = 0;     // tuple: its first element; text: offset; global: in globals_
    std::uint32_t count = 0;     // tuple: its size, 3 for 3 or more; text: bytes
  };
  static_assert(sizeof(object) == 16);
  struct global_name {
    std::string_view module;  // "" for an extension code's class
    std::string_view name;
  };
  // The shared objects, at these ids.
  static constexpr std::uint32_t a_value = 0, a_container = 1, an_instance = 2, a_foreign = 3,
                                 a_tuple_of_values = 4;  // 4 + size: sizes 0, 1, 2, 3+

  // The machine's hooks: each opcode as _Unpickler.load_<name> does it.
  bool apply(const pickle_op& o, std::span<std::uint32_t> items, std::span<std::uint32_t> slice,
             std::uint32_t& result);
  bool store(const pickle_op& o, std::uint64_t key, const std::uint32_t& top);
  bool fetch(const pickle_op& o, std::uint64_t key, const std::uint32_t* stored,
             std::uint32_t& result);

  void reset();
  std::uint32_t add(const object& o);
  bool refuse(std::size_t pos, std::string subject, std::string cause);
  bool refuse_malformed(const framing_error& e);
  bool use(std::uint32_t id);
  bool use_all(std::span<const std::uint32_t> ids);
  bool import(std::size_t pos, std::string_view module, std::string_view name, std::uint32_t& id);
  bool stack_global(std::size_t pos, std::uint32_t module, std::uint32_t name, std::uint32_t& id);
  bool call(std::size_t pos, std::uint32_t callee, std::span<const std::uint32_t> args,
            std::uint32_t& result);
  bool instantiate(std::size_t pos, std::uint32_t cls, std::uint32_t& result);
  bool update(std::size_t pos, std::uint32_t target, std::string_view what);
  bool build_partial(std::size_t pos, std::uint32_t target, std::uint32_t state);
  std::uint32_t tuple_of(std::span<const std::uint32_t> elements);
  bool conditional(const object& o) const;
  void carry_memo();
  std::string_view text_of(const object& o) const;
  const global_name& name_of(const object& o) const { return globals_[o.first]; }
  std::string describe_global(const object& o) const;

  const policy* policy_;
  bytes_view message_;
  std::vector<object> objects_;
  std::vector<global_name> globals_;
  // The world of a reused Unpickler: the keys the messages passed before
  // this one left in its memo, whether any of them holds a global allowed
  // only on conditions (or getattr), and what this message stores there.
  std::unordered_set<std::uint64_t> carried_;
  bool carried_conditional_ = false;
  std::unordered_map<std::uint64_t, std::uint32_t> continued_memo_;
  std::uint64_t continued_size_ = 0;     // len(memo) in that world
  std::deque<std::string> names_;        // dotted names made by getattr(global, 'name')
  std::optional<refusal> refusal_;
};

}  // namespace pickleway::firewall
