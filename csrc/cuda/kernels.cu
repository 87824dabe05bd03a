// Every CUDA kernel: one template, instantiated for each (activation, kind, form, dtype) by the
// dispatch in activations/elementwise.h. Deliberately free of ATen headers (compile time).
#include <algorithm>
#include <type_traits>

#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include "elementwise_thread.cuh"
#include "launch.h"

namespace fused_act::cuda {

// 256 threads and at most 8 resident blocks per SM of grid-stride work: enough to saturate
// HBM for a streaming kernel without launching millions of tiny blocks on 2^30-element inputs.
constexpr int kThreads = 256;
constexpr int kBlocksPerSm = 8;

template <class S, int N, int M, class Op>
__global__ void __launch_bounds__(kThreads) elementwise_kernel(Operands<S, N, M> t, Op op, bool vectorized) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nthreads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  elementwise_body(tid, nthreads, t, op, vectorized);
}

void run_elementwise(const ElementwiseArgs& a, cudaStream_t stream, int sm_count) {
  if (a.numel() == 0) return;
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_elementwise_op<opmath_t<S>>(a, [&](const auto& op) {
      using Op = std::decay_t<decltype(op)>;
      constexpr int N = Op::kInputs, M = Op::kOutputs;
      const Operands<S, N, M> t = make_operands<S, N, M>(a);
      const bool vectorized = can_vectorize(t);
      const int64_t blocks = std::min<int64_t>((work_items(t, vectorized) + kThreads - 1) / kThreads,
                                               static_cast<int64_t>(sm_count) * kBlocksPerSm);
      elementwise_kernel<S, N, M, Op><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(t, op, vectorized);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace fused_act::cuda
