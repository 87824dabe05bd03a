// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// Squared ReLU (So et al. 2021, Primer): relu(x)^2, must match F.relu(x)**2 (derivative 0 at 0).
struct SquaredRelu {
  static constexpr const char* kName = "squared_relu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  static constexpr bool kMemoryBound = true;   // selects and multiplies (functor.h)
  static constexpr bool kZeroBySelect = true;  // torch selects 0 in the flat regions (functor.h)
  FA_FN forward(T x, const P&) {
    const T r = at_least(x, T(0));
    return r * r;
  }
  FA_FN grad_input(T g, T x, const P&) { return where(le(x, T(0)), T(0), g * (T(2) * x)); }
  FA_FN d_input(T x, const P& p) { return grad_input(T(1), x, p); }
  FA_FN d2_input(T x, const P&) { return where(le(x, T(0)), T(0), T(2)); }
};

}  // namespace fused_act::act
