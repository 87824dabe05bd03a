// What the Autograd-key kernels (autograd.cpp, softmax_autograd.cpp, mask_autograd.cpp) share:
// typed dispatcher handles for calling the ops below Autograd, the test for whether a call
// must record a graph node at all, and graph nodes across torch releases.
#pragma once

#include <initializer_list>
#include <memory>
#include <type_traits>
#include <utility>

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/edge.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

namespace fused_act {

// A typed handle of a fused_act op; look it up once (a function-local static at the call site).
template <class Sig>
c10::TypedOperatorHandle<Sig> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

// The plain activation ops, which several autograd kernels call (below Autograd when a guard says so).
inline at::Tensor activation_op(const at::Tensor& x, c10::string_view act, c10::ArrayRef<double> p) {
  static const auto h =
      op_handle<at::Tensor(const at::Tensor&, c10::string_view, c10::ArrayRef<double>)>("fused_act::activation");
  return h.call(x, act, p);
}

inline at::Tensor activation_backward_op(const at::Tensor& g, const at::Tensor& s, c10::string_view act,
                                         c10::ArrayRef<double> p, bool out) {
  static const auto h =
      op_handle<at::Tensor(const at::Tensor&, const at::Tensor&, c10::string_view, c10::ArrayRef<double>, bool)>(
          "fused_act::activation_backward");
  return h.call(g, s, act, p, out);
}

// Whether a call must record a graph node; otherwise the autograd kernels go straight to the
// backend (torch::autograd::Function would still fill a context it then drops: a few us per
// call, most of a small activation's time, and every first backward runs without grad mode).
inline bool records(std::initializer_list<const at::Tensor*> inputs) {
  if (!at::GradMode::is_enabled()) return false;
  for (const at::Tensor* t : inputs) {
    if (t->requires_grad()) return true;
  }
  return false;
}

// Graph nodes across torch releases (pyproject's floor is 2.5). torch 2.14 holds nodes in
// c10::intrusive_ptr, returns from rebase_history the node it attached (a CopySlices for a view)
// and expects fire_node_creation_hooks once a node is complete (torch.autograd.graph's node
// creation hooks); earlier releases hold them in std::shared_ptr deleted through deleteNode, and
// have no such hooks. Edge::function's type says which this torch is; the hooks are detected
// on their own. Every node of ours is made, attached and announced through these.
inline constexpr bool kIntrusiveNodes =
    !std::is_same_v<decltype(torch::autograd::Edge::function), std::shared_ptr<torch::autograd::Node>>;

template <class T>
using NodePtr = std::conditional_t<kIntrusiveNodes, c10::intrusive_ptr<T>, std::shared_ptr<T>>;

template <class T>
NodePtr<T> new_node() {
  if constexpr (kIntrusiveNodes) {
    return c10::make_intrusive<T>();
  } else {
    // deleteNode frees long chains of nodes without deep recursion; found, as the hooks below,
    // through the node's base class, since releases with intrusive nodes no longer declare it.
    return NodePtr<T>(new T(), [](T* node) { deleteNode(node); });
  }
}

// The unqualified call finds torch::autograd::fire_node_creation_hooks through the node's base
// class (argument-dependent lookup), and nothing on a torch without it.
template <class P, class = void>
struct HasCreationHooks : std::false_type {};
template <class P>
struct HasCreationHooks<P, std::void_t<decltype(fire_node_creation_hooks(std::declval<const P&>()))>> : std::true_type {
};

// After the node's outputs and saved variables are all set.
template <class P>
void node_created(const P& node) {
  if constexpr (HasCreationHooks<P>::value) fire_node_creation_hooks(node);
}

// torch::autograd::rebase_history for an in-place op's output; returns the node to announce.
template <class P>
auto attach_inplace(const at::Tensor& x, const P& node) {
  if constexpr (std::is_void_v<decltype(torch::autograd::rebase_history(x, node))>) {
    torch::autograd::rebase_history(x, node);
    return node;
  } else {
    return torch::autograd::rebase_history(x, node);
  }
}

}  // namespace fused_act
