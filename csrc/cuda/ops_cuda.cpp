// CUDA registration of the ops: the shared front with a runner that launches on the current
// stream of the tensor's device (the front holds the device guard).
#include <array>
#include <atomic>

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include "../ops/register.h"
#include "../ops/softmax_ops.h"
#include "../ops/mask_ops.h"
#include "launch.h"

namespace fused_act {

namespace {

int sm_count(int device) {
  static std::array<std::atomic<int>, 64> cache{};
  if (device >= 0 && device < static_cast<int>(cache.size()) && cache[device] > 0) return cache[device];
  int count = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  if (device >= 0 && device < static_cast<int>(cache.size())) cache[device] = count;
  return count;
}

using ElementwiseKernel = void (*)(const ElementwiseArgs&, const ChannelSum*, cuda::Scratch&, cudaStream_t, int);
using MaskKernel = void (*)(const MaskArgs&, cudaStream_t, int);

// Indexed by [half or bfloat16][ActId]; each entry lives in one of that activation's two
// objects (activation_kernels.cu).
#define FA_ELEMENTWISE(F) &cuda::ActivationKernels<act::F, R>::elementwise,
#define FA_MASK(F) &cuda::ActivationKernels<act::F, R>::mask,
template <bool R>
constexpr ElementwiseKernel kElementwise[] = {FUSED_ACT_FOR_EACH_ACTIVATION(FA_ELEMENTWISE)};
template <bool R>
constexpr MaskKernel kMask[] = {FUSED_ACT_FOR_EACH_ACTIVATION(FA_MASK)};
#undef FA_ELEMENTWISE
#undef FA_MASK

// Scratch from torch's caching allocator, returned to it (for reuse on this stream) when the
// runner returns.
struct CachingScratch final : cuda::Scratch {
  c10::DataPtr memory;
  void* get(size_t bytes) override {
    memory = c10::cuda::CUDACachingAllocator::get()->allocate(bytes);
    return memory.get();
  }
};

void run_cuda(const ElementwiseArgs& a, const ChannelSum* sum) {
  const int device = c10::cuda::current_device();
  const auto& kernels = cuda::is_reduced_precision(a.dtype) ? kElementwise<true> : kElementwise<false>;
  CachingScratch scratch;
  kernels[static_cast<int>(a.act)](a, sum, scratch, c10::cuda::getCurrentCUDAStream(device).stream(), sm_count(device));
}

void run_softmax_cuda(const SoftmaxArgs& a) {
  const int device = c10::cuda::current_device();
  cuda::run_softmax(a, c10::cuda::getCurrentCUDAStream(device).stream(), sm_count(device));
}

void run_cuda_mask(const MaskArgs& a) {
  const int device = c10::cuda::current_device();
  const auto& kernels = cuda::is_reduced_precision(a.dtype) ? kMask<true> : kMask<false>;
  kernels[static_cast<int>(a.act)](a, c10::cuda::getCurrentCUDAStream(device).stream(), sm_count(device));
}

}  // namespace

TORCH_LIBRARY_IMPL(fused_act, CUDA, m) {
  register_impls<&run_cuda>(m);
  register_softmax_impls<&run_softmax_cuda>(m);
  register_mask_impls<&run_cuda_mask>(m);
}

}  // namespace fused_act
