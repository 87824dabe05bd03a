// Test-only op: runs the CUDA mask kernels' per-thread body (cuda/mask_thread.cuh), compiled
// for the host (simulation.h), over a simulated grid of `nthreads` threads on CPU tensors. Forward: input = x, out = y,
// mask written. Backward: input = grad, out = grad_input, mask read. Returns whether the packet path was taken.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../ops/front.h"
#include "../ops/mask_ops.h"
#include "simulation.h"

namespace fused_act {

namespace {

bool simulate(at::Tensor& out, at::Tensor& mask, const at::Tensor& input, c10::string_view act,
              c10::ArrayRef<double> params, bool backward, int64_t nthreads) {
  const ActivationInfo& info = find_activation(act);
  check_params(info, params);
  TORCH_CHECK(info.maskable, act, " is not maskable");
  TORCH_CHECK(nthreads > 0, "nthreads must be positive");
  TORCH_CHECK(out.is_cpu() && out.is_contiguous() && input.is_cpu() && input.is_contiguous() &&
                  input.numel() == out.numel() && input.scalar_type() == out.scalar_type(),
              "out and input must be contiguous CPU tensors of one size and dtype");
  TORCH_CHECK(mask.is_cpu() && mask.is_contiguous() && mask.scalar_type() == at::kByte &&
                  mask.numel() == mask_bytes(out.numel()),
              "mask must be a contiguous uint8 CPU tensor of ceil(numel / 8) bytes");
  MaskArgs a = make_mask_args(info.id, backward, checked_dtype(out, "_simulate_cuda_mask"), out.numel(), params);
  a.in = input.const_data_ptr();
  a.out = out.data_ptr();
  a.mask = mask.data_ptr<uint8_t>();
  return simulate_cuda_mask(a, nthreads);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fused_act, m) {
  m.def(
      "_simulate_cuda_mask(Tensor(a!) out, Tensor(b!) mask, Tensor input, str act, float[] params, bool backward, "
      "int nthreads) -> bool");
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) { m.impl("_simulate_cuda_mask", &simulate); }

}  // namespace fused_act
