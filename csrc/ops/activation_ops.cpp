#include "activation_ops.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <c10/util/SmallVector.h>

namespace fused_act {

namespace {

// out = kind(inputs...), all laid out like out (inputs copied into that layout if they differ).
void run_flat(const ActivationInfo& info, Kind kind, at::Tensor& out, std::initializer_list<at::Tensor> inputs,
              c10::ArrayRef<double> params, bool from_output, Runner run) {
  ElementwiseArgs a = make_args(info, kind, checked_dtype(out, info.op), params, from_output);
  c10::SmallVector<at::Tensor, 3> keep;  // the relaid-out copies live until the launch is done
  int k = 0;
  for (const at::Tensor& t : inputs) {
    keep.push_back(with_layout_of(t, out));
    a.in[k++] = flat(keep.back());
  }
  a.out[0] = flat_out(out);
  set_flat(a, out.numel());
  if (a.numel() > 0) run(a, nullptr);
}

}  // namespace

at::Tensor activation(const at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, Runner run) {
  const ActivationInfo& info = checked_activation(act, params);
  const std::string& op = info.op;
  check_device(x, op);
  checked_dtype(x, op);
  c10::OptionalDeviceGuard guard(guard_device(x));
  at::Tensor out = empty_as(x);
  run_flat(info, Kind::kForward, out, {x}, params, false, run);
  return out;
}

void activation_(at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, Runner run) {
  const ActivationInfo& info = checked_activation(act, params);
  const std::string& op = info.op;
  check_device(x, op);
  checked_dtype(x, op);
  c10::OptionalDeviceGuard guard(guard_device(x));
  if (!is_linear(x)) {  // strided views: compute beside, then write back through the view
    x.copy_(activation(x, act, params, run));
    return;
  }
  run_flat(info, Kind::kForward, x, {x}, params, false, run);
}

at::Tensor activation_backward(const at::Tensor& grad, const at::Tensor& saved, std::string_view act,
                               c10::ArrayRef<double> params, bool from_output, Runner run) {
  const ActivationInfo& info = checked_activation(act, params);
  const std::string& op = info.op;
  check_form(info, params, from_output, op);
  check_device(saved, op);
  checked_dtype(saved, op);
  check_like(grad, saved, "grad", op);
  c10::OptionalDeviceGuard guard(guard_device(saved));
  at::Tensor out = empty_as(saved);
  run_flat(info, Kind::kBackward, out, {grad, saved}, params, from_output, run);
  return out;
}

at::Tensor activation_double_backward(const at::Tensor& grad_grad, const at::Tensor& grad, const at::Tensor& saved,
                                      std::string_view act, c10::ArrayRef<double> params, bool from_output,
                                      Runner run) {
  const ActivationInfo& info = checked_activation(act, params);
  const std::string& op = info.op;
  check_form(info, params, from_output, op);
  check_device(saved, op);
  checked_dtype(saved, op);
  check_like(grad, saved, "grad", op);
  check_like(grad_grad, saved, "grad_grad", op);
  c10::OptionalDeviceGuard guard(guard_device(saved));
  at::Tensor out = empty_as(saved);
  run_flat(info, Kind::kDoubleBackward, out, {grad_grad, grad, saved}, params, from_output, run);
  return out;
}

}  // namespace fused_act
