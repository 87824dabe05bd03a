// bias_act(x, bias, dim, act) = act(x + bias broadcast along dim), and its backward, which
// returns the bias gradient too (summed in the launch that computes grad_x, on every backend).
//
// The launch sees the output as rows x cols with the bias a per-channel operand (channel_layout.h).
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include "activation_ops.h"
#include "channel_layout.h"

namespace fused_act {

namespace {

const ActivationInfo& check_bias_args(const at::Tensor& x, const at::Tensor& bias, int64_t& dim, std::string_view act,
                                      c10::ArrayRef<double> params, std::string& op) {
  const ActivationInfo& info = checked_activation(act, params);
  op = op_name("bias_act", info);
  check_device(x, op);
  checked_dtype(x, op);
  dim = wrap_dim(dim, x, op);
  check_dtype_device(bias, x, "bias", op);
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == x.size(dim), op, ": bias must be 1-D with x.size(", dim,
              ") = ", x.size(dim), " elements, got shape ", bias.sizes());
  return info;
}

}  // namespace

at::Tensor bias_act(const at::Tensor& x, const at::Tensor& bias, int64_t dim, std::string_view act,
                    c10::ArrayRef<double> params, Runner run) {
  std::string op;
  const ActivationInfo& info = check_bias_args(x, bias, dim, act, params, op);
  c10::OptionalDeviceGuard guard(guard_device(x));
  at::Tensor out = channel_output(x, dim);
  if (out.numel() == 0) return out;
  const at::Tensor xl = with_layout_of(x, out);
  const at::Tensor b = bias.contiguous();
  const ChannelLayout l = layout_of(out, dim);
  ElementwiseArgs a = make_args(info, Kind::kBiasForward, checked_dtype(x, op), params);
  a.in[0] = row_operand(xl, l);
  a.in[1] = channel_operand(b, l);
  set_rows(a, l, out);
  run(a, nullptr);
  return out;
}

std::tuple<at::Tensor, at::Tensor> bias_act_backward(const at::Tensor& grad, const at::Tensor& saved,
                                                     const at::Tensor& bias, int64_t dim, std::string_view act,
                                                     c10::ArrayRef<double> params, bool from_output, Runner run) {
  std::string op;
  const ActivationInfo& info = check_bias_args(saved, bias, dim, act, params, op);
  check_form(info, params, from_output, op);
  check_like(grad, saved, "grad", op);
  c10::OptionalDeviceGuard guard(guard_device(saved));
  at::Tensor grad_x = channel_output(saved, dim);
  const at::ScalarType acc = saved.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  if (grad_x.numel() == 0) return {grad_x, at::zeros_like(bias)};
  // The runners sum the bias gradient in the launch that computes grad_x: the CPU loop adds into
  // `sums`, the CUDA kernels (and their simulation) write it, so only the CPU's needs clearing.
  at::Tensor sums = saved.is_cpu() ? at::zeros({bias.size(0)}, saved.options().dtype(acc))
                                   : empty_with({bias.size(0)}, saved.options().dtype(acc));
  const at::Tensor g = with_layout_of(grad, grad_x);
  const at::Tensor s = with_layout_of(saved, grad_x);
  const at::Tensor b = bias.contiguous();
  const ChannelLayout l = layout_of(grad_x, dim);
  // The output form needs no bias: y already holds it, and the kernel is the plain backward.
  ElementwiseArgs a = make_args(info, from_output ? Kind::kBackward : Kind::kBiasBackward, checked_dtype(saved, op),
                                params, from_output);
  a.in[0] = row_operand(g, l);
  a.in[1] = row_operand(s, l);
  if (!from_output) a.in[2] = channel_operand(b, l);
  set_rows(a, l, grad_x);
  const ChannelSum channel_sum{sums.data_ptr(), l.channels, l.per_col};
  run(a, &channel_sum);
  return {grad_x, sums.to(bias.scalar_type())};
}

}  // namespace fused_act
