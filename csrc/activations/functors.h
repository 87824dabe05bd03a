// One functor per activation: the only place its math is written.
//
// Every functor has
//   kName, kParams        the op name and its parameter names (comma separated, in order);
//   kSaved                what backward needs from the forward (see Saved in common.h);
//   forward(x, p)         y = f(x);
//   d_output(y, p), d2_output(y, p)   f'(x) written in y, and d f'/dy      (kSaved: Output, Either, None)
//   d_input(x, p),  d2_input(x, p)    f'(x), and f''(x)                    (kSaved: Input, Either)
//   output_ok(p)          (kSaved == Either) whether the output form is valid for these parameters;
//   invalid(p)            nullptr, or the rule the parameters break;
//   kMaskable, d_mask(bit, p)   (piecewise-linear functors only) f' takes two values, d_mask(false, p)
//                         and d_mask(true, p), so backward can keep one bit per element (mask.h).
// T is float, double or at::vec::Vectorized of those; P is Params<float or double>. The body
// uses only math.h primitives, so the CPU SIMD loop, the CUDA kernel and the CPU simulation of a
// CUDA thread all run this same code. Reduced types are computed in float and rounded once.
//
// Derivatives at kinks follow PyTorch's autograd formulas (quoted per functor), and each functor
// names the torch function it must agree with; tests/test_activations.py checks that in float64.
#pragma once

#include "common.h"
#include "math.h"

namespace fused_act {
namespace act {

using namespace ::fused_act::math;

#define FA_FN template <class T, class P> static FA_HD T

// ---------------------------------------------------------------- classics

// x.  nn.Identity. Backward needs nothing.
struct Identity {
  static constexpr const char* kName = "identity";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kNone;
  FA_FN forward(T x, const P&) { return x; }
  FA_FN d_output(T, const P&) { return T(1); }
  FA_FN d2_output(T, const P&) { return T(0); }
};

// 1 / (1 + exp(-x)).  torch.sigmoid; backward y(1-y) as torch's sigmoid_backward.
struct Sigmoid {
  static constexpr const char* kName = "sigmoid";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return T(1) / (T(1) + exp(T(0) - x)); }
  FA_FN d_output(T y, const P&) { return y * (T(1) - y); }
  FA_FN d2_output(T y, const P&) { return T(1) - T(2) * y; }
};

// torch.tanh; backward 1 - y^2 as torch's tanh_backward.
struct Tanh {
  static constexpr const char* kName = "tanh";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return tanh(x); }
  FA_FN d_output(T y, const P&) { return T(1) - y * y; }
  FA_FN d2_output(T y, const P&) { return T(-2) * y; }
};

// F.relu. torch's threshold_backward(grad, y, 0) passes grad where y > 0 is false only for
// y <= 0, so the derivative is 0 at x = 0 and NaN inputs pass the gradient through.
struct Relu {
  static constexpr const char* kName = "relu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return where(x < T(0), T(0), x); }
  FA_FN d_output(T y, const P&) { return where(y <= T(0), T(0), T(1)); }
  FA_FN d2_output(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P&) { return bit ? T(1) : T(0); }
};

// F.leaky_relu(x, negative_slope). torch: x > 0 ? grad : grad * slope (slope at x = 0).
// With slope >= 0, y > 0 exactly when x > 0, so the output suffices (torch's in-place rule too).
struct LeakyRelu {
  static constexpr const char* kName = "leaky_relu";
  static constexpr const char* kParams = "negative_slope";
  static constexpr Saved kSaved = Saved::kEither;
  static bool output_ok(const Params<double>& p) { return p[0] >= 0; }
  static const char* invalid(const Params<double>&) { return nullptr; }
  FA_FN forward(T x, const P& p) { return where(x > T(0), x, x * T(p[0])); }
  FA_FN d_input(T x, const P& p) { return where(x > T(0), T(1), T(p[0])); }
  FA_FN d2_input(T, const P&) { return T(0); }
  FA_FN d_output(T y, const P& p) { return where(y > T(0), T(1), T(p[0])); }
  FA_FN d2_output(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P& p) { return bit ? T(1) : T(p[0]); }
};

// F.elu(x, alpha): x > 0 ? x : alpha * expm1(x). torch's elu_backward(is_result=true):
// y <= 0 ? grad * (y + alpha) : grad, so the derivative at 0 is alpha. With alpha >= 0,
// y <= 0 exactly when x <= 0; a negative alpha falls back to the input form.
struct Elu {
  static constexpr const char* kName = "elu";
  static constexpr const char* kParams = "alpha";
  static constexpr Saved kSaved = Saved::kEither;
  static bool output_ok(const Params<double>& p) { return p[0] >= 0; }
  static const char* invalid(const Params<double>&) { return nullptr; }
  FA_FN forward(T x, const P& p) { return where(x > T(0), x, T(p[0]) * expm1(x)); }
  FA_FN d_input(T x, const P& p) { return where(x <= T(0), T(p[0]) * exp(x), T(1)); }
  FA_FN d2_input(T x, const P& p) { return where(x <= T(0), T(p[0]) * exp(x), T(0)); }
  FA_FN d_output(T y, const P& p) { return where(y <= T(0), y + T(p[0]), T(1)); }
  FA_FN d2_output(T y, const P&) { return where(y <= T(0), T(1), T(0)); }
};

// F.softsign: x / (1 + |x|). f' = 1/(1+|x|)^2 = (1 - |y|)^2 since 1 - |y| = 1/(1+|x|).
struct Softsign {
  static constexpr const char* kName = "softsign";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return x / (T(1) + abs(x)); }
  FA_FN d_output(T y, const P&) {
    const T r = T(1) - abs(y);
    return r * r;
  }
  // d/dy (1-|y|)^2 = -2 sign(y) (1-|y|); sign(0) = 0 as torch's abs backward.
  FA_FN d2_output(T y, const P&) {
    const T sign = where(y > T(0), T(1), where(y < T(0), T(-1), T(0)));
    return T(-2) * sign * (T(1) - abs(y));
  }
};

// ------------------------------------- Xu, Huang, Li 2016, "Revise Saturated Activation Functions"

// sigmoid*(x) = 4 sigmoid(x) - 2 (must match 4*torch.sigmoid(x) - 2). It equals 2 tanh(x/2),
// which avoids the cancellation of 4s - 2 near 0; f' = 4 s (1-s) = 1 - y^2/4.
struct RescaledSigmoid {
  static constexpr const char* kName = "rescaled_sigmoid";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return T(2) * tanh(T(0.5) * x); }
  FA_FN d_output(T y, const P&) { return T(1) - T(0.25) * y * y; }
  FA_FN d2_output(T y, const P&) { return T(-0.5) * y; }
};

// Leaky tanh: x >= 0 ? tanh(x) : a tanh(x), a >= 0 (must match torch.where(x >= 0, tanh(x),
// a*tanh(x)), whose derivative at 0 is 1). For a > 0 the sign of y is the sign of x and
// tanh(x) = y/a below 0, so f' = 1 - y^2 or a - y^2/a; a = 0 needs the input.
struct LeakyTanh {
  static constexpr const char* kName = "leaky_tanh";
  static constexpr const char* kParams = "a";
  static constexpr Saved kSaved = Saved::kEither;
  static bool output_ok(const Params<double>& p) { return p[0] > 0; }
  static const char* invalid(const Params<double>& p) {
    return p[0] >= 0 ? nullptr : "a must be >= 0";
  }
  FA_FN forward(T x, const P& p) {
    const T t = tanh(x);
    return where(x >= T(0), t, T(p[0]) * t);
  }
  FA_FN d_input(T x, const P& p) {
    const T t = tanh(x);
    const T d = T(1) - t * t;
    return where(x >= T(0), d, T(p[0]) * d);
  }
  FA_FN d2_input(T x, const P& p) {
    const T t = tanh(x);
    const T d = T(-2) * t * (T(1) - t * t);
    return where(x >= T(0), d, T(p[0]) * d);
  }
  FA_FN d_output(T y, const P& p) {
    const T a(p[0]);
    return where(y >= T(0), T(1) - y * y, a - y * y / a);
  }
  FA_FN d2_output(T y, const P& p) {
    const T a(p[0]);
    return where(y >= T(0), T(-2) * y, T(-2) * y / a);
  }
};

// ---------------------------------------------------------------- modern

// Exact GELU, x Phi(x) (Hendrycks & Gimpel 2016); F.gelu(approximate="none"), backward as
// torch's gelu_backward: Phi(x) + x phi(x).
struct Gelu {
  static constexpr const char* kName = "gelu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  static constexpr double kSqrt1_2 = 0.70710678118654752440;     // 1/sqrt(2)
  static constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/sqrt(2 pi)
  FA_FN forward(T x, const P&) { return x * T(0.5) * (T(1) + erf(x * T(kSqrt1_2))); }
  FA_FN d_input(T x, const P&) {
    const T cdf = T(0.5) * (T(1) + erf(x * T(kSqrt1_2)));
    const T pdf = exp(T(-0.5) * x * x) * T(kInvSqrt2Pi);
    return cdf + x * pdf;
  }
  // d/dx (Phi + x phi) = 2 phi + x phi' = phi (2 - x^2)
  FA_FN d2_input(T x, const P&) {
    const T pdf = exp(T(-0.5) * x * x) * T(kInvSqrt2Pi);
    return pdf * (T(2) - x * x);
  }
};

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
    const T q = exp(T(-2) * abs(u));
    const T inv = T(1) / (T(1) + q);
    return {where(u >= T(0), inv, q * inv), q * inv * inv, T(kBeta) * (T(1) + T(3 * kKappa) * x * x)};
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
    return where(ax > T(20), where(ax == T(INFINITY), term, T(0)), term);
  }
};

// SiLU / swish, x sigmoid(x) (Elfwing et al. 2017); F.silu, backward as torch's silu_backward.
struct Silu {
  static constexpr const char* kName = "silu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  FA_FN forward(T x, const P&) { return x / (T(1) + exp(T(0) - x)); }
  FA_FN d_input(T x, const P&) {
    const T s = T(1) / (T(1) + exp(T(0) - x));
    return s * (T(1) + x * (T(1) - s));
  }
  // f' = s + x s (1-s), s' = s (1-s)  =>  f'' = s (1-s) (2 + x (1 - 2s))
  FA_FN d2_input(T x, const P&) {
    const T s = T(1) / (T(1) + exp(T(0) - x));
    return s * (T(1) - s) * (T(2) + x * (T(1) - T(2) * s));
  }
};

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
    return where(x > T(20), where(x == T(INFINITY), formula, value), formula);
  }
  FA_FN forward(T x, const P&) { return where(x > T(20), x, x * parts(x).t); }
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

// SELU (Klambauer et al. 2017), F.selu; constants as torch's.
struct Selu {
  static constexpr const char* kName = "selu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  static constexpr double kAlpha = 1.6732632423543772848170429916717;
  static constexpr double kScale = 1.0507009873554804934193349852946;
  FA_FN forward(T x, const P&) {
    return where(x > T(0), T(kScale) * x, T(kScale * kAlpha) * expm1(x));
  }
  FA_FN d_output(T y, const P&) { return where(y <= T(0), y + T(kScale * kAlpha), T(kScale)); }
  FA_FN d2_output(T y, const P&) { return where(y <= T(0), T(1), T(0)); }
};

// CELU (Barron 2017), F.celu(x, alpha): x > 0 ? x : alpha expm1(x/alpha). For any alpha != 0,
// y <= 0 exactly when x <= 0 and alpha exp(x/alpha) = y + alpha: f' = 1 + y/alpha there
// (torch: elu_backward with input_scale 1/alpha, derivative 1 at 0).
struct Celu {
  static constexpr const char* kName = "celu";
  static constexpr const char* kParams = "alpha";
  static constexpr Saved kSaved = Saved::kOutput;
  static const char* invalid(const Params<double>& p) {
    return p[0] != 0 ? nullptr : "alpha must not be 0";
  }
  FA_FN forward(T x, const P& p) {
    const T alpha(p[0]);
    return where(x > T(0), x, alpha * expm1(x / alpha));
  }
  FA_FN d_output(T y, const P& p) { return where(y <= T(0), T(1) + y / T(p[0]), T(1)); }
  FA_FN d2_output(T y, const P& p) { return where(y <= T(0), T(1) / T(p[0]), T(0)); }
};

// F.softplus(x, beta, threshold): x where beta x > threshold, else log(1 + exp(beta x)) / beta.
// Written as (max(bx, 0) + log1p(exp(-|bx|))) / beta and f' = sigmoid(bx), which cannot
// overflow; torch's exp(bx) forms give inf and NaN when threshold > 88 in float32.
struct Softplus {
  static constexpr const char* kName = "softplus";
  static constexpr const char* kParams = "beta,threshold";
  static constexpr Saved kSaved = Saved::kInput;
  static const char* invalid(const Params<double>& p) {
    return p[0] != 0 ? nullptr : "beta must not be 0";
  }
  FA_FN forward(T x, const P& p) {
    const T beta(p[0]);
    const T bx = beta * x;
    const T soft = (where(bx > T(0), bx, T(0)) + log1p(exp(T(0) - abs(bx)))) / beta;
    return where(bx > T(p[1]), x, soft);
  }
  FA_FN d_input(T x, const P& p) {
    const T bx = T(p[0]) * x;
    return where(bx > T(p[1]), T(1), T(1) / (T(1) + exp(T(0) - bx)));
  }
  FA_FN d2_input(T x, const P& p) {
    const T beta(p[0]);
    const T bx = beta * x;
    const T s = T(1) / (T(1) + exp(T(0) - bx));
    return where(bx > T(p[1]), T(0), beta * s * (T(1) - s));
  }
};

// F.hardtanh(x, min_val, max_val). torch's hardtanh_backward: 0 where x <= min or x >= max.
// Clamping is monotone and exact, so the same test on y is the same test on x.
struct Hardtanh {
  static constexpr const char* kName = "hardtanh";
  static constexpr const char* kParams = "min_val,max_val";
  static constexpr Saved kSaved = Saved::kOutput;
  static const char* invalid(const Params<double>& p) {
    return p[0] <= p[1] ? nullptr : "min_val cannot be greater than max_val";
  }
  FA_FN forward(T x, const P& p) {
    return where(x < T(p[0]), T(p[0]), where(x > T(p[1]), T(p[1]), x));
  }
  FA_FN d_output(T y, const P& p) {
    return where(y <= T(p[0]), T(0), where(y >= T(p[1]), T(0), T(1)));
  }
  FA_FN d2_output(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P&) { return bit ? T(1) : T(0); }
};

// F.relu6 = hardtanh(x, 0, 6), same derivative convention.
struct Relu6 {
  static constexpr const char* kName = "relu6";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return where(x < T(0), T(0), where(x > T(6), T(6), x)); }
  FA_FN d_output(T y, const P&) { return where(y <= T(0), T(0), where(y >= T(6), T(0), T(1))); }
  FA_FN d2_output(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P&) { return bit ? T(1) : T(0); }
};

// F.hardsigmoid: relu6(x + 3) / 6. torch's hardsigmoid_backward: 1/6 for -3 < x < 3, else 0.
// Kept on the input: y = x/6 + 1/2 rounds to 1 just below x = 3 in bfloat16, which would
// move the kink.
struct Hardsigmoid {
  static constexpr const char* kName = "hardsigmoid";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  FA_FN forward(T x, const P&) {
    return where(x <= T(-3), T(0), where(x >= T(3), T(1), x * T(1.0 / 6.0) + T(0.5)));
  }
  FA_FN d_input(T x, const P&) {
    return where(x <= T(-3), T(0), where(x >= T(3), T(0), T(1.0 / 6.0)));
  }
  FA_FN d2_input(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P&) { return bit ? T(1.0 / 6.0) : T(0); }
};

// Hardswish (Howard et al. 2019, MobileNetV3): x relu6(x + 3) / 6; F.hardswish.
// torch's hardswish_backward: 0 for x <= -3, x/3 + 1/2 for -3 < x < 3, 1 from 3 on.
struct Hardswish {
  static constexpr const char* kName = "hardswish";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  // x times the clamped factor, as torch, so that -inf gives NaN (-inf * 0) like F.hardswish.
  FA_FN forward(T x, const P&) {
    return x * where(x <= T(-3), T(0), where(x >= T(3), T(1), (x + T(3)) * T(1.0 / 6.0)));
  }
  FA_FN d_input(T x, const P&) {
    return where(x <= T(-3), T(0), where(x < T(3), x * T(1.0 / 3.0) + T(0.5), T(1)));
  }
  FA_FN d2_input(T x, const P&) {
    return where(x <= T(-3), T(0), where(x < T(3), T(1.0 / 3.0), T(0)));
  }
};

// F.logsigmoid: min(x, 0) - log1p(exp(-|x|)) as torch's CPU kernel. Its derivative
// sigmoid(-x) = 1 - exp(y) = -expm1(y) is accurate from the output at both ends.
struct LogSigmoid {
  static constexpr const char* kName = "logsigmoid";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return where(x < T(0), x, T(0)) - log1p(exp(T(0) - abs(x))); }
  FA_FN d_output(T y, const P&) { return T(0) - expm1(y); }
  FA_FN d2_output(T y, const P&) { return T(0) - exp(y); }
};

// Squared ReLU (So et al. 2021, Primer): relu(x)^2, must match F.relu(x)**2 (derivative 0 at 0).
struct SquaredRelu {
  static constexpr const char* kName = "squared_relu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  FA_FN forward(T x, const P&) {
    const T r = where(x < T(0), T(0), x);
    return r * r;
  }
  FA_FN d_input(T x, const P&) { return where(x <= T(0), T(0), T(2) * x); }
  FA_FN d2_input(T x, const P&) { return where(x <= T(0), T(0), T(2)); }
};

#undef FA_FN

}  // namespace act
}  // namespace fused_act
