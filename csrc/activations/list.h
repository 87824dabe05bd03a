// The one C++ list of activations. Op registration, the CPU and CUDA kernel instantiations and
// the Python-visible metadata are all generated from it; fused_act/registry.py is the Python
// list, and tests/test_registry.py checks that the two agree.
//
// Adding an activation: a functor in functors.h, a line here, an entry in fused_act/registry.py.
#pragma once

#include "functors.h"

#define FUSED_ACT_FOR_EACH_ACTIVATION(X) \
  X(Identity)                            \
  X(Sigmoid)                             \
  X(Tanh)                                \
  X(Relu)                                \
  X(LeakyRelu)                           \
  X(Elu)                                 \
  X(Softsign)                            \
  X(RescaledSigmoid)                     \
  X(LeakyTanh)                           \
  X(Gelu)                                \
  X(GeluTanh)                            \
  X(Silu)                                \
  X(Mish)                                \
  X(Selu)                                \
  X(Celu)                                \
  X(Softplus)                            \
  X(Hardtanh)                            \
  X(Relu6)                               \
  X(Hardsigmoid)                         \
  X(Hardswish)                           \
  X(LogSigmoid)                          \
  X(SquaredRelu)

namespace fused_act {

enum class ActId : int {
#define FA_ENUM(F) F,
  FUSED_ACT_FOR_EACH_ACTIVATION(FA_ENUM)
#undef FA_ENUM
      kCount
};

// Calls f(Functor{}) for the functor with this id.
template <class F>
inline void visit_activation(ActId id, F&& f) {
  switch (id) {
#define FA_CASE(Functor)  \
  case ActId::Functor:    \
    f(act::Functor{});    \
    break;
    FUSED_ACT_FOR_EACH_ACTIVATION(FA_CASE)
#undef FA_CASE
    default:
      break;
  }
}

}  // namespace fused_act
