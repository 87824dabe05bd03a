// The fronts of the torch ops (argument checks, output allocation, memory layout, launches),
// device-independent: cpu and cuda register them with their own Runner (register.h).
#pragma once

#include <array>
#include <string_view>

#include <ATen/core/Tensor.h>

#include "front.h"

namespace fused_act {

// activation, activation_, activation_backward, activation_double_backward (activation_ops.cpp)
at::Tensor activation(const at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, Runner run);
void activation_(at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, Runner run);
at::Tensor activation_backward(const at::Tensor& grad, const at::Tensor& saved, std::string_view act,
                               c10::ArrayRef<double> params, bool from_output, Runner run);
at::Tensor activation_double_backward(const at::Tensor& grad_grad, const at::Tensor& grad, const at::Tensor& saved,
                                      std::string_view act, c10::ArrayRef<double> params, bool from_output, Runner run);

// bias_act, bias_act_backward (bias_act_ops.cpp): act(x + bias) with bias along `dim`.
at::Tensor bias_act(const at::Tensor& x, const at::Tensor& bias, int64_t dim, std::string_view act,
                    c10::ArrayRef<double> params, Runner run);
std::tuple<at::Tensor, at::Tensor> bias_act_backward(const at::Tensor& grad, const at::Tensor& saved,
                                                     const at::Tensor& bias, int64_t dim, std::string_view act,
                                                     c10::ArrayRef<double> params, bool from_output, Runner run);

// glu, glu_backward, gated, gated_backward (gated_ops.cpp): act(a) * u, with a and u the two
// halves of x along dim (glu) or two tensors (gated).
at::Tensor glu(const at::Tensor& x, int64_t dim, bool gate_first, std::string_view act, c10::ArrayRef<double> params,
               Runner run);
at::Tensor glu_backward(const at::Tensor& grad, const at::Tensor& x, int64_t dim, bool gate_first, std::string_view act,
                        c10::ArrayRef<double> params, Runner run);
at::Tensor gated(const at::Tensor& a, const at::Tensor& u, std::string_view act, c10::ArrayRef<double> params,
                 Runner run);
std::tuple<at::Tensor, at::Tensor> gated_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& u,
                                                  std::string_view act, c10::ArrayRef<double> params, Runner run);

// batch_norm_act, batch_norm_act_backward (batch_norm_ops.cpp): act(batch_norm(x)), channels along
// dim 1; returns (y, save_mean, save_invstd) and updates the running statistics in training.
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act(
    const at::Tensor& x, const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias,
    const c10::optional<at::Tensor>& running_mean, const c10::optional<at::Tensor>& running_var, bool training,
    double momentum, double eps, std::string_view act, c10::ArrayRef<double> params, Runner run);
std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_act_backward(
    const at::Tensor& grad, const at::Tensor& x, const c10::optional<at::Tensor>& weight,
    const c10::optional<at::Tensor>& bias, const at::Tensor& save_mean, const at::Tensor& save_invstd, bool training,
    std::string_view act, c10::ArrayRef<double> params, std::array<bool, 3> output_mask, Runner run);

}  // namespace fused_act
