// How many threads the matrix products use. One pool serves every model of the
// process; its size is fixed at the first use (the first Model::load).
#pragma once

namespace rwkv {

// 0 = one per physical core. Throws rwkv::Error once the pool is in use with another
// size.
void set_thread_count(unsigned n_threads);
// The count in use, or that the first use will take.
unsigned thread_count();
// Physical cores this process may run on (SMT siblings counted once).
unsigned physical_core_count();

}  // namespace rwkv
