// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// Tanh GELU: 0.5 x (1 + tanh(u)), u = k (x + 0.044715 x^3), k = sqrt(2/pi); F.gelu(approximate="tanh").
// Written with 0.5 (1 + tanh(u)) = sigmoid(2u) = s and 1 - tanh(u)^2 = 4 s (1 - s): with
// q = exp(-2|u|), s and 1 - s are 1/(1+q) and q/(1+q) and s (1-s) = q/(1+q)^2, all without
// cancellation; torch's 1 - tanh^2 loses all digits of a small derivative near saturation.
struct GeluTanh {
  static constexpr const char* kName = "gelu_tanh";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  static constexpr double kBeta = 0.79788456080286535588;  // sqrt(2/pi)
  static constexpr double kKappa = 0.044715;
  template <class T>
  struct Parts {
    T s, r, du;  // sigmoid(2u), s (1 - s), u'
  };
  template <class T>
  static FA_HD Parts<T> parts(T x) {
    const T u = T(kBeta) * (x + T(kKappa) * x * x * x);
    const T q = exp_nonpos(T(-2) * abs(u));
    const T inv = T(1) / (T(1) + q);
    return {where(ge(u, T(0)), inv, q * inv), q * inv * inv, T(kBeta) * (T(1) + T(3 * kKappa) * x * x)};
  }
  FA_FN forward(T x, const P&) { return x * parts(x).s; }
  // f' = s + 2 x s (1-s) u'  (= torch's 0.5 (1 + t) + 0.5 x (1 - t^2) u')
  FA_FN d_input(T x, const P&) {
    const Parts<T> c = parts(x);
    return c.s + finite_tail(x, T(2) * x * c.r * c.du);
  }
  // f'' = 2 s(1-s) [2 u' + x (2 (1 - 2s) u'^2 + u'')], u'' = 6 k kappa x
  FA_FN d2_input(T x, const P&) {
    const Parts<T> c = parts(x);
    const T ddu = T(6 * kBeta * kKappa) * x;
    return finite_tail(x, T(2) * c.r * (T(2) * c.du + x * (T(2) * (T(1) - T(2) * c.s) * c.du * c.du + ddu)));
  }
  // The x u' s(1-s) terms are 0 once s(1-s) underflows, but x^3 overflows for |x| > 1e19 in
  // float32 and 0 * inf would give NaN where torch's float64 answer is finite; at x = +-inf
  // torch gives NaN and so does this.
  template <class T>
  static FA_HD T finite_tail(T x, T term) {
    const T ax = abs(x);
    return where(gt(ax, T(20)), where(eq(ax, T(INFINITY)), term, T(0)), term);
  }
};

}  // namespace fused_act::act
