#include "arch/blocks.hpp"

#include <algorithm>
#include <stdexcept>

namespace rwkv::arch {

Norm bind_norm(const WeightBinder& w, const std::string& prefix, uint64_t n) {
  return Norm{w.vec(prefix + ".weight", n), w.vec(prefix + ".bias", n)};
}

Scratch::Scratch(size_t floats) : buffer_([]() -> std::vector<float>& {
    thread_local std::vector<float> storage;
    return storage;
  }()) {
  if (buffer_.size() < floats) buffer_.resize(floats);
}

float* Scratch::take(size_t n) {
  if (used_ + n > buffer_.size()) throw std::logic_error("rwkv: scratch space for a forward step undersized");
  float* p = buffer_.data() + used_;
  used_ += n;
  return p;
}

ChannelMixV4 bind_channel_mix_v4(const WeightBinder& w, uint32_t layer, uint32_t n_embd, uint32_t n_ffn) {
  ChannelMixV4 p;
  p.time_mix_k = w.vec(layer_tensor(layer, "ffn.time_mix_k"), n_embd);
  p.time_mix_r = w.vec(layer_tensor(layer, "ffn.time_mix_r"), n_embd);
  p.key = w.matrix(layer_tensor(layer, "ffn.key.weight"), n_ffn, n_embd);
  p.value = w.matrix(layer_tensor(layer, "ffn.value.weight"), n_embd, n_ffn);
  p.receptance = w.matrix(layer_tensor(layer, "ffn.receptance.weight"), n_embd, n_embd);
  return p;
}

void channel_mix_v4(const ChannelMixV4& p, const float* xx, float* shift, float* x, uint32_t n_embd, Scratch& scratch) {
  const uint32_t C = n_embd;
  const uint32_t F = p.key.rows;
  float* kx = scratch.take(C);
  float* rx = scratch.take(C);
  for (uint32_t c = 0; c < C; ++c) {
    kx[c] = xx[c] * p.time_mix_k[c] + shift[c] * (1.0f - p.time_mix_k[c]);
    rx[c] = xx[c] * p.time_mix_r[c] + shift[c] * (1.0f - p.time_mix_r[c]);
  }
  std::copy(xx, xx + C, shift);
  float* r = scratch.take(C);
  float* k = scratch.take(F);
  float* v = scratch.take(C);
  matvec(p.receptance, rx, r);
  matvec(p.key, kx, k);
  for (uint32_t i = 0; i < F; ++i) k[i] = k[i] > 0.0f ? k[i] * k[i] : 0.0f;
  matvec(p.value, k, v);
  for (uint32_t c = 0; c < C; ++c) x[c] += sigmoid(r[c]) * v[c];
}

}  // namespace rwkv::arch
