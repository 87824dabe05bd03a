// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// Mish, x tanh(softplus(x)) (Misra 2019); F.mish. With e = exp(x) and n = e (e + 2):
// tanh(log(1 + e)) = n / (n + 2) and 1 - tanh^2 = 4 (n + 1) / (n + 2)^2, one exp instead of
// exp + log1p + tanh, and no cancellation in 1 - tanh^2. Past x = 20, tanh(softplus(x)) is 1
// even in double (1 - 8.5e-18), so there y = x and f' = 1; e would overflow from x = 88.
struct Mish {
  static constexpr const char* kName = "mish";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  template <class T>
  struct Parts {
    T t, sech2, s;  // tanh(softplus(x)), 1 - t^2, sigmoid(x)
  };
  template <class T>
  static FA_HD Parts<T> parts(T x) {
    const T e = exp(x);
    const T n = e * (e + T(2));
    const T d = T(1) / (n + T(2));
    return {n * d, T(4) * (n + T(1)) * d * d, e / (T(1) + e)};
  }
  // 1 for 20 < x < inf; at x = inf the formula's NaN is kept, as torch's.
  template <class T>
  static FA_HD T large(T x, T value, T formula) {
    return where(gt(x, T(20)), where(eq(x, T(INFINITY)), formula, value), formula);
  }
  FA_FN forward(T x, const P&) { return where(gt(x, T(20)), x, x * parts(x).t); }
  // f' = t + x s (1 - t^2)   (torch's mish_backward)
  FA_FN d_input(T x, const P&) {
    const Parts<T> c = parts(x);
    return large(x, T(1), c.t + x * c.s * c.sech2);
  }
  // t' = (1-t^2) s, s' = s (1-s)  =>  f'' = (1-t^2) s (2 + x (1 - s - 2 t s))
  FA_FN d2_input(T x, const P&) {
    const Parts<T> c = parts(x);
    return large(x, T(0), c.sech2 * c.s * (T(2) + x * (T(1) - c.s - T(2) * c.t * c.s)));
  }
};

}  // namespace fused_act::act
