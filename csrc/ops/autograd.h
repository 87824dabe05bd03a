// Eager entry points for Python (python_module.cpp): the same ops through the dispatcher, from
// a typed handle instead of torch.ops' boxed call. fused_act/ops.py uses them outside
// torch.compile / torch.export, which must see the registered ops.
#pragma once

#include <ATen/core/Tensor.h>

namespace fused_act {

// fused_act::activation (with autograd when x requires grad).
at::Tensor eager_activation(const at::Tensor& x, c10::string_view act, c10::ArrayRef<double> params);

// fused_act::softmax (with autograd when x requires grad).
at::Tensor eager_softmax(const at::Tensor& x, int64_t dim, bool log);

// fused_act::activation_mask's output (its 1-bit mask kept by the graph node), and in place.
at::Tensor eager_activation_mask(const at::Tensor& x, c10::string_view act, c10::ArrayRef<double> params);
at::Tensor eager_activation_mask_inplace(at::Tensor& x, c10::string_view act, c10::ArrayRef<double> params);

// fused_act::bias_act, glu and gated (with autograd when an input requires grad).
at::Tensor eager_bias_act(const at::Tensor& x, const at::Tensor& bias, int64_t dim, c10::string_view act,
                          c10::ArrayRef<double> params);
at::Tensor eager_glu(const at::Tensor& x, int64_t dim, bool gate_first, c10::string_view act,
                     c10::ArrayRef<double> params);
at::Tensor eager_gated(const at::Tensor& a, const at::Tensor& u, c10::string_view act, c10::ArrayRef<double> params);

// fused_act::batch_norm_act's output y (with autograd when an input requires grad); updates the
// running statistics in training.
at::Tensor eager_batch_norm_act(const at::Tensor& x, const c10::optional<at::Tensor>& weight,
                                const c10::optional<at::Tensor>& bias, const c10::optional<at::Tensor>& running_mean,
                                const c10::optional<at::Tensor>& running_var, bool training, double momentum,
                                double eps, c10::string_view act, c10::ArrayRef<double> params);

// fused_act::activation_ on x, returning x; under autograd a node whose backward reads the
// output (or a copy of the input, where backward needs it), with autograd's in-place checks.
at::Tensor eager_activation_inplace(at::Tensor& x, c10::string_view act, c10::ArrayRef<double> params);

}  // namespace fused_act
