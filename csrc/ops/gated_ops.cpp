// Gated units act(a) * u: glu(x, dim) with a and u the two halves of x along dim (no split
// copy: the launch reads both halves in place), and gated(a, u) for separate tensors.
//
// glu views contiguous x as (outer, 2, L) with L = (x.size(dim) / 2) * (elements after dim):
// one launch row per outer index, the gate and the other half L elements apart in it.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include "activation_ops.h"

namespace fused_act {

namespace {

struct Halves {
  int64_t outer, len;  // rows, and the elements of one half in a row
  int64_t gate_off, up_off;
  std::vector<int64_t> out_sizes;
};

Halves halves(const at::Tensor& x, int64_t dim, bool gate_first, const std::string& op) {
  const int64_t n = x.size(dim);
  TORCH_CHECK(n % 2 == 0, op, ": dimension ", dim, " has odd size ", n, "; it must split into two equal halves");
  Halves h;
  h.outer = 1;
  for (int64_t d = 0; d < dim; ++d) h.outer *= x.size(d);
  int64_t inner = 1;
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  h.len = n / 2 * inner;
  h.gate_off = gate_first ? 0 : h.len;
  h.up_off = gate_first ? h.len : 0;
  h.out_sizes = x.sizes().vec();
  h.out_sizes[dim] = n / 2;
  return h;
}

const void* at_offset(const at::Tensor& t, int64_t elements) {
  return static_cast<const char*>(t.const_data_ptr()) + elements * t.element_size();
}
void* at_offset(at::Tensor& t, int64_t elements) {
  return static_cast<char*>(t.data_ptr()) + elements * t.element_size();
}

const ActivationInfo& check_glu_args(const at::Tensor& x, int64_t& dim, std::string_view act,
                                     c10::ArrayRef<double> params, std::string& op) {
  const ActivationInfo& info = checked_activation(act, params);
  op = op_name("glu", info);
  check_device(x, op);
  checked_dtype(x, op);
  dim = wrap_dim(dim, x, op);
  return info;
}

const ActivationInfo& check_gated_args(const at::Tensor& a, const at::Tensor& u, std::string_view act,
                                       c10::ArrayRef<double> params, std::string& op) {
  const ActivationInfo& info = checked_activation(act, params);
  op = op_name("gated", info);
  check_device(a, op);
  checked_dtype(a, op);
  check_like(u, a, "u (the gated tensor)", op);
  return info;
}

}  // namespace

at::Tensor glu(const at::Tensor& x, int64_t dim, bool gate_first, std::string_view act, c10::ArrayRef<double> params,
               Runner run) {
  std::string op;
  const ActivationInfo& info = check_glu_args(x, dim, act, params, op);
  const Halves h = halves(x, dim, gate_first, op);
  c10::OptionalDeviceGuard guard(guard_device(x));
  at::Tensor out = empty_with(h.out_sizes, x.options());
  if (out.numel() == 0) return out;
  const at::Tensor xc = x.contiguous();
  ElementwiseArgs a = make_args(info, Kind::kGatedForward, checked_dtype(x, op), params);
  a.rows = h.outer;
  a.cols = h.len;
  a.in[0] = Operand{at_offset(xc, h.gate_off), 2 * h.len, 0, false};
  a.in[1] = Operand{at_offset(xc, h.up_off), 2 * h.len, 0, false};
  a.out[0] = OutOperand{out.data_ptr(), h.len};
  run(a, nullptr);
  return out;
}

at::Tensor glu_backward(const at::Tensor& grad, const at::Tensor& x, int64_t dim, bool gate_first, std::string_view act,
                        c10::ArrayRef<double> params, Runner run) {
  std::string op;
  const ActivationInfo& info = check_glu_args(x, dim, act, params, op);
  const Halves h = halves(x, dim, gate_first, op);
  check_dtype_device(grad, x, "grad", op);
  TORCH_CHECK(grad.sizes() == c10::IntArrayRef(h.out_sizes), op, ": grad has shape ", grad.sizes(), ", expected ",
              c10::IntArrayRef(h.out_sizes));
  c10::OptionalDeviceGuard guard(guard_device(x));
  at::Tensor grad_x = empty_with(x.sizes(), x.options());
  if (grad_x.numel() == 0) return grad_x;
  const at::Tensor xc = x.contiguous();
  const at::Tensor g = grad.contiguous();
  ElementwiseArgs a = make_args(info, Kind::kGatedBackward, checked_dtype(x, op), params);
  a.rows = h.outer;
  a.cols = h.len;
  a.in[0] = Operand{g.const_data_ptr(), h.len, 0, false};
  a.in[1] = Operand{at_offset(xc, h.gate_off), 2 * h.len, 0, false};
  a.in[2] = Operand{at_offset(xc, h.up_off), 2 * h.len, 0, false};
  a.out[0] = OutOperand{at_offset(grad_x, h.gate_off), 2 * h.len};
  a.out[1] = OutOperand{at_offset(grad_x, h.up_off), 2 * h.len};
  run(a, nullptr);
  return grad_x;
}

at::Tensor gated(const at::Tensor& a_in, const at::Tensor& u, std::string_view act, c10::ArrayRef<double> params,
                 Runner run) {
  std::string op;
  const ActivationInfo& info = check_gated_args(a_in, u, act, params, op);
  c10::OptionalDeviceGuard guard(guard_device(a_in));
  at::Tensor out = empty_as(a_in);
  if (out.numel() == 0) return out;
  const at::Tensor al = with_layout_of(a_in, out);
  const at::Tensor ul = with_layout_of(u, out);
  ElementwiseArgs a = make_args(info, Kind::kGatedForward, checked_dtype(a_in, op), params);
  a.in[0] = flat(al);
  a.in[1] = flat(ul);
  a.out[0] = flat_out(out);
  set_flat(a, out.numel());
  run(a, nullptr);
  return out;
}

std::tuple<at::Tensor, at::Tensor> gated_backward(const at::Tensor& grad, const at::Tensor& a_in, const at::Tensor& u,
                                                  std::string_view act, c10::ArrayRef<double> params, Runner run) {
  std::string op;
  const ActivationInfo& info = check_gated_args(a_in, u, act, params, op);
  check_like(grad, a_in, "grad", op);
  c10::OptionalDeviceGuard guard(guard_device(a_in));
  at::Tensor grad_a = empty_as(a_in);
  at::Tensor grad_u = empty_as(grad_a);
  if (grad_a.numel() == 0) return {grad_a, grad_u};
  const at::Tensor g = with_layout_of(grad, grad_a);
  const at::Tensor al = with_layout_of(a_in, grad_a);
  const at::Tensor ul = with_layout_of(u, grad_a);
  ElementwiseArgs a = make_args(info, Kind::kGatedBackward, checked_dtype(a_in, op), params);
  a.in[0] = flat(g);
  a.in[1] = flat(al);
  a.in[2] = flat(ul);
  a.out[0] = flat_out(grad_a);
  a.out[1] = flat_out(grad_u);
  set_flat(a, grad_a.numel());
  run(a, nullptr);
  return {grad_a, grad_u};
}

}  // namespace fused_act
