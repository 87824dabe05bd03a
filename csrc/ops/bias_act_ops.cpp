// bias_act(x, bias, dim, act) = act(x + bias broadcast along dim), and its backward, which
// returns the bias gradient too (summed in the launch that computes grad_x, on every backend).
//
// The launch sees the output in its own memory order as rows x cols, in one of two shapes:
//   channels innermost (stride 1 at dim: Linear outputs (N, C), channels-last images):
//     rows = numel / C, cols = C, the bias a vector every row reads (row stride 0);
//   otherwise, contiguous (N, C, H, W): rows = N * C, cols = H * W, the bias one value per row,
//     row r reading bias[r % C].
// Any other layout is computed in a contiguous copy.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include "activation_ops.h"

namespace fused_act {

namespace {

struct ChannelLayout {
  int64_t rows, cols, channels;
  bool per_col;
};

// An empty output for x whose layout is one of the two above (x's own when possible).
at::Tensor channel_output(const at::Tensor& like, int64_t dim) {
  at::Tensor out = empty_as(like);
  if (out.stride(dim) == 1 || out.is_contiguous()) return out;
  return empty_with(like.sizes(), like.options());
}

// out is non-empty and laid out as channel_output makes it.
ChannelLayout layout_of(const at::Tensor& out, int64_t dim) {
  const int64_t c = out.size(dim);
  if (out.stride(dim) == 1) return {out.numel() / c, c, c, true};
  // contiguous; computed rather than read from stride(dim), which is arbitrary when c == 1
  int64_t inner = 1;
  for (int64_t d = dim + 1; d < out.dim(); ++d) inner *= out.size(d);
  return {out.numel() / inner, inner, c, false};
}

Operand row_operand(const at::Tensor& t, const ChannelLayout& l) {
  return Operand{t.const_data_ptr(), l.cols, 0, false};
}

Operand bias_operand(const at::Tensor& bias, const ChannelLayout& l) {
  if (l.per_col) return Operand{bias.const_data_ptr(), 0, 0, false};
  return Operand{bias.const_data_ptr(), 1, l.channels, true};
}

void set_rows(ElementwiseArgs& a, const ChannelLayout& l, at::Tensor& out) {
  a.rows = l.rows;
  a.cols = l.cols;
  a.out[0] = OutOperand{out.data_ptr(), l.cols};
}

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
  a.in[1] = bias_operand(b, l);
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
  if (!from_output) a.in[2] = bias_operand(b, l);
  set_rows(a, l, grad_x);
  const ChannelSum channel_sum{sums.data_ptr(), l.channels, l.per_col};
  run(a, &channel_sum);
  return {grad_x, sums.to(bias.scalar_type())};
}

}  // namespace fused_act
