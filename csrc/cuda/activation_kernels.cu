// The CUDA kernels of one activation: setup.py compiles this file once per activation in
// activations/list.h, defining FUSED_ACT_ACTIVATION (the functor, Gelu) and
// FUSED_ACT_ACTIVATION_HEADER ("activations/act/gelu.h"), so that a change to one functor
// rebuilds only that activation's objects. Elementwise kernels are one template instantiated
// for each (kind, form, dtype) by activations/elementwise.h's dispatch; mask kernels for each
// dtype when the activation is maskable. Bodies in elementwise_thread.cuh and mask_thread.cuh.
// Deliberately free of ATen headers (compile time).
#include FUSED_ACT_ACTIVATION_HEADER

#include <algorithm>
#include <type_traits>

#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include "elementwise_thread.cuh"
#include "launch.h"
#include "mask_thread.cuh"

namespace fused_act::cuda {

namespace {

// 256 threads and at most 8 resident blocks per SM of grid-stride work: enough to saturate
// HBM for a streaming kernel without launching millions of tiny blocks on 2^30-element inputs.
constexpr int kThreads = 256;
constexpr int kBlocksPerSm = 8;

int64_t grid_size(int64_t items, int sm_count) {
  return std::min<int64_t>((items + kThreads - 1) / kThreads, static_cast<int64_t>(sm_count) * kBlocksPerSm);
}

}  // namespace

template <class S, int N, int M, class Op>
__global__ void __launch_bounds__(kThreads) elementwise_kernel(Operands<S, N, M> t, Op op, bool vectorized, Items it) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nthreads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  elementwise_body(tid, nthreads, t, op, vectorized, it);
}

template <class Act, class S>
__global__ void __launch_bounds__(kThreads)
    mask_kernel(MaskOperands<S> t, Params<opmath_t<S>> p, bool backward, bool packets) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nthreads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  mask_body<Act>(tid, nthreads, t, p, backward, packets);
}

template <class Act>
void ActivationKernels<Act>::elementwise(const ElementwiseArgs& a, cudaStream_t stream, int sm_count) {
  if (a.numel() == 0) return;
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_elementwise_op<Act, opmath_t<S>>(a, [&](const auto& op) {
      using Op = std::decay_t<decltype(op)>;
      constexpr int N = Op::kInputs, M = Op::kOutputs;
      const Operands<S, N, M> t = make_operands<S, N, M>(a);
      const bool vectorized = can_vectorize(t);
      const Items it = plan_items(t, vectorized);
      const int64_t blocks = grid_size(it.total, sm_count);
      elementwise_kernel<S, N, M, Op><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(t, op, vectorized, it);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

template <class Act>
void ActivationKernels<Act>::mask(const MaskArgs& a, cudaStream_t stream, int sm_count) {
  if constexpr (is_maskable<Act>()) {
    if (a.n == 0) return;
    visit_dtype(a.dtype, [&](auto storage) {
      using S = decltype(storage);
      const MaskOperands<S> t{static_cast<const S*>(a.in), static_cast<S*>(a.out), a.mask, a.n};
      mask_kernel<Act, S><<<static_cast<unsigned>(grid_size(mask_bytes(a.n), sm_count)), kThreads, 0, stream>>>(
          t, make_params<opmath_t<S>>(a.params), a.backward, can_vectorize_mask(t));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
}

template struct ActivationKernels<act::FUSED_ACT_ACTIVATION>;

}  // namespace fused_act::cuda
