// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.relu6 = hardtanh(x, 0, 6), same derivative convention.
struct Relu6 {
  static constexpr const char* kName = "relu6";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  static constexpr bool kMemoryBound = true;   // selects and multiplies (functor.h)
  static constexpr bool kZeroBySelect = true;  // torch selects 0 in the flat regions (functor.h)
  FA_FN forward(T x, const P&) { return at_most(at_least(x, T(0)), T(6)); }
  FA_FN grad_output(T g, T y, const P&) { return where(le(y, T(0)), T(0), where(ge(y, T(6)), T(0), g)); }
  FA_FN d_output(T y, const P& p) { return grad_output(T(1), y, p); }
  FA_FN d2_output(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P&) { return bit ? T(1) : T(0); }
};

}  // namespace fused_act::act
