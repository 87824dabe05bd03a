// Host entry points of the CUDA kernels (kernels.cu, softmax_kernels.cu), called by cuda/ops_cuda.cpp.
#pragma once

#include <cuda_runtime_api.h>

#include "../activations/elementwise.h"
#include "../activations/softmax.h"
#include "../activations/mask.h"

namespace fused_act::cuda {

void run_elementwise(const ElementwiseArgs& a, cudaStream_t stream, int sm_count);
void run_softmax(const SoftmaxArgs& a, cudaStream_t stream, int sm_count);  // softmax_kernels.cu
void run_mask(const MaskArgs& a, cudaStream_t stream, int sm_count);  // mask_kernels.cu

}  // namespace fused_act::cuda
