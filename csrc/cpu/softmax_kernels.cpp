// softmax / log_softmax CPU kernels, for one instruction set: built once per entry of setup.py's
// CPU_ISAS like kernels.cpp, so this becomes fused_act::cpu::{DEFAULT,AVX2,AVX512}::run_softmax.
// The per-element math is activations/softmax.h's SoftmaxOp, called on at::vec::Vectorized.
#define FUSED_ACT_CPU_VEC 1

#include <algorithm>
#include <tuple>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include "../activations/softmax.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {

namespace {

// ATen's elementwise grain (at::internal::GRAIN_SIZE), counted in elements touched.
constexpr int64_t kGrainSize = 32768;

// kStep storage elements loaded as kParts compute vectors: one for float and double, two for
// half and bfloat16 (one Vectorized<Half> widens to two Vectorized<float>).
template <class S>
struct Chunk {
  using C = opmath_t<S>;
  using V = at::vec::Vectorized<C>;
  static constexpr bool kSame = std::is_same_v<S, C>;
  static constexpr int kParts = kSame ? 1 : 2;
  static constexpr int64_t kStep = at::vec::Vectorized<S>::size();

  static void load(const S* p, V (&v)[kParts]) {
    if constexpr (kSame) {
      v[0] = V::loadu(p);
    } else {
      std::tie(v[0], v[1]) = at::vec::convert_to_float<S>(at::vec::Vectorized<S>::loadu(p));
    }
  }

  static void store(S* p, const V (&v)[kParts]) {
    if constexpr (kSame) {
      v[0].store(p);
    } else {
      at::vec::convert_from_float<S>(v[0], v[1]).store(p);
    }
  }
};

template <class C>
C reduce_lanes(const at::vec::Vectorized<C>& v, C init, C (*combine)(C, C)) {
  C buf[at::vec::Vectorized<C>::size()];
  v.store(buf);
  C r = init;
  for (C x : buf) r = combine(r, x);
  return r;
}

// inner == 1: one row of n contiguous elements, SIMD along the row, scalar tail.
template <class Op, class S>
void contiguous_row(const SoftmaxRow<S>& r) {
  using K = Chunk<S>;
  using C = opmath_t<S>;
  using V = typename K::V;
  constexpr int P = K::kParts;
  const int64_t full = r.n / K::kStep * K::kStep;
  V x[P], g[P];
  const V zero(C(0));

  C m = 0;
  if constexpr (Op::kNeedsMax) {
    V vm(-INFINITY);
    for (int64_t i = 0; i < full; i += K::kStep) {
      K::load(r.in + i, x);
      for (int k = 0; k < P; ++k) vm = at::vec::maximum(vm, x[k]);  // propagates NaN
    }
    m = reduce_lanes<C>(vm, -INFINITY, &combine_max<C>);
    for (int64_t i = full; i < r.n; ++i) m = combine_max(m, static_cast<C>(r.in[i]));
  }

  const V vm(m);
  CompensatedSum<V> vs;
  for (int64_t i = 0; i < full; i += K::kStep) {
    K::load(r.in + i, x);
    if constexpr (!Op::kNeedsMax) K::load(r.grad + i, g);
    for (int k = 0; k < P; ++k) vs.add(Op::summand(x[k], Op::kNeedsMax ? zero : g[k], vm));
  }
  C s = reduce_lanes<C>(vs.sum, C(0), &combine_sum<C>);
  for (int64_t i = full; i < r.n; ++i) {
    const C gi = Op::kNeedsMax ? C(0) : static_cast<C>(r.grad[i]);
    s += Op::summand(static_cast<C>(r.in[i]), gi, m);
  }

  const C c = Op::row_constant(s);
  const V vc(c);
  for (int64_t i = 0; i < full; i += K::kStep) {
    K::load(r.in + i, x);
    if constexpr (!Op::kNeedsMax) K::load(r.grad + i, g);
    V y[P];
    for (int k = 0; k < P; ++k) y[k] = Op::out(x[k], Op::kNeedsMax ? zero : g[k], vm, vc);
    K::store(r.out + i, y);
  }
  for (int64_t i = full; i < r.n; ++i) {
    const C gi = Op::kNeedsMax ? C(0) : static_cast<C>(r.grad[i]);
    r.out[i] = static_cast<S>(Op::out(static_cast<C>(r.in[i]), gi, m, c));
  }
}

// inner > 1: kStep neighbouring rows at once (they are contiguous along inner), each SIMD lane
// its own row, so no horizontal reductions.
template <class Op, class S>
void row_block(const SoftmaxRow<S>& r) {
  using K = Chunk<S>;
  using C = opmath_t<S>;
  using V = typename K::V;
  constexpr int P = K::kParts;
  V x[P], g[P], m[P], s[P], y[P];
  const V zero(C(0));
  for (int k = 0; k < P; ++k) m[k] = V(Op::kNeedsMax ? C(-INFINITY) : C(0));
  if constexpr (Op::kNeedsMax) {
    for (int64_t d = 0; d < r.n; ++d) {
      K::load(r.in + d * r.stride, x);
      for (int k = 0; k < P; ++k) m[k] = at::vec::maximum(m[k], x[k]);
    }
  }
  CompensatedSum<V> sums[P];
  for (int64_t d = 0; d < r.n; ++d) {
    K::load(r.in + d * r.stride, x);
    if constexpr (!Op::kNeedsMax) K::load(r.grad + d * r.stride, g);
    for (int k = 0; k < P; ++k) sums[k].add(Op::summand(x[k], Op::kNeedsMax ? zero : g[k], m[k]));
  }
  for (int k = 0; k < P; ++k) s[k] = sums[k].sum;
  // row_constant is scalar (log, reciprocal): once per row, so per lane.
  for (int k = 0; k < P; ++k) {
    C buf[V::size()];
    s[k].store(buf);
    for (C& b : buf) b = Op::row_constant(b);
    s[k] = V::loadu(buf);
  }
  for (int64_t d = 0; d < r.n; ++d) {
    K::load(r.in + d * r.stride, x);
    if constexpr (!Op::kNeedsMax) K::load(r.grad + d * r.stride, g);
    for (int k = 0; k < P; ++k) y[k] = Op::out(x[k], Op::kNeedsMax ? zero : g[k], m[k], s[k]);
    K::store(r.out + d * r.stride, y);
  }
}

template <class Op, class S>
void run(const SoftmaxArgs& a) {
  if (a.inner == 1) {
    const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(a.dim, 1));
    at::parallel_for(0, a.outer, grain, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) contiguous_row<Op>(softmax_row<S>(a, o, 0));
    });
    return;
  }
  // Work units per outer index: the full blocks of kStep rows, then one unit for the rest,
  // which goes row by row through the shared scalar phases.
  constexpr int64_t W = Chunk<S>::kStep;
  const int64_t blocks = a.inner / W;
  const int64_t units = blocks + (a.inner % W != 0);
  const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(a.dim * W, 1));
  at::parallel_for(0, a.outer * units, grain, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t o = u / units, b = u % units;
      if (b < blocks) {
        row_block<Op>(softmax_row<S>(a, o, b * W));
      } else {
        for (int64_t j = blocks * W; j < a.inner; ++j) softmax_row_serial<Op>(softmax_row<S>(a, o, j));
      }
    }
  });
}

}  // namespace

void run_softmax(const SoftmaxArgs& a) {
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_softmax_op(a, [&](auto op) { run<decltype(op), S>(a); });
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
