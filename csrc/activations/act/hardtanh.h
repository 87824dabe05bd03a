// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.hardtanh(x, min_val, max_val). torch's hardtanh_backward: 0 where x <= min or x >= max.
// Clamping is monotone and exact, so the same test on y is the same test on x.
struct Hardtanh {
  static constexpr const char* kName = "hardtanh";
  static constexpr const char* kParams = "min_val,max_val";
  static constexpr Saved kSaved = Saved::kOutput;
  static constexpr bool kMemoryBound = true;   // selects and multiplies (functor.h)
  static constexpr bool kZeroBySelect = true;  // torch selects 0 in the flat regions (functor.h)
  static const char* invalid(const Params<double>& p) {
    return p[0] <= p[1] ? nullptr : "min_val cannot be greater than max_val";
  }
  FA_FN forward(T x, const P& p) { return at_most(at_least(x, T(p[0])), T(p[1])); }
  FA_FN grad_output(T g, T y, const P& p) { return where(le(y, T(p[0])), T(0), where(ge(y, T(p[1])), T(0), g)); }
  FA_FN d_output(T y, const P& p) { return grad_output(T(1), y, p); }
  FA_FN d2_output(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P&) { return bit ? T(1) : T(0); }
};

}  // namespace fused_act::act
