// Test-only op: runs the CUDA kernel's per-thread body (cuda/elementwise_thread.cuh), compiled
// for the host, over a simulated grid of `nthreads` threads on CPU tensors. Every thread's
// share of the work, the 128-bit packet path, the scalar path for misaligned pointers and the
// tail are exercised exactly as on the GPU, minus concurrency. `only_thread` >= 0 runs that one
// thread of the grid (to check which elements each thread owns). Returns whether the packet
// path was taken.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../cuda/elementwise_thread.cuh"
#include "registry.h"

namespace fused_act {

namespace {

bool simulate(at::Tensor& out, const std::vector<at::Tensor>& inputs, c10::string_view act,
              c10::ArrayRef<double> params, int64_t kind, bool from_output, int64_t nthreads,
              int64_t only_thread) {
  const ActivationInfo& info = find_activation(act);
  check_params(info, params);
  TORCH_CHECK(kind >= 0 && kind <= 2, "kind must be 0 (forward), 1 (backward) or 2 (double backward)");
  TORCH_CHECK(static_cast<int64_t>(inputs.size()) == kind + 1, "kind ", kind, " takes ", kind + 1, " inputs");
  TORCH_CHECK(nthreads > 0, "nthreads must be positive");
  TORCH_CHECK(only_thread < nthreads, "only_thread must be < nthreads");
  TORCH_CHECK(out.is_cpu() && out.is_contiguous(), "out must be a contiguous CPU tensor");
  for (const at::Tensor& t : inputs) {
    TORCH_CHECK(t.is_cpu() && t.is_contiguous() && t.numel() == out.numel() && t.scalar_type() == out.scalar_type(),
                "inputs must be contiguous CPU tensors like out");
  }
  ElementwiseArgs a{};
  a.act = info.id;
  a.kind = static_cast<Kind>(kind);
  a.from_output = from_output;
  a.n = out.numel();
  for (size_t i = 0; i < params.size(); ++i) a.params[i] = params[i];
  switch (out.scalar_type()) {
    case at::kFloat: a.dtype = DType::kFloat; break;
    case at::kDouble: a.dtype = DType::kDouble; break;
    case at::kHalf: a.dtype = DType::kHalf; break;
    case at::kBFloat16: a.dtype = DType::kBFloat16; break;
    default: TORCH_CHECK(false, "unsupported dtype ", out.scalar_type());
  }
  bool vectorized = false;
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_elementwise_op<opmath_t<S>>(a, [&](const auto& op) {
      constexpr int N = std::decay_t<decltype(op)>::kInputs;
      cuda::Operands<S, N> t;
      for (int k = 0; k < N; ++k) t.in[k] = static_cast<const S*>(inputs[k].const_data_ptr());
      t.out = static_cast<S*>(out.data_ptr());
      t.n = a.n;
      vectorized = cuda::can_vectorize(t);
      for (int64_t tid = 0; tid < nthreads; ++tid) {
        if (only_thread < 0 || tid == only_thread) cuda::elementwise_body(tid, nthreads, t, op, vectorized);
      }
    });
  });
  return vectorized;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fused_act, m) {
  m.def(
      "_simulate_cuda_elementwise(Tensor(a!) out, Tensor[] inputs, str act, float[] params, int kind, "
      "bool from_output, int nthreads, int only_thread=-1) -> bool");
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) { m.impl("_simulate_cuda_elementwise", &simulate); }

}  // namespace fused_act
