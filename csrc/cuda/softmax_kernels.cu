// softmax / log_softmax CUDA kernels over a contiguous (outer, D, inner) tensor, launched as
// activations/softmax.h's plan_softmax says. The per-thread work is softmax.h's phase functions
// (partial_stats, write_outputs: also run on the CPU by simulation/softmax_simulation.cpp); this
// file adds only the reductions between lanes and the launches. Each element is read twice in
// the forward (online statistics, then the outputs), not three times.
// Deliberately free of ATen headers (compile time).
#include <algorithm>

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include "../activations/softmax.h"
#include "launch.h"

namespace fused_act::cuda {

namespace {

constexpr int kThreads = kSoftmaxThreads;
constexpr int kWarp = 32;
constexpr int kBlocksPerSm = 8;

// What a launch does with its part [begin, end) of each row.
enum class Phase : int {
  kWhole,        // splits == 1: statistics, reduction, outputs
  kStats,        // splits > 1, first launch: the part's statistics into the workspace
  kWriteMerged,  // splits > 1, second launch: merge every part's statistics, write the part
};

template <class Op, class C>
__device__ RowStats<C> shuffle_merge(RowStats<C> st, int lanes) {
  // xor partners stay inside each aligned group of `lanes` threads of the warp
  for (int off = lanes / 2; off > 0; off /= 2) {
    const RowStats<C> other{__shfl_xor_sync(0xffffffffu, st.m, off), __shfl_xor_sync(0xffffffffu, st.s, off)};
    st = merge_stats<Op>(st, other);
  }
  return st;
}

// The statistics of the whole row group: kLanes threads of one warp, or the whole block.
template <class Op, int kLanes, class C>
__device__ RowStats<C> group_merge(RowStats<C> st) {
  st = shuffle_merge<Op>(st, kLanes < kWarp ? kLanes : kWarp);
  if constexpr (kLanes > kWarp) {
    __shared__ RowStats<C> partials[kLanes / kWarp];
    const int warp = threadIdx.x / kWarp;
    if (threadIdx.x % kWarp == 0) partials[warp] = st;
    __syncthreads();
    st = partials[0];
    for (int w = 1; w < kLanes / kWarp; ++w) st = merge_stats<Op>(st, partials[w]);
    __syncthreads();  // partials is reused by the next row
  }
  return st;
}

template <class Op, class C>
__device__ RowStats<C> merged_parts(const RowStats<C>* parts, int64_t splits) {
  RowStats<C> st = empty_stats<Op, C>();
  for (int64_t k = 0; k < splits; ++k) st = merge_stats<Op>(st, parts[k]);
  return st;
}

// inner == 1: kLanes threads per row (kThreads / kLanes rows per block), rows grid-strided along
// x, a row's parts along y. Every thread of a group runs the same iterations (past the last row
// with an empty row), as the reductions require.
template <class Op, class S, int kLanes, int V>
__global__ void __launch_bounds__(kThreads)
    softmax_rows_kernel(SoftmaxArgs a, Phase phase, int64_t chunk, RowStats<opmath_t<S>>* parts) {
  using C = opmath_t<S>;
  constexpr int kRows = kThreads / kLanes;
  const int lane = threadIdx.x % kLanes;
  const int64_t split = blockIdx.y, splits = gridDim.y;
  const int64_t begin = split * chunk, end = begin + chunk < a.dim ? begin + chunk : a.dim;
  const int64_t padded = (a.outer + kRows - 1) / kRows * kRows;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x / kLanes; row < padded;
       row += static_cast<int64_t>(gridDim.x) * kRows) {
    const bool live = row < a.outer;
    const SoftmaxRow<S> r = softmax_row<S>(a, live ? row : 0, 0);
    RowStats<C> st;
    if (phase == Phase::kWriteMerged) {
      if (!live) continue;
      st = merged_parts<Op>(parts + row * splits, splits);
    } else {
      st = group_merge<Op, kLanes>(live ? partial_stats<Op, V>(r, begin, end, lane, kLanes) : empty_stats<Op, C>());
      if (phase == Phase::kStats) {
        if (live && lane == 0) parts[row * splits + split] = st;
        continue;
      }
    }
    if (live) write_outputs<Op, V>(r, begin, end, lane, kLanes, st);
  }
}

// inner > 1: a block is blockDim.x neighbouring rows (neighbouring inner indices: each step
// along D is one coalesced access) x blockDim.y lanes along D, reduced in shared memory. Row
// groups are grid-strided along x, a row's parts along y.
template <class Op, class S>
__global__ void __launch_bounds__(kThreads)
    softmax_columns_kernel(SoftmaxArgs a, Phase phase, int64_t chunk, RowStats<opmath_t<S>>* parts) {
  using C = opmath_t<S>;
  __shared__ RowStats<C> partials[kThreads];
  const int cols = blockDim.x, lanes = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int64_t split = blockIdx.y, splits = gridDim.y;
  const int64_t begin = split * chunk, end = begin + chunk < a.dim ? begin + chunk : a.dim;
  const int64_t rows = a.outer * a.inner, groups = (rows + cols - 1) / cols;
  for (int64_t group = blockIdx.x; group < groups; group += gridDim.x) {
    const int64_t t = group * cols + tx;
    const bool live = t < rows;
    const SoftmaxRow<S> r = softmax_row<S>(a, live ? t / a.inner : 0, live ? t % a.inner : 0);
    RowStats<C> st;
    if (phase == Phase::kWriteMerged) {
      if (!live) continue;
      st = merged_parts<Op>(parts + t * splits, splits);
    } else {
      partials[ty * cols + tx] = live ? partial_stats<Op, 1>(r, begin, end, ty, lanes) : empty_stats<Op, C>();
      __syncthreads();
      for (int off = lanes / 2; off > 0; off /= 2) {
        if (ty < off)
          partials[ty * cols + tx] = merge_stats<Op>(partials[ty * cols + tx], partials[(ty + off) * cols + tx]);
        __syncthreads();
      }
      st = partials[tx];
      __syncthreads();  // partials is reused by the next group
      if (phase == Phase::kStats) {
        if (live && ty == 0) parts[t * splits + split] = st;
        continue;
      }
    }
    if (live) write_outputs<Op, 1>(r, begin, end, ty, lanes, st);
  }
}

unsigned grid_x(int64_t groups, int64_t splits, int sm_count) {
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(sm_count) * kBlocksPerSm / splits);
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(groups, cap)));
}

// Runs launch(phase) once (splits == 1) or twice around a workspace of per-part statistics.
template <class C, class Launch>
void run_phases(const SoftmaxPlan& p, int64_t rows, Launch&& launch) {
  if (p.splits == 1) {
    launch(Phase::kWhole, nullptr);
    return;
  }
  // Stream-ordered scratch from torch's caching allocator, freed (for reuse on this stream)
  // when the launches are queued.
  const c10::DataPtr ws = c10::cuda::CUDACachingAllocator::get()->allocate(rows * p.splits * sizeof(RowStats<C>));
  auto* parts = static_cast<RowStats<C>*>(ws.get());
  launch(Phase::kStats, parts);
  launch(Phase::kWriteMerged, parts);
}

template <class Op, class S, int kLanes>
void launch_rows(const SoftmaxArgs& a, const SoftmaxPlan& p, cudaStream_t stream, int sm_count) {
  using C = opmath_t<S>;
  const dim3 grid(grid_x((a.outer + kThreads / kLanes - 1) / (kThreads / kLanes), p.splits, sm_count),
                  static_cast<unsigned>(p.splits));
  run_phases<C>(p, a.outer, [&](Phase phase, RowStats<C>* parts) {
    constexpr int kVec = 16 / sizeof(S);
    if (p.vec == kVec) {
      softmax_rows_kernel<Op, S, kLanes, kVec><<<grid, kThreads, 0, stream>>>(a, phase, p.chunk, parts);
    } else {
      softmax_rows_kernel<Op, S, kLanes, 1><<<grid, kThreads, 0, stream>>>(a, phase, p.chunk, parts);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace

void run_softmax(const SoftmaxArgs& a, cudaStream_t stream, int sm_count) {
  if (a.outer * a.dim * a.inner == 0) return;
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    using C = opmath_t<S>;
    const SoftmaxPlan p = plan_softmax(a, sizeof(S), sm_count);
    visit_softmax_op(a, [&](auto op) {
      using Op = decltype(op);
      if (p.columns) {
        const int64_t rows = a.outer * a.inner;
        const dim3 block(p.cols, p.lanes);
        const dim3 grid(grid_x((rows + p.cols - 1) / p.cols, p.splits, sm_count), static_cast<unsigned>(p.splits));
        run_phases<C>(p, rows, [&](Phase phase, RowStats<C>* parts) {
          softmax_columns_kernel<Op, S><<<grid, block, 0, stream>>>(a, phase, p.chunk, parts);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      } else if (p.lanes == 4) {
        launch_rows<Op, S, 4>(a, p, stream, sm_count);
      } else if (p.lanes == kWarp) {
        launch_rows<Op, S, kWarp>(a, p, stream, sm_count);
      } else {
        launch_rows<Op, S, kThreads>(a, p, stream, sm_count);
      }
    });
  });
}

}  // namespace fused_act::cuda
