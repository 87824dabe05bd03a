// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.hardsigmoid: relu6(x + 3) / 6. torch's hardsigmoid_backward: 1/6 for -3 < x < 3, else 0.
// Kept on the input: y = x/6 + 1/2 rounds to 1 just below x = 3 in bfloat16, which would
// move the kink.
struct Hardsigmoid {
  static constexpr const char* kName = "hardsigmoid";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  static constexpr bool kMemoryBound = true;   // selects and multiplies (functor.h)
  static constexpr bool kZeroBySelect = true;  // torch selects 0 in the flat regions (functor.h)
  // torch's relu6(x + 3) / 6 (x + 3 is exact near -3, so the kink lands on 0 in every type;
  // x / 6 + 1/2 leaves 5.5e-17 at x = -3 in double).
  FA_FN forward(T x, const P&) { return at_most(at_least(x + T(3), T(0)), T(6)) * T(1.0 / 6.0); }
  FA_FN grad_input(T g, T x, const P&) { return where(le(x, T(-3)), T(0), where(ge(x, T(3)), T(0), g * T(1.0 / 6.0))); }
  FA_FN d_input(T x, const P& p) { return grad_input(T(1), x, p); }
  FA_FN d2_input(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P&) { return bit ? T(1.0 / 6.0) : T(0); }
};

}  // namespace fused_act::act
