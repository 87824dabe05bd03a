// Autograd of the mask ops (mask_ops.h), in C++ for the reason autograd.cpp gives.
//
// The mask backward dx = grad * f'(mask) is linear in grad, so one node serves both levels: the
// forward's node maps g to mask_backward(g), and mask_backward's own node maps gg to
// mask_backward(gg) again (its derivative through the mask is 0: f'' = 0 for these activations).
// Bit k of the mask belongs to element k of y in memory order, so a node brings the incoming
// gradient to y's strides first.
#include <ATen/ATen.h>
#include <c10/util/strides.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "autograd.h"
#include "autograd_util.h"
#include "front.h"

namespace fused_act {

namespace {

using at::Tensor;
using c10::ArrayRef;
using c10::string_view;
using torch::autograd::variable_list;

std::tuple<Tensor, Tensor> mask_op(const Tensor& x, string_view act, ArrayRef<double> p) {
  static const auto h =
      op_handle<std::tuple<Tensor, Tensor>(const Tensor&, string_view, ArrayRef<double>)>("fused_act::activation_mask");
  return h.call(x, act, p);
}

Tensor mask_inplace_op(Tensor& x, string_view act, ArrayRef<double> p) {
  static const auto h = op_handle<Tensor(Tensor&, string_view, ArrayRef<double>)>("fused_act::activation_mask_");
  return h.call(x, act, p);
}

Tensor mask_backward_op(const Tensor& g, const Tensor& mask, string_view act, ArrayRef<double> p) {
  static const auto h = op_handle<Tensor(const Tensor&, const Tensor&, string_view, ArrayRef<double>)>(
      "fused_act::activation_mask_backward");
  return h.call(g, mask, act, p);
}

// The strides whose memory order the mask follows: the tensor's own when it is dense (the front
// keeps dense layouts), else row-major (the front computes such tensors contiguously).
std::vector<int64_t> mask_order(const Tensor& t) {
  if (t.is_non_overlapping_and_dense()) return t.strides().vec();
  const auto rows = c10::contiguous_strides(t.sizes());
  return {rows.begin(), rows.end()};
}

struct MaskBackward : torch::autograd::Node {
  std::string act;
  std::vector<double> params;
  std::vector<int64_t> strides;
  torch::autograd::SavedVariable mask;

  variable_list apply(variable_list&& grads) override {
    const Tensor& g = grads[0];
    if (!g.defined() || !task_should_compute_output(0)) return {Tensor()};
    Tensor in_order = g;
    if (!has_layout(g, strides)) {
      in_order = at::empty_strided(g.sizes(), strides, g.options());
      copy_into(in_order, g);
    }
    return {mask_backward_op(in_order, mask.unpack(getptr()), act, params)};
  }
  std::string name() const override { return "fused_act::ActivationMaskBackward"; }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    mask.reset_data();
  }
};

NodePtr<MaskBackward> make_node(const Tensor& t, const Tensor& order_of, string_view act, ArrayRef<double> params) {
  auto node = new_node<MaskBackward>();
  node->act = std::string(act);
  node->params = params.vec();
  node->strides = mask_order(order_of);
  node->set_next_edges(torch::autograd::collect_next_edges(t));
  return node;
}

std::tuple<Tensor, Tensor> mask_autograd(const Tensor& x, string_view act, ArrayRef<double> params) {
  if (!records({&x})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return mask_op(x, act, params);
  }
  Tensor y, mask;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    std::tie(y, mask) = mask_op(x, act, params);  // checks act, params, dtype
  }
  auto node = make_node(x, y, act, params);
  torch::autograd::set_history(y, node);  // the mask stays outside the graph (no grad_fn)
  node->mask = torch::autograd::SavedVariable(mask, false);
  node_created(node);
  return {y, mask};
}

// x = f(x) keeping the mask, with autograd's in-place checks, as activation_ in autograd.cpp.
Tensor mask_inplace_autograd(Tensor& x, string_view act, ArrayRef<double> params) {
  if (!records({&x})) {
    Tensor mask;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      mask = mask_inplace_op(x, act, params);
    }
    torch::autograd::increment_version(x);  // a graph that saved x must see it changed
    return mask;
  }
  torch::autograd::check_inplace(x, true);
  auto node = make_node(x, x, act, params);
  Tensor mask;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    mask = mask_inplace_op(x, act, params);
  }
  torch::autograd::increment_version(x);
  auto attached = attach_inplace(x, node);
  node->mask = torch::autograd::SavedVariable(mask, false);
  node_created(attached);
  return mask;
}

Tensor mask_backward_autograd(const Tensor& grad, const Tensor& mask, string_view act, ArrayRef<double> params) {
  if (!records({&grad})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return mask_backward_op(grad, mask, act, params);
  }
  Tensor dx;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    dx = mask_backward_op(grad, mask, act, params);
  }
  auto node = make_node(grad, dx, act, params);
  torch::autograd::set_history(dx, node);
  node->mask = torch::autograd::SavedVariable(mask, false);
  node_created(node);
  return dx;
}

TORCH_LIBRARY_IMPL(fused_act, Autograd, m) {
  m.impl("activation_mask", &mask_autograd);
  m.impl("activation_mask_", &mask_inplace_autograd);
  m.impl("activation_mask_backward", &mask_backward_autograd);
}

}  // namespace

Tensor eager_activation_mask(const Tensor& x, string_view act, ArrayRef<double> params) {
  return std::get<0>(mask_op(x, act, params));
}

Tensor eager_activation_mask_inplace(Tensor& x, string_view act, ArrayRef<double> params) {
  mask_inplace_op(x, act, params);
  return x;
}

}  // namespace fused_act
