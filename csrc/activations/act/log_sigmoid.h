// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.logsigmoid: min(x, 0) - log1p(exp(-|x|)) as torch's CPU kernel. Its derivative
// sigmoid(-x) = 1 - exp(y) = -expm1(y) is accurate from the output at both ends.
struct LogSigmoid {
  static constexpr const char* kName = "logsigmoid";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return where(lt(x, T(0)), x, T(0)) - log1p_unit(exp_nonpos(T(0) - abs(x))); }
  FA_FN d_output(T y, const P&) { return T(0) - expm1_nonpos(y); }
  FA_FN d2_output(T y, const P&) { return T(0) - exp(y); }
};

}  // namespace fused_act::act
