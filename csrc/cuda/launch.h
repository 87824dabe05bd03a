// Host entry point of the CUDA kernels (kernels.cu), called by cuda/ops_cuda.cpp.
#pragma once

#include <cuda_runtime_api.h>

#include "../activations/elementwise.h"

namespace fused_act::cuda {

void run_elementwise(const ElementwiseArgs& a, cudaStream_t stream, int sm_count);

}  // namespace fused_act::cuda
