// The device-independent front of the softmax ops: argument checks, the (outer, D, inner)
// layout, output allocation, then one call to a backend's runner. cpu and cuda register these
// with their runner (register_softmax_impls) at the bottom of their own file.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../activations/softmax_args.h"

namespace fused_act {

using SoftmaxRunner = void (*)(const SoftmaxArgs&);

at::Tensor softmax(const at::Tensor& x, int64_t dim, bool log, SoftmaxRunner run);
at::Tensor softmax_backward(const at::Tensor& grad, const at::Tensor& y, int64_t dim, bool log, SoftmaxRunner run);

// Checks and layout only, shared with the test-only simulation op (ops/softmax_simulation.cpp):
// the arguments for a contiguous `in` (and `grad`) and a contiguous `out` of the same shape.
SoftmaxArgs softmax_args(const at::Tensor& in, const at::Tensor* grad, const at::Tensor& out, int64_t dim, bool log);

template <SoftmaxRunner run>
void register_softmax_impls(torch::Library& m) {
  m.impl("softmax", [](const at::Tensor& x, int64_t dim, bool log) { return softmax(x, dim, log, run); });
  m.impl("softmax_backward", [](const at::Tensor& grad, const at::Tensor& y, int64_t dim, bool log) {
    return softmax_backward(grad, y, dim, log, run);
  });
}

}  // namespace fused_act
