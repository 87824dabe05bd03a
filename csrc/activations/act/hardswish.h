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
  static constexpr bool kAvx2OnAvx512 = true;  // memory-bound (functor.h)
  // torch selects 0 below -3 (grad_times); it also gives 0 for an inf or NaN gradient at
  // x = -1.5, where f' = 0 and torch's g * 0 is NaN.
  static constexpr bool kZeroBySelect = true;
  // x times the clamped factor, as torch, so that -inf gives NaN (-inf * 0) like F.hardswish.
  // (x + 3) / 6 is in [0, 1] for every x in (-3, 3), in float and double: the clamp gives the
  // same factor as selecting 0 at x <= -3 and 1 at x >= 3.
  FA_FN forward(T x, const P&) { return x * at_most(at_least((x + T(3)) * T(1.0 / 6.0), T(0)), T(1)); }
  FA_FN d_input(T x, const P&) {
    return where(le(x, T(-3)), T(0), where(lt(x, T(3)), x * T(1.0 / 3.0) + T(0.5), T(1)));
  }
  FA_FN d2_input(T x, const P&) { return where(le(x, T(-3)), T(0), where(lt(x, T(3)), T(1.0 / 3.0), T(0))); }
};

}  // namespace fused_act::act
