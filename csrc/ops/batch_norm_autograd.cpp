// Autograd of batch_norm_act, in C++ at the Autograd key as the other ops' (autograd.cpp). The
// backward op has autograd of its own for the double backward, which only create_graph=True
// reaches: it differentiates a composition of differentiable ops that recomputes the backward
// (the statistics from x in training, the activation's derivative through activation_backward,
// itself twice differentiable), rather than a hand-written second derivative of batch norm.
#include <ATen/ATen.h>
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
using OptTensor = c10::optional<Tensor>;

std::tuple<Tensor, Tensor, Tensor> batch_norm_act_op(const Tensor& x, const OptTensor& w, const OptTensor& b,
                                                     const OptTensor& rm, const OptTensor& rv, bool training,
                                                     double momentum, double eps, string_view act, ArrayRef<double> p) {
  static const auto h = op_handle<std::tuple<Tensor, Tensor, Tensor>(
      const Tensor&, const OptTensor&, const OptTensor&, const OptTensor&, const OptTensor&, bool, double, double,
      string_view, ArrayRef<double>)>("fused_act::batch_norm_act");
  return h.call(x, w, b, rm, rv, training, momentum, eps, act, p);
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_act_backward_op(const Tensor& g, const Tensor& x, const OptTensor& w,
                                                              const OptTensor& b, const Tensor& mean,
                                                              const Tensor& invstd, bool training, string_view act,
                                                              ArrayRef<double> p, std::array<bool, 3> mask) {
  static const auto h = op_handle<std::tuple<Tensor, Tensor, Tensor>(
      const Tensor&, const Tensor&, const OptTensor&, const OptTensor&, const Tensor&, const Tensor&, bool, string_view,
      ArrayRef<double>, std::array<bool, 3>)>("fused_act::batch_norm_act_backward");
  return h.call(g, x, w, b, mean, invstd, training, act, p, mask);
}

OptTensor opt(const Tensor& t) { return t.defined() ? OptTensor(t) : OptTensor(); }

// needs_input_grad's index of each of `args`: Function::apply gives an absent optional no edge.
std::vector<int64_t> edge_indices(std::initializer_list<bool> present) {
  std::vector<int64_t> out;
  int64_t next = 0;
  for (bool p : present) out.push_back(p ? next++ : -1);
  return out;
}

bool needs(AutogradContext* ctx, int64_t edge) { return edge >= 0 && ctx->needs_input_grad(edge); }
Tensor value_or_undefined(const OptTensor& t) { return t.has_value() ? *t : Tensor(); }

// A per-channel vector as a tensor broadcasting along dim 1 of an ndim-dimensional tensor.
Tensor channel_view(const Tensor& v, int64_t ndim) {
  std::vector<int64_t> shape(ndim, 1);
  shape[1] = -1;
  return v.view(shape);
}

std::vector<int64_t> other_dims(int64_t ndim) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < ndim; ++d) dims.push_back(d);
  return dims;
}

class BatchNormActFn : public torch::autograd::Function<BatchNormActFn> {
 public:
  // weight and bias as optionals: Function::apply takes them as (possibly absent) inputs, where
  // an undefined Tensor argument raised.
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                               const OptTensor& running_mean, const OptTensor& running_var, bool training,
                               double momentum, double eps, string_view act, ArrayRef<double> params) {
    Tensor y, mean, invstd;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      std::tie(y, mean, invstd) =
          batch_norm_act_op(x, weight, bias, running_mean, running_var, training, momentum, eps, act, params);
    }
    ctx->saved_data["act"] = std::string(act);
    ctx->saved_data["params"] = params.vec();
    ctx->saved_data["training"] = training;
    ctx->save_for_backward({x, value_or_undefined(weight), value_or_undefined(bias), mean, invstd});
    ctx->mark_non_differentiable({mean, invstd});
    return {y, mean, invstd};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto v = ctx->get_saved_variables();
    const auto edge = edge_indices({true, v[1].defined(), v[2].defined()});
    const std::array<bool, 3> mask{needs(ctx, edge[0]), needs(ctx, edge[1]), needs(ctx, edge[2])};
    const Tensor g = grads[0].defined() ? grads[0] : at::zeros_like(v[0]);
    auto [dx, dw, db] = batch_norm_act_backward_op(
        g, v[0], opt(v[1]), opt(v[2]), v[3], v[4], ctx->saved_data["training"].toBool(),
        ctx->saved_data["act"].toStringRef(), ctx->saved_data["params"].toDoubleVector(), mask);
    return {dx, dw, db, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

class BatchNormActBackwardFn : public torch::autograd::Function<BatchNormActBackwardFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& grad, const Tensor& x, const OptTensor& weight,
                               const OptTensor& bias, const Tensor& mean, const Tensor& invstd, bool training,
                               string_view act, ArrayRef<double> params, std::array<bool, 3> mask) {
    Tensor dx, dw, db;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      std::tie(dx, dw, db) =
          batch_norm_act_backward_op(grad, x, weight, bias, mean, invstd, training, act, params, mask);
    }
    // Function::apply cannot wrap an undefined output: the unasked gradients as zeros here (only
    // create_graph=True comes this way), undefined again in the op's result.
    if (!dx.defined()) dx = at::zeros_like(x);
    if (!dw.defined()) dw = at::zeros({x.size(1)}, mean.options());
    if (!db.defined()) db = at::zeros({x.size(1)}, mean.options());
    ctx->saved_data["act"] = std::string(act);
    ctx->saved_data["params"] = params.vec();
    ctx->saved_data["training"] = training;
    ctx->save_for_backward({grad, x, value_or_undefined(weight), value_or_undefined(bias), mean, invstd});
    return {dx, dw, db};
  }

  // The vector-Jacobian product of (dx, dw, db) by differentiating their recomputation.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto v = ctx->get_saved_variables();
    const std::string act = ctx->saved_data["act"].toStringRef();
    const std::vector<double> p = ctx->saved_data["params"].toDoubleVector();
    const bool training = ctx->saved_data["training"].toBool();
    const bool create_graph = at::GradMode::is_enabled();
    at::AutoGradMode enable(true);
    // Leaves of the recomputation: the saved tensors themselves when they already take part in
    // a graph (so that create_graph continues it), detached copies otherwise.
    auto leaf = [](const Tensor& t) { return t.defined() && !t.requires_grad() ? t.detach().requires_grad_() : t; };
    const Tensor g = leaf(v[0]), x = leaf(v[1]), w = leaf(v[2]), b = leaf(v[3]);
    const int64_t nd = x.dim();
    const auto dims = other_dims(nd);
    const double m = static_cast<double>(x.numel() / x.size(1));
    Tensor mean = v[4].to(x.scalar_type()), invstd = v[5].to(x.scalar_type());
    if (training) {
      mean = x.mean(dims);
      const Tensor var = (x - channel_view(mean, nd)).square().mean(dims);
      // invstd's value as saved (1 / sqrt(var + eps)), its derivative -invstd^3 / 2 d var
      invstd = (var - var.detach() + invstd.pow(-2)).rsqrt();
    }
    const Tensor xhat = (x - channel_view(mean, nd)) * channel_view(invstd, nd);
    const Tensor scale = w.defined() ? channel_view(w, nd) : at::ones_like(channel_view(invstd, nd));
    Tensor z = xhat * scale;
    if (b.defined()) z = z + channel_view(b, nd);
    const Saved saved = saved_for(checked_activation(act, p), p);
    const Tensor dz = saved == Saved::kInput ? activation_backward_op(g, z, act, p, false)
                                             : activation_backward_op(g, activation_op(z, act, p), act, p, true);
    const Tensor db = dz.sum(dims), dw = (dz * xhat).sum(dims);
    Tensor dx = dz;
    if (training) dx = dz - channel_view(db, nd) / m - xhat * channel_view(dw, nd) / m;
    dx = dx * channel_view(invstd, nd) * scale;

    variable_list outputs, grad_outputs;
    const Tensor results[3] = {dx, dw, db};
    for (int i = 0; i < 3; ++i) {
      if (grads[i].defined()) {
        outputs.push_back(results[i]);
        grad_outputs.push_back(grads[i]);
      }
    }
    variable_list inputs;
    std::vector<int> slot;
    const Tensor leaves[4] = {g, x, w, b};
    const auto edge = edge_indices({true, true, w.defined(), b.defined()});
    for (int i = 0; i < 4; ++i) {
      if (needs(ctx, edge[i])) {
        inputs.push_back(leaves[i]);
        slot.push_back(i);
      }
    }
    variable_list out(10);
    if (outputs.empty() || inputs.empty()) return out;
    const auto d = torch::autograd::grad(outputs, inputs, grad_outputs, /*retain_graph=*/true, create_graph,
                                         /*allow_unused=*/true);
    for (size_t i = 0; i < slot.size(); ++i) out[slot[i]] = d[i];
    return out;
  }
};

const Tensor* ptr_of(const OptTensor& t) { return t.has_value() ? &*t : nullptr; }

void bump(const OptTensor& t) {
  if (t.has_value() && t->defined()) torch::autograd::increment_version(*t);
}

TORCH_LIBRARY_IMPL(fused_act, Autograd, m) {
  m.impl("batch_norm_act", [](const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                              const OptTensor& running_mean, const OptTensor& running_var, bool training,
                              double momentum, double eps, string_view act, ArrayRef<double> params) {
    const Tensor none;
    const Tensor* w = ptr_of(weight);
    const Tensor* b = ptr_of(bias);
    std::tuple<Tensor, Tensor, Tensor> r;
    if (!records({&x, w ? w : &none, b ? b : &none})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      r = batch_norm_act_op(x, weight, bias, running_mean, running_var, training, momentum, eps, act, params);
    } else {
      auto out =
          BatchNormActFn::apply(x, weight, bias, running_mean, running_var, training, momentum, eps, act, params);
      r = {out[0], out[1], out[2]};
    }
    // As ATen's batch norm: a graph that saved the running statistics must see them changed.
    if (training) bump(running_mean), bump(running_var);
    return r;
  });
  m.impl("batch_norm_act_backward", [](const Tensor& grad, const Tensor& x, const OptTensor& weight,
                                       const OptTensor& bias, const Tensor& save_mean, const Tensor& save_invstd,
                                       bool training, string_view act, ArrayRef<double> params,
                                       std::array<bool, 3> mask) {
    const Tensor none;
    const Tensor* w = ptr_of(weight);
    const Tensor* b = ptr_of(bias);
    if (!records({&grad, &x, w ? w : &none, b ? b : &none})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return batch_norm_act_backward_op(grad, x, weight, bias, save_mean, save_invstd, training, act, params, mask);
    }
    auto r = BatchNormActBackwardFn::apply(grad, x, weight, bias, save_mean, save_invstd, training, act, params, mask);
    return std::make_tuple(mask[0] ? r[0] : Tensor(), mask[1] ? r[1] : Tensor(), mask[2] ? r[2] : Tensor());
  });
}

}  // namespace

Tensor eager_batch_norm_act(const Tensor& x, const OptTensor& weight, const OptTensor& bias,
                            const OptTensor& running_mean, const OptTensor& running_var, bool training, double momentum,
                            double eps, string_view act, ArrayRef<double> params) {
  return std::get<0>(
      batch_norm_act_op(x, weight, bias, running_mean, running_var, training, momentum, eps, act, params));
}

}  // namespace fused_act
