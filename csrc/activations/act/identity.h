// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// x.  nn.Identity. Backward needs nothing.
struct Identity {
  static constexpr const char* kName = "identity";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kNone;
  FA_FN forward(T x, const P&) { return x; }
  FA_FN d_output(T, const P&) { return T(1); }
  FA_FN d2_output(T, const P&) { return T(0); }
};

}  // namespace fused_act::act
