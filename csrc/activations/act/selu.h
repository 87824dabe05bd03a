// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// SELU (Klambauer et al. 2017), F.selu; constants as torch's.
struct Selu {
  static constexpr const char* kName = "selu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  static constexpr double kAlpha = 1.6732632423543772848170429916717;
  static constexpr double kScale = 1.0507009873554804934193349852946;
  FA_FN forward(T x, const P&) { return where(gt(x, T(0)), T(kScale) * x, T(kScale * kAlpha) * expm1_nonpos(x)); }
  FA_FN d_output(T y, const P&) { return where(le(y, T(0)), y + T(kScale * kAlpha), T(kScale)); }
  FA_FN d2_output(T y, const P&) { return where(le(y, T(0)), T(1), T(0)); }
};

}  // namespace fused_act::act
