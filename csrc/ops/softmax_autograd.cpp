// Autograd of softmax / log_softmax and of their backward op, in C++ for the reason autograd.cpp
// gives (a Python register_autograd kernel costs more than a small softmax).
//
// Forward: the graph node keeps y only; dx = softmax_backward(g, y).
// Backward op dx = B(g, y), with incoming gg = dL/d(dx); sums run along dim:
//   softmax:      dx = y * (g - s),        s = sum(g * y)
//     dL/dg = y * (gg - sum(gg * y))       = B(gg, y): the backward op again
//     dL/dy = gg * (g - s) - g * sum(gg * y)
//   log_softmax:  dx = g - exp(y) * S,     S = sum(g)
//     dL/dg = gg - sum(gg * exp(y))
//     dL/dy = -gg * exp(y) * S
// Autograd then carries dL/dy back to x through the forward's node. The double backward is ATen
// ops and the backward op, so every higher derivative follows from torch's autograd of them.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "autograd.h"
#include "autograd_util.h"

namespace fused_act {

namespace {

using at::Tensor;
using torch::autograd::variable_list;

Tensor softmax_op(const Tensor& x, int64_t dim, bool log) {
  static const auto h = op_handle<Tensor(const Tensor&, int64_t, bool)>("fused_act::softmax");
  return h.call(x, dim, log);
}

Tensor softmax_backward_op(const Tensor& grad, const Tensor& y, int64_t dim, bool log) {
  static const auto h = op_handle<Tensor(const Tensor&, const Tensor&, int64_t, bool)>("fused_act::softmax_backward");
  return h.call(grad, y, dim, log);
}

struct SoftmaxBackward : torch::autograd::Node {
  int64_t dim = 0;
  bool log = false;
  torch::autograd::SavedVariable y;

  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined() || !task_should_compute_output(0)) return {Tensor()};
    return {softmax_backward_op(grads[0], y.unpack(getptr()), dim, log)};
  }
  std::string name() const override { return "fused_act::SoftmaxBackward"; }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    y.reset_data();
  }
};

struct SoftmaxBackwardBackward : torch::autograd::Node {
  int64_t dim = 0;
  bool log = false;
  torch::autograd::SavedVariable grad, y;

  variable_list apply(variable_list&& grads) override {
    const Tensor& gg = grads[0];
    if (!gg.defined()) return {Tensor(), Tensor()};
    const Tensor g = grad.unpack(getptr()), out = y.unpack(getptr());
    Tensor d_grad, d_y;
    if (log) {
      const Tensor e = out.exp();
      if (task_should_compute_output(0)) d_grad = gg - (gg * e).sum(dim, true);
      if (task_should_compute_output(1)) d_y = -gg * e * g.sum(dim, true);
    } else {
      if (task_should_compute_output(0)) d_grad = softmax_backward_op(gg, out, dim, false);
      if (task_should_compute_output(1)) {
        const Tensor s = (g * out).sum(dim, true);
        d_y = gg * (g - s) - g * (gg * out).sum(dim, true);
      }
    }
    return {d_grad, d_y};
  }
  std::string name() const override { return "fused_act::SoftmaxBackwardBackward"; }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    grad.reset_data();
    y.reset_data();
  }
};

Tensor softmax_autograd(const Tensor& x, int64_t dim, bool log) {
  if (!records({&x})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return softmax_op(x, dim, log);
  }
  auto node = new_node<SoftmaxBackward>();
  node->dim = dim;
  node->log = log;
  node->set_next_edges(torch::autograd::collect_next_edges(x));
  Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    y = softmax_op(x, dim, log);  // checks dim
  }
  torch::autograd::set_history(y, node);
  node->y = torch::autograd::SavedVariable(y, true);
  node_created(node);
  return y;
}

Tensor softmax_backward_autograd(const Tensor& grad, const Tensor& y, int64_t dim, bool log) {
  if (!records({&grad, &y})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return softmax_backward_op(grad, y, dim, log);
  }
  auto node = new_node<SoftmaxBackwardBackward>();
  node->dim = dim;
  node->log = log;
  node->set_next_edges(torch::autograd::collect_next_edges(grad, y));
  Tensor dx;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    dx = softmax_backward_op(grad, y, dim, log);
  }
  torch::autograd::set_history(dx, node);
  node->grad = torch::autograd::SavedVariable(grad, false);
  node->y = torch::autograd::SavedVariable(y, false);
  node_created(node);
  return dx;
}

TORCH_LIBRARY_IMPL(fused_act, Autograd, m) {
  m.impl("softmax", &softmax_autograd);
  m.impl("softmax_backward", &softmax_backward_autograd);
}

}  // namespace

Tensor eager_softmax(const Tensor& x, int64_t dim, bool log) { return softmax_op(x, dim, log); }

}  // namespace fused_act
