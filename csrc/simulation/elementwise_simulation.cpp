// Test-only ops around the CUDA elementwise kernel's per-thread body run on the host
// (simulation.h, activation_threads.cpp):
//   _simulate_cuda_elementwise: one flat launch on given tensors, optionally one thread only
//     (to check which elements each thread owns); returns whether the packet path was taken;
//   _set_cuda_simulation(n): while n > 0 every op's CPU registration runs this instead of the
//     CPU kernels (bias_act, glu, ... with their real operand layouts).
#include "simulation.h"

#include <atomic>

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../ops/front.h"

namespace fused_act {

namespace {

std::atomic<int64_t> g_simulated_threads{0};

bool simulate_flat(at::Tensor& out, const std::vector<at::Tensor>& inputs, c10::string_view act,
                   c10::ArrayRef<double> params, int64_t kind, bool from_output, int64_t nthreads,
                   int64_t only_thread) {
  const ActivationInfo& info = checked_activation(act, params);
  TORCH_CHECK(kind >= 0 && kind <= 2, "kind must be 0 (forward), 1 (backward) or 2 (double backward)");
  TORCH_CHECK(static_cast<int64_t>(inputs.size()) == kind + 1, "kind ", kind, " takes ", kind + 1, " inputs");
  TORCH_CHECK(nthreads > 0, "nthreads must be positive");
  TORCH_CHECK(only_thread < nthreads, "only_thread must be < nthreads");
  TORCH_CHECK(out.is_cpu() && out.is_contiguous(), "out must be a contiguous CPU tensor");
  for (const at::Tensor& t : inputs) {
    TORCH_CHECK(t.is_cpu() && t.is_contiguous() && t.numel() == out.numel() && t.scalar_type() == out.scalar_type(),
                "inputs must be contiguous CPU tensors like out");
  }
  ElementwiseArgs a = make_args(info, static_cast<Kind>(kind), checked_dtype(out, "simulation"), params, from_output);
  for (size_t k = 0; k < inputs.size(); ++k) a.in[k] = flat(inputs[k]);
  a.out[0] = flat_out(out);
  set_flat(a, out.numel());
  return simulate_cuda_launch(a, nthreads, only_thread);
}

void set_simulation(int64_t nthreads) {
  TORCH_CHECK(nthreads >= 0, "nthreads must be >= 0 (0 turns the simulation off)");
  g_simulated_threads = nthreads;
}

}  // namespace

bool simulate_cuda_launch(const ElementwiseArgs& a, int64_t nthreads, int64_t only_thread, const ChannelSum* sum) {
#define FA_ENTRY(F) &SimulatedThreads<act::F>::elementwise,
  static constexpr bool (*kThreads[])(const ElementwiseArgs&, int64_t, int64_t,
                                      const ChannelSum*) = {FUSED_ACT_FOR_EACH_ACTIVATION(FA_ENTRY)};
#undef FA_ENTRY
  return kThreads[static_cast<int>(a.act)](a, nthreads, only_thread, sum);
}

bool simulate_cuda_mask(const MaskArgs& a, int64_t nthreads) {
#define FA_ENTRY(F) &SimulatedThreads<act::F>::mask,
  static constexpr bool (*kThreads[])(const MaskArgs&, int64_t) = {FUSED_ACT_FOR_EACH_ACTIVATION(FA_ENTRY)};
#undef FA_ENTRY
  return kThreads[static_cast<int>(a.act)](a, nthreads);
}

int64_t simulated_cuda_threads() { return g_simulated_threads.load(std::memory_order_relaxed); }

TORCH_LIBRARY_FRAGMENT(fused_act, m) {
  m.def(
      "_simulate_cuda_elementwise(Tensor(a!) out, Tensor[] inputs, str act, float[] params, int kind, "
      "bool from_output, int nthreads, int only_thread=-1) -> bool");
  m.def("_set_cuda_simulation(int nthreads) -> ()", &set_simulation);
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) { m.impl("_simulate_cuda_elementwise", &simulate_flat); }

}  // namespace fused_act
