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

  // The first `count` elements at p (0 < count < kStep), the lanes past them set to `fill`.
  static void load_partial(const S* p, int64_t count, V* v, C fill) {
    if constexpr (kSame) {
      v[0] = V::set(V(fill), V::loadu(p, count), count);
    } else {
      std::tie(v[0], v[1]) = at::vec::convert_to_float<S>(load_first(p, count));
      for (int k = 0; k < kParts; ++k) v[k] = V::set(V(fill), v[k], lanes(count, k));
    }
  }

  static void store_partial(S* p, const V* v, int64_t count) {
    if constexpr (kSame) {
      v[0].store(p, count);
    } else {
      store_first(p, from_float<S>(v[0], v[1]), count);
    }
  }

  // How many of the first `count` elements of a chunk fall in its part k.
  static int64_t lanes(int64_t count, int k) { return std::clamp<int64_t>(count - k * V::size(), 0, V::size()); }
};

// The max (NaN-propagating) and the sum of a vector's lanes. float on AVX2 / AVX-512: ATen's
// shuffle tree, log2(lanes) steps in registers, where a store and a loop over the lanes is a chain
// of 16 dependent adds under AVX-512, paid once per row.
template <class C>
C reduce_lanes(const at::vec::Vectorized<C>& v, C init, C (*combine)(C, C)) {
  C buf[at::vec::Vectorized<C>::size()];
  v.store(buf);
  C r = init;
  for (C x : buf) r = combine(r, x);
  return r;
}

#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
constexpr bool kShuffleTree = true;
#else
constexpr bool kShuffleTree = false;
#endif

template <class C>
C lanes_max(const at::vec::Vectorized<C>& v) {
  if constexpr (kShuffleTree && std::is_same_v<C, float>) {
    return at::vec::vec_reduce_all<float>([](const auto& a, const auto& b) { return at::vec::maximum(a, b); }, v);
  } else {
    return reduce_lanes<C>(v, -INFINITY, &combine_max<C>);
  }
}

template <class C>
C lanes_sum(const at::vec::Vectorized<C>& v) {
  if constexpr (kShuffleTree && std::is_same_v<C, float>) {
    return at::vec::vec_reduce_all<float>([](const auto& a, const auto& b) { return a + b; }, v);
  } else {
    return reduce_lanes<C>(v, C(0), &combine_sum<C>);
  }
}

// Sums of SIMD vectors: kSumBlock steps plainly, in a register (a latency chain of one add per
// step), then each block's total into a compensated sum. Kahan on every step would chain four
// dependent operations per step and make the backward latency-bound (1.5x torch's time).
constexpr int64_t kSumBlock = 64;

// This thread's float buffer of at least n values, for the summands of reduced types (kept
// between calls: one allocation per thread).
template <class C>
C* thread_scratch(int64_t n) {
  thread_local std::vector<C> buffer;
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(n);
  return buffer.data();
}

// Short rows (inner == 1): up to kMaxGroup rows of up to kShortRow elements per group.
constexpr int64_t kMaxGroup = 16;
constexpr int64_t kShortRow = 256;

// inner == 1: one row of n contiguous elements, SIMD along the row, in three phases (max, sum,
// output) around the row constant. The last n % kStep elements are one more chunk, loaded and
// stored partially (padding lanes: -inf for the max, 0 in the sum), so a row shorter than a
// vector is SIMD too, and lanes are reduced by shuffles (lanes_max). Short rows go through the
// phases G at a time (run): each row's chain of max, exp, sum and log then overlaps the others'.
// Forward at (16384, 32) float32, 2 threads, Intel AVX-512 (python -m bench.softmax,
// bench/results/intel_avx512/softmax_rows): one row at a time with a scalar tail, softmax 0.480
// ms and log_softmax 0.551 (eager 0.243, 0.227); now 0.190 and 0.200. (65536, 10): 2.64 -> 0.63-0.73 ms.
template <class Op, class S>
struct ContiguousRow {
  using K = Chunk<S>;
  using C = opmath_t<S>;
  using V = typename K::V;
  static constexpr int P = K::kParts;
  static constexpr bool kReuse = Op::kOutIsScaledSummand && K::kSame;
  // Half / bfloat16 keep exp(x - m) in float in a row buffer (scratch, n + kStep floats) instead
  // of in out, so that exp runs once and the output is still rounded once.
  static constexpr bool kScratch = Op::kOutIsScaledSummand && !K::kSame;

  static C max(const SoftmaxRow<S>& r) {
    const int64_t full = r.n / K::kStep * K::kStep;
    V x[P], vm(-INFINITY);
    for (int64_t i = 0; i < full; i += K::kStep) {
      K::load(r.in + i, x);
      for (int k = 0; k < P; ++k) vm = at::vec::maximum(vm, x[k]);  // propagates NaN
    }
    if (full < r.n) {
      K::load_partial(r.in + full, r.n - full, x, -INFINITY);
      for (int k = 0; k < P; ++k) vm = at::vec::maximum(vm, x[k]);
    }
    return lanes_max<C>(vm);
  }

  // The summands' total; kReuse stores them in out, kScratch in scratch.
  static C sum(const SoftmaxRow<S>& r, C m, C* scratch) {
    const int64_t full = r.n / K::kStep * K::kStep;
    const V vm(m), zero(C(0));
    V x[P], g[P], y[P];
    CompensatedSum<V> total;
    const auto stash = [&](int64_t i, int64_t count) {
      if constexpr (kReuse) {
        count == K::kStep ? K::store(r.out + i, y) : K::store_partial(r.out + i, y, count);
      }
      if constexpr (kScratch) {
        for (int k = 0; k < P; ++k) y[k].store(scratch + i + k * V::size());
      }
    };
    for (int64_t i = 0; i < full;) {
      V block = zero;
      for (const int64_t end = std::min(full, i + kSumBlock * K::kStep); i < end; i += K::kStep) {
        K::load(r.in + i, x);
        if constexpr (!Op::kNeedsMax) K::load(r.grad + i, g);
        for (int k = 0; k < P; ++k) {
          y[k] = Op::summand(x[k], Op::kNeedsMax ? zero : g[k], vm);
          block = block + y[k];
        }
        stash(i, K::kStep);
      }
      total.add(block);
    }
    if (const int64_t tail = r.n - full; tail > 0) {
      K::load_partial(r.in + full, tail, x, C(0));
      if constexpr (!Op::kNeedsMax) K::load_partial(r.grad + full, tail, g, C(0));
      V block = zero;
      for (int k = 0; k < P; ++k) {
        y[k] = V::set(zero, Op::summand(x[k], Op::kNeedsMax ? zero : g[k], vm), K::lanes(tail, k));
        block = block + y[k];
      }
      stash(full, tail);
      total.add(block);
    }
    return lanes_sum<C>(total.sum);
  }

  static void out(const SoftmaxRow<S>& r, C m, C c, const C* scratch) {
    const int64_t full = r.n / K::kStep * K::kStep;
    const V vm(m), vc(c), zero(C(0));
    V x[P], g[P], y[P];
    // the chunk at i of count elements (kStep, or the tail)
    const auto chunk = [&](int64_t i, int64_t count) {
      if constexpr (kReuse) {
        y[0] = V::loadu(r.out + i, count) * vc;
      } else if constexpr (kScratch) {
        for (int k = 0; k < P; ++k) y[k] = V::loadu(scratch + i + k * V::size()) * vc;
      } else {
        if (count == K::kStep) {
          K::load(r.in + i, x);
          if constexpr (!Op::kNeedsMax) K::load(r.grad + i, g);
        } else {
          K::load_partial(r.in + i, count, x, C(0));
          if constexpr (!Op::kNeedsMax) K::load_partial(r.grad + i, count, g, C(0));
        }
        for (int k = 0; k < P; ++k) y[k] = Op::out(x[k], Op::kNeedsMax ? zero : g[k], vm, vc);
      }
      count == K::kStep ? K::store(r.out + i, y) : K::store_partial(r.out + i, y, count);
    };
    for (int64_t i = 0; i < full; i += K::kStep) chunk(i, K::kStep);
    if (full < r.n) chunk(full, r.n - full);
  }

  // Rows [begin, end) of a, G at a time (G = 1: one after another).
  static void rows(const SoftmaxArgs& a, int64_t begin, int64_t end, int64_t G) {
    const int64_t stride = kScratch ? (a.dim / K::kStep + 1) * K::kStep : 0;
    C* const scratch = thread_scratch<C>(G * stride);
    C m[kMaxGroup], c[kMaxGroup];
    for (int64_t o = begin; o < end; o += G) {
      const int64_t count = std::min(G, end - o);
      for (int64_t j = 0; j < count; ++j) m[j] = Op::kNeedsMax ? max(softmax_row<S>(a, o + j, 0)) : C(0);
      for (int64_t j = 0; j < count; ++j) c[j] = sum(softmax_row<S>(a, o + j, 0), m[j], scratch + j * stride);
      // the group's logs or reciprocals as vectors: inline SIMD math, not a libm call per row
      for (int64_t j = 0; j < count; j += V::size()) {
        const int64_t n = std::min<int64_t>(V::size(), count - j);
        Op::row_constant(V::loadu(c + j, n)).store(c + j, n);
      }
      for (int64_t j = 0; j < count; ++j) out(softmax_row<S>(a, o + j, 0), m[j], c[j], scratch + j * stride);
    }
  }
};

// inner > 1: U * kStep neighbouring rows at once (they are contiguous along inner), each SIMD
// lane its own row, so no horizontal reductions. U > 1 uses whole cache lines per strided step.
// Half / bfloat16 softmax keeps the summands in float in scratch (n * P vectors) when the caller
// has one, as ContiguousRow does, instead of a second exp per element in the output pass:
// (64, 128, 128) bfloat16 over dim 1, 1 thread, Intel: 1.18 -> 0.73 ms in the AVX2 build (eager
// 1.15-1.20), 0.61 -> 0.45 in the AVX-512 build (eager 0.80).
template <class Op, int U, class S>
void row_block(const SoftmaxRow<S>& r, opmath_t<S>* scratch) {
  using K = Chunk<S>;
  using C = opmath_t<S>;
  using V = typename K::V;
  constexpr int P = K::kParts * U;
  constexpr bool kReuse = Op::kOutIsScaledSummand && K::kSame;
  constexpr bool kScratch = Op::kOutIsScaledSummand && !K::kSame;
  const auto stashed = [&](int64_t d, int k) { return scratch + (d * P + k) * V::size(); };
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
      if constexpr (kScratch) {
        if (scratch != nullptr) {
          for (int k = 0; k < P; ++k) y[k].store(stashed(d, k));
        }
      }
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
    } else if (kScratch && scratch != nullptr) {
      for (int k = 0; k < P; ++k) y[k] = V::loadu(stashed(d, k)) * c[k];
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

// The most row_block's scratch may take: half an L2 of the smaller CPUs this runs on.
constexpr int64_t kScratchBytes = 256 * 1024;

template <class Op, class S>
void run(const SoftmaxArgs& a) {
  if (a.inner == 1) {
    // Rows of up to kShortRow elements go kMaxGroup at a time, so that G rows' data (16 KB of
    // float) stays in L1 between the phases.
    const int64_t G = a.dim <= kShortRow ? kMaxGroup : 1;
    const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(a.dim, 1));
    at::parallel_for(0, a.outer, grain,
                     [&](int64_t begin, int64_t end) { ContiguousRow<Op, S>::rows(a, begin, end, G); });
    return;
  }
  // Work units: ranges of up to kUnroll * kStep rows of one outer index. The last, shorter range
  // of each takes single chunks, then the rest row by row through the shared scalar phases.
  constexpr int64_t W = Chunk<S>::kStep, UW = kUnroll<S> * W;
  const int64_t units = (a.inner + UW - 1) / UW;
  const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(a.dim * UW, 1));
  // The float summands of a unit's rows, for reduced types; rows too long for it to stay in L2
  // recompute exp instead.
  using C = opmath_t<S>;
  const int64_t scratch_size = Chunk<S>::kSame ? 0 : a.dim * UW;
  const bool with_scratch = scratch_size > 0 && scratch_size * int64_t(sizeof(C)) <= kScratchBytes;
  at::parallel_for(0, a.outer * units, grain, [&](int64_t begin, int64_t end) {
    C* const scratch = with_scratch ? thread_scratch<C>(scratch_size) : nullptr;
    for (int64_t u = begin; u < end; ++u) {
      const int64_t o = u / units;
      int64_t j = (u % units) * UW;
      const int64_t stop = std::min(a.inner, j + UW);
      if (j + UW <= stop) {
        row_block<Op, kUnroll<S>>(softmax_row<S>(a, o, j), scratch);
        continue;
      }
      for (; j + W <= stop; j += W) row_block<Op, 1>(softmax_row<S>(a, o, j), scratch);
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
