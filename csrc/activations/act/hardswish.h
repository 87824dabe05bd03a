// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// Hardswish (Howard et al. 2019, MobileNetV3): x relu6(x + 3) / 6; F.hardswish.
// torch's hardswish_backward: 0 for x <= -3, x/3 + 1/2 for -3 < x < 3, 1 from 3 on.
struct Hardswish {
  static constexpr const char* kName = "hardswish";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  static constexpr bool kMemoryBound = true;  // selects and multiplies (functor.h)
  // torch selects 0 below -3 and multiplies between -3 and 3, so an inf gradient at x = -1.5,
  // where f' = 0, gives NaN there as in torch (functor.h). f' = x/3 + 1/2 is written
  // (x + 3/2) / 3: exactly 0 at -1.5 only, as torch's x / 3 + 1/2 (x * (1/3) + 1/2 as one FMA is
  // -1.5e-8 there), without its division.
  static constexpr bool kZeroBySelect = true;
  // x times the clamped factor, as torch, so that -inf gives NaN (-inf * 0) like F.hardswish.
  // (x + 3) / 6 is in [0, 1] for every x in (-3, 3), in float and double: the clamp gives the
  // same factor as selecting 0 at x <= -3 and 1 at x >= 3.
  FA_FN forward(T x, const P&) { return x * at_most(at_least((x + T(3)) * T(1.0 / 6.0), T(0)), T(1)); }
  FA_FN grad_input(T g, T x, const P&) {
    return where(le(x, T(-3)), T(0), where(lt(x, T(3)), g * ((x + T(1.5)) * T(1.0 / 3.0)), g));
  }
  FA_FN d_input(T x, const P& p) { return grad_input(T(1), x, p); }
  FA_FN d2_input(T x, const P&) { return where(le(x, T(-3)), T(0), where(lt(x, T(3)), T(1.0 / 3.0), T(0))); }
};

}  // namespace fused_act::act
