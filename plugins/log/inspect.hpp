// What the log filter says of a message's contents: its protocol, the
// globals it imports (both from the framer), and the type of the object it
// builds (from a light walk of its opcodes).
//
// Light, as it runs once per message: the framer skips payloads, the walk
// reads only opcodes and keeps one small entry per value pushed, and both
// reuse their buffers from message to message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <pickleway/framer.hpp>

namespace pickleway::log {

struct message_facts {
  std::optional<int> protocol;       // none when the framer refused the message
  std::string type;                  // "" when unknown (the framer refused the message)
  std::vector<std::string> globals;  // "module.name"; "?" for an unresolved STACK_GLOBAL
  std::string error;                 // "" when the bytes are one whole pickle
};

// The type of the top-level object of a whole pickle: the object on the
// stack when STOP is read. The walk keeps, for every value pushed, what it
// is (a scalar's type, a container and its item count, a global, an instance
// and the name of what built it) and follows the memo, so a top-level object
// reached through GET (a recursive object) is named too. The strings:
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
class type_walker {
 public:
  // `message` is one whole pickle and `info` what the framer reported of it.
  std::string walk(bytes_view message, const message_info& info);

 private:
  enum class kind : std::uint8_t {
    unknown, none, boolean, integer, floating, str, bytes, bytearray, buffer,
    list, tuple, dict, set, frozenset, global, instance, persistent_id,
  };
  static constexpr std::uint32_t no_object = 0xFFFF'FFFF;
  struct object {
    kind what = kind::unknown;
    bool counted = false;           // containers: `count` is known
    bool resolved = false;          // global, instance: `module` and `name` are known
    std::uint32_t count = 0;        // containers: items
    std::uint32_t first = no_object;  // tuples: the first item
    std::int64_t extension = -1;    // global, instance: the extension code, if from one
    std::string_view module{}, name{};  // global, instance: dotted name, as written
  };

  std::uint32_t push(object o);
  std::uint32_t push(kind k) { return push(object{k}); }
  std::uint32_t push_container(kind k, std::size_t count, std::uint32_t first = no_object);
  // Pops the items above the topmost mark, and the mark; their count, or
  // nullopt when there is no mark.
  std::optional<std::size_t> pop_to_mark(std::uint32_t* first = nullptr);
  std::optional<std::uint32_t> pop();
  // What calling `callable` with `args` builds (REDUCE, NEWOBJ, NEWOBJ_EX).
  object call(std::uint32_t callable, std::uint32_t args) const;
  object instance_of(std::uint32_t cls) const;
  void memo_store(std::uint64_t key);
  std::uint32_t memo_fetch(std::uint64_t key) const;
  std::string describe(std::uint32_t id) const;

  std::vector<object> objects_;
  std::vector<std::uint32_t> stack_;  // ids into objects_; marks are `mark`
  static constexpr std::uint32_t mark = 0xFFFF'FFFE;
  std::vector<std::uint32_t> memo_;   // dense keys
  std::unordered_map<std::uint64_t, std::uint32_t> sparse_memo_;
  std::size_t memo_count_ = 0;  // distinct keys stored (MEMOIZE's key)
  std::size_t dense_limit_ = 0;
};

// Frames a message on its own and walks it. Runs on the writer thread
// (and on the event loop for a message too large to copy).
class inspector {
 public:
  // Sets every field of `facts`, reusing its buffers.
  void inspect(bytes_view message, message_facts& facts);

 private:
  std::optional<framer> framer_;
  type_walker walker_;
};

}  // namespace pickleway::log
