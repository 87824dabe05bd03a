// One activation's facts as plain values and functions (ops/activation_traits.cpp compiles them
// per activation), so that the registry can be built without including any functor.
#pragma once

#include "../activations/common.h"

namespace fused_act {

struct ActivationTraits {
  const char* name;    // kName
  const char* params;  // kParams, comma separated
  Saved saved;         // kSaved as declared
  bool maskable;
  bool memory_bound;                                // kMemoryBound
  const char* (*invalid)(const Params<double>& p);  // nullptr, or the rule p breaks
  Saved (*saved_for)(const Params<double>& p);      // kSaved with kEither resolved for p
};

template <class Act>
const ActivationTraits& traits();

}  // namespace fused_act
