// What the registry (registry.cpp) needs to know of one activation, read from its functor:
// compiled once per activation by setup.py (like cpu/activation_kernels.cpp), so the registry
// itself includes no functor and a change to one functor rebuilds only that activation.
#include FUSED_ACT_ACTIVATION_HEADER

#include "../activations/elementwise.h"
#include "../activations/mask.h"
#include "traits.h"

namespace fused_act {

namespace {

template <class A, class = void>
struct HasInvalid : std::false_type {};
template <class A>
struct HasInvalid<A, std::void_t<decltype(A::invalid(std::declval<Params<double>>()))>> : std::true_type {};

template <class A>
const char* invalid(const Params<double>& p) {
  if constexpr (HasInvalid<A>::value) {
    return A::invalid(p);
  } else {
    return nullptr;
  }
}

template <class A>
Saved saved_for(const Params<double>& p) {
  if constexpr (A::kSaved == Saved::kEither) {
    return A::output_ok(p) ? Saved::kOutput : Saved::kInput;
  } else {
    return A::kSaved;
  }
}

}  // namespace

template <class Act>
const ActivationTraits& traits() {
  static const ActivationTraits t{
      Act::kName,    Act::kParams,   Act::kSaved, is_maskable<Act>(), MemoryBound<Act>::value,
      &invalid<Act>, &saved_for<Act>};
  return t;
}

template const ActivationTraits& traits<act::FUSED_ACT_ACTIVATION>();

}  // namespace fused_act
