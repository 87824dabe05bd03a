// The CUDA kernel's per-thread body run on the host (cuda_simulation.cpp), for tests.
#pragma once

#include <cstdint>

#include "../activations/elementwise.h"

namespace fused_act {

// Runs threads [0, nthreads) of the CUDA elementwise kernel's grid for this launch, or only
// thread `only_thread` when it is >= 0. Returns whether the 128-bit packet path was taken.
bool simulate_cuda_launch(const ElementwiseArgs& a, int64_t nthreads, int64_t only_thread = -1);

// While > 0, the CPU registration of every op runs simulate_cuda_launch with this many threads
// instead of the CPU kernels, so the whole op suite can exercise the CUDA thread body
// (set by the test-only op fused_act::_set_cuda_simulation).
int64_t simulated_cuda_threads();

}  // namespace fused_act
