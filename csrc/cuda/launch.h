// Host entry points of the CUDA kernels, called by cuda/ops_cuda.cpp: two objects per activation
// (activation_kernels.cu) and softmax_kernels.cu.
#pragma once

#include <cstddef>

#include <cuda_runtime_api.h>

#include "../activations/elementwise.h"
#include "../activations/mask.h"
#include "../activations/softmax_args.h"

namespace fused_act::cuda {

// Device scratch memory for one launch (the partial sums per channel): ops_cuda.cpp hands out
// torch's caching allocator's memory and holds it until the runner returns (stream-ordered, so the
// launches queued before that may use it). Not allocated here: CUDACachingAllocator.h cost every
// kernel object ~4 s of compile time (7.3 s against 3.2 s for a one-line kernel with it).
struct Scratch {
  virtual void* get(size_t bytes) = 0;

 protected:
  ~Scratch() = default;
};

// One activation's kernels for float and double (kReduced = false) or for half and bfloat16
// (kReduced = true): two objects, the second compiled with CUDA's fast division and with __expf /
// __logf for exp and log (activations/math.h), where rounding to the output type hides their error.
template <class Act, bool kReduced>
struct ActivationKernels {
  // With `sum`, also write the sums per channel into sum->sums: output 0's (bias_act's backward),
  // or every output's of a reduce-only op, which stores nothing (ChannelSum, elementwise.h).
  static void elementwise(const ElementwiseArgs& a, const ChannelSum* sum, Scratch& scratch, cudaStream_t stream,
                          int sm_count);
  // Only called for maskable activations (the front checks).
  static void mask(const MaskArgs& a, cudaStream_t stream, int sm_count);
};

constexpr bool is_reduced_precision(DType d) { return d == DType::kHalf || d == DType::kBFloat16; }

void run_softmax(const SoftmaxArgs& a, cudaStream_t stream, int sm_count);  // softmax_kernels.cu

}  // namespace fused_act::cuda
