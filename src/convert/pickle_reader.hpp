// A small pickle virtual machine for untrusted input. It understands the
// opcodes torch.save emits (protocol 2, tolerating up to 5) and executes
// nothing: every global, call and persistent id goes to PickleHooks, which
// decide what they stand for or refuse them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rwkv::convert {

struct PickleNone {};
struct PickleBytes {
  std::string bytes;
};
struct PickleGlobal {
  std::string module;
  std::string name;
};
// A tuple, list or dict. Containers live in a PickleArena so that shared and
// even cyclic references (which the memo allows) are cheap to hold and to free.
struct PickleRef {
  uint32_t id = 0;
};
// An object the hooks made (say, a storage or a tensor); both fields are theirs to interpret.
struct PickleExternal {
  uint32_t kind = 0;
  size_t index = 0;
};

using PickleValue =
    std::variant<PickleNone, bool, int64_t, double, std::string, PickleBytes, PickleGlobal, PickleRef, PickleExternal>;

enum class PickleContainerKind { Tuple, List, Dict };

struct PickleContainer {
  PickleContainerKind kind = PickleContainerKind::Tuple;
  // For a dict, keys and values alternate in insertion order. A repeated key is
  // listed again (searching on every insert would make hostile input quadratic);
  // as in Python, its last value wins.
  std::vector<PickleValue> items;
};

class PickleArena {
 public:
  PickleRef make(PickleContainerKind kind, std::vector<PickleValue> items = {});
  PickleContainer& at(PickleRef ref) { return containers_.at(ref.id); }
  const PickleContainer& at(PickleRef ref) const { return containers_.at(ref.id); }
  // The container `value` refers to if it is one of `kind`, else nullptr.
  const PickleContainer* as(const PickleValue& value, PickleContainerKind kind) const;

 private:
  std::deque<PickleContainer> containers_;  // a deque keeps references stable while hooks add containers
};

class PickleHooks {
 public:
  virtual ~PickleHooks() = default;
  // GLOBAL and STACK_GLOBAL: the value standing for module.name. Throw rwkv::Error to refuse it.
  virtual PickleValue find_class(const std::string& module, const std::string& name) = 0;
  // REDUCE and NEWOBJ: the result of callable(*args).
  virtual PickleValue call(const PickleGlobal& callable, const PickleContainer& args, PickleArena& arena) = 0;
  // BINPERSID: the object a persistent id refers to.
  virtual PickleValue persistent_load(const PickleValue& id, const PickleArena& arena) = 0;
};

struct Unpickled {
  PickleArena arena;
  PickleValue root;
};

// `label` names the pickle in errors (e.g. "model.pth: archive/data.pkl");
// errors also give the byte offset of the failing opcode.
Unpickled unpickle(std::span<const std::byte> pickle, std::string_view label, PickleHooks& hooks);

// A short description of a value's type for error messages: "int", "tuple", "global torch.FloatStorage", ...
std::string pickle_type_name(const PickleValue& value, const PickleArena& arena);

}  // namespace rwkv::convert
