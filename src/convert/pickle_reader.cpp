#include "convert/pickle_reader.hpp"

#include <bit>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "convert/byte_reader.hpp"
#include "io/printable.hpp"
#include "rwkv/error.hpp"

namespace rwkv::convert {

PickleRef PickleArena::make(PickleContainerKind kind, std::vector<PickleValue> items) {
  if (containers_.size() >= UINT32_MAX) throw Error("too many containers");
  containers_.push_back(PickleContainer{kind, std::move(items)});
  return PickleRef{static_cast<uint32_t>(containers_.size() - 1)};
}

const PickleContainer* PickleArena::as(const PickleValue& value, PickleContainerKind kind) const {
  const auto* ref = std::get_if<PickleRef>(&value);
  if (ref == nullptr) return nullptr;
  const PickleContainer& container = at(*ref);
  return container.kind == kind ? &container : nullptr;
}

std::string pickle_type_name(const PickleValue& value, const PickleArena& arena) {
  struct Namer {
    const PickleArena& arena;
    std::string operator()(const PickleNone&) const { return "None"; }
    std::string operator()(bool) const { return "bool"; }
    std::string operator()(int64_t) const { return "int"; }
    std::string operator()(double) const { return "float"; }
    std::string operator()(const std::string&) const { return "str"; }
    std::string operator()(const PickleBytes&) const { return "bytes"; }
    std::string operator()(const PickleGlobal& g) const { return fmt::format("global {}.{}", io::printable(g.module), io::printable(g.name)); }
    std::string operator()(const PickleExternal&) const { return "object"; }
    std::string operator()(const PickleRef& ref) const {
      switch (arena.at(ref).kind) {
        case PickleContainerKind::Tuple: return "tuple";
        case PickleContainerKind::List: return "list";
        case PickleContainerKind::Dict: return "dict";
      }
      return "container";
    }
  };
  return std::visit(Namer{arena}, value);
}

namespace {

// Far above what a state dict needs, low enough that hostile input cannot
// exhaust memory through the stacks before running out of bytes.
constexpr size_t kMaxStackSize = size_t{1} << 20;
constexpr size_t kMaxMarkDepth = size_t{1} << 16;
constexpr int kHighestProtocol = 5;

enum Opcode : uint8_t {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinFloat = 'G',
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

class Machine {
 public:
  Machine(std::span<const std::byte> pickle, PickleHooks& hooks) : pickle_(pickle), hooks_(hooks) {}

  size_t opcode_offset() const { return opcode_offset_; }

  Unpickled run() {
    while (true) {
      opcode_offset_ = pos_;
      const auto opcode = read_u8("an opcode (the pickle ends without STOP)");
      if (opcode == kStop) {
        result_.root = pop();
        if (!stack_.empty() || !marks_.empty()) throw Error("STOP leaves values on the stack");
        return std::move(result_);
      }
      step(opcode);
      if (stack_.size() > kMaxStackSize) throw Error(fmt::format("stack holds more than {} values", kMaxStackSize));
    }
  }

 private:
  void step(uint8_t opcode) {
    switch (opcode) {
      case kProto: {
        const int protocol = read_u8("the protocol number");
        if (protocol > kHighestProtocol) throw Error(fmt::format("unsupported pickle protocol {}", protocol));
        return;
      }
      case kFrame: take(8, "the frame length"); return;  // frames only help buffered readers
      case kMark:
        if (marks_.size() >= kMaxMarkDepth) throw Error(fmt::format("more than {} nested marks", kMaxMarkDepth));
        marks_.push_back(stack_.size());
        return;
      case kPop: pop(); return;
      case kPopMark: stack_.resize(pop_mark()); return;
      case kDup: push(top()); return;
      case kNone: push(PickleNone{}); return;
      case kNewTrue: push(true); return;
      case kNewFalse: push(false); return;
      case kBinInt: push(static_cast<int64_t>(static_cast<int32_t>(load_le<uint32_t>(take(4, "BININT"), 0)))); return;
      case kBinInt1: push(static_cast<int64_t>(read_u8("BININT1"))); return;
      case kBinInt2: push(static_cast<int64_t>(load_le<uint16_t>(take(2, "BININT2"), 0))); return;
      case kLong1: push(read_long(read_u8("the LONG1 length"))); return;
      case kLong4: {
        const auto length = static_cast<int32_t>(load_le<uint32_t>(take(4, "the LONG4 length"), 0));
        if (length < 0) throw Error("negative LONG4 length");
        push(read_long(static_cast<uint64_t>(length)));
        return;
      }
      case kBinFloat: {
        // Pickle floats are big-endian.
        const auto raw = take(8, "BINFLOAT");
        uint64_t bits = 0;
        for (std::byte b : raw) bits = (bits << 8) | static_cast<uint64_t>(b);
        push(std::bit_cast<double>(bits));
        return;
      }
      case kShortBinUnicode: push(std::string(read_text(read_u8("the string length")))); return;
      case kBinUnicode: push(std::string(read_text(load_le<uint32_t>(take(4, "the string length"), 0)))); return;
      case kBinUnicode8: push(std::string(read_text(load_le<uint64_t>(take(8, "the string length"), 0)))); return;
      // Python 2 byte strings: torch checkpoints written by Python 2 used them for names.
      case kShortBinString: push(std::string(read_text(read_u8("the string length")))); return;
      case kBinString: push(std::string(read_text(load_le<uint32_t>(take(4, "the string length"), 0)))); return;
      case kShortBinBytes: push(PickleBytes{std::string(read_text(read_u8("the bytes length")))}); return;
      case kBinBytes: push(PickleBytes{std::string(read_text(load_le<uint32_t>(take(4, "the bytes length"), 0)))}); return;
      case kBinBytes8: push(PickleBytes{std::string(read_text(load_le<uint64_t>(take(8, "the bytes length"), 0)))}); return;
      case kEmptyTuple: push(result_.arena.make(PickleContainerKind::Tuple)); return;
      case kTuple: push(result_.arena.make(PickleContainerKind::Tuple, pop_to_mark())); return;
      case kTuple1: push_tuple_of_top(1); return;
      case kTuple2: push_tuple_of_top(2); return;
      case kTuple3: push_tuple_of_top(3); return;
      case kEmptyList: push(result_.arena.make(PickleContainerKind::List)); return;
      case kList: push(result_.arena.make(PickleContainerKind::List, pop_to_mark())); return;
      case kEmptyDict: push(result_.arena.make(PickleContainerKind::Dict)); return;
      case kDict: {
        auto items = pop_to_mark();
        const PickleRef dict = result_.arena.make(PickleContainerKind::Dict);
        set_items(dict, std::move(items));
        push(dict);
        return;
      }
      case kAppend: {
        PickleValue item = pop();
        container_on_top(PickleContainerKind::List, "APPEND").items.push_back(std::move(item));
        return;
      }
      case kAppends: {
        auto items = pop_to_mark();
        auto& list = container_on_top(PickleContainerKind::List, "APPENDS").items;
        list.insert(list.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
        return;
      }
      case kSetItem: {
        std::vector<PickleValue> pair(2);
        pair[1] = pop();
        pair[0] = pop();
        set_items(dict_on_top("SETITEM"), std::move(pair));
        return;
      }
      case kSetItems: {
        auto items = pop_to_mark();
        set_items(dict_on_top("SETITEMS"), std::move(items));
        return;
      }
      case kGlobal: {
        std::string module(read_line("GLOBAL module"));
        std::string name(read_line("GLOBAL name"));
        push(hooks_.find_class(module, name));
        return;
      }
      case kStackGlobal: {
        PickleValue name = pop();
        PickleValue module = pop();
        const auto* name_text = std::get_if<std::string>(&name);
        const auto* module_text = std::get_if<std::string>(&module);
        if (name_text == nullptr || module_text == nullptr) throw Error("STACK_GLOBAL needs two strings");
        push(hooks_.find_class(*module_text, *name_text));
        return;
      }
      case kReduce: {
        PickleValue args = pop();
        PickleValue callable = pop();
        push(call(callable, args, "REDUCE"));
        return;
      }
      case kNewObj: {
        PickleValue args = pop();
        PickleValue cls = pop();
        push(call(cls, args, "NEWOBJ"));
        return;
      }
      // Objects the hooks allow carry no state that a state dict needs
      // (torch only BUILDs Python attributes of tensor subclasses).
      case kBuild:
        pop();
        top();
        return;
      case kBinPersId: {
        PickleValue id = pop();
        push(hooks_.persistent_load(id, result_.arena));
        return;
      }
      case kBinPut: memo_[read_u8("the memo index")] = top(); return;
      case kLongBinPut: memo_[load_le<uint32_t>(take(4, "the memo index"), 0)] = top(); return;
      case kMemoize: memo_[static_cast<uint32_t>(memo_.size())] = top(); return;
      case kBinGet: push(memo_get(read_u8("the memo index"))); return;
      case kLongBinGet: push(memo_get(load_le<uint32_t>(take(4, "the memo index"), 0))); return;
      default: throw Error(fmt::format("unsupported or unknown pickle opcode 0x{:02x}", opcode));
    }
  }

  std::span<const std::byte> take(uint64_t length, std::string_view what) {
    if (!fits(pickle_, pos_, length)) {
      throw Error(fmt::format("truncated pickle: {} needs {} bytes but only {} remain", what, length, pickle_.size() - pos_));
    }
    auto bytes = pickle_.subspan(pos_, length);
    pos_ += length;
    return bytes;
  }
  uint8_t read_u8(std::string_view what) { return static_cast<uint8_t>(take(1, what)[0]); }
  std::string_view read_text(uint64_t length) { return as_chars(take(length, "a string")); }

  std::string_view read_line(std::string_view what) {
    const std::string_view rest = as_chars(pickle_.subspan(pos_));
    const size_t end = rest.find('\n');
    if (end == std::string_view::npos) throw Error(fmt::format("truncated pickle: {} has no end of line", what));
    pos_ += end + 1;
    return rest.substr(0, end);
  }

  // Two's complement little-endian, as LONG1/LONG4 store it.
  int64_t read_long(uint64_t length) {
    const auto bytes = take(length, "a long integer");
    if (length == 0) return 0;
    const bool negative = (static_cast<uint8_t>(bytes[length - 1]) & 0x80) != 0;
    const std::byte extension = negative ? std::byte{0xff} : std::byte{0};
    for (uint64_t i = 8; i < length; ++i) {
      if (bytes[i] != extension) throw Error("integer does not fit in 64 bits");
    }
    if (length > 8 && ((static_cast<uint8_t>(bytes[7]) & 0x80) != 0) != negative) {
      throw Error("integer does not fit in 64 bits");
    }
    uint64_t value = negative ? ~uint64_t{0} : 0;
    for (uint64_t i = 0; i < length && i < 8; ++i) {
      value &= ~(uint64_t{0xff} << (8 * i));
      value |= static_cast<uint64_t>(bytes[i]) << (8 * i);
    }
    return static_cast<int64_t>(value);
  }

  void push(PickleValue value) { stack_.push_back(std::move(value)); }
  PickleValue pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) throw Error("stack underflow");
    PickleValue value = std::move(stack_.back());
    stack_.pop_back();
    return value;
  }
  const PickleValue& top() const {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) throw Error("stack underflow");
    return stack_.back();
  }
  size_t pop_mark() {
    if (marks_.empty()) throw Error("no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    return mark;
  }
  std::vector<PickleValue> pop_to_mark() {
    const size_t mark = pop_mark();
    std::vector<PickleValue> items(std::make_move_iterator(stack_.begin() + static_cast<ptrdiff_t>(mark)),
                                   std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }
  void push_tuple_of_top(size_t count) {
    std::vector<PickleValue> items(count);
    for (size_t i = count; i-- > 0;) items[i] = pop();
    push(result_.arena.make(PickleContainerKind::Tuple, std::move(items)));
  }

  PickleContainer& container_on_top(PickleContainerKind kind, std::string_view opcode) {
    const PickleValue& target = top();
    if (result_.arena.as(target, kind) == nullptr) {
      throw Error(fmt::format("{} on a {}", opcode, pickle_type_name(target, result_.arena)));
    }
    return result_.arena.at(std::get<PickleRef>(target));
  }
  PickleRef dict_on_top(std::string_view opcode) {
    container_on_top(PickleContainerKind::Dict, opcode);
    return std::get<PickleRef>(top());
  }

  void set_items(PickleRef dict, std::vector<PickleValue> items) {
    if (items.size() % 2 != 0) throw Error("odd number of values for dict items");
    auto& entries = result_.arena.at(dict).items;
    entries.insert(entries.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
  }

  PickleValue call(const PickleValue& callable, const PickleValue& args, std::string_view opcode) {
    const auto* global = std::get_if<PickleGlobal>(&callable);
    if (global == nullptr) {
      throw Error(fmt::format("{} calls a {}, which is not callable", opcode, pickle_type_name(callable, result_.arena)));
    }
    const PickleContainer* arguments = result_.arena.as(args, PickleContainerKind::Tuple);
    if (arguments == nullptr) {
      throw Error(fmt::format("{} of {}.{} takes a tuple of arguments, not a {}", opcode, global->module, global->name,
                              pickle_type_name(args, result_.arena)));
    }
    return hooks_.call(*global, *arguments, result_.arena);
  }

  const PickleValue& memo_get(uint32_t index) const {
    auto it = memo_.find(index);
    if (it == memo_.end()) throw Error(fmt::format("memo index {} was never stored", index));
    return it->second;
  }

  std::span<const std::byte> pickle_;
  PickleHooks& hooks_;
  size_t pos_ = 0;
  size_t opcode_offset_ = 0;
  std::vector<PickleValue> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, PickleValue> memo_;
  Unpickled result_;
};

}  // namespace

Unpickled unpickle(std::span<const std::byte> pickle, std::string_view label, PickleHooks& hooks) {
  Machine machine(pickle, hooks);
  try {
    return machine.run();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: at byte {}: {}", label, machine.opcode_offset(), e.what()));
  } catch (const std::bad_alloc&) {
    throw Error(fmt::format("{}: at byte {}: out of memory", label, machine.opcode_offset()));
  }
}

}  // namespace rwkv::convert
