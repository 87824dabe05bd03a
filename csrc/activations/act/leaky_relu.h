// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.leaky_relu(x, negative_slope). torch: x > 0 ? grad : grad * slope (slope at x = 0).
// With slope >= 0, y > 0 exactly when x > 0, so the output suffices (torch's in-place rule too).
struct LeakyRelu {
  static constexpr const char* kName = "leaky_relu";
  static constexpr const char* kParams = "negative_slope";
  static constexpr Saved kSaved = Saved::kEither;
  static constexpr bool kMemoryBound = true;  // selects and multiplies (functor.h)
  static bool output_ok(const Params<double>& p) { return p[0] >= 0; }
  static const char* invalid(const Params<double>&) { return nullptr; }
  FA_FN forward(T x, const P& p) { return where(gt(x, T(0)), x, x * T(p[0])); }
  FA_FN d_input(T x, const P& p) { return where(gt(x, T(0)), T(1), T(p[0])); }
  FA_FN d2_input(T, const P&) { return T(0); }
  FA_FN d_output(T y, const P& p) { return where(gt(y, T(0)), T(1), T(p[0])); }
  FA_FN d2_output(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P& p) { return bit ? T(1) : T(p[0]); }
};

}  // namespace fused_act::act
