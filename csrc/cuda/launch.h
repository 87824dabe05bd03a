// Host entry points of the CUDA kernels, called by cuda/ops_cuda.cpp: one object per activation
// (activation_kernels.cu) and softmax_kernels.cu.
#pragma once

#include <cuda_runtime_api.h>

#include "../activations/elementwise.h"
#include "../activations/mask.h"
#include "../activations/softmax_args.h"

namespace fused_act::cuda {

template <class Act>
struct ActivationKernels {
  static void elementwise(const ElementwiseArgs& a, cudaStream_t stream, int sm_count);
  // Only called for maskable activations (the front checks).
  static void mask(const MaskArgs& a, cudaStream_t stream, int sm_count);
};

void run_softmax(const SoftmaxArgs& a, cudaStream_t stream, int sm_count);  // softmax_kernels.cu

}  // namespace fused_act::cuda
