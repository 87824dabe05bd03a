// Times forms of float32 sigmoid in one binary, on the vectors of this machine's best instruction
// set, and the two parts its time is made of (exp alone, the division alone) beside a chain of
// FMAs, and tanh's rational form, whose division is its only costly part: python -m
// bench.sigmoid_forms.
#define FUSED_ACT_CPU_VEC 1

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <torch/extension.h>

#include "activations/math.h"

namespace {

using V = at::vec::Vectorized<float>;
namespace m = fused_act::math;

V division(const V& x) { return V(1.f) / (V(1.f) + m::exp(V(0.f) - x)); }

V reflection(const V& x) {
  const V q = m::exp_nonpos(V(0.f) - x.abs());
  return m::where(m::ge(x, V(0.f)), V(1.f), q) / (V(1.f) + q);
}

V exp_alone(const V& x) { return m::exp(x); }

V tanh_rational(const V& x) { return m::tanh(x); }

V exp_plus_one(const V& x) { return V(1.f) + m::exp(V(0.f) - x); }

V division_alone(const V& x) { return V(1.f) / (x + V(2.f)); }

// A chain of as many FMAs as AVX-512's exp has instructions that may need the FMA pipes (nine
// FMAs, a subtraction, vscalefps; its min and max go elsewhere).
// Where "exp(-x) + 1" takes this loop's time, the FMA pipes bound exp.
V eleven_fmas(const V& x) {
  V v = x;
  for (int k = 0; k < 11; ++k) v = at::vec::fmadd(v, V(0.999f), V(0.001f));
  return v;
}

template <V (*F)(const V&)>
double ns_per_element(const std::vector<float>& x, std::vector<float>& y, int64_t reps) {
  const int64_t n = static_cast<int64_t>(x.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t k = 0; k < reps; ++k) {
    for (int64_t i = 0; i < n; i += 2 * V::size()) {
      const V a = F(V::loadu(x.data() + i));
      const V b = F(V::loadu(x.data() + i + V::size()));
      a.store(y.data() + i);
      b.store(y.data() + i + V::size());
    }
    asm volatile("" ::: "memory");  // keep every repetition
  }
  const std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - t0;
  return d.count() / static_cast<double>(reps * n);
}

// Median ns per element of each form over `rounds` runs of `reps` passes over n floats in
// [-12, 12] (n small enough to stay in L1), the forms interleaved within each round.
std::map<std::string, double> run(int64_t n, int64_t reps, int rounds) {
  TORCH_CHECK(n > 0 && n % (2 * V::size()) == 0, "sigmoid_forms: n must be a positive multiple of ", 2 * V::size());
  std::vector<float> x(n), y(n);
  for (int64_t i = 0; i < n; ++i) x[i] = -12.f + 24.f * static_cast<float>((i * 7919) % n) / static_cast<float>(n);
  std::map<std::string, std::vector<double>> all;
  for (int r = 0; r < rounds; ++r) {
    all["sigmoid (the functor's)"].push_back(ns_per_element<m::sigmoid>(x, y, reps));
    all["division form"].push_back(ns_per_element<division>(x, y, reps));
    all["reflection form"].push_back(ns_per_element<reflection>(x, y, reps));
    all["exp alone"].push_back(ns_per_element<exp_alone>(x, y, reps));
    all["exp(-x) + 1 (no division)"].push_back(ns_per_element<exp_plus_one>(x, y, reps));
    all["division alone"].push_back(ns_per_element<division_alone>(x, y, reps));
    all["eleven chained FMAs"].push_back(ns_per_element<eleven_fmas>(x, y, reps));
    all["tanh (the functor's)"].push_back(ns_per_element<tanh_rational>(x, y, reps));
  }
  std::map<std::string, double> out;
  for (auto& [k, v] : all) {
    std::nth_element(v.begin(), v.begin() + rounds / 2, v.end());
    out[k] = v[rounds / 2];
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run); }
