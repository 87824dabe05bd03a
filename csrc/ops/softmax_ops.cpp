#include "softmax_ops.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include "../cpu/dispatch.h"
#include "front.h"

namespace fused_act {

namespace {

const char* op_name(bool log) { return log ? "fused_act.log_softmax" : "fused_act.softmax"; }

// torch's rule: a 0-dim tensor takes dim 0 or -1, as if it had one dimension.
int64_t wrap_dim(int64_t dim, const at::Tensor& t, bool log) {
  const int64_t n = std::max<int64_t>(t.dim(), 1);
  TORCH_CHECK_INDEX(dim >= -n && dim < n, op_name(log), ": dim ", dim, " is out of range for a tensor with ", t.dim(),
                    " dimension(s) (expected in [", -n, ", ", n - 1, "])");
  return dim < 0 ? dim + n : dim;
}

}  // namespace

SoftmaxArgs softmax_args(const at::Tensor& in, const at::Tensor* grad, const at::Tensor& out, int64_t dim, bool log) {
  const int64_t d = wrap_dim(dim, in, log);
  SoftmaxArgs a{};
  a.dtype = checked_dtype(in, op_name(log));
  a.log = log;
  a.backward = grad != nullptr;
  a.in = in.const_data_ptr();
  a.grad = grad ? grad->const_data_ptr() : nullptr;
  a.out = out.data_ptr();
  a.outer = 1;
  a.inner = 1;
  a.dim = in.dim() == 0 ? 1 : in.size(d);
  for (int64_t i = 0; i < d; ++i) a.outer *= in.size(i);
  for (int64_t i = d + 1; i < in.dim(); ++i) a.inner *= in.size(i);
  return a;
}

// The kernels index a contiguous (outer, D, inner) block, so strided inputs are made contiguous
// first (one copy, which torch's own softmax also makes); the output is always contiguous.
at::Tensor softmax(const at::Tensor& x, int64_t dim, bool log, SoftmaxRunner run) {
  check_device(x, op_name(log));
  checked_dtype(x, op_name(log));
  wrap_dim(dim, x, log);
  c10::OptionalDeviceGuard guard(guard_device(x));
  const at::Tensor in = x.contiguous();
  at::Tensor out = empty_with(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() > 0) run(softmax_args(in, nullptr, out, dim, log));
  return out;
}

at::Tensor softmax_backward(const at::Tensor& grad, const at::Tensor& y, int64_t dim, bool log, SoftmaxRunner run) {
  check_device(y, op_name(log));
  checked_dtype(y, op_name(log));
  wrap_dim(dim, y, log);
  TORCH_CHECK(grad.sizes() == y.sizes(), op_name(log), " backward: grad has shape ", grad.sizes(), ", expected ",
              y.sizes());
  TORCH_CHECK_TYPE(grad.scalar_type() == y.scalar_type(), op_name(log), " backward: grad has dtype ",
                   grad.scalar_type(), ", expected ", y.scalar_type());
  TORCH_CHECK(grad.device() == y.device(), op_name(log), " backward: grad is on ", grad.device(), ", expected ",
              y.device());
  c10::OptionalDeviceGuard guard(guard_device(y));
  const at::Tensor in = y.contiguous();
  const at::Tensor g = grad.contiguous();
  at::Tensor out = empty_with(y.sizes(), y.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() > 0) run(softmax_args(in, &g, out, dim, log));
  return out;
}

TORCH_LIBRARY_FRAGMENT(fused_act, m) {
  // log selects log_softmax; backward works from the forward's output y alone.
  // Any input layout is read (through a contiguous copy) and the output is contiguous, so inductor
  // may hand them its own layouts, as the elementwise ops (library.cpp).
  m.def("softmax(Tensor x, int dim, bool log) -> Tensor", {at::Tag::flexible_layout});
  m.def("softmax_backward(Tensor grad, Tensor y, int dim, bool log) -> Tensor", {at::Tag::flexible_layout});
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) { register_softmax_impls<&cpu::run_softmax>(m); }

}  // namespace fused_act
