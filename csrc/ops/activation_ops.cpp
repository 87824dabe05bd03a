#include "activation_ops.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include "../cpu/dispatch.h"
#include "registry.h"

namespace fused_act {

namespace {

DType to_dtype(const at::Tensor& t, const ActivationInfo& info) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return DType::kFloat;
    case at::kDouble:
      return DType::kDouble;
    case at::kHalf:
      return DType::kHalf;
    case at::kBFloat16:
      return DType::kBFloat16;
    default:
      TORCH_CHECK_TYPE(false, "fused_act.", info.name,
                       ": expected a floating-point tensor (float32, float64, float16 or bfloat16), got ",
                       t.scalar_type());
  }
}

void check_device(const at::Tensor& t, const ActivationInfo& info) {
  TORCH_CHECK(t.is_cpu() || t.is_cuda(), "fused_act.", info.name,
              ": expected a CPU or CUDA tensor, got one on ", t.device());
}

void check_same(const at::Tensor& t, const at::Tensor& ref, const char* what, const ActivationInfo& info) {
  TORCH_CHECK(t.sizes() == ref.sizes(), "fused_act.", info.name, ": ", what, " has shape ", t.sizes(),
              ", expected ", ref.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), "fused_act.", info.name, ": ", what,
                   " has dtype ", t.scalar_type(), ", expected ", ref.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), "fused_act.", info.name, ": ", what, " is on ", t.device(),
              ", expected ", ref.device());
}

bool is_linear(const at::Tensor& t) { return t.is_non_overlapping_and_dense(); }

// t with exactly ref's strides, so that element i of one storage is element i of the other.
// Dense tensors (contiguous, channels-last, permuted) pass through untouched.
at::Tensor with_layout_of(const at::Tensor& t, const at::Tensor& ref) {
  if (t.strides() == ref.strides() && is_linear(t)) return t;
  return at::empty_like(ref).copy_(t);
}

ElementwiseArgs make_args(const ActivationInfo& info, Kind kind, const at::Tensor& out,
                          c10::ArrayRef<double> params, bool from_output) {
  ElementwiseArgs a{};
  a.act = info.id;
  a.kind = kind;
  a.from_output = from_output;
  a.dtype = to_dtype(out, info);
  a.out = out.data_ptr();
  a.n = out.numel();
  for (size_t i = 0; i < params.size(); ++i) a.params[i] = params[i];
  return a;
}

const ActivationInfo& checked(std::string_view act, c10::ArrayRef<double> params) {
  const ActivationInfo& info = find_activation(act);
  check_params(info, params);
  return info;
}

void check_form(const ActivationInfo& info, c10::ArrayRef<double> params, bool from_output) {
  const Saved saved = saved_for(info, params);
  const bool expects_output = saved != Saved::kInput;
  TORCH_CHECK(from_output == expects_output, "fused_act.", info.name, ": backward with these parameters needs ",
              "the forward's ", expects_output ? "output" : "input", " (from_output=", expects_output, ")");
}

}  // namespace

at::Tensor activation(const at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, Runner run) {
  const ActivationInfo& info = checked(act, params);
  check_device(x, info);
  to_dtype(x, info);
  c10::OptionalDeviceGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  const at::Tensor in = with_layout_of(x, out);
  ElementwiseArgs a = make_args(info, Kind::kForward, out, params, false);
  a.in[0] = in.const_data_ptr();
  if (a.n > 0) run(a);
  return out;
}

void activation_(at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, Runner run) {
  const ActivationInfo& info = checked(act, params);
  check_device(x, info);
  to_dtype(x, info);
  c10::OptionalDeviceGuard guard(x.device());
  if (!is_linear(x)) {  // strided views: compute beside, then write back through the view
    x.copy_(activation(x, act, params, run));
    return;
  }
  ElementwiseArgs a = make_args(info, Kind::kForward, x, params, false);
  a.in[0] = x.const_data_ptr();
  if (a.n > 0) run(a);
}

at::Tensor activation_backward(const at::Tensor& grad, const at::Tensor& saved, std::string_view act,
                               c10::ArrayRef<double> params, bool from_output, Runner run) {
  const ActivationInfo& info = checked(act, params);
  check_form(info, params, from_output);
  check_device(saved, info);
  to_dtype(saved, info);
  check_same(grad, saved, "grad", info);
  c10::OptionalDeviceGuard guard(saved.device());
  at::Tensor out = at::empty_like(saved);
  const at::Tensor g = with_layout_of(grad, out);
  const at::Tensor s = with_layout_of(saved, out);
  ElementwiseArgs a = make_args(info, Kind::kBackward, out, params, from_output);
  a.in[0] = g.const_data_ptr();
  a.in[1] = s.const_data_ptr();
  if (a.n > 0) run(a);
  return out;
}

at::Tensor activation_double_backward(const at::Tensor& grad_grad, const at::Tensor& grad,
                                      const at::Tensor& saved, std::string_view act,
                                      c10::ArrayRef<double> params, bool from_output, Runner run) {
  const ActivationInfo& info = checked(act, params);
  check_form(info, params, from_output);
  check_device(saved, info);
  to_dtype(saved, info);
  check_same(grad, saved, "grad", info);
  check_same(grad_grad, saved, "grad_grad", info);
  c10::OptionalDeviceGuard guard(saved.device());
  at::Tensor out = at::empty_like(saved);
  const at::Tensor gg = with_layout_of(grad_grad, out);
  const at::Tensor g = with_layout_of(grad, out);
  const at::Tensor s = with_layout_of(saved, out);
  ElementwiseArgs a = make_args(info, Kind::kDoubleBackward, out, params, from_output);
  a.in[0] = gg.const_data_ptr();
  a.in[1] = g.const_data_ptr();
  a.in[2] = s.const_data_ptr();
  if (a.n > 0) run(a);
  return out;
}

TORCH_LIBRARY(fused_act, m) {
  m.def("activation(Tensor x, str act, float[] params) -> Tensor");
  // Returns nothing: functionalization (torch.compile, export) rejects custom ops whose outputs
  // alias their inputs. The Python wrapper returns x.
  m.def("activation_(Tensor(a!) x, str act, float[] params) -> ()");
  m.def("activation_backward(Tensor grad, Tensor saved, str act, float[] params, bool from_output) -> Tensor");
  m.def(
      "activation_double_backward(Tensor grad_grad, Tensor grad, Tensor saved, str act, float[] params, "
      "bool from_output) -> Tensor");
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) { register_activation_impls<&cpu::run_elementwise>(m); }

}  // namespace fused_act
