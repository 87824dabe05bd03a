#include "mask_ops.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <c10/util/StringUtil.h>

#include "../cpu/dispatch.h"
#include "front.h"
#include "registry.h"

namespace fused_act {

namespace {

const ActivationInfo& checked(const char* op, std::string_view act, c10::ArrayRef<double> params) {
  const ActivationInfo& info = find_activation(act);
  check_params(info, params);
  TORCH_CHECK(info.maskable, "fused_act.", op, ": ", info.name,
              " cannot keep a 1-bit mask (its derivative is not piecewise constant with two values); "
              "maskable: ",
              c10::Join(", ", maskable_names()));
  return info;
}

// Dense tensors keep their layout (memory order is what the mask follows); others are
// computed in row-major order. Forward and backward apply the same rule.
at::Tensor dense_like(const at::Tensor& t) {
  return t.is_non_overlapping_and_dense() ? empty_as(t) : empty_with(t.sizes(), t.options());
}

void run_forward(const ActivationInfo& info, const at::Tensor& in, at::Tensor& out, at::Tensor& mask,
                 c10::ArrayRef<double> params, MaskRunner run) {
  MaskArgs a = make_mask_args(info.id, false, checked_dtype(out, "fused_act.activation_mask"), out.numel(), params);
  a.in = in.const_data_ptr();
  a.out = out.data_ptr();
  a.mask = mask.data_ptr<uint8_t>();
  if (a.n > 0) run(a);
}

}  // namespace

MaskArgs make_mask_args(ActId act, bool backward, DType dtype, int64_t n, c10::ArrayRef<double> params) {
  MaskArgs a{};
  a.act = act;
  a.backward = backward;
  a.dtype = dtype;
  a.n = n;
  for (size_t i = 0; i < params.size() && i < kMaxParams; ++i) a.params[i] = params[i];
  return a;
}

std::tuple<at::Tensor, at::Tensor> activation_mask(const at::Tensor& x, std::string_view act,
                                                   c10::ArrayRef<double> params, MaskRunner run) {
  const ActivationInfo& info = checked("activation_mask", act, params);
  check_device(x, "fused_act.activation_mask");
  checked_dtype(x, "fused_act.activation_mask");
  c10::OptionalDeviceGuard guard(guard_device(x));
  at::Tensor y = dense_like(x);
  at::Tensor mask = empty_with({mask_bytes(x.numel())}, x.options().dtype(at::kByte));
  run_forward(info, with_layout_of(x, y), y, mask, params, run);
  return {y, mask};
}

at::Tensor activation_mask_(at::Tensor& x, std::string_view act, c10::ArrayRef<double> params, MaskRunner run) {
  const ActivationInfo& info = checked("activation_mask_", act, params);
  check_device(x, "fused_act.activation_mask_");
  checked_dtype(x, "fused_act.activation_mask_");
  c10::OptionalDeviceGuard guard(guard_device(x));
  if (!x.is_non_overlapping_and_dense()) {  // strided views: compute beside, write back through the view
    auto [y, mask] = activation_mask(x, act, params, run);
    x.copy_(y);
    return mask;
  }
  at::Tensor mask = empty_with({mask_bytes(x.numel())}, x.options().dtype(at::kByte));
  run_forward(info, x, x, mask, params, run);
  return mask;
}

at::Tensor activation_mask_backward(const at::Tensor& grad, const at::Tensor& mask, std::string_view act,
                                    c10::ArrayRef<double> params, MaskRunner run) {
  const char* op = "activation_mask_backward";
  const ActivationInfo& info = checked(op, act, params);
  check_device(grad, std::string("fused_act.") + op);
  const DType dtype = checked_dtype(grad, std::string("fused_act.") + op);
  TORCH_CHECK_TYPE(mask.scalar_type() == at::kByte, "fused_act.", op, ": mask must be uint8, got ", mask.scalar_type());
  TORCH_CHECK(mask.device() == grad.device(), "fused_act.", op, ": mask is on ", mask.device(), ", grad on ",
              grad.device());
  TORCH_CHECK(mask.dim() == 1 && mask.numel() == mask_bytes(grad.numel()), "fused_act.", op, ": mask has shape ",
              mask.sizes(), ", expected [", mask_bytes(grad.numel()), "] (one bit per element of grad, which has ",
              grad.numel(), ")");
  c10::OptionalDeviceGuard guard(guard_device(grad));
  at::Tensor out = dense_like(grad);
  const at::Tensor g = with_layout_of(grad, out);
  const at::Tensor m = mask.contiguous();
  MaskArgs a = make_mask_args(info.id, true, dtype, out.numel(), params);
  a.in = g.const_data_ptr();
  a.out = out.data_ptr();
  a.mask = const_cast<uint8_t*>(m.const_data_ptr<uint8_t>());
  if (a.n > 0) run(a);
  return out;
}

TORCH_LIBRARY_FRAGMENT(fused_act, m) {
  m.def("activation_mask(Tensor x, str act, float[] params) -> (Tensor, Tensor)");
  // Returns only the mask, which does not alias x, so functionalization accepts it.
  m.def("activation_mask_(Tensor(a!) x, str act, float[] params) -> Tensor");
  m.def("activation_mask_backward(Tensor grad, Tensor mask, str act, float[] params) -> Tensor");
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) { register_mask_impls<&cpu::run_mask>(m); }

}  // namespace fused_act
