// softmax / log_softmax CPU kernels, for one instruction set: built once per entry of setup.py's
// CPU_ISAS, so this becomes fused_act::cpu::{DEFAULT,AVX2,AVX512}::run_softmax (cpu/kernels.h).
// The per-element math is activations/softmax.h's SoftmaxOp, called on at::vec::Vectorized.
#define FUSED_ACT_CPU_VEC 1

#include <algorithm>
#include <tuple>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include "../activations/softmax.h"
#include "storage.h"

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

  static void load(const S* p, V* v) {
    if constexpr (kSame) {
      v[0] = V::loadu(p);
    } else {
      std::tie(v[0], v[1]) = at::vec::convert_to_float<S>(at::vec::Vectorized<S>::loadu(p));
    }
  }

  static void store(S* p, const V* v) {
    if constexpr (kSame) {
      v[0].store(p);
    } else {
      from_float<S>(v[0], v[1]).store(p);
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

// Sums of SIMD vectors: kSumBlock steps plainly, in a register (a latency chain of one add per
// step), then each block's total into a compensated sum. Kahan on every step would chain four
// dependent operations per step and make the backward latency-bound (1.5x torch's time).
constexpr int64_t kSumBlock = 64;

// inner == 1: one row of n contiguous elements, SIMD along the row, scalar tail.
template <class Op, class S>
void contiguous_row(const SoftmaxRow<S>& r) {
  using K = Chunk<S>;
  using C = opmath_t<S>;
  using V = typename K::V;
  constexpr int P = K::kParts;
  constexpr bool kReuse = Op::kOutIsScaledSummand && K::kSame;
  // Half / bfloat16 keep exp(x - m) in float in a per-thread row buffer instead of in out, so
  // that exp runs once and the output is still rounded once.
  constexpr bool kScratch = Op::kOutIsScaledSummand && !K::kSame;
  const int64_t full = r.n / K::kStep * K::kStep;
  V x[P], g[P], y[P];
  const V zero(C(0));
  C* scratch = nullptr;
  if constexpr (kScratch) {
    thread_local std::vector<C> buffer;
    if (static_cast<int64_t>(buffer.size()) < r.n) buffer.resize(r.n);
    scratch = buffer.data();
  }

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
  CompensatedSum<V> total;
  for (int64_t i = 0; i < full;) {
    V block = zero;
    for (const int64_t end = std::min(full, i + kSumBlock * K::kStep); i < end; i += K::kStep) {
      K::load(r.in + i, x);
      if constexpr (!Op::kNeedsMax) K::load(r.grad + i, g);
      for (int k = 0; k < P; ++k) {
        y[k] = Op::summand(x[k], Op::kNeedsMax ? zero : g[k], vm);
        block = block + y[k];
      }
      if constexpr (kReuse) K::store(r.out + i, y);
      if constexpr (kScratch) {
        for (int k = 0; k < P; ++k) y[k].store(scratch + i + k * V::size());
      }
    }
    total.add(block);
  }
  C s = reduce_lanes<C>(total.sum, C(0), &combine_sum<C>);
  for (int64_t i = full; i < r.n; ++i) {
    const C gi = Op::kNeedsMax ? C(0) : static_cast<C>(r.grad[i]);
    const C e = Op::summand(static_cast<C>(r.in[i]), gi, m);
    if constexpr (kReuse) r.out[i] = e;
    if constexpr (kScratch) scratch[i] = e;
    s += e;
  }

  const C c = Op::row_constant(s);
  const V vc(c);
  if constexpr (kReuse) {
    for (int64_t i = 0; i < full; i += K::kStep) (V::loadu(r.out + i) * vc).store(r.out + i);
    for (int64_t i = full; i < r.n; ++i) r.out[i] = r.out[i] * c;
    return;
  }
  if constexpr (kScratch) {
    for (int64_t i = 0; i < full; i += K::kStep) {
      for (int k = 0; k < P; ++k) y[k] = V::loadu(scratch + i + k * V::size()) * vc;
      K::store(r.out + i, y);
    }
    for (int64_t i = full; i < r.n; ++i) r.out[i] = static_cast<S>(scratch[i] * c);
    return;
  }
  for (int64_t i = 0; i < full; i += K::kStep) {
    K::load(r.in + i, x);
    if constexpr (!Op::kNeedsMax) K::load(r.grad + i, g);
    for (int k = 0; k < P; ++k) y[k] = Op::out(x[k], Op::kNeedsMax ? zero : g[k], vm, vc);
    K::store(r.out + i, y);
  }
  for (int64_t i = full; i < r.n; ++i) {
    const C gi = Op::kNeedsMax ? C(0) : static_cast<C>(r.grad[i]);
    r.out[i] = static_cast<S>(Op::out(static_cast<C>(r.in[i]), gi, m, c));
  }
}

// inner > 1: U * kStep neighbouring rows at once (they are contiguous along inner), each SIMD
// lane its own row, so no horizontal reductions. U > 1 uses whole cache lines per strided step.
template <class Op, int U, class S>
void row_block(const SoftmaxRow<S>& r) {
  using K = Chunk<S>;
  using C = opmath_t<S>;
  using V = typename K::V;
  constexpr int P = K::kParts * U;
  constexpr bool kReuse = Op::kOutIsScaledSummand && K::kSame;
  V x[P], g[P], m[P], c[P], y[P], block[P];
  const V zero(C(0));
  auto load = [&](const S* p, V* v) {
    for (int u = 0; u < U; ++u) K::load(p + u * K::kStep, v + u * K::kParts);
  };
  auto store = [&](S* p, const V* v) {
    for (int u = 0; u < U; ++u) K::store(p + u * K::kStep, v + u * K::kParts);
  };
  for (int k = 0; k < P; ++k) m[k] = V(Op::kNeedsMax ? C(-INFINITY) : C(0));
  if constexpr (Op::kNeedsMax) {
    for (int64_t d = 0; d < r.n; ++d) {
      load(r.in + d * r.stride, x);
      for (int k = 0; k < P; ++k) m[k] = at::vec::maximum(m[k], x[k]);
    }
  }
  CompensatedSum<V> total[P];
  for (int64_t d = 0; d < r.n;) {
    for (int k = 0; k < P; ++k) block[k] = zero;
    for (const int64_t end = std::min(r.n, d + kSumBlock); d < end; ++d) {
      load(r.in + d * r.stride, x);
      if constexpr (!Op::kNeedsMax) load(r.grad + d * r.stride, g);
      for (int k = 0; k < P; ++k) {
        y[k] = Op::summand(x[k], Op::kNeedsMax ? zero : g[k], m[k]);
        block[k] = block[k] + y[k];
      }
      if constexpr (kReuse) store(r.out + d * r.stride, y);
    }
    for (int k = 0; k < P; ++k) total[k].add(block[k]);
  }
  // row_constant is scalar (log, reciprocal): once per row, so per lane.
  for (int k = 0; k < P; ++k) {
    C buf[V::size()];
    total[k].sum.store(buf);
    for (C& b : buf) b = Op::row_constant(b);
    c[k] = V::loadu(buf);
  }
  for (int64_t d = 0; d < r.n; ++d) {
    if constexpr (kReuse) {
      load(r.out + d * r.stride, y);
      for (int k = 0; k < P; ++k) y[k] = y[k] * c[k];
    } else {
      load(r.in + d * r.stride, x);
      if constexpr (!Op::kNeedsMax) load(r.grad + d * r.stride, g);
      for (int k = 0; k < P; ++k) y[k] = Op::out(x[k], Op::kNeedsMax ? zero : g[k], m[k], c[k]);
    }
    store(r.out + d * r.stride, y);
  }
}

// Chunks per unit of row_block: 64 bytes of float/double storage, 64 of half/bfloat16 under AVX2.
template <class S>
constexpr int kUnroll = Chunk<S>::kSame ? 4 : 2;

template <class Op, class S>
void run(const SoftmaxArgs& a) {
  if (a.inner == 1) {
    const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(a.dim, 1));
    at::parallel_for(0, a.outer, grain, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) contiguous_row<Op>(softmax_row<S>(a, o, 0));
    });
    return;
  }
  // Work units: ranges of up to kUnroll * kStep rows of one outer index. The last, shorter range
  // of each takes single chunks, then the rest row by row through the shared scalar phases.
  constexpr int64_t W = Chunk<S>::kStep, UW = kUnroll<S> * W;
  const int64_t units = (a.inner + UW - 1) / UW;
  const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(a.dim * UW, 1));
  at::parallel_for(0, a.outer * units, grain, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t o = u / units;
      int64_t j = (u % units) * UW;
      const int64_t stop = std::min(a.inner, j + UW);
      if (j + UW <= stop) {
        row_block<Op, kUnroll<S>>(softmax_row<S>(a, o, j));
        continue;
      }
      for (; j + W <= stop; j += W) row_block<Op, 1>(softmax_row<S>(a, o, j));
      for (; j < stop; ++j) softmax_row_serial<Op>(softmax_row<S>(a, o, j));
    }
  });
}

}  // namespace

void run_softmax(const SoftmaxArgs& a) {
  visit_storage(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_softmax_op(a, [&](auto op) { run<decltype(op), S>(a); });
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
