// The CUDA kernels of one activation: setup.py compiles this file twice per activation in
// activations/list.h, defining FUSED_ACT_ACTIVATION (the functor, Gelu) and
// FUSED_ACT_ACTIVATION_HEADER ("activations/act/gelu.h"), so that a change to one functor
// rebuilds only that activation's objects: once for float and double, once for half and
// bfloat16 with FUSED_ACT_CUDA_REDUCED_PRECISION and fast division (launch.h). Elementwise kernels are one template
// instantiated for each (kind, form, dtype) by activations/elementwise.h's dispatch; mask kernels for each dtype when
// the activation is maskable. Bodies in elementwise_thread.cuh and mask_thread.cuh. Deliberately free of ATen headers
// (compile time).
#include FUSED_ACT_ACTIVATION_HEADER

#include <algorithm>
#include <type_traits>

#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include "elementwise_thread.cuh"
#include "launch.h"
#include "mask_thread.cuh"

namespace fused_act::cuda {

#ifdef FUSED_ACT_CUDA_REDUCED_PRECISION
constexpr bool kReduced = true;
#else
constexpr bool kReduced = false;
#endif

namespace {

// Calls f(scalar_t{}) for the storage types this object holds kernels for.
template <class F>
void visit_own_dtype(DType d, F&& f) {
  if constexpr (kReduced) {
    if (d == DType::kHalf) {
      f(c10::Half{});
    } else {
      f(c10::BFloat16{});
    }
  } else if (d == DType::kDouble) {
    f(double{});
  } else {
    f(float{});
  }
}

// 256 threads and at most kBlocksPerSm resident blocks per SM of grid-stride work.
constexpr int kThreads = 256;

int64_t grid_size(int64_t items, int sm_count) {
  return std::min<int64_t>((items + kThreads - 1) / kThreads, static_cast<int64_t>(sm_count) * kBlocksPerSm);
}

// flat_kernel: ATen's 128-thread blocks, a thread per packet (flat_thread), at least one block for
// the scalar head and tail, the grid capped at gridDim.x's limit (the loop strides beyond it).
constexpr int kFlatThreads = 128;

template <class S>
int64_t flat_grid_size(int64_t elements) {
  const int64_t packets = elements / kPacketElems<S> + 1;
  return std::min<int64_t>((packets + kFlatThreads - 1) / kFlatThreads, int64_t{0x7fffffff});
}

}  // namespace

template <class S, int N, int M, class Op>
__global__ void __launch_bounds__(kThreads) elementwise_kernel(Operands<S, N, M> t, Op op, bool vectorized, Items it) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nthreads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  strided_body(tid, nthreads, t, op, vectorized, it);
}

template <class S, int N, int M, class Op>
__global__ void __launch_bounds__(kFlatThreads) flat_kernel(Operands<S, N, M> t, Op op) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nthreads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  flat_thread<kPacketElems<S>>(tid, nthreads, t, op);
}

// The sum kernels write the partials of each summed output m (kSummedOutputs) from m *
// SumPlan::partials(rows, cols) on.
template <int W, class S, int N, int M, class Op>
__global__ void __launch_bounds__(kSumThreads)
    row_sum_kernel(Operands<S, N, M> t, Op op, SumPlan p, opmath_t<S>* partials) {
  using C = opmath_t<S>;
  constexpr int K = kSummedOutputs<Op>;
  constexpr int kWarps = kSumThreads / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t segments = t.rows * p.groups;
  // w is the same for a whole warp, so every lane reaches the shuffles together.
  for (int64_t w = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / kWarpSize; w < segments;
       w += static_cast<int64_t>(gridDim.x) * kWarps) {
    const int64_t r = w / p.groups;
    C acc[K];
    row_segment_thread<W>(lane, t, op, p, r, w - r * p.groups, acc);
    for (int m = 0; m < K; ++m) {
      for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
        acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], offset);
      }
      if (lane == 0) partials[m * segments + w] = acc[m];
    }
  }
}

template <int W, class S, int N, int M, class Op>
__global__ void __launch_bounds__(kSumThreads)
    column_sum_kernel(Operands<S, N, M> t, Op op, SumPlan p, opmath_t<S>* partials) {
  using C = opmath_t<S>;
  constexpr int K = kSummedOutputs<Op>;
  __shared__ C shared[kSumThreads * K * W];
  const int64_t q = static_cast<int64_t>(blockIdx.x) * p.block_x + threadIdx.x;
  C* mine = shared + (threadIdx.y * p.block_x + threadIdx.x) * K * W;
  for (int64_t chunk = blockIdx.y; chunk < p.groups; chunk += gridDim.y) {
    C acc[K * W];
    column_chunk_thread<W>(q, threadIdx.y, t, op, p, chunk, acc);
    for (int i = 0; i < K * W; ++i) mine[i] = acc[i];
    __syncthreads();
    if (threadIdx.y == 0 && q < p.items) {
      for (int m = 0; m < K; ++m) {
        for (int j = 0; j < W; ++j) {
          C total(0);
          for (int y = 0; y < p.block_y; ++y) total += shared[(y * p.block_x + threadIdx.x) * K * W + m * W + j];
          partials[(m * p.groups + chunk) * t.cols + q * W + j] = total;
        }
      }
    }
    __syncthreads();  // shared is reused by the next chunk
  }
}

namespace {  // the same in every activation's object: internal, so that each keeps its own

template <int K, class C>
__global__ void __launch_bounds__(kSumThreads)
    channel_total_kernel(const C* partials, SumPlan p, int64_t rows, int64_t channels, C* sums) {
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (ch < channels) channel_total_thread<K>(ch, partials, p, rows, channels, sums);
}

}  // namespace

// The outputs and their sums per channel in two launches around a workspace of partial sums.
template <class S, int N, int M, class Op>
void launch_channel_sum(const Operands<S, N, M>& t, const Op& op, const ChannelSum& sum, Scratch& scratch,
                        cudaStream_t stream, int sm_count) {
  using C = opmath_t<S>;
  constexpr int W = kPacketElems<S>;
  constexpr int K = kSummedOutputs<Op>;
  const SumPlan p = plan_channel_sum<Op>(t, sum.per_col, sm_count);
  C* partials = static_cast<C*>(scratch.get(K * p.partials(t.rows, t.cols) * sizeof(C)));
  const dim3 grid(static_cast<unsigned>(p.grid_x), static_cast<unsigned>(p.grid_y));
  const dim3 block(p.block_x, p.block_y);
  if (sum.per_col) {
    if (p.vectorized) {
      column_sum_kernel<W, S, N, M, Op><<<grid, block, 0, stream>>>(t, op, p, partials);
    } else {
      column_sum_kernel<1, S, N, M, Op><<<grid, block, 0, stream>>>(t, op, p, partials);
    }
  } else if (p.vectorized) {
    row_sum_kernel<W, S, N, M, Op><<<grid, block, 0, stream>>>(t, op, p, partials);
  } else {
    row_sum_kernel<1, S, N, M, Op><<<grid, block, 0, stream>>>(t, op, p, partials);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  channel_total_kernel<K, C><<<static_cast<unsigned>(ceil_div(sum.channels, kSumThreads)), kSumThreads, 0, stream>>>(
      partials, p, t.rows, sum.channels, static_cast<C*>(sum.sums));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <class Act, class S>
__global__ void __launch_bounds__(kThreads)
    mask_kernel(MaskOperands<S> t, Params<opmath_t<S>> p, bool backward, bool packets) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nthreads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  mask_body<Act>(tid, nthreads, t, p, backward, packets);
}

template <class Act, bool R>
void ActivationKernels<Act, R>::elementwise(const ElementwiseArgs& a, const ChannelSum* sum, Scratch& scratch,
                                            cudaStream_t stream, int sm_count) {
  if (a.numel() == 0) return;
  visit_own_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_elementwise_op<Act, opmath_t<S>>(a, [&](const auto& op) {
      using Op = std::decay_t<decltype(op)>;
      constexpr int N = Op::kInputs, M = kStoredOutputs<Op>;
      const Operands<S, N, M> t = make_operands<S, N, M>(a);
      if constexpr (SumsChannels<Op>::value) {
        if (sum != nullptr) {
          launch_channel_sum(t, op, *sum, scratch, stream, sm_count);
          return;
        }
      }
      TORCH_INTERNAL_ASSERT(sum == nullptr, "a channel sum for an op that has none");
      // A reduce-only op stores nothing, so without its sums there is nothing to launch (and no
      // plain kernel is instantiated for it).
      TORCH_INTERNAL_ASSERT(!ReducesOnly<Op>::value, "a reduce-only op needs its sums");
      if constexpr (!ReducesOnly<Op>::value) {
        const bool vectorized = can_vectorize<Op>(t);
        const Items it = plan_items(t, vectorized);
        if (it.flat) {
          const auto blocks = static_cast<unsigned>(flat_grid_size<S>(t.cols));
          flat_kernel<S, N, M, Op><<<blocks, kFlatThreads, 0, stream>>>(t, op);
        } else {
          const auto blocks = static_cast<unsigned>(grid_size(it.total, sm_count));
          elementwise_kernel<S, N, M, Op><<<blocks, kThreads, 0, stream>>>(t, op, vectorized, it);
        }
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    });
  });
}

template <class Act, bool R>
void ActivationKernels<Act, R>::mask(const MaskArgs& a, cudaStream_t stream, int sm_count) {
  if constexpr (is_maskable<Act>()) {
    if (a.n == 0) return;
    visit_own_dtype(a.dtype, [&](auto storage) {
      using S = decltype(storage);
      const MaskOperands<S> t{static_cast<const S*>(a.in), static_cast<S*>(a.out), a.mask, a.n};
      mask_kernel<Act, S><<<static_cast<unsigned>(grid_size(mask_bytes(a.n), sm_count)), kThreads, 0, stream>>>(
          t, make_params<opmath_t<S>>(a.params), a.backward, can_vectorize_mask(t));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
}

template struct ActivationKernels<act::FUSED_ACT_ACTIVATION, kReduced>;

}  // namespace fused_act::cuda
