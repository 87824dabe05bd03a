// CUDA kernels of the mask ops: one template per (maskable activation, dtype), body in
// mask_thread.cuh. Free of ATen headers, like kernels.cu.
#include <algorithm>

#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include "launch.h"
#include "mask_thread.cuh"

namespace fused_act::cuda {

// As kernels.cu: grid-stride, 256 threads, at most 8 resident blocks per SM.
constexpr int kMaskThreads = 256;
constexpr int kMaskBlocksPerSm = 8;

template <class Act, class S>
__global__ void __launch_bounds__(kMaskThreads)
    mask_kernel(MaskOperands<S> t, Params<opmath_t<S>> p, bool backward, bool packets) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nthreads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  mask_body<Act>(tid, nthreads, t, p, backward, packets);
}

void run_mask(const MaskArgs& a, cudaStream_t stream, int sm_count) {
  if (a.n == 0) return;
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_maskable(a.act, [&](auto functor) {
      using Act = decltype(functor);
      const MaskOperands<S> t{static_cast<const S*>(a.in), static_cast<S*>(a.out), a.mask, a.n};
      const int64_t blocks = std::min<int64_t>((mask_bytes(a.n) + kMaskThreads - 1) / kMaskThreads,
                                               static_cast<int64_t>(sm_count) * kMaskBlocksPerSm);
      mask_kernel<Act, S><<<static_cast<unsigned>(blocks), kMaskThreads, 0, stream>>>(
          t, make_params<opmath_t<S>>(a.params), a.backward, can_vectorize_mask(t));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace fused_act::cuda
