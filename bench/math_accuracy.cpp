// Sweeps every float32 input of fused_act's inline SIMD math (csrc/activations/math.h) and
// compares with the double-precision C library: python -m bench.math_accuracy.
#define FUSED_ACT_CPU_VEC 1

#include <cmath>
#include <cstdint>
#include <array>
#include <cstring>
#include <vector>
#include <tuple>

#include <ATen/Parallel.h>
#include <torch/extension.h>

#include "activations/act/sigmoid.h"
#include "activations/math.h"

namespace {

using V = at::vec::Vectorized<float>;

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// One float ulp at the magnitude of v (the spacing of floats there; subnormal spacing below).
double ulp_of(double v) {
  const float f = static_cast<float>(std::fabs(v));
  if (!(f < INFINITY)) return INFINITY;
  return static_cast<double>(std::nextafter(f, INFINITY)) - f;
}

template <class Fn, class Ref>
std::tuple<double, double, double, double> sweep(Fn fn, Ref ref, double lo, double hi) {
  // (max ulp error, input there, max abs error, input there), over all floats in [lo, hi].
  const int64_t total = int64_t(1) << 32;
  const int64_t chunks = 256;
  std::vector<std::array<double, 4>> part(chunks, {0, 0, 0, 0});
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    alignas(64) float in[V::size()], out[V::size()];
    for (int64_t c = c0; c < c1; ++c) {
      auto& best = part[c];
      for (int64_t b = c * (total / chunks); b < (c + 1) * (total / chunks); b += V::size()) {
        for (int j = 0; j < V::size(); ++j) in[j] = from_bits(static_cast<uint32_t>(b + j));
        fn(V::loadu(in)).store(out);
        for (int j = 0; j < V::size(); ++j) {
          const double x = in[j];
          if (!(x >= lo && x <= hi)) continue;
          const double want = ref(x);
          // equal to the correctly rounded result (infinities and overflow included), or both NaN
          const float rounded = static_cast<float>(want);
          if (rounded == out[j] || (std::isnan(rounded) && std::isnan(out[j]))) continue;
          const double err = std::fabs(static_cast<double>(out[j]) - want);
          const double u = err / ulp_of(want);
          if (!(u <= best[0])) best[0] = u, best[1] = x;
          if (!(err <= best[2])) best[2] = err, best[3] = x;
        }
      }
    }
  });
  std::array<double, 4> r{0, 0, 0, 0};
  for (const auto& p : part) {
    if (!(p[0] <= r[0])) r[0] = p[0], r[1] = p[1];
    if (!(p[2] <= r[2])) r[2] = p[2], r[3] = p[3];
  }
  return {r[0], r[1], r[2], r[3]};
}

std::tuple<double, double, double, double> run(const std::string& name, double lo, double hi) {
  namespace m = fused_act::math;
  if (name == "exp") return sweep([](const V& v) { return m::exp(v); }, [](double x) { return std::exp(x); }, lo, hi);
  if (name == "exp_nonpos")
    return sweep([](const V& v) { return m::exp_nonpos(v); }, [](double x) { return std::exp(x); }, lo, hi);
  if (name == "expm1")
    return sweep([](const V& v) { return m::expm1(v); }, [](double x) { return std::expm1(x); }, lo, hi);
  if (name == "expm1_nonpos")
    return sweep([](const V& v) { return m::expm1_nonpos(v); }, [](double x) { return std::expm1(x); }, lo, hi);
  if (name == "log") return sweep([](const V& v) { return m::log(v); }, [](double x) { return std::log(x); }, lo, hi);
  if (name == "log1p")
    return sweep([](const V& v) { return m::log1p(v); }, [](double x) { return std::log1p(x); }, lo, hi);
  if (name == "log1p_unit")
    return sweep([](const V& v) { return m::log1p_unit(v); }, [](double x) { return std::log1p(x); }, lo, hi);
  if (name == "tanh")
    return sweep([](const V& v) { return m::tanh(v); }, [](double x) { return std::tanh(x); }, lo, hi);
  const auto logistic = [](double x) { return 1. / (1. + std::exp(-x)); };
  if (name == "sigmoid")  // the activation's forward itself (math::sigmoid)
    return sweep([](const V& v) { return fused_act::act::Sigmoid::forward(v, fused_act::Params<float>{}); }, logistic,
                 lo, hi);
  if (name == "aten_sigmoid")  // eager's CPU kernel: reciprocal of 1 + SLEEF exp(-x)
    return sweep([](const V& v) { return (V(1.f) + (V(0.f) - v).exp()).reciprocal(); }, logistic, lo, hi);
  // Phi(x) = erfc(-x / sqrt 2) / 2, gelu's CDF
  const auto normcdf = [](double x) { return 0.5 * std::erfc(-x * m::kSqrt1_2); };
  if (name == "normcdf") return sweep([](const V& v) { return m::normcdf(v); }, normcdf, lo, hi);
  if (name == "std_normal_cdf") return sweep([](const V& v) { return m::std_normal(v).cdf; }, normcdf, lo, hi);
  if (name == "sleef_exp")
    return sweep([](const V& v) { return v.exp(); }, [](double x) { return std::exp(x); }, lo, hi);
  if (name == "aten_normcdf")  // Phi as eager's gelu writes it, (1 + erf(x / sqrt 2)) / 2, on ATen's erf
    return sweep([](const V& v) { return V(0.5f) * (V(1.f) + (v * V(float(m::kSqrt1_2))).erf()); }, normcdf, lo, hi);
  TORCH_CHECK(false, "unknown function ", name);
}

// Floats whose bit patterns are [first, first + count) (count a multiple of 2^23) where f's bits
// differ from g's; NaN from both counts as equal.
template <class F, class G>
int64_t bit_mismatches(uint64_t first, uint64_t count, F f, G g) {
  const int64_t chunks = static_cast<int64_t>(count >> 23);
  std::vector<int64_t> part(chunks, 0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    alignas(64) float in[V::size()], a[V::size()], b[V::size()];
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t k = c << 23; k < (c + 1) << 23; k += V::size()) {
        for (int j = 0; j < V::size(); ++j) in[j] = from_bits(static_cast<uint32_t>(first + k + j));
        f(V::loadu(in)).store(a);
        g(V::loadu(in)).store(b);
        for (int j = 0; j < V::size(); ++j)
          part[c] += std::memcmp(&a[j], &b[j], 4) != 0 && !(std::isnan(a[j]) && std::isnan(b[j]));
      }
    }
  });
  int64_t total = 0;
  for (auto n : part) total += n;
  return total;
}

// Inputs x <= 0 (every float with the sign bit set) where exp_nonpos's bits differ from exp's
// (it claims the same results); a NaN input must give a NaN.
int64_t exp_nonpos_mismatches() {
  return bit_mismatches(
      0x80000000u, uint64_t(1) << 31, [](const V& x) { return fused_act::math::exp(x); },
      [](const V& x) { return fused_act::math::exp_nonpos(x); });
}

// Every float where exp_neg(x)'s bits differ from exp(0 - x)'s (it claims the same results).
int64_t exp_neg_mismatches() {
  return bit_mismatches(
      0, uint64_t(1) << 32, [](const V& x) { return fused_act::math::exp(V(0.f) - x); },
      [](const V& x) { return fused_act::math::exp_neg(x); });
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("sweep", &run);
  m.def("exp_nonpos_mismatches", &exp_nonpos_mismatches);
  m.def("exp_neg_mismatches", &exp_neg_mismatches);
}
