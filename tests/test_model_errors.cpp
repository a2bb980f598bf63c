// Bad input gets a clear error naming the file and the problem, never a crash:
// broken checkpoints for the converter, broken native files for the loader,
// out-of-range tokens and foreign states for the forward step.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "convert/pth_checkpoint.hpp"
#include "convert/to_native.hpp"
#include "pth_writer.hpp"
#include "rwkv/error.hpp"
#include "rwkv/model.hpp"
#include "test_support.hpp"
#include "weights/format.hpp"

namespace {

using ::testing::HasSubstr;

const std::filesystem::path kBase = rwkv_test::fixtures_dir() / "tiny-v7.0.pth";

struct EditableTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// The fixture's tensors as float32, edited by `edit` (which may drop, rename or
// reshape them), written back as a torch.save checkpoint.
std::string rewrite(const std::filesystem::path& out, const std::function<void(std::vector<EditableTensor>&)>& edit) {
  auto ckpt = rwkv::convert::PthCheckpoint::open(kBase.string());
  std::vector<EditableTensor> tensors;
  for (const auto& t : ckpt.tensors()) tensors.push_back({t.name, t.shape, t.to_float()});
  edit(tensors);
  rwkv_test::CheckpointSpec spec;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string key = std::to_string(i);
    const auto& t = tensors[i];
    spec.storages[key] = rwkv_test::StorageSpec{"FloatStorage", int64_t(t.values.size()), rwkv_test::float_bytes(t.values)};
    std::vector<int64_t> stride(t.shape.size(), 1);
    for (size_t d = t.shape.size(); d-- > 1;) stride[d - 1] = stride[d] * t.shape[d];
    spec.tensors.push_back({t.name, key, t.shape, stride, 0});
  }
  rwkv_test::write_file(out, rwkv_test::make_checkpoint(spec));
  return out.string();
}

std::string convert_error(const std::string& input, const std::string& output) {
  try {
    rwkv::convert::convert_pth(input, output, {});
  } catch (const rwkv::Error& e) {
    EXPECT_FALSE(std::filesystem::exists(output)) << "a failed conversion left " << output;
    return e.what();
  }
  ADD_FAILURE() << "conversion of " << input << " did not throw";
  return {};
}

std::string load_error(const std::string& path) {
  try {
    rwkv::Model::load(path);
  } catch (const rwkv::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loading " << path << " did not throw";
  return {};
}

TEST(ConvertErrors, RewrittenFixtureStillConverts) {
  rwkv_test::ScratchDir dir;
  const std::string in = rewrite(dir / "same.pth", [](auto&) {});
  EXPECT_NO_THROW(rwkv::convert::convert_pth(in, (dir / "out.rwkv").string(), {}));
}

TEST(ConvertErrors, NamesFromTheCheckpointAreEscaped) {
  rwkv_test::ScratchDir dir;
  const std::string in = rewrite(dir / "esc.pth", [](auto& tensors) {
    tensors.push_back(tensors.back());
    tensors.back().name = "blocks.\x1b[2J.\n";
  });
  const std::string msg = convert_error(in, (dir / "out.rwkv").string());
  EXPECT_THAT(msg, HasSubstr("tensor 'blocks.\\x1b[2J.\\n' has no layer number"));
  EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
}

TEST(ConvertErrors, MissingFile) {
  rwkv_test::ScratchDir dir;
  const std::string msg = convert_error((dir / "nope.pth").string(), (dir / "out.rwkv").string());
  EXPECT_THAT(msg, HasSubstr("nope.pth"));
  EXPECT_THAT(msg, HasSubstr("No such file"));
}

TEST(ConvertErrors, TruncatedCheckpoint) {
  rwkv_test::ScratchDir dir;
  const std::string bytes = rwkv_test::read_file(kBase);
  for (size_t keep : {size_t(0), size_t(100), bytes.size() / 2, bytes.size() - 30}) {
    const auto path = dir / "cut.pth";
    rwkv_test::write_file(path, bytes.substr(0, keep));
    const std::string msg = convert_error(path.string(), (dir / "out.rwkv").string());
    EXPECT_THAT(msg, HasSubstr("cut.pth")) << "kept " << keep << " bytes";
  }
}

TEST(ConvertErrors, MissingTensor) {
  rwkv_test::ScratchDir dir;
  const std::string in = rewrite(dir / "missing.pth", [](auto& t) {
    std::erase_if(t, [](const EditableTensor& x) { return x.name == "blocks.1.att.key.weight"; });
  });
  const std::string msg = convert_error(in, (dir / "out.rwkv").string());
  EXPECT_THAT(msg, HasSubstr("missing.pth"));
  EXPECT_THAT(msg, HasSubstr("missing tensor 'blocks.1.att.key.weight'"));
}

TEST(ConvertErrors, WrongShape) {
  rwkv_test::ScratchDir dir;
  const std::string in = rewrite(dir / "shape.pth", [](auto& t) {
    for (auto& x : t) {
      if (x.name == "blocks.0.ffn.value.weight") {
        x.shape = {x.shape[1], x.shape[0]};
      }
    }
  });
  const std::string msg = convert_error(in, (dir / "out.rwkv").string());
  EXPECT_THAT(msg, HasSubstr("shape.pth"));
  EXPECT_THAT(msg, HasSubstr("'blocks.0.ffn.value.weight' has shape [128, 32], expected [32, 128]"));
}

TEST(ConvertErrors, UnknownArchitecture) {
  rwkv_test::ScratchDir dir;
  const std::string in = rewrite(dir / "alien.pth", [](auto& t) {
    std::vector<EditableTensor> kept;
    for (auto& x : t) {
      if (x.name == "emb.weight" || x.name.find(".ffn.") != std::string::npos) kept.push_back(x);
    }
    t = kept;
  });
  const std::string msg = convert_error(in, (dir / "out.rwkv").string());
  EXPECT_THAT(msg, HasSubstr("alien.pth"));
  EXPECT_THAT(msg, HasSubstr("unknown architecture"));
}

TEST(ConvertErrors, FailedConversionKeepsTheExistingOutput) {
  rwkv_test::ScratchDir dir;
  const auto out = dir / "out.rwkv";
  rwkv_test::write_file(out, "previous contents");
  const std::string in = rewrite(dir / "missing.pth", [](auto& t) { t.pop_back(); });
  EXPECT_THROW(rwkv::convert::convert_pth(in, out.string(), {}), rwkv::Error);
  EXPECT_EQ(rwkv_test::read_file(out), "previous contents");
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << "left behind " << entry.path();
  }
}

class NativeFileErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (dir_ / "good.rwkv").string();
    rwkv::convert::convert_pth(kBase.string(), path_, {});
    bytes_ = rwkv_test::read_file(path_);
  }
  // Writes `bytes` as a sibling file and returns the loader's error.
  std::string load_variant(const std::string& bytes) {
    const auto p = dir_ / "bad.rwkv";
    rwkv_test::write_file(p, bytes);
    std::string msg = load_error(p.string());
    EXPECT_THAT(msg, HasSubstr("bad.rwkv"));
    return msg;
  }
  template <typename T>
  void poke(std::string& bytes, size_t at, T value) {
    std::memcpy(bytes.data() + at, &value, sizeof(T));
  }
  // Offset of the first tensor table entry's offset field.
  size_t first_entry_offset_field() const {
    uint16_t name_len;
    std::memcpy(&name_len, bytes_.data() + rwkv::kNativeHeaderBytes, 2);
    const size_t at = rwkv::kNativeHeaderBytes + 2 + name_len + 1;
    const auto ndim = static_cast<uint8_t>(bytes_[at]);
    return at + 1 + 8 * ndim;
  }

  rwkv_test::ScratchDir dir_;
  std::string path_;
  std::string bytes_;
};

TEST_F(NativeFileErrors, GoodFileLoads) { EXPECT_NO_THROW(rwkv::Model::load(path_)); }

TEST_F(NativeFileErrors, MissingFile) { EXPECT_THAT(load_error((dir_ / "absent.rwkv").string()), HasSubstr("absent.rwkv")); }

TEST_F(NativeFileErrors, Truncated) {
  for (size_t keep : {size_t(0), size_t(10), size_t(127), size_t(200), bytes_.size() / 2, bytes_.size() - 1}) {
    EXPECT_THAT(load_variant(bytes_.substr(0, keep)), HasSubstr("truncated")) << "kept " << keep;
  }
}

TEST_F(NativeFileErrors, WrongMagic) {
  std::string b = bytes_;
  b[0] = 'X';
  EXPECT_THAT(load_variant(b), HasSubstr("wrong magic"));
  // Text is no model of any format: the native reader's message.
  EXPECT_THAT(load_variant("hello, this is not a model\n"), HasSubstr("wrong magic"));
}

TEST_F(NativeFileErrors, UnsupportedVersion) {
  std::string b = bytes_;
  poke<uint32_t>(b, 8, 99);
  EXPECT_THAT(load_variant(b), HasSubstr("unsupported format version 99"));
}

TEST_F(NativeFileErrors, UnknownArchitecture) {
  std::string b = bytes_;
  std::memcpy(b.data() + 16, "9.9\0\0\0\0\0", 8);
  EXPECT_THAT(load_variant(b), HasSubstr("unknown architecture '9.9'"));
}

TEST_F(NativeFileErrors, TensorPointsOutsideTheFile) {
  std::string b = bytes_;
  poke<uint64_t>(b, first_entry_offset_field(), uint64_t(1) << 40);
  EXPECT_THAT(load_variant(b), HasSubstr("outside the file"));
}

TEST_F(NativeFileErrors, TensorTableOutsideTheFile) {
  std::string b = bytes_;
  poke<uint64_t>(b, 64, uint64_t(1) << 40);
  EXPECT_THAT(load_variant(b), HasSubstr("outside"));
}

TEST_F(NativeFileErrors, WrongTensorShape) {
  std::string b = bytes_;
  // The first entry is emb.weight [256, 32]; claim [256, 16] with a matching byte count.
  const size_t bytes_field = first_entry_offset_field() + 8;
  poke<uint64_t>(b, bytes_field - 16, 16);
  poke<uint64_t>(b, bytes_field, 256 * 16 * 4);
  EXPECT_THAT(load_variant(b), HasSubstr("tensor 'emb.weight' has shape [256, 16], expected [256, 32]"));
}

TEST_F(NativeFileErrors, EveryTruncationAndByteFlipThrowsOrLoads) {
  // Header and table corruption must never crash; single flipped data bytes may load.
  for (size_t at = 0; at < std::min<size_t>(bytes_.size(), 2048); at += 7) {
    std::string b = bytes_;
    b[at] = static_cast<char>(b[at] ^ 0x5a);
    const auto p = dir_ / "flip.rwkv";
    rwkv_test::write_file(p, b);
    try {
      rwkv::Model::load(p.string());
    } catch (const rwkv::Error&) {
    }
  }
}

TEST(ForwardErrors, TokenOutOfRange) {
  rwkv_test::ScratchDir dir;
  const std::string path = (dir / "m.rwkv").string();
  rwkv::convert::convert_pth(kBase.string(), path, {});
  auto model = rwkv::Model::load(path);
  rwkv::State state = model->new_state();
  const rwkv::State before = state;
  std::vector<float> logits(model->info().n_vocab);
  for (int32_t bad : {256, -1, 1 << 30}) {
    try {
      model->forward(bad, state, logits);
      ADD_FAILURE() << "token " << bad << " accepted";
    } catch (const rwkv::Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("token id " + std::to_string(bad) + " is out of range"));
      EXPECT_THAT(e.what(), HasSubstr("n_vocab = 256"));
    }
  }
  EXPECT_EQ(state, before) << "a rejected token changed the state";
}

TEST(ForwardErrors, StateOfAnotherModelIsRefused) {
  rwkv_test::ScratchDir dir;
  const std::string v7 = (dir / "v7.rwkv").string(), v4 = (dir / "v4.rwkv").string();
  rwkv::convert::convert_pth(kBase.string(), v7, {});
  rwkv::convert::convert_pth((rwkv_test::fixtures_dir() / "tiny-v4.pth").string(), v4, {});
  auto model = rwkv::Model::load(v7);
  rwkv::State foreign = rwkv::Model::load(v4)->new_state();
  std::vector<float> logits(model->info().n_vocab);
  EXPECT_THROW(model->forward(1, foreign, logits), rwkv::Error);
  std::vector<float> small(10);
  rwkv::State state = model->new_state();
  EXPECT_THROW(model->forward(1, state, small), rwkv::Error);
}

}  // namespace
