// softmax / log_softmax CUDA kernels over a contiguous (outer, D, inner) tensor. The per-thread
// work is activations/softmax.h's phase functions (also run on the CPU by
// ops/softmax_simulation.cpp); this file only adds the reductions between them and the launch.
// Deliberately free of ATen headers (compile time).
#include <algorithm>

#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include "launch.h"

namespace fused_act::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;
constexpr int kBlocksPerSm = 8;
// Rows up to this long take one warp each (kThreads / 32 rows per block); longer rows take a
// whole block, so that a 10^5-element row is not read by 32 threads only.
constexpr int64_t kWarpRowMax = 1024;

template <class C>
__device__ C warp_reduce(C v, bool is_max) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const C other = __shfl_xor_sync(0xffffffffu, v, offset);
    v = is_max ? combine_max(v, other) : combine_sum(v, other);
  }
  return v;
}

// Combines v over the kLanes threads that share a row (a warp, or the whole block), and gives
// every one of them the result.
template <int kLanes, class C>
__device__ C group_reduce(C v, bool is_max) {
  v = warp_reduce(v, is_max);
  if constexpr (kLanes == kWarp) {
    return v;
  } else {
    __shared__ C partials[kLanes / kWarp];
    const int warp = threadIdx.x / kWarp;
    if (threadIdx.x % kWarp == 0) partials[warp] = v;
    __syncthreads();
    C r = partials[0];
    for (int w = 1; w < kLanes / kWarp; ++w) r = is_max ? combine_max(r, partials[w]) : combine_sum(r, partials[w]);
    __syncthreads();  // partials is reused by the next reduction
    return r;
  }
}

// inner == 1: kLanes threads per row, rows grid-strided. Every thread of a group runs the same
// number of iterations (kLanes == kThreads: one row per block), as the reductions require.
template <class Op, class S, int kLanes>
__global__ void __launch_bounds__(kThreads) softmax_rows_kernel(SoftmaxArgs a) {
  using C = opmath_t<S>;
  constexpr int kRowsPerBlock = kThreads / kLanes;
  const int lane = threadIdx.x % kLanes;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kLanes;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kRowsPerBlock;
  const int64_t groups = (a.outer + kRowsPerBlock - 1) / kRowsPerBlock * kRowsPerBlock;
  for (int64_t row = first; row < groups; row += step) {
    // Threads past the last row still take part in the reductions, with an empty row.
    SoftmaxRow<S> r = softmax_row<S>(a, row < a.outer ? row : 0, 0);
    if (row >= a.outer) r.n = 0;
    C m = 0;
    if constexpr (Op::kNeedsMax) m = group_reduce<kLanes>(partial_max<S>(lane, kLanes, r), true);
    const C s = group_reduce<kLanes>(partial_sum<Op, S>(lane, kLanes, r, m), false);
    write<Op, S>(lane, kLanes, r, m, Op::row_constant(s));
  }
}

// inner > 1: one thread per row; neighbouring threads take neighbouring inner indices, so each
// step along D is one coalesced access per warp.
template <class Op, class S>
__global__ void __launch_bounds__(kThreads) softmax_columns_kernel(SoftmaxArgs a) {
  const int64_t rows = a.outer * a.inner;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < rows; t += step) {
    softmax_row_serial<Op>(softmax_row<S>(a, t / a.inner, t % a.inner));
  }
}

unsigned grid(int64_t blocks, int sm_count) {
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>(blocks, static_cast<int64_t>(sm_count) * kBlocksPerSm)));
}

}  // namespace

void run_softmax(const SoftmaxArgs& a, cudaStream_t stream, int sm_count) {
  if (a.outer * a.dim * a.inner == 0) return;
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_softmax_op(a, [&](auto op) {
      using Op = decltype(op);
      if (a.inner > 1) {
        const int64_t blocks = (a.outer * a.inner + kThreads - 1) / kThreads;
        softmax_columns_kernel<Op, S><<<grid(blocks, sm_count), kThreads, 0, stream>>>(a);
      } else if (a.dim <= kWarpRowMax) {
        const int64_t blocks = (a.outer + kThreads / kWarp - 1) / (kThreads / kWarp);
        softmax_rows_kernel<Op, S, kWarp><<<grid(blocks, sm_count), kThreads, 0, stream>>>(a);
      } else {
        softmax_rows_kernel<Op, S, kThreads><<<grid(a.outer, sm_count), kThreads, 0, stream>>>(a);
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace fused_act::cuda
