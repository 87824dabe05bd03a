// Test-only op: runs the CUDA softmax kernels' per-thread phases (activations/softmax.h),
// compiled for the host, on CPU tensors, split as a CUDA launch would split them: `lanes` threads
// per row (rows) or along D (columns), packets of `vec` elements, `splits` parts per row whose
// statistics are merged as the kernels' second launch does. Where the GPU reduces across threads
// in a tree, the simulation merges the lanes' statistics in order. With sm_count > 0 the split
// is plan_softmax's for a GPU with that many SMs, the one the kernels would use.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../activations/softmax.h"
#include "../ops/softmax_ops.h"

namespace fused_act {

namespace {

template <class Op, int V, class S, class C = opmath_t<S>>
void simulate_row(const SoftmaxRow<S>& r, const SoftmaxPlan& p) {
  std::vector<RowStats<C>> parts(p.splits);
  for (int64_t k = 0; k < p.splits; ++k) {
    const int64_t begin = k * p.chunk, end = std::min(r.n, begin + p.chunk);
    RowStats<C> st = empty_stats<Op, C>();
    for (int lane = 0; lane < p.lanes; ++lane)
      st = merge_stats<Op>(st, partial_stats<Op, V>(r, begin, end, lane, p.lanes));
    parts[k] = st;
  }
  RowStats<C> st = parts[0];
  if (p.splits > 1) {
    st = empty_stats<Op, C>();
    for (const auto& part : parts) st = merge_stats<Op>(st, part);
  }
  for (int64_t k = 0; k < p.splits; ++k) {
    const int64_t begin = k * p.chunk, end = std::min(r.n, begin + p.chunk);
    for (int lane = 0; lane < p.lanes; ++lane) write_outputs<Op, V>(r, begin, end, lane, p.lanes, st);
  }
}

at::Tensor simulate(const at::Tensor& x, const std::optional<at::Tensor>& grad, int64_t dim, bool log, int64_t lanes,
                    int64_t splits, int64_t vec, int64_t sm_count) {
  const char* op = "_simulate_cuda_softmax";
  TORCH_CHECK(x.is_cpu(), op, ": expected CPU tensors");
  const at::Tensor in = x.contiguous();
  at::Tensor g;
  if (grad) {
    TORCH_CHECK(grad->sizes() == x.sizes() && grad->scalar_type() == x.scalar_type() && grad->is_cpu(), op,
                ": grad must be a CPU tensor like x");
    g = grad->contiguous();
  }
  at::Tensor out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  const SoftmaxArgs a = softmax_args(in, grad ? &g : nullptr, out, dim, log);
  if (out.numel() == 0) return out;
  SoftmaxPlan p;
  if (sm_count > 0) {
    p = plan_softmax(a, static_cast<int>(x.element_size()), static_cast<int>(sm_count));
  } else {
    TORCH_CHECK(lanes > 0 && splits > 0, op, ": lanes and splits must be positive");
    TORCH_CHECK(vec == 1 || (a.inner == 1 && vec * x.element_size() == 16), op,
                ": vec must be 1, or 16 bytes of elements for inner == 1");
    p.columns = a.inner > 1;
    p.lanes = static_cast<int>(lanes);
    p.vec = static_cast<int>(vec);
    const int64_t chunk = (a.dim + splits - 1) / splits;
    p.chunk = (chunk + vec - 1) / vec * vec;
    p.splits = (a.dim + p.chunk - 1) / p.chunk;
  }
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_softmax_op(a, [&](auto op) {
      using Op = decltype(op);
      constexpr int kVec = 16 / sizeof(S);
      for (int64_t o = 0; o < a.outer; ++o) {
        for (int64_t j = 0; j < a.inner; ++j) {
          if (p.vec == kVec) {
            simulate_row<Op, kVec>(softmax_row<S>(a, o, j), p);
          } else {
            simulate_row<Op, 1>(softmax_row<S>(a, o, j), p);
          }
        }
      }
    });
  });
  return out;
}

// The plan the CUDA kernels would use, for tests: (columns, lanes, cols, vec, splits, chunk).
std::vector<int64_t> plan(const at::Tensor& x, int64_t dim, int64_t sm_count) {
  at::Tensor in = x.contiguous();
  at::Tensor out = at::empty_like(in);
  const SoftmaxPlan p = plan_softmax(softmax_args(in, nullptr, out, dim, false), static_cast<int>(x.element_size()),
                                     static_cast<int>(sm_count));
  return {p.columns, p.lanes, p.cols, p.vec, p.splits, p.chunk};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fused_act, m) {
  m.def(
      "_simulate_cuda_softmax(Tensor x, Tensor? grad, int dim, bool log, int lanes, int splits, int vec, "
      "int sm_count) -> Tensor");
  m.def("_cuda_softmax_plan(Tensor x, int dim, int sm_count) -> int[]");
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) {
  m.impl("_simulate_cuda_softmax", &simulate);
  m.impl("_cuda_softmax_plan", &plan);
}

}  // namespace fused_act
