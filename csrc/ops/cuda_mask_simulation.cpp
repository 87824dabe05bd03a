// Test-only op: runs the CUDA mask kernels' per-thread body (cuda/mask_thread.cuh), compiled
// for the host, over a simulated grid of `nthreads` threads on CPU tensors, like
// cuda_simulation.cpp does for the elementwise kernels. Forward: input = x, out = y, mask
// written. Backward: input = grad, out = grad_input, mask read. Returns whether the packet
// path was taken.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../cuda/mask_thread.cuh"
#include "registry.h"

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
  double padded[kMaxParams] = {};
  for (size_t i = 0; i < params.size() && i < kMaxParams; ++i) padded[i] = params[i];
  bool packets = false;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(), "simulate_mask", [&] {
    using S = scalar_t;  // at::Half and at::BFloat16 are the c10 types the kernels use
    visit_maskable(info.id, [&](auto functor) {
      using Act = decltype(functor);
      const cuda::MaskOperands<S> t{static_cast<const S*>(input.const_data_ptr()), static_cast<S*>(out.data_ptr()),
                                    mask.data_ptr<uint8_t>(), out.numel()};
      packets = cuda::can_vectorize_mask(t);
      const Params<opmath_t<S>> p = make_params<opmath_t<S>>(padded);
      for (int64_t tid = 0; tid < nthreads; ++tid) cuda::mask_body<Act>(tid, nthreads, t, p, backward, packets);
    });
  });
  return packets;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fused_act, m) {
  m.def(
      "_simulate_cuda_mask(Tensor(a!) out, Tensor(b!) mask, Tensor input, str act, float[] params, bool backward, "
      "int nthreads) -> bool");
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) { m.impl("_simulate_cuda_mask", &simulate); }

}  // namespace fused_act
