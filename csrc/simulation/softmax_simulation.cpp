// Test-only op: runs the CUDA softmax kernel's per-thread phases (activations/softmax.h),
// compiled for the host, on CPU tensors. A row (inner == 1) is shared by `lanes` simulated
// threads as on the GPU (a warp or a block): every lane's partial max, then every lane's partial
// sum, each combined sequentially where the GPU reduces across threads, then every lane writes
// its elements. inner > 1 runs the one-thread-per-row body of the column kernel.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../ops/softmax_ops.h"

namespace fused_act {

namespace {

template <class Op, class S>
void simulate_group(const SoftmaxRow<S>& r, int64_t lanes) {
  using C = opmath_t<S>;
  C m = 0;
  if constexpr (Op::kNeedsMax) {
    m = -INFINITY;
    for (int64_t lane = 0; lane < lanes; ++lane) m = combine_max(m, partial_max<S>(lane, lanes, r));
  }
  C s = 0;
  for (int64_t lane = 0; lane < lanes; ++lane) s = combine_sum(s, partial_sum<Op, S>(lane, lanes, r, m));
  const C c = Op::row_constant(s);
  for (int64_t lane = 0; lane < lanes; ++lane) write<Op, S>(lane, lanes, r, m, c);
}

at::Tensor simulate(const at::Tensor& x, const std::optional<at::Tensor>& grad, int64_t dim, bool log, int64_t lanes) {
  TORCH_CHECK(x.is_cpu(), "_simulate_cuda_softmax: expected CPU tensors");
  TORCH_CHECK(lanes > 0, "_simulate_cuda_softmax: lanes must be positive");
  const at::Tensor in = x.contiguous();
  at::Tensor g;
  if (grad) {
    TORCH_CHECK(grad->sizes() == x.sizes() && grad->scalar_type() == x.scalar_type() && grad->is_cpu(),
                "_simulate_cuda_softmax: grad must be a CPU tensor like x");
    g = grad->contiguous();
  }
  at::Tensor out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  const SoftmaxArgs a = softmax_args(in, grad ? &g : nullptr, out, dim, log);
  if (out.numel() == 0) return out;
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_softmax_op(a, [&](auto op) {
      using Op = decltype(op);
      for (int64_t o = 0; o < a.outer; ++o) {
        for (int64_t j = 0; j < a.inner; ++j) {
          if (a.inner == 1) {
            simulate_group<Op>(softmax_row<S>(a, o, j), lanes);
          } else {
            softmax_row_serial<Op>(softmax_row<S>(a, o, j));
          }
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fused_act, m) {
  m.def("_simulate_cuda_softmax(Tensor x, Tensor? grad, int dim, bool log, int lanes) -> Tensor");
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) { m.impl("_simulate_cuda_softmax", &simulate); }

}  // namespace fused_act
