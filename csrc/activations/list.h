// The one C++ list of activations. Op registration, the per-activation kernel objects (setup.py
// reads this list: one translation unit per activation and backend, built from the functor in
// act/<snake_case of the name>.h) and the Python-visible metadata are all generated from it;
// fused_act/registry.py is the Python list, and tests/test_registry.py checks that they agree.
//
// Adding an activation: its functor in act/<name>.h, a line here, an entry in fused_act/registry.py.
//
// Only names here, no math: the op fronts and dispatch tables include this file, and a change
// to one functor must rebuild only that activation's objects.
#pragma once

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

constexpr int kNumActivations = static_cast<int>(ActId::kCount);

namespace act {
#define FA_DECLARE(F) struct F;
FUSED_ACT_FOR_EACH_ACTIVATION(FA_DECLARE)
#undef FA_DECLARE
}  // namespace act

}  // namespace fused_act
