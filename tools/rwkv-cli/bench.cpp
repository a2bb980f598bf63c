#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "args.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "rwkv/error.hpp"
#include "rwkv/machine.hpp"
#include "rwkv/model.hpp"
#include "rwkv/threads.hpp"
#include "threads_flag.hpp"

namespace rwkv_cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Decode steps before the timed ones: the first touch the weights' pages and grow the
// scratch buffers.
constexpr int kWarmupTokens = 4;
constexpr int kLoadRuns = 5;
// Prefill runs, each followed by an FMA-peak pass (the median of each is reported).
constexpr int kPrefillRuns = 3;

// Deterministic token ids spread over the vocabulary (a fixed linear congruential sequence).
std::vector<int32_t> bench_tokens(size_t count, uint32_t n_vocab) {
  std::vector<int32_t> out(count);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (int32_t& t : out) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((state >> 33) % n_vocab);
  }
  return out;
}

// Seconds to feed a prompt from the initial state up to the logits after its last
// token, in sequence mode (each matrix read once per chunk of tokens).
double time_prefill(const rwkv::Model& model, const std::vector<int32_t>& tokens) {
  rwkv::State state = model.new_state();
  std::vector<float> logits(model.info().n_vocab);
  const auto start = Clock::now();
  model.forward_sequence(tokens, state, logits);  // sequence mode, logits for the last token only
  return seconds_since(start);
}

// Greedy decoding of `batch` independent sequences, as a server would run them: each
// step feeds every sequence its previous step's most likely token in one forward_batch
// (the argmaxes are not timed). The sequences start from different tokens.
class Decoder {
 public:
  Decoder(const rwkv::Model& model, uint32_t batch) : model_(model), V_(model.info().n_vocab) {
    for (uint32_t i = 0; i < batch; ++i) {
      states_.push_back(model.new_state());
      tokens_.push_back(static_cast<int32_t>(i % V_));
    }
    logits_.resize(size_t(batch) * V_);
  }

  double timed_step() {
    items_.clear();
    for (size_t i = 0; i < states_.size(); ++i) {
      items_.push_back({std::span<const int32_t>(&tokens_[i], 1), &states_[i],
                        std::span<float>(logits_.data() + i * V_, V_)});
    }
    const auto start = Clock::now();
    model_.forward_batch(items_);
    const double seconds = seconds_since(start);
    for (size_t i = 0; i < states_.size(); ++i) {
      const float* row = logits_.data() + i * V_;
      tokens_[i] = static_cast<int32_t>(std::max_element(row, row + V_) - row);
    }
    return seconds;
  }

 private:
  const rwkv::Model& model_;
  size_t V_;
  std::vector<rwkv::State> states_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
  std::vector<rwkv::BatchItem> items_;
};

double median_load_seconds(const std::string& path) {
  rwkv::Model::load(path);  // warms the page cache; not timed
  std::vector<double> seconds;
  for (int i = 0; i < kLoadRuns; ++i) {
    const auto start = Clock::now();
    auto model = rwkv::Model::load(path);
    seconds.push_back(seconds_since(start));
  }
  return median(seconds);
}

// VmHWM of /proc/self/status: the most resident memory the process has had.
uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // in kB
  }
  throw rwkv::Error("/proc/self/status: no VmHWM line (not Linux?)");
}

struct WeightTraffic {
  uint64_t bytes_per_token = 0;  // every tensor once, the embedding one row only
  uint64_t matrix_params = 0;    // elements of the matrices multiplied per decoded token
  uint64_t head_params = 0;      // of which the head's, which prompt tokens but the last skip
  // Of the prompt's matrix parameters (all but the head's), those whose matrix–matrix
  // products run on int8 dot products with the kernels in use (rwkv::int8_matmat).
  uint64_t int8_prompt_params = 0;
  // Those on bf16 dot products (rwkv::bf16_matmat).
  uint64_t bf16_prompt_params = 0;
};

WeightTraffic weight_traffic(const rwkv::Model& model) {
  WeightTraffic out;
  for (const rwkv::TensorInfo& t : model.tensors()) {
    const bool is_embedding = t.name == "emb.weight";
    out.bytes_per_token += is_embedding ? t.bytes / t.shape.at(0) : t.bytes;
    if (t.shape.size() >= 2 && !is_embedding) {
      uint64_t elements = 1;
      for (uint64_t d : t.shape) elements *= d;
      out.matrix_params += elements;
      if (t.name == "head.weight") {
        out.head_params = elements;
      } else if (rwkv::int8_matmat(t.dtype)) {
        out.int8_prompt_params += elements;
      } else if (rwkv::bf16_matmat(t.dtype)) {
        out.bf16_prompt_params += elements;
      }
    }
  }
  return out;
}

std::string matrix_types(const rwkv::Model& model) {
  std::vector<std::string> types;
  for (const rwkv::TensorInfo& t : model.tensors()) {
    if (t.shape.size() >= 2 && std::find(types.begin(), types.end(), t.dtype) == types.end()) types.push_back(t.dtype);
  }
  std::string out;
  for (const std::string& t : types) out += (out.empty() ? "" : "+") + t;
  return out;
}

// Tensors the model rearranged at load for the kernels in use (rwkv::TensorInfo::packed).
int64_t packed_tensors(const rwkv::Model& model) {
  const auto tensors = model.tensors();
  return std::count_if(tensors.begin(), tensors.end(), [](const rwkv::TensorInfo& t) { return t.packed; });
}

// The largest --bandwidth-mib: 64 GiB is a hundred times the largest last-level caches
// (about 1 GiB), so a larger buffer measures nothing more, and its size in bytes stays
// far from overflowing.
constexpr int64_t kMaxBandwidthMib = 65536;
// The largest --batch: far past where a step stops being bandwidth-bound, and small
// enough that B states and B rows of logits fit any machine that runs the model.
constexpr int64_t kMaxBatch = 1024;

// Physical memory in MiB; 0 when the system does not say.
int64_t physical_memory_mib() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_bytes = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_bytes <= 0) return 0;
  return static_cast<int64_t>((static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_bytes)) >> 20);
}

}  // namespace

int run_bench(int argc, char** argv) {
  ArgParser args("bench", "[--model M] [--threads N] [--batch B] [--decode N] [--prefill N] [--json]",
                 "Measures a model's load time, decode and prefill speed and peak memory, and the machine's\n"
                 "memory bandwidth and FMA peak with the same threads, to say how close decode comes to\n"
                 "the bandwidth limit (weights read per token) and prefill to the FMA peak. Each limit is\n"
                 "measured interleaved with what it is compared with (a bandwidth pass after every decoded\n"
                 "token, an FMA pass after every prefill run), so that both see the same machine.\n"
                 "With --batch B, each decode step advances B independent sequences at once (batched\n"
                 "decoding, each matrix read once per step for all of them): tokens/s is the aggregate.");
  args.option("model", "M", "model file: native, or .pth, rwkv.cpp .bin, GGUF, safetensors or a Hugging Face directory (converted in memory; default: the shipped default model)")
      .option("batch", "B", "sequences decoded together in each step (1: a single sequence)", "1")
      .option("decode", "N", "decode steps timed (after a few untimed ones); the median is reported", "128")
      .option("prefill", "N", "prompt tokens fed for the prefill speed (median of 3 runs)", "512")
      .option("bandwidth-mib", "N",
              "buffer streamed for the memory bandwidth, in MiB (a pass after every decoded token); at most " +
                  std::to_string(kMaxBandwidthMib) + " and the machine's memory",
              "1024")
      .flag("json", "print one JSON object");
  declare_threads_flag(args);
  if (!args.parse(argc, argv)) return 0;
  apply_threads_flag(args);
  const int64_t decode_tokens = args.get_int("decode", 1, INT32_MAX);
  const auto batch = static_cast<uint32_t>(args.get_int("batch", 1, kMaxBatch));
  const int64_t prefill_tokens = args.get_int("prefill", 1, INT32_MAX);
  const int64_t bandwidth_mib = args.get_int("bandwidth-mib", 1, kMaxBandwidthMib);
  if (const int64_t memory_mib = physical_memory_mib(); memory_mib > 0 && bandwidth_mib > memory_mib) {
    throw UsageError(fmt::format("flag --bandwidth-mib: {} MiB is more than this machine's memory ({} MiB)",
                                 bandwidth_mib, memory_mib));
  }

  const std::string path = resolve_model_path(args);
  const double load_seconds = median_load_seconds(path);
  auto model = load_model(path);
  const rwkv::ModelInfo& info = model->info();
  const WeightTraffic traffic = weight_traffic(*model);
  const std::vector<int32_t> prompt = bench_tokens(static_cast<size_t>(prefill_tokens), info.n_vocab);
  // Each measurement next to the limit it is compared with: on a shared machine both
  // drift, and a limit measured a minute apart can be off by a fifth.
  std::vector<double> prefill_runs, fma_runs, int8_runs, bf16_runs;
  for (int run = 0; run < kPrefillRuns; ++run) {
    prefill_runs.push_back(time_prefill(*model, prompt));
    fma_runs.push_back(rwkv::measure_fma_peak_once());
    int8_runs.push_back(rwkv::measure_int8_peak_once());
    bf16_runs.push_back(rwkv::measure_bf16_peak_once());
  }
  const double prefill_seconds = median(prefill_runs);
  const double fma_peak = median(fma_runs);
  const double int8_peak = median(int8_runs);
  const double bf16_peak = median(bf16_runs);
  Decoder decoder(*model, batch);
  for (int i = 0; i < kWarmupTokens; ++i) decoder.timed_step();
  // Every buffer has grown by now; before the bandwidth buffer, which would be the peak.
  const uint64_t peak_rss = peak_rss_bytes();
  rwkv::BandwidthProbe probe(static_cast<size_t>(bandwidth_mib) << 20);
  std::vector<double> decode_seconds, bandwidth_passes;
  for (int64_t i = 0; i < decode_tokens; ++i) {
    decode_seconds.push_back(decoder.timed_step());
    bandwidth_passes.push_back(probe.pass());
  }
  const double decode_seconds_per_step = median(decode_seconds);
  const double decode_seconds_per_token = decode_seconds_per_step / batch;
  // The limit is the best a plain streaming read reaches; decode is compared with it.
  const double bandwidth = *std::max_element(bandwidth_passes.begin(), bandwidth_passes.end());
  const double prefill_tps = double(prefill_tokens) / prefill_seconds;
  // A step reads the weights once, whatever the batch; it multiplies every matrix by B rows.
  const double decode_fraction = double(traffic.bytes_per_token) / decode_seconds_per_step / bandwidth;
  const double decode_fma_fraction = 2.0 * double(traffic.matrix_params) / decode_seconds_per_token / fma_peak;
  // Prompt tokens skip the head (all but the last): 2 FLOPs per other matrix parameter.
  const double prompt_params = double(traffic.matrix_params - traffic.head_params);
  const double prefill_fraction = 2.0 * prompt_params * prefill_tps / fma_peak;
  // Prefill against the peak of the unit that did most of its matrix work: int8 dot
  // products where most prompt parameters are block types on an int8 GEMM, bf16 dot
  // products where most are bf16 on them, else FMA.
  const uint64_t prompt_matrix_params = traffic.matrix_params - traffic.head_params;
  const bool prefill_on_int8 = 2 * traffic.int8_prompt_params > prompt_matrix_params;
  const bool prefill_on_bf16 = 2 * traffic.bf16_prompt_params > prompt_matrix_params;
  const std::string prefill_unit = prefill_on_int8   ? rwkv::int8_peak_unit()
                                   : prefill_on_bf16 ? rwkv::bf16_peak_unit()
                                                     : rwkv::fma_peak_unit();
  const double prefill_peak = prefill_on_int8 ? int8_peak : prefill_on_bf16 ? bf16_peak : fma_peak;
  const double prefill_peak_fraction = 2.0 * prompt_params * prefill_tps / prefill_peak;
  const unsigned threads = rwkv::thread_count();

  if (args.has("json")) {
    nlohmann::json out = {{"model", path},
                          {"arch", rwkv::arch_name(info.arch)},
                          {"n_layer", info.n_layer},
                          {"n_embd", info.n_embd},
                          {"n_vocab", info.n_vocab},
                          {"matrix_types", matrix_types(*model)},
                          {"packed_tensors", packed_tensors(*model)},
                          {"threads", threads},
                          {"file_bytes", model->file_bytes()},
                          {"load_ms", load_seconds * 1e3},
                          {"batch", batch},
                          {"decode_tokens", decode_tokens},
                          {"decode_ms_per_step", decode_seconds_per_step * 1e3},
                          {"decode_ms_per_token", decode_seconds_per_token * 1e3},
                          {"decode_tokens_per_second", 1.0 / decode_seconds_per_token},
                          {"prefill_tokens", prefill_tokens},
                          {"prefill_tokens_per_second", prefill_tps},
                          {"peak_rss_bytes", peak_rss},
                          {"weight_bytes_per_token", traffic.bytes_per_token},
                          {"matrix_params", traffic.matrix_params},
                          {"bandwidth_gb_per_s", bandwidth / 1e9},
                          {"decode_bandwidth_fraction", decode_fraction},
                          {"decode_fma_fraction", decode_fma_fraction},
                          {"fma_peak_gflops", fma_peak / 1e9},
                          {"fma_unit", rwkv::fma_peak_unit()},
                          {"int8_peak_gops", int8_peak / 1e9},
                          {"int8_unit", rwkv::int8_peak_unit()},
                          {"bf16_peak_gflops", bf16_peak / 1e9},
                          {"bf16_unit", rwkv::bf16_peak_unit()},
                          {"isa", rwkv::kernel_isa()},
                          {"prefill_fma_fraction", prefill_fraction},
                          {"prefill_unit", prefill_unit},
                          {"prefill_peak_fraction", prefill_peak_fraction}};
    std::puts(out.dump().c_str());
    return 0;
  }
  fmt::print("model: {} (RWKV {}, {} layers x {}, vocab {}, {} matrices, {:.1f} MB file)\n", path,
             rwkv::arch_name(info.arch), info.n_layer, info.n_embd, info.n_vocab, matrix_types(*model),
             double(model->file_bytes()) / 1e6);
  fmt::print("threads: {}\n", threads);
  fmt::print("load: {:.2f} ms (warm page cache, median of {})\n", load_seconds * 1e3, kLoadRuns);
  if (batch == 1) {
    fmt::print("decode: {:.3f} ms/token, {:.1f} tokens/s (median of {} tokens)\n", decode_seconds_per_token * 1e3,
               1.0 / decode_seconds_per_token, decode_tokens);
  } else {
    fmt::print("decode, batch {}: {:.3f} ms/step, {:.1f} tokens/s in all (median of {} steps)\n", batch,
               decode_seconds_per_step * 1e3, 1.0 / decode_seconds_per_token, decode_tokens);
  }
  fmt::print("prefill: {:.1f} tokens/s ({} tokens in {:.2f} s)\n", prefill_tps, prefill_tokens, prefill_seconds);
  fmt::print("peak RSS: {:.1f} MB ({:.2f} x the file)\n", double(peak_rss) / 1e6,
             double(peak_rss) / double(model->file_bytes()));
  fmt::print("weights read per token: {:.1f} MB; {:.1f} M parameters in matrices\n",
             double(traffic.bytes_per_token) / 1e6, double(traffic.matrix_params) / 1e6);
  fmt::print("memory read bandwidth: {:.1f} GB/s ({} MiB buffer); decode reaches {:.1f}% of it\n", bandwidth / 1e9,
             bandwidth_mib, decode_fraction * 100);
  fmt::print("kernels: {}\n", rwkv::kernel_isa());
  fmt::print("FP32 FMA peak ({}): {:.1f} GFLOP/s; prefill reaches {:.1f}% of it, decode {:.1f}%\n",
             rwkv::fma_peak_unit(), fma_peak / 1e9, prefill_fraction * 100, decode_fma_fraction * 100);
  if (int8_peak > 0) {
    fmt::print("int8 dot-product peak ({}): {:.1f} GOP/s\n", rwkv::int8_peak_unit(), int8_peak / 1e9);
  }
  if (bf16_peak > 0) {
    fmt::print("bf16 dot-product peak ({}): {:.1f} GFLOP/s\n", rwkv::bf16_peak_unit(), bf16_peak / 1e9);
  }
  fmt::print("prefill runs on {}: {:.1f}% of its peak\n", prefill_unit, prefill_peak_fraction * 100);
  return 0;
}

}  // namespace rwkv_cli
