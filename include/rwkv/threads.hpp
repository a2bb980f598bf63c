// How the matrix products run, for every model of the process: how many threads they
// use (one pool, its size fixed at the first use, the first Model::load), and whether a
// batch may change a token's results.
#pragma once

namespace rwkv {

// 0 = one per physical core. Throws rwkv::Error once the pool is in use with another
// size.
void set_thread_count(unsigned n_threads);
// The count in use, or that the first use will take.
unsigned thread_count();
// Physical cores this process may run on (SMT siblings counted once).
unsigned physical_core_count();

// Batch invariance. Off (the default), products of many tokens at once (prompts, large
// batches) use the fastest kernels, whose sums are rounded in another order than one
// token's: a sequence's logits then differ from those it gets alone by float32
// rounding, enough to flip a near tie in greedy decoding. On, every token's products in
// Model::forward_batch and forward_sequence are its one-token products, bit for bit,
// whatever shares the batch, so a sequence gets exactly the logits it gets when fed
// alone token by token; prompts run slower (rwkv-server --batch-invariant).
void set_batch_invariant(bool on);
bool batch_invariant();

}  // namespace rwkv
