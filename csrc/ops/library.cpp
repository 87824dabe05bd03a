// The schemas of the elementwise ops (activation, bias_act, glu, gated and their backward ops) and
// their CPU registration; softmax_ops.cpp, mask_ops.cpp and csrc/simulation/ define their own.
#include <torch/library.h>

#include "../cpu/dispatch.h"
#include "../simulation/simulation.h"
#include "register.h"

namespace fused_act {

namespace {

void run_cpu(const ElementwiseArgs& a, const ChannelSum* sum) {
  if (const int64_t threads = simulated_cuda_threads(); threads > 0) {
    simulate_cuda_launch(a, threads, -1, sum);
  } else {
    cpu::run_elementwise(a, sum);
  }
}

}  // namespace

// Every op here computes each input in its own strides and gives its outputs the layout its fake
// kernel (fused_act/ops/) gives them, for any input layout (tests/test_layouts.py). So inductor may
// hand them its own layouts: with its default for custom ops (needs_exact_strides) it copied every
// activation's input back to the strides seen when tracing, and the next convolution's back to
// channels-last, in a model whose convolutions it runs channels-last (mobilenet_v3_small under
// torch.compile: 548 -> 492 kernels, one step 0.92x -> 0.94x of the unconverted model's; README).
// The mask ops (mask_ops.cpp) keep the default: their mask follows the forward's memory order,
// which the backward's grad must share.
const std::vector<at::Tag> kFlexibleLayout{at::Tag::flexible_layout};

TORCH_LIBRARY(fused_act, m) {
  m.def("activation(Tensor x, str act, float[] params) -> Tensor", kFlexibleLayout);
  // Returns nothing: functionalization (torch.compile, export) rejects custom ops whose outputs
  // alias their inputs. The Python wrapper returns x.
  m.def("activation_(Tensor(a!) x, str act, float[] params) -> ()", kFlexibleLayout);
  m.def("activation_backward(Tensor grad, Tensor saved, str act, float[] params, bool from_output) -> Tensor",
        kFlexibleLayout);
  m.def(
      "activation_double_backward(Tensor grad_grad, Tensor grad, Tensor saved, str act, float[] params, "
      "bool from_output) -> Tensor",
      kFlexibleLayout);
  m.def("bias_act(Tensor x, Tensor bias, int dim, str act, float[] params) -> Tensor", kFlexibleLayout);
  // saved: x (from_output=False) or the forward's output; returns (grad_x, grad_bias).
  m.def(
      "bias_act_backward(Tensor grad, Tensor saved, Tensor bias, int dim, str act, float[] params, "
      "bool from_output) -> (Tensor, Tensor)",
      kFlexibleLayout);
  m.def("glu(Tensor x, int dim, bool gate_first, str act, float[] params) -> Tensor", kFlexibleLayout);
  m.def("glu_backward(Tensor grad, Tensor x, int dim, bool gate_first, str act, float[] params) -> Tensor",
        kFlexibleLayout);
  m.def("gated(Tensor a, Tensor u, str act, float[] params) -> Tensor", kFlexibleLayout);
  m.def("gated_backward(Tensor grad, Tensor a, Tensor u, str act, float[] params) -> (Tensor, Tensor)",
        kFlexibleLayout);
  // Returns (y, save_mean, save_invstd); in training, updates the running statistics in place.
  m.def(
      "batch_norm_act(Tensor x, Tensor? weight, Tensor? bias, Tensor(a!)? running_mean, Tensor(b!)? running_var, "
      "bool training, float momentum, float eps, str act, float[] params) -> (Tensor, Tensor, Tensor)",
      kFlexibleLayout);
  m.def(
      "batch_norm_act_backward(Tensor grad, Tensor x, Tensor? weight, Tensor? bias, Tensor save_mean, "
      "Tensor save_invstd, bool training, str act, float[] params, bool[3] output_mask) -> (Tensor, Tensor, Tensor)",
      kFlexibleLayout);
}

TORCH_LIBRARY_IMPL(fused_act, CPU, m) { register_impls<&run_cpu>(m); }

}  // namespace fused_act
