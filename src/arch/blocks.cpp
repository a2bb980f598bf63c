#include "arch/blocks.hpp"

#include <algorithm>
#include <stdexcept>

#include "kernels/thread_pool.hpp"

namespace rwkv::arch {

Norm bind_norm(const WeightBinder& w, const std::string& prefix, uint64_t n) {
  return Norm{w.vec(prefix + ".weight", n), w.vec(prefix + ".bias", n)};
}

Scratch::Scratch(size_t floats) : storage_([]() -> Storage& {
    thread_local Storage storage;
    return storage;
  }()) {
  if (storage_.size < floats) {
    storage_.data.reset();
    storage_.data.reset(new float[floats]);  // default-initialised: untouched until used
    storage_.size = floats;
  }
}

float* Scratch::take(size_t n) {
  if (used_ + n > storage_.size) throw std::logic_error("rwkv: scratch space for a forward step undersized");
  float* p = storage_.data.get() + used_;
  used_ += n;
  return p;
}

ChannelMix bind_channel_mix(const WeightBinder& w, uint32_t layer, uint32_t n_embd, uint32_t n_ffn) {
  ChannelMix p;
  p.maa_k = w.vec(layer_tensor(layer, "ffn.time_maa_k"), n_embd);
  p.maa_r = w.vec(layer_tensor(layer, "ffn.time_maa_r"), n_embd);
  p.key = w.matrix(layer_tensor(layer, "ffn.key.weight"), n_ffn, n_embd);
  p.value = w.matrix(layer_tensor(layer, "ffn.value.weight"), n_embd, n_ffn);
  p.receptance = w.matrix(layer_tensor(layer, "ffn.receptance.weight"), n_embd, n_embd);
  return p;
}

void layer_norm_rows(const float* x, const Norm& norm, float* out, uint32_t T, uint32_t n) {
  parallel_for(T, kTokensPerTask, [&](uint32_t t_begin, uint32_t t_end) {
    for (uint32_t t = t_begin; t < t_end; ++t) {
      layer_norm(x + size_t(t) * n, norm.weight, norm.bias, out + size_t(t) * n, n, kLayerNormEps);
    }
  });
}

void each_token(const float* rows, const float* shift, uint32_t T, uint32_t n,
                const std::function<void(uint32_t t, const float* cur, const float* prev)>& fn) {
  parallel_for(T, kTokensPerTask, [&](uint32_t t_begin, uint32_t t_end) {
    for (uint32_t t = t_begin; t < t_end; ++t) fn(t, rows + size_t(t) * n, previous_row(rows, shift, t, n));
  });
}

void add_rows(float* x, const float* add, uint32_t T, uint32_t n) {
  parallel_for(T, kTokensPerTask, [&](uint32_t t_begin, uint32_t t_end) {
    for (size_t i = size_t(t_begin) * n; i < size_t(t_end) * n; ++i) x[i] += add[i];
  });
}

void channel_mix(const ChannelMix& p, const float* xx, uint32_t T, float* shift, float* x, uint32_t n_embd,
                    Scratch& scratch) {
  const uint32_t C = n_embd;
  const uint32_t F = p.key.rows;
  float* kx = scratch.take(size_t(T) * C);
  float* rx = scratch.take(size_t(T) * C);
  each_token(xx, shift, T, C, [&](uint32_t t, const float* cur, const float* prev) {
    for (uint32_t c = 0; c < C; ++c) {
      const size_t i = size_t(t) * C + c;
      const float delta = prev[c] - cur[c];
      kx[i] = cur[c] + delta * p.maa_k[c];
      rx[i] = cur[c] + delta * p.maa_r[c];
    }
  });
  std::copy(xx + size_t(T - 1) * C, xx + size_t(T) * C, shift);
  float* r = scratch.take(size_t(T) * C);
  float* k = scratch.take(size_t(T) * F);
  float* v = scratch.take(size_t(T) * C);
  matmat(p.receptance, rx, r, T);
  matmat_squared_relu(p.key, kx, k, T);
  matmat(p.value, k, v, T);
  for (size_t i = 0; i < size_t(T) * C; ++i) x[i] += sigmoid(r[i]) * v[i];
}

}  // namespace rwkv::arch
