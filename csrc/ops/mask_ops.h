// The device-independent front of the mask ops (activations/mask.h): checks, layout, output
// allocation, then one call to a backend's mask runner. cpu and cuda register these with their
// runner (register_mask_impls), like activation_ops.h.
#pragma once

#include <string_view>
#include <tuple>

#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../activations/mask.h"

namespace fused_act {

using MaskRunner = void (*)(const MaskArgs&);

// A mask launch over n elements; the front fills in the pointers.
MaskArgs make_mask_args(ActId act, bool backward, DType dtype, int64_t n, c10::ArrayRef<double> params);

// (y, mask): y = f(x), laid out as x when x is dense, else contiguous; mask bit k belongs to
// element k of y in memory order.
std::tuple<at::Tensor, at::Tensor> activation_mask(const at::Tensor& x, std::string_view act,
                                                   c10::ArrayRef<double> params, MaskRunner run);
// x = f(x); returns the mask (in x's memory order when x is dense).
at::Tensor activation_mask_(at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, MaskRunner run);
// grad * f' read from the mask: bit k belongs to element k of grad in memory order (row-major
// when grad is not dense); the result has grad's layout.
at::Tensor activation_mask_backward(const at::Tensor& grad, const at::Tensor& mask, std::string_view act,
                                    c10::ArrayRef<double> params, MaskRunner run);

template <MaskRunner run>
void register_mask_impls(torch::Library& m) {
  m.impl("activation_mask", [](const at::Tensor& x, c10::string_view act, c10::ArrayRef<double> params) {
    return activation_mask(x, act, params, run);
  });
  m.impl("activation_mask_", [](at::Tensor& x, c10::string_view act, c10::ArrayRef<double> params) {
    return activation_mask_(x, act, params, run);
  });
  m.impl("activation_mask_backward",
         [](const at::Tensor& grad, const at::Tensor& mask, c10::string_view act, c10::ArrayRef<double> params) {
           return activation_mask_backward(grad, mask, act, params, run);
         });
}

}  // namespace fused_act
