// The CUDA kernels' per-thread bodies run on the host over a simulated grid, for tests: every
// thread's share of the work, the 128-bit packet path, the scalar path (misaligned pointers,
// rows of odd length) and the tail run exactly as on the GPU, minus concurrency. No torch
// headers: each activation's instantiations are compiled in its own object
// (activation_threads.cpp), like its kernels.
#pragma once

#include <cstdint>

#include "../activations/elementwise.h"
#include "../activations/mask.h"

namespace fused_act {

template <class Act>
struct SimulatedThreads {
  // Threads [0, nthreads) of the elementwise kernel's grid for this launch, or only thread
  // `only_thread` when it is >= 0. Returns whether the 128-bit packet path was taken.
  // With `sum`, the channel-sum kernels instead: every warp / block of the launch a GPU with
  // kSimulatedSms SMs would run (nthreads and only_thread do not apply), then the second pass,
  // which writes sum->sums as on the GPU (sums[m * channels + ch] for a reduce-only op).
  static bool elementwise(const ElementwiseArgs& a, int64_t nthreads, int64_t only_thread, const ChannelSum* sum);
  // The mask kernel's grid (maskable activations only). Returns whether packets were used.
  static bool mask(const MaskArgs& a, int64_t nthreads);
};

// SimulatedThreads<Act>::elementwise for the launch's activation.
bool simulate_cuda_launch(const ElementwiseArgs& a, int64_t nthreads, int64_t only_thread = -1,
                          const ChannelSum* sum = nullptr);

// The SM count the simulated channel-sum launches plan for: small, so that the tests' small
// tensors already split rows into segments and columns into chunks of rows.
constexpr int kSimulatedSms = 1;
bool simulate_cuda_mask(const MaskArgs& a, int64_t nthreads);

// While > 0, the CPU registration of every op runs simulate_cuda_launch with this many threads
// instead of the CPU kernels, so the whole op suite can exercise the CUDA thread body
// (set by the test-only op fused_act::_set_cuda_simulation).
int64_t simulated_cuda_threads();

}  // namespace fused_act
