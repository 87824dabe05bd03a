// CUDA registration of the ops: the shared front with a runner that launches on the current
// stream of the tensor's device (the front holds the device guard).
#include <array>
#include <atomic>

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

// Leaves channel sums (the bias gradient) to the front, which reduces with ATen.
bool run_cuda(const ElementwiseArgs& a, const ChannelSum*) {
  const int device = c10::cuda::current_device();
  cuda::run_elementwise(a, c10::cuda::getCurrentCUDAStream(device).stream(), sm_count(device));
  return false;
}

void run_softmax_cuda(const SoftmaxArgs& a) {
  const int device = c10::cuda::current_device();
  cuda::run_softmax(a, c10::cuda::getCurrentCUDAStream(device).stream(), sm_count(device));
}

void run_cuda_mask(const MaskArgs& a) {
  const int device = c10::cuda::current_device();
  cuda::run_mask(a, c10::cuda::getCurrentCUDAStream(device).stream(), sm_count(device));
}

}  // namespace

TORCH_LIBRARY_IMPL(fused_act, CUDA, m) {
  register_impls<&run_cuda>(m);
  register_softmax_impls<&run_softmax_cuda>(m);
  register_mask_impls<&run_cuda_mask>(m);
}

}  // namespace fused_act
