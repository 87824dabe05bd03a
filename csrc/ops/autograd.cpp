// Autograd for the elementwise ops (activation and its in-place form, bias_act, glu, gated, and
// the backward ops of activation and bias_act), in C++ at the Autograd key, as ATen and
// torchvision do; softmax_autograd.cpp and mask_autograd.cpp do the same for their ops.
//
// Why not torch.library.register_autograd (all ops used it once): its Python kernel cost
// ~30 us per forward and ~100 us per backward here, and torch's own activations have none, so a
// converted 6-layer MLP ran a training step 14% slower than the original (bench/model_step.py,
// 2026-11-25: 21.1 vs 18.2 ms; 18.5 vs 17.7 with these kernels and the CPU loop change). These kernels call the ops
// through the dispatcher, so torch.compile / torch.export still see them (AOT autograd traces this code with fake
// tensors) and the backward ops' own autograd gives the double backward. The third derivative
// raises in activation_double_backward's autograd (fused_act/ops.py).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
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
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The ops, called through the dispatcher (below Autograd when a guard says so).

void activation_inplace_op(Tensor& x, string_view act, ArrayRef<double> p) {
  static const auto h = op_handle<void(Tensor&, string_view, ArrayRef<double>)>("fused_act::activation_");
  h.call(x, act, p);
}

Tensor activation_double_backward_op(const Tensor& gg, const Tensor& g, const Tensor& s, string_view act,
                                     ArrayRef<double> p, bool out) {
  static const auto h =
      op_handle<Tensor(const Tensor&, const Tensor&, const Tensor&, string_view, ArrayRef<double>, bool)>(
          "fused_act::activation_double_backward");
  return h.call(gg, g, s, act, p, out);
}

Tensor glu_op(const Tensor& x, int64_t dim, bool gate_first, string_view act, ArrayRef<double> p) {
  static const auto h =
      op_handle<Tensor(const Tensor&, int64_t, bool, string_view, ArrayRef<double>)>("fused_act::glu");
  return h.call(x, dim, gate_first, act, p);
}

Tensor glu_backward_op(const Tensor& g, const Tensor& x, int64_t dim, bool gate_first, string_view act,
                       ArrayRef<double> p) {
  static const auto h = op_handle<Tensor(const Tensor&, const Tensor&, int64_t, bool, string_view, ArrayRef<double>)>(
      "fused_act::glu_backward");
  return h.call(g, x, dim, gate_first, act, p);
}

Tensor gated_op(const Tensor& a, const Tensor& u, string_view act, ArrayRef<double> p) {
  static const auto h =
      op_handle<Tensor(const Tensor&, const Tensor&, string_view, ArrayRef<double>)>("fused_act::gated");
  return h.call(a, u, act, p);
}

std::tuple<Tensor, Tensor> gated_backward_op(const Tensor& g, const Tensor& a, const Tensor& u, string_view act,
                                             ArrayRef<double> p) {
  static const auto h =
      op_handle<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, string_view, ArrayRef<double>)>(
          "fused_act::gated_backward");
  return h.call(g, a, u, act, p);
}

Tensor bias_act_op(const Tensor& x, const Tensor& b, int64_t dim, string_view act, ArrayRef<double> p) {
  static const auto h =
      op_handle<Tensor(const Tensor&, const Tensor&, int64_t, string_view, ArrayRef<double>)>("fused_act::bias_act");
  return h.call(x, b, dim, act, p);
}

std::tuple<Tensor, Tensor> bias_act_backward_op(const Tensor& g, const Tensor& s, const Tensor& b, int64_t dim,
                                                string_view act, ArrayRef<double> p, bool out) {
  static const auto h =
      op_handle<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, int64_t, string_view,
                                           ArrayRef<double>, bool)>("fused_act::bias_act_backward");
  return h.call(g, s, b, dim, act, p, out);
}

// What every Function keeps besides tensors.
void keep(AutogradContext* ctx, string_view act, ArrayRef<double> params) {
  ctx->saved_data["act"] = std::string(act);
  ctx->saved_data["params"] = params.vec();
}
std::string act_of(AutogradContext* ctx) { return ctx->saved_data["act"].toStringRef(); }
std::vector<double> params_of(AutogradContext* ctx) { return ctx->saved_data["params"].toDoubleVector(); }

// bias as a tensor broadcasting along `dim` of an ndim-dimensional tensor.
Tensor bias_view(const Tensor& bias, int64_t ndim, int64_t dim) {
  std::vector<int64_t> shape(ndim, 1);
  shape[dim] = -1;
  return bias.view(shape);
}

Tensor or_zeros(const Tensor& t, const Tensor& like) { return t.defined() ? t : at::zeros_like(like); }

// The backward of activation and activation_: a graph node written as ATen's generated ones
// (ReluBackward0, ...), not a torch::autograd::Function. The Function's context (an IValue map
// keyed by strings, the output wrapping) cost ~6 us per forward + backward, a fifth of a small
// activation's (bench/call_cost.py, relu on 16 elements: 26.5 -> 20.7 us, eager 20.0).
struct ActivationBackward : torch::autograd::Node {
  std::string act;
  std::vector<double> params;
  Saved saved = Saved::kNone;
  torch::autograd::SavedVariable s;  // x (kInput) or y (kOutput)

  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined() || !task_should_compute_output(0)) return {Tensor()};
    if (saved == Saved::kNone) return {grads[0]};
    return {activation_backward_op(grads[0], s.unpack(getptr()), act, params, saved == Saved::kOutput)};
  }
  std::string name() const override { return "fused_act::ActivationBackward"; }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    s.reset_data();
  }
};

NodePtr<ActivationBackward> make_node(const Tensor& x, string_view act, ArrayRef<double> params) {
  auto node = new_node<ActivationBackward>();
  node->act = std::string(act);
  node->params = params.vec();
  node->saved = saved_for(checked_activation(act, params), params);
  node->set_next_edges(torch::autograd::collect_next_edges(x));
  return node;
}

Tensor activation_with_grad(const Tensor& x, string_view act, ArrayRef<double> params) {
  auto node = make_node(x, act, params);
  Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    y = activation_op(x, act, params);
  }
  torch::autograd::set_history(y, node);
  if (node->saved == Saved::kInput) node->s = torch::autograd::SavedVariable(x, false);
  if (node->saved == Saved::kOutput) node->s = torch::autograd::SavedVariable(y, true);
  node_created(node);
  return y;
}

// x = f(x) under autograd, as ATen's relu_: autograd's in-place checks (a leaf that requires
// grad raises), the version bump, the history rebased onto the new node. When backward needs
// the input, a copy of it is kept, so in place saves memory only where backward works from y.
Tensor activation_inplace_with_grad(Tensor& x, string_view act, ArrayRef<double> params) {
  torch::autograd::check_inplace(x, true);
  auto node = make_node(x, act, params);
  const Tensor original = node->saved == Saved::kInput ? x.clone() : Tensor();
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    activation_inplace_op(x, act, params);
  }
  torch::autograd::increment_version(x);
  auto attached = attach_inplace(x, node);
  if (node->saved == Saved::kInput) node->s = torch::autograd::SavedVariable(original, false);
  if (node->saved == Saved::kOutput) node->s = torch::autograd::SavedVariable(x, true, x.is_view());
  node_created(attached);
  return x;
}

// glu and gated: graph nodes as ActivationBackward (their Python register_autograd kernels cost
// ~25 us per forward + backward). Their backward ops keep Python autograd (fused_act/fused_ops.py)
// for the double backward, which only create_graph=True reaches.
struct GluBackward : torch::autograd::Node {
  int64_t dim = 0;
  bool gate_first = false;
  std::string act;
  std::vector<double> params;
  torch::autograd::SavedVariable x;

  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined() || !task_should_compute_output(0)) return {Tensor()};
    return {glu_backward_op(grads[0], x.unpack(getptr()), dim, gate_first, act, params)};
  }
  std::string name() const override { return "fused_act::GluBackward"; }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    x.reset_data();
  }
};

struct GatedBackward : torch::autograd::Node {
  std::string act;
  std::vector<double> params;
  torch::autograd::SavedVariable a, u;

  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor(), Tensor()};
    auto [da, du] = gated_backward_op(grads[0], a.unpack(getptr()), u.unpack(getptr()), act, params);
    return {task_should_compute_output(0) ? da : Tensor(), task_should_compute_output(1) ? du : Tensor()};
  }
  std::string name() const override { return "fused_act::GatedBackward"; }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    a.reset_data();
    u.reset_data();
  }
};

Tensor glu_with_grad(const Tensor& x, int64_t dim, bool gate_first, string_view act, ArrayRef<double> params) {
  auto node = new_node<GluBackward>();
  node->dim = dim;
  node->gate_first = gate_first;
  node->act = std::string(act);
  node->params = params.vec();
  node->set_next_edges(torch::autograd::collect_next_edges(x));
  Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    y = glu_op(x, dim, gate_first, act, params);
  }
  torch::autograd::set_history(y, node);
  node->x = torch::autograd::SavedVariable(x, false);
  node_created(node);
  return y;
}

Tensor gated_with_grad(const Tensor& a, const Tensor& u, string_view act, ArrayRef<double> params) {
  auto node = new_node<GatedBackward>();
  node->act = std::string(act);
  node->params = params.vec();
  node->set_next_edges(torch::autograd::collect_next_edges(a, u));
  Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    y = gated_op(a, u, act, params);
  }
  torch::autograd::set_history(y, node);
  node->a = torch::autograd::SavedVariable(a, false);
  node->u = torch::autograd::SavedVariable(u, false);
  node_created(node);
  return y;
}

class ActivationBackwardFn : public torch::autograd::Function<ActivationBackwardFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& grad, const Tensor& saved, string_view act,
                        ArrayRef<double> params, bool from_output) {
    at::AutoDispatchBelowADInplaceOrView guard;
    keep(ctx, act, params);
    ctx->saved_data["from_output"] = from_output;
    ctx->save_for_backward({grad, saved});
    return activation_backward_op(grad, saved, act, params, from_output);
  }

  // d/dgrad = gg f'(s); d/dsaved from the double-backward kernel.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto v = ctx->get_saved_variables();
    const std::string act = act_of(ctx);
    const std::vector<double> p = params_of(ctx);
    const bool out = ctx->saved_data["from_output"].toBool();
    const Tensor gg = or_zeros(grads[0], v[1]);
    Tensor d_grad, d_saved;
    if (ctx->needs_input_grad(0)) d_grad = activation_backward_op(gg, v[1], act, p, out);
    if (ctx->needs_input_grad(1)) d_saved = activation_double_backward_op(gg, v[0], v[1], act, p, out);
    return {d_grad, d_saved, Tensor(), Tensor(), Tensor()};
  }
};

class BiasActFn : public torch::autograd::Function<BiasActFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& bias, int64_t dim, string_view act,
                        ArrayRef<double> params) {
    const Saved saved = saved_for(checked_activation(act, params), params);
    Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      y = bias_act_op(x, bias, dim, act, params);  // checks dim and shapes
    }
    keep(ctx, act, params);
    ctx->saved_data["dim"] = c10::maybe_wrap_dim(dim, x.dim());
    ctx->saved_data["saved"] = static_cast<int64_t>(saved);
    // Identity keeps only the (tiny) bias, for its shape; the output form keeps y, which
    // already holds the bias.
    if (saved == Saved::kNone)
      ctx->save_for_backward({bias});
    else
      ctx->save_for_backward({saved == Saved::kInput ? x : y, bias});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = static_cast<Saved>(ctx->saved_data["saved"].toInt());
    const auto v = ctx->get_saved_variables();
    // The output form of identity's derivative ignores its argument: grad stands in for it.
    const Tensor& s = saved == Saved::kNone ? grads[0] : v[0];
    const Tensor& bias = saved == Saved::kNone ? v[0] : v[1];
    auto [dx, db] = bias_act_backward_op(grads[0], s, bias, ctx->saved_data["dim"].toInt(), act_of(ctx), params_of(ctx),
                                         saved != Saved::kInput);
    return {dx, db, Tensor(), Tensor(), Tensor()};
  }
};

class BiasActBackwardFn : public torch::autograd::Function<BiasActBackwardFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& grad, const Tensor& saved, const Tensor& bias,
                               int64_t dim, string_view act, ArrayRef<double> params, bool from_output) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [dx, db] = bias_act_backward_op(grad, saved, bias, dim, act, params, from_output);
    keep(ctx, act, params);
    ctx->saved_data["dim"] = c10::maybe_wrap_dim(dim, saved.dim());
    ctx->saved_data["from_output"] = from_output;
    ctx->save_for_backward({grad, saved, bias});
    return {dx, db};
  }

  // (dx, db) = (g f'(s), dx summed over all dims but `dim`), s = x + bias or, from the output,
  // y. The incoming gradients act on dx as h = g_dx + g_db broadcast along dim.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto v = ctx->get_saved_variables();
    const Tensor &grad = v[0], &saved = v[1], &bias = v[2];
    const int64_t dim = ctx->saved_data["dim"].toInt();
    const std::string act = act_of(ctx);
    const std::vector<double> p = params_of(ctx);
    const bool out = ctx->saved_data["from_output"].toBool();
    Tensor h = or_zeros(grads[0], grad);
    if (grads[1].defined()) h = h + bias_view(grads[1], grad.dim(), dim);
    const Tensor d_grad = std::get<0>(bias_act_backward_op(h, saved, bias, dim, act, p, out));
    if (out) {
      return {
          d_grad,  activation_double_backward_op(h, grad, saved, act, p, true), Tensor(), Tensor(), Tensor(), Tensor(),
          Tensor()};
    }
    const Tensor z = saved + bias_view(bias, saved.dim(), dim);
    const Tensor d_saved = activation_double_backward_op(h, grad, z, act, p, false);
    std::vector<int64_t> others;
    for (int64_t d = 0; d < saved.dim(); ++d)
      if (d != dim) others.push_back(d);
    // A 1-D x has no other dims: its bias gradient is d_saved itself (sum over no dims would
    // sum over all of them).
    const Tensor d_bias = others.empty() ? d_saved : d_saved.sum(others);
    return {d_grad, d_saved, d_bias, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor eager_activation(const Tensor& x, string_view act, ArrayRef<double> params) {
  return activation_op(x, act, params);
}

Tensor eager_bias_act(const Tensor& x, const Tensor& bias, int64_t dim, string_view act, ArrayRef<double> params) {
  return bias_act_op(x, bias, dim, act, params);
}

Tensor eager_glu(const Tensor& x, int64_t dim, bool gate_first, string_view act, ArrayRef<double> params) {
  return glu_op(x, dim, gate_first, act, params);
}

Tensor eager_gated(const Tensor& a, const Tensor& u, string_view act, ArrayRef<double> params) {
  return gated_op(a, u, act, params);
}

Tensor eager_activation_inplace(Tensor& x, string_view act, ArrayRef<double> params) {
  if (records({&x})) return activation_inplace_with_grad(x, act, params);
  activation_inplace_op(x, act, params);
  // As ATen's in-place ops: a graph that saved x (another op's input) must see it changed.
  torch::autograd::increment_version(x);
  return x;
}

namespace {

TORCH_LIBRARY_IMPL(fused_act, Autograd, m) {
  m.impl("activation", [](const Tensor& x, string_view act, ArrayRef<double> params) {
    if (!records({&x})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return activation_op(x, act, params);
    }
    return activation_with_grad(x, act, params);
  });
  m.impl("activation_backward",
         [](const Tensor& grad, const Tensor& saved, string_view act, ArrayRef<double> params, bool from_output) {
           if (!records({&grad, &saved})) {
             at::AutoDispatchBelowADInplaceOrView guard;
             return activation_backward_op(grad, saved, act, params, from_output);
           }
           return ActivationBackwardFn::apply(grad, saved, act, params, from_output);
         });
  m.impl("glu", [](const Tensor& x, int64_t dim, bool gate_first, string_view act, ArrayRef<double> params) {
    if (!records({&x})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return glu_op(x, dim, gate_first, act, params);
    }
    return glu_with_grad(x, dim, gate_first, act, params);
  });
  m.impl("gated", [](const Tensor& a, const Tensor& u, string_view act, ArrayRef<double> params) {
    if (!records({&a, &u})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return gated_op(a, u, act, params);
    }
    return gated_with_grad(a, u, act, params);
  });
  m.impl("bias_act", [](const Tensor& x, const Tensor& bias, int64_t dim, string_view act, ArrayRef<double> params) {
    if (!records({&x, &bias})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return bias_act_op(x, bias, dim, act, params);
    }
    return BiasActFn::apply(x, bias, dim, act, params);
  });
  m.impl("bias_act_backward", [](const Tensor& grad, const Tensor& saved, const Tensor& bias, int64_t dim,
                                 string_view act, ArrayRef<double> params, bool from_output) {
    if (!records({&grad, &saved, &bias})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return bias_act_backward_op(grad, saved, bias, dim, act, params, from_output);
    }
    auto r = BiasActBackwardFn::apply(grad, saved, bias, dim, act, params, from_output);
    return std::make_tuple(r[0], r[1]);
  });
}

}  // namespace

}  // namespace fused_act
