// What the Autograd-key kernels (autograd.cpp, softmax_autograd.cpp, mask_autograd.cpp) share:
// typed dispatcher handles for calling the ops below Autograd, and the test for whether a call
// must record a graph node at all.
#pragma once

#include <initializer_list>

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>

namespace fused_act {

// A typed handle of a fused_act op; look it up once (a function-local static at the call site).
template <class Sig>
c10::TypedOperatorHandle<Sig> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
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

}  // namespace fused_act
