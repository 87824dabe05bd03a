// softmax / log_softmax over one dimension, forward and backward: the per-element formulas and
// the per-row phases, host-and-device so that the CPU SIMD loop, the CUDA kernel and the CPU
// simulation of a CUDA thread group all run the same lines. No torch headers (nvcc).
//
// The tensor is seen as (outer, D, inner) around the softmax dimension; a "row" is the D
// elements sharing (outer, inner) index, `stride` (= inner) apart.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common.h"
#include "elementwise.h"
#include "math.h"
#include "softmax_args.h"

namespace fused_act {

// The four computations, each in three per-element parts around one row reduction `s`:
//   summand(v, g, m)   summed over the row to give s (m = row max, forward only)
//   row_constant(s)    computed once per row
//   out(v, g, m, c)    the result for each element
// v is x (forward) or y (backward). Forward subtracts the row max before exp so that no
// summand exceeds 1 (torch does the same); a row of all -inf then gives NaN, as in torch. exp's
// argument is then never positive: exp_nonpos, which skips exp's overflow handling on AVX2
// ((256, 4096) float32 forward, 1 thread, AVX2 build on Intel: 0.96 -> 0.64 ms, eager 0.90).
//   softmax          y = exp(x - m) / s,          s = sum exp(x - m)
//   log_softmax      y = (x - m) - log(s)         (not x - (m + log s): m + log s rounds at |m|)
//   softmax bwd      dx = y * (g - s),            s = sum g * y
//   log_softmax bwd  dx = g - exp(y) * s,         s = sum g
template <bool kLog, bool kBackward>
struct SoftmaxOp {
  static constexpr bool kNeedsMax = !kBackward;
  // out == summand * c: a backend whose output has the compute type may store the summand in
  // the sum pass and only rescale it last (one exp per element instead of two).
  static constexpr bool kOutIsScaledSummand = !kBackward && !kLog;

  template <class T>
  FA_HD static T summand(const T& v, const T& g, const T& m) {
    if constexpr (kBackward) {
      return kLog ? g : g * v;
    } else {
      return math::exp_nonpos(v - m);  // m is the row's max: v - m <= 0, or NaN
    }
  }

  template <class C>
  FA_HD static C row_constant(C s) {
    if constexpr (kBackward) {
      return s;
    } else if constexpr (kLog) {
      return math::log(s);
    } else {
      return C(1) / s;
    }
  }

  template <class T>
  FA_HD static T out(const T& v, const T& g, const T& m, const T& c) {
    if constexpr (kBackward) {
      if constexpr (kLog) {
        return g - math::exp(v) * c;
      } else {
        return v * (g - c);
      }
    } else if constexpr (kLog) {
      return (v - m) - c;
    } else {
      return math::exp_nonpos(v - m) * c;
    }
  }
};

// Calls f(SoftmaxOp<...>{}) for the computation a describes.
template <class F>
inline void visit_softmax_op(const SoftmaxArgs& a, F&& f) {
  if (a.backward) {
    a.log ? f(SoftmaxOp<true, true>{}) : f(SoftmaxOp<false, true>{});
  } else {
    a.log ? f(SoftmaxOp<true, false>{}) : f(SoftmaxOp<false, false>{});
  }
}

template <class S>
struct SoftmaxRow {
  const S* in;    // x or y
  const S* grad;  // backward only
  S* out;
  int64_t n;
  int64_t stride;
};

// The row starting at (outer index o, inner index j) of a contiguous (outer, D, inner) tensor.
template <class S>
FA_HD SoftmaxRow<S> softmax_row(const SoftmaxArgs& a, int64_t o, int64_t j) {
  const int64_t base = o * a.dim * a.inner + j;
  const S* in = static_cast<const S*>(a.in) + base;
  const S* grad = a.backward ? static_cast<const S*>(a.grad) + base : nullptr;
  return {in, grad, static_cast<S*>(a.out) + base, a.dim, a.inner};
}

// NaN-propagating max, as torch's reductions: a NaN anywhere in the row makes the max NaN.
template <class C>
FA_HD C combine_max(C a, C b) {
  return (b > a || b != b) ? b : a;
}

template <class C>
FA_HD C combine_sum(C a, C b) {
  return a + b;
}

// Kahan-compensated running sum. One thread may sum a whole row (inner > 1, or SIMD lanes that
// each own a row): plain float accumulation of 10^5 terms drifts by ~1e-4 relative, compensated
// stays at a few ulp. T is C or at::vec::Vectorized<C>.
template <class T>
struct CompensatedSum {
  T sum{0};
  T carry{0};
  FA_HD void add(const T& v) {
    const T y = v - carry;
    const T t = sum + y;
    carry = (t - sum) - y;
    sum = t;
  }
};

// Forward statistics of part of a row in one read (online softmax, Milakov & Gimelshein 2018,
// "Online normalizer calculation for softmax"): the running max m and s = sum exp(v - m), s
// rescaled whenever m grows. Backward needs no max: s is the plain sum of the summands. The
// special values come out as in torch's two-pass form: an element that raises m adds
// exp(v - v), which is NaN for v = inf (two-pass: exp(inf - inf)); an all -inf part keeps
// m = -inf, s = 0 and adds nothing (exp(-inf - -inf) would be NaN), so the row's output is
// exp(-inf - -inf) / 0 = NaN as torch's; a NaN element makes s NaN.
template <class C>
struct RowStats {
  C m;
  C s;
};

template <class Op, class C>
struct RowStatsAcc {
  C m = Op::kNeedsMax ? C(-INFINITY) : C(0);
  CompensatedSum<C> s;

  FA_HD void add(C v, C g) {
    if constexpr (Op::kNeedsMax) {
      if (v > m) {
        const C scale = math::exp(m - v);  // 0 when m = -inf
        s.sum *= scale;
        s.carry *= scale;
        s.add(C(1) + (v - v));
        m = v;
      } else if (m != C(-INFINITY) || v != v) {
        s.add(math::exp(v - m));
      }
    } else {
      s.add(Op::summand(v, g, m));
    }
  }
  FA_HD RowStats<C> result() const { return {m, s.sum - s.carry}; }
};

// Combines the statistics of two parts of a row (in any order: the GPU combines lanes in a tree).
template <class Op, class C>
FA_HD RowStats<C> merge_stats(const RowStats<C>& a, const RowStats<C>& b) {
  if constexpr (!Op::kNeedsMax) {
    return {C(0), a.s + b.s};
  } else {
    const C m = combine_max(a.m, b.m);
    // An empty part (s = 0, m = -inf) adds nothing: its scale exp(-inf - m) may be NaN.
    const C sa = a.s == C(0) ? C(0) : a.s * math::exp(a.m - m);
    const C sb = b.s == C(0) ? C(0) : b.s * math::exp(b.m - m);
    return {m, sa + sb};
  }
}

template <class Op, class C>
FA_HD RowStats<C> empty_stats() {
  return {Op::kNeedsMax ? C(-INFINITY) : C(0), C(0)};
}

// V consecutive storage elements, aligned so that a GPU loads or stores them in one 16-byte
// access (float4 / double2 / 8 halves); on the host the same struct is plain memory.
template <class S, int V>
struct alignas(sizeof(S) * V) Packet {
  S v[V];
};

// How `lanes` threads share elements [begin, end) of a row. Scalar rows (stride > 1, or vec 1):
// lane takes begin + lane, begin + lane + lanes, ... Packed rows (stride 1, vec V > 1, in / grad
// / out equally aligned): the elements before the first V-aligned address go one per lane, then
// whole packets one per lane in turn, then the tail one per lane; f(i, W) handles the W
// elements from i (W = 1 or V, a compile-time constant). Every lane visits its items in
// increasing order, so results do not depend on the packet split.
template <int V, class S, class F>
FA_HD void for_each_item(const SoftmaxRow<S>& r, int64_t begin, int64_t end, int64_t lane, int64_t lanes, F&& f) {
  std::integral_constant<int, 1> one;
  if constexpr (V == 1) {
    for (int64_t i = begin + lane; i < end; i += lanes) f(i, one);
  } else {
    const auto addr = reinterpret_cast<uintptr_t>(r.in + begin);
    constexpr uintptr_t kBytes = sizeof(S) * V;
    int64_t head = static_cast<int64_t>(((kBytes - addr % kBytes) % kBytes) / sizeof(S));
    head = head < end - begin ? head : end - begin;
    const int64_t packets = (end - begin - head) / V;
    const int64_t body = begin + head, tail = body + packets * V;
    for (int64_t i = begin + lane; i < body; i += lanes) f(i, one);
    for (int64_t k = lane; k < packets; k += lanes) f(body + k * V, std::integral_constant<int, V>{});
    for (int64_t i = tail + lane; i < end; i += lanes) f(i, one);
  }
}

// W elements of a row from element i, converted to the compute type (one 16-byte load for W = V).
template <int W, class S, class C>
FA_HD void load_items(const S* p, int64_t i, int64_t stride, C (&out)[W]) {
  if constexpr (W == 1) {
    out[0] = static_cast<C>(p[i * stride]);
  } else {
    const Packet<S, W> pk = *reinterpret_cast<const Packet<S, W>*>(p + i);
    FA_UNROLL
    for (int k = 0; k < W; ++k) out[k] = static_cast<C>(pk.v[k]);
  }
}

template <int W, class S, class C>
FA_HD void store_items(S* p, int64_t i, int64_t stride, const C (&in)[W]) {
  if constexpr (W == 1) {
    p[i * stride] = static_cast<S>(in[0]);
  } else {
    Packet<S, W> pk;
    FA_UNROLL
    for (int k = 0; k < W; ++k) pk.v[k] = static_cast<S>(in[k]);
#ifdef __CUDA_ARCH__
    // One 16-byte store (st.global.wb.v4): a plain assignment of the Packet, or of a uint4, was
    // split by nvcc into 32-bit stores in several of these kernels (tests/test_cuda_build.py).
    static_assert(sizeof(pk) == sizeof(uint4));
    uint4 word;
    memcpy(&word, &pk, sizeof(word));
    __stwb(reinterpret_cast<uint4*>(p + i), word);
#else
    *reinterpret_cast<Packet<S, W>*>(p + i) = pk;
#endif
  }
}

// Phase 1 for one lane: the statistics of its elements of [begin, end).
template <class Op, int V, class S, class C = opmath_t<S>>
FA_HD RowStats<C> partial_stats(const SoftmaxRow<S>& r, int64_t begin, int64_t end, int64_t lane, int64_t lanes) {
  RowStatsAcc<Op, C> acc;
  for_each_item<V>(r, begin, end, lane, lanes, [&](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    C v[W], g[W] = {};
    load_items<W>(r.in, i, r.stride, v);
    if constexpr (!Op::kNeedsMax) load_items<W>(r.grad, i, r.stride, g);
    FA_UNROLL
    for (int k = 0; k < W; ++k) acc.add(v[k], g[k]);
  });
  return acc.result();
}

// Phase 2 for one lane: its outputs in [begin, end), given the whole row's statistics.
template <class Op, int V, class S, class C = opmath_t<S>>
FA_HD void write_outputs(const SoftmaxRow<S>& r, int64_t begin, int64_t end, int64_t lane, int64_t lanes,
                         const RowStats<C>& st) {
  const C c = Op::row_constant(st.s);
  for_each_item<V>(r, begin, end, lane, lanes, [&](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    C v[W], g[W] = {}, y[W];
    load_items<W>(r.in, i, r.stride, v);
    if constexpr (!Op::kNeedsMax) load_items<W>(r.grad, i, r.stride, g);
    FA_UNROLL
    for (int k = 0; k < W; ++k) y[k] = Op::out(v[k], g[k], st.m, c);
    store_items<W>(r.out, i, r.stride, y);
  });
}

// A whole row by one thread (the CPU's scalar tails).
template <class Op, class S, class C = opmath_t<S>>
FA_HD void softmax_row_serial(const SoftmaxRow<S>& r) {
  write_outputs<Op, 1>(r, 0, r.n, 0, 1, partial_stats<Op, 1>(r, 0, r.n, 0, 1));
}

// How a CUDA launch splits a softmax: the kernels in cuda/softmax_kernels.cu, the CPU simulation
// in simulation/softmax_simulation.cpp and the tests all use this one plan.
//   rows (inner == 1): `lanes` threads per row (4-32: a part of a warp, several rows per warp;
//     256: a block), packets of `vec` elements where in / grad / out are equally aligned;
//   columns (inner > 1): a block is `cols` neighbouring rows (coalesced along inner) x `lanes`
//     threads along D (lanes * cols = 256);
//   either: `splits` blocks per row when there are too few rows to fill the GPU; each computes
//     the statistics of its part, then every part's block merges them all and writes its part.
struct SoftmaxPlan {
  bool columns = false;
  int lanes = 1;
  int cols = 1;
  int vec = 1;
  int64_t splits = 1;
  int64_t chunk = 0;  // elements of a row per split (a multiple of vec)
};

constexpr int kSoftmaxThreads = 256;

inline int64_t pow2_at_least(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

inline SoftmaxPlan plan_softmax(const SoftmaxArgs& a, int elem_size, int sm_count) {
  SoftmaxPlan p;
  const int64_t blocks_wanted = 2 * static_cast<int64_t>(sm_count);
  int64_t groups = 0, per_lane = 0;
  if (a.inner == 1) {
    const uintptr_t kAlign = 16;
    const auto in = reinterpret_cast<uintptr_t>(a.in), out = reinterpret_cast<uintptr_t>(a.out);
    const bool same =
        in % kAlign == out % kAlign && (!a.backward || reinterpret_cast<uintptr_t>(a.grad) % kAlign == in % kAlign);
    p.vec = same ? static_cast<int>(kAlign) / elem_size : 1;
    const int64_t items = (a.dim + p.vec - 1) / p.vec;
    // Short rows share a warp (8 rows of 4 lanes), rows up to 8 items per lane take a warp,
    // longer ones a block. Three sizes only: each is a set of kernel instantiations.
    p.lanes = items <= 16 ? 4 : items <= 32 * 8 ? 32 : kSoftmaxThreads;
    groups = (a.outer + kSoftmaxThreads / p.lanes - 1) / (kSoftmaxThreads / p.lanes);
    per_lane = 4 * p.vec;  // a split keeps >= 4 packets per lane
  } else {
    p.columns = true;
    p.cols = static_cast<int>(std::min<int64_t>(32, pow2_at_least(a.inner)));
    p.lanes = kSoftmaxThreads / p.cols;
    groups = (a.outer * a.inner + p.cols - 1) / p.cols;
    per_lane = 16;
  }
  if (p.lanes * p.cols == kSoftmaxThreads && groups < blocks_wanted) {
    const int64_t by_gpu = (blocks_wanted + groups - 1) / groups;
    const int64_t by_work = a.dim / (static_cast<int64_t>(p.lanes) * per_lane);
    p.splits = std::max<int64_t>(1, std::min(by_gpu, by_work));
  }
  const int64_t chunk = (a.dim + p.splits - 1) / p.splits;
  p.chunk = (chunk + p.vec - 1) / p.vec * p.vec;
  p.splits = (a.dim + p.chunk - 1) / p.chunk;  // no empty split
  return p;
}

}  // namespace fused_act
