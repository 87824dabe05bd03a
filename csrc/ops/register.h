// Registers every op front for one backend: register_impls<&my_runner>(m) inside that
// backend's TORCH_LIBRARY_IMPL (ops/library.cpp for CPU, cuda/ops_cuda.cpp for CUDA).
#pragma once

#include <torch/library.h>

#include "activation_ops.h"

namespace fused_act {

template <Runner run>
void register_impls(torch::Library& m) {
  using at::Tensor;
  using c10::ArrayRef;
  using c10::string_view;
  m.impl("activation",
         [](const Tensor& x, string_view act, ArrayRef<double> params) { return activation(x, act, params, run); });
  m.impl("activation_", [](Tensor& x, string_view act, ArrayRef<double> params) { activation_(x, act, params, run); });
  m.impl("activation_backward",
         [](const Tensor& grad, const Tensor& saved, string_view act, ArrayRef<double> params, bool from_output) {
           return activation_backward(grad, saved, act, params, from_output, run);
         });
  m.impl("activation_double_backward", [](const Tensor& grad_grad, const Tensor& grad, const Tensor& saved,
                                          string_view act, ArrayRef<double> params, bool from_output) {
    return activation_double_backward(grad_grad, grad, saved, act, params, from_output, run);
  });
  m.impl("bias_act", [](const Tensor& x, const Tensor& bias, int64_t dim, string_view act, ArrayRef<double> params) {
    return bias_act(x, bias, dim, act, params, run);
  });
  m.impl("bias_act_backward", [](const Tensor& grad, const Tensor& saved, const Tensor& bias, int64_t dim,
                                 string_view act, ArrayRef<double> params, bool from_output) {
    return bias_act_backward(grad, saved, bias, dim, act, params, from_output, run);
  });
  m.impl("glu", [](const Tensor& x, int64_t dim, bool gate_first, string_view act, ArrayRef<double> params) {
    return glu(x, dim, gate_first, act, params, run);
  });
  m.impl("glu_backward",
         [](const Tensor& grad, const Tensor& x, int64_t dim, bool gate_first, string_view act,
            ArrayRef<double> params) { return glu_backward(grad, x, dim, gate_first, act, params, run); });
  m.impl("gated", [](const Tensor& a, const Tensor& u, string_view act, ArrayRef<double> params) {
    return gated(a, u, act, params, run);
  });
  m.impl("gated_backward", [](const Tensor& grad, const Tensor& a, const Tensor& u, string_view act,
                              ArrayRef<double> params) { return gated_backward(grad, a, u, act, params, run); });
  using OptTensor = c10::optional<Tensor>;
  m.impl("batch_norm_act", [](const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                              const OptTensor& running_mean, const OptTensor& running_var, bool training,
                              double momentum, double eps, string_view act, ArrayRef<double> params) {
    return batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps, act, params, run);
  });
  m.impl("batch_norm_act_backward",
         [](const Tensor& grad, const Tensor& x, const OptTensor& weight, const OptTensor& bias,
            const Tensor& save_mean, const Tensor& save_invstd, bool training, string_view act, ArrayRef<double> params,
            std::array<bool, 3> output_mask) {
           return batch_norm_act_backward(grad, x, weight, bias, save_mean, save_invstd, training, act, params,
                                          output_mask, run);
         });
}

}  // namespace fused_act
