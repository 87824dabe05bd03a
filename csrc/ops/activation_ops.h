// The device-independent front of the activation ops: argument checks, output allocation,
// memory layout, then one call to a backend's elementwise runner. cpu and cuda each register
// these with their runner (register_activation_impls) at the bottom of their own file.
#pragma once

#include <string_view>

#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../activations/elementwise.h"

namespace fused_act {

using Runner = void (*)(const ElementwiseArgs&);

at::Tensor activation(const at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, Runner run);
void activation_(at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, Runner run);
at::Tensor activation_backward(const at::Tensor& grad, const at::Tensor& saved, std::string_view act,
                               c10::ArrayRef<double> params, bool from_output, Runner run);
at::Tensor activation_double_backward(const at::Tensor& grad_grad, const at::Tensor& grad,
                                      const at::Tensor& saved, std::string_view act,
                                      c10::ArrayRef<double> params, bool from_output, Runner run);

template <Runner run>
void register_activation_impls(torch::Library& m) {
  m.impl("activation", [](const at::Tensor& x, c10::string_view act, c10::ArrayRef<double> params) {
    return activation(x, act, params, run);
  });
  m.impl("activation_", [](at::Tensor& x, c10::string_view act, c10::ArrayRef<double> params) {
    activation_(x, act, params, run);
  });
  m.impl("activation_backward", [](const at::Tensor& grad, const at::Tensor& saved, c10::string_view act,
                                   c10::ArrayRef<double> params, bool from_output) {
    return activation_backward(grad, saved, act, params, from_output, run);
  });
  m.impl("activation_double_backward",
         [](const at::Tensor& grad_grad, const at::Tensor& grad, const at::Tensor& saved,
            c10::string_view act, c10::ArrayRef<double> params, bool from_output) {
           return activation_double_backward(grad_grad, grad, saved, act, params, from_output, run);
         });
}

}  // namespace fused_act
