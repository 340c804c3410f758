// What the log filter says of a message's contents: its protocol, the
// globals it imports and the type of the object it builds, found by running
// it on the SDK's model of the unpickler (pickle_machine.hpp).
//
// Light, as it runs once per message: the walk skips payloads, plain
// values share one entry per kind, and the buffers are reused from message
// to message. Memory is linear in the message: at most 16 bytes per opcode
// for what was pushed, besides the machine's own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pickleway/pickle_machine.hpp>

namespace pickleway::log {

struct message_facts {
  std::optional<int> protocol;       // none when the bytes are no pickle
  std::string type;                  // "" when the bytes are no pickle
  std::vector<std::string> globals;  // "module.name"; "?" for an unresolved STACK_GLOBAL
  std::string error;                 // "" when the bytes are one whole pickle CPython can run
};

// The type of the top-level object of a whole pickle: the object on the
// stack when STOP is read. For every value pushed it keeps what it is (a
// scalar's type, a container and its item count, a global, an instance
// and the name of what built it), following the memo, so a top-level
// object reached through GET (a recursive object) is named too:
//
//   None bool int float str bytes bytearray    scalars (STRING opcodes: str)
//   list(3) tuple(2) dict(1) set(0) frozenset(4) containers and their items
//   mymod.MyClass                              an instance: what REDUCE, NEWOBJ,
//                                              NEWOBJ_EX called, what INST or OBJ named
//   <global mymod.f>  <global ?>               a global itself (? when unresolved)
//   <extension 42>                             a copyreg extension code itself
//   <instance of extension 42>  <instance>     built from one, or from something unnamed
//   <persistent id>  <buffer>  <unknown>       persistent id, out-of-band buffer,
//                                              a memo entry of an earlier message
//
// An instance is named after the callable's dotted name, with these rules
// so that what Python's own Pickler writes reads as its type:
// - `builtins.` (and Python 2's `__builtin__.`) is dropped: `complex`,
//   `range`, `bytearray`;
// - copyreg._reconstructor (instances at protocols 0 and 1) is named after
//   its class argument;
// - _codecs.encode (bytes at protocols 0-2) is `bytes`;
// - set and frozenset called with a list (protocols 0-3) count its items.
// Python 2's copy_reg and __builtin__ are read as copyreg and builtins.
class inspector final : public pickle_machine<inspector, std::uint32_t> {
  friend class pickle_machine<inspector, std::uint32_t>;

 public:
  // Sets every field of `facts`, reusing its buffers. Throws nothing: a
  // message it cannot get the memory to inspect says so in `error`.
  void inspect(bytes_view message, message_facts& facts) noexcept;

 private:
  enum class kind : std::uint8_t {
    unknown, none, boolean, integer, floating, str, bytes, bytearray, buffer, persistent_id,
    list, tuple, dict, set, frozenset, global, instance,
  };
  static constexpr std::uint32_t no_object = 0xFFFF'FFFF;
  // 16 bytes. Plain values share one object per kind (their ids are the
  // kind's number); only containers, known strs, globals and instances
  // get one of their own.
  struct object {
    kind what = kind::unknown;
    bool counted = false;             // containers: `count` is known; str: `text` is known
    std::uint32_t count = 0;          // containers: items; str: its bytes
    std::uint32_t first = no_object;  // tuples: the first item; str: its offset
    std::uint32_t name = no_object;   // global, instance: an index in names_
  };
  static_assert(sizeof(object) == 16);
  struct global_name {
    std::string_view module, name;  // as written; empty for an extension code's
    std::int64_t extension = -1;    // the copyreg extension code, if from one
  };

  bool apply(const pickle_op& o, std::span<std::uint32_t> items, std::span<std::uint32_t> slice,
             std::uint32_t& result);
  bool fetch(const pickle_op& o, std::uint64_t key, const std::uint32_t* stored,
             std::uint32_t& result);

  void reset();
  std::uint32_t add(object o);
  std::uint32_t container(kind k, std::size_t count, std::uint32_t first = no_object);
  std::uint32_t global(std::string_view module, std::string_view name, std::int64_t extension = -1);
  std::uint32_t str(const pickle_op& o);
  std::uint32_t instance_of(std::uint32_t cls);
  std::uint32_t call(std::uint32_t callable, std::uint32_t args);
  std::optional<std::string_view> text_of(std::uint32_t id) const;
  std::string describe(std::uint32_t id) const;

  bytes_view message_;
  std::vector<object> objects_;
  std::vector<global_name> names_;
  std::vector<std::string>* globals_ = nullptr;  // the facts' list, filled as met
  std::uint32_t result_ = no_object;
};

}  // namespace pickleway::log
