// The per-thread body of the CUDA elementwise kernel, as a host-and-device function so that
// tests can run exactly this code on the CPU over a simulated grid (simulation/activation_threads.cpp).
#pragma once

#include <cstdint>

#include "../activations/elementwise.h"

namespace fused_act::cuda {

// 128-bit loads and stores: 4 floats, 2 doubles, 8 halves or bfloat16s per access.
template <class S>
constexpr int kPacketElems = 16 / static_cast<int>(sizeof(S));

template <class S, int W>
struct alignas(sizeof(S) * W) Packet {
  S v[W];
};

// ElementwiseArgs with typed pointers (see Operand in activations/elementwise.h).
template <class S, int N, int M>
struct Operands {
  const S* in[N];
  int64_t in_stride[N];
  int64_t in_period[N];
  bool in_per_row[N];
  S* out[M];
  int64_t out_stride[M];
  int64_t rows, cols;
};

template <class S, int N, int M>
inline Operands<S, N, M> make_operands(const ElementwiseArgs& a) {
  Operands<S, N, M> t{};
  for (int k = 0; k < N; ++k) {
    t.in[k] = static_cast<const S*>(a.in[k].ptr);
    t.in_stride[k] = a.in[k].row_stride;
    t.in_period[k] = a.in[k].period;
    t.in_per_row[k] = a.in[k].per_row;
  }
  for (int m = 0; m < M; ++m) {
    t.out[m] = static_cast<S*>(a.out[m].ptr);
    t.out_stride[m] = a.out[m].row_stride;
  }
  t.rows = a.rows;
  t.cols = a.cols;
  return t;
}

// Division by a runtime divisor without a divide instruction (Granlund & Montgomery 1994, as
// CUTLASS's FastDivmod): n / d = (umulhi(n, mul) + n) >> shift for every 32-bit n, with mul and
// shift found once on the host. A 64-bit division costs a GPU ~100 instructions per item.
struct FastDivmod {
  uint32_t divisor = 1, mul = 1, shift = 0;
  FastDivmod() = default;
  explicit FastDivmod(uint32_t d) : divisor(d) {
    while ((uint64_t{1} << shift) < d) ++shift;
    mul = static_cast<uint32_t>((((uint64_t{1} << shift) - d) << 32) / d + 1);
  }
  FA_HD uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(n, mul);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(n) * mul) >> 32);
#endif
    return static_cast<uint32_t>((static_cast<uint64_t>(hi) + n) >> shift);
  }
};

// 128-bit accesses need the streamed pointers of a row (per-row operands aside) to share their
// position within 16 bytes, in every row: equal base misalignment and, with several rows, row
// strides that keep it (or whole-packet strides where an operand repeats rows). Then each row is
// a scalar head up to the first 16-byte boundary, whole packets, a scalar tail. Otherwise the
// launch takes the scalar path.
template <class S, int N, int M>
FA_HD bool can_vectorize(const Operands<S, N, M>& t) {
  constexpr int W = kPacketElems<S>;
  const auto misalign = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16; };
  const uintptr_t a0 = misalign(t.out[0]);
  const int64_t s0 = t.out_stride[0];
  const auto keeps = [&](int64_t stride, int64_t period) {
    if (t.rows <= 1) return true;
    if (period > 0) return stride % W == 0 && s0 % W == 0;
    return (stride - s0) % W == 0;
  };
  bool ok = true;
  for (int k = 0; k < N; ++k) {
    if (t.in_per_row[k]) continue;
    ok = ok && misalign(t.in[k]) == a0 && keeps(t.in_stride[k], t.in_period[k]);
  }
  for (int m = 0; m < M; ++m) ok = ok && misalign(t.out[m]) == a0 && keeps(t.out_stride[m], 0);
  return ok;
}

// The items the grid strides over: on the packet path, `slots` per row (the head, one per whole
// packet the row can hold, the tail), else one per element; 32-bit divmods when they fit.
struct Items {
  int64_t total = 0;
  int64_t per_row = 1;
  bool fast = false;
  FastDivmod row_of;
};

template <class S, int N, int M>
inline Items plan_items(const Operands<S, N, M>& t, bool vectorized) {
  constexpr int W = kPacketElems<S>;
  Items it;
  it.per_row = vectorized ? t.cols / W + 2 : t.cols;
  it.total = t.rows * it.per_row;
  it.fast = it.total < (int64_t{1} << 32) && it.per_row < (int64_t{1} << 32);
  if (it.fast) it.row_of = FastDivmod(static_cast<uint32_t>(it.per_row));
  return it;
}

// Elements of row r before its first 16-byte boundary (the same for every streamed operand).
template <class S, int N, int M>
FA_HD int64_t head_of(const Operands<S, N, M>& t, int64_t r) {
  const auto addr = reinterpret_cast<uintptr_t>(t.out[0] + r * t.out_stride[0]);
  const int64_t head = static_cast<int64_t>(((16 - addr % 16) % 16) / sizeof(S));
  return head < t.cols ? head : t.cols;
}

template <class Op, class C, int N>
FA_HD auto call(const Op& op, const C (&v)[N]) {
  if constexpr (N == 1) {
    return op(v[0]);
  } else if constexpr (N == 2) {
    return op(v[0], v[1]);
  } else {
    return op(v[0], v[1], v[2]);
  }
}

template <class S, int W, class C>
FA_HD void put(Packet<S, W>* out, int j, C r) {
  out[0].v[j] = static_cast<S>(r);
}
template <class S, int W, class C>
FA_HD void put(Packet<S, W>* out, int j, Two<C> r) {
  out[0].v[j] = static_cast<S>(r.first);
  out[1].v[j] = static_cast<S>(r.second);
}

template <class S, int N, int M>
FA_HD const S* in_row(const Operands<S, N, M>& t, int k, int64_t r) {
  const int64_t row = t.in_period[k] > 0 ? r % t.in_period[k] : r;
  return t.in[k] + row * t.in_stride[k];
}

// The streamed inputs of the packet at column c of row r (per-row operands are read per element).
template <int W, class S, int N, int M>
FA_HD void load_packets(const Operands<S, N, M>& t, int64_t r, int64_t c, Packet<S, W> (&in)[N]) {
  for (int k = 0; k < N; ++k) {
    if (!t.in_per_row[k]) in[k] = *reinterpret_cast<const Packet<S, W>*>(in_row(t, k, r) + c);
  }
}

// W elements of row r from column c: from packets loaded by load_packets (V), or read one by one
// (count of them, the scalar path, heads and tails).
template <int W, bool V, class S, int N, int M, class Op>
FA_HD void finish(const Operands<S, N, M>& t, const Op& op, int64_t r, int64_t c, int count,
                  const Packet<S, W> (&in)[N]) {
  using C = opmath_t<S>;
  using P = Packet<S, W>;
  const S* base[N];
  for (int k = 0; k < N; ++k) base[k] = in_row(t, k, r);
  P out[M];
  FA_UNROLL
  for (int j = 0; j < W; ++j) {
    if (j >= count) break;
    C v[N];
    for (int k = 0; k < N; ++k) {
      if (t.in_per_row[k]) {
        v[k] = static_cast<C>(base[k][0]);
      } else {
        v[k] = static_cast<C>(V ? in[k].v[j] : base[k][c + j]);
      }
    }
    put<S, W>(out, j, call(op, v));
  }
  for (int m = 0; m < M; ++m) {
    S* dst = t.out[m] + r * t.out_stride[m] + c;
    if constexpr (V) {
      *reinterpret_cast<P*>(dst) = out[m];
    } else {
      for (int j = 0; j < count; ++j) dst[j] = out[m].v[j];
    }
  }
}

template <class S, int N, int M, class Op>
FA_HD void scalar_element(const Operands<S, N, M>& t, const Op& op, int64_t r, int64_t c) {
  const Packet<S, 1> none[N] = {};
  finish<1, false>(t, op, r, c, 1, none);
}

// Item p's row and its index within the row.
FA_HD void locate(const Items& it, int64_t p, int64_t& r, int64_t& s) {
  if (it.fast) {
    const uint32_t q = it.row_of.div(static_cast<uint32_t>(p));
    r = q;
    s = p - static_cast<int64_t>(q) * it.per_row;
  } else {
    r = p / it.per_row;
    s = p - r * it.per_row;
  }
}

// Thread `tid` of `nthreads` handles items tid, tid + nthreads, ... (grid-stride, 64-bit
// indices), kInFlight at a time so that their packet loads overlap. Packet path: item s of a
// row is its head (s = 0), packet s - 1 (if the row holds it) or its tail (the last slot), the
// head and tail element by element; W = 1 is the scalar path, one element per item.
template <int W, class S, int N, int M, class Op>
FA_HD void elementwise_thread(int64_t tid, int64_t nthreads, const Operands<S, N, M>& t, const Op& op,
                              const Items& it) {
  constexpr int kInFlight = 2;
  for (int64_t p0 = tid; p0 < it.total; p0 += kInFlight * nthreads) {
    if constexpr (W == 1) {
      for (int u = 0; u < kInFlight && p0 + u * nthreads < it.total; ++u) {
        int64_t r, c;
        locate(it, p0 + u * nthreads, r, c);
        scalar_element(t, op, r, c);
      }
    } else {
      // Load every packet first, then compute and store: the loads are in flight together
      // (a store before the next load could alias it, so the compiler would not reorder them).
      Packet<S, W> in[kInFlight][N];
      int64_t row[kInFlight], col[kInFlight];
      bool packet[kInFlight];
      FA_UNROLL
      for (int u = 0; u < kInFlight; ++u) {
        packet[u] = false;
        const int64_t p = p0 + u * nthreads;
        if (p >= it.total) continue;
        int64_t r, s;
        locate(it, p, r, s);
        const int64_t head = head_of(t, r);
        const int64_t packets = (t.cols - head) / W;
        if (s == 0) {
          for (int64_t c = 0; c < head; ++c) scalar_element(t, op, r, c);
        } else if (s == it.per_row - 1) {
          for (int64_t c = head + packets * W; c < t.cols; ++c) scalar_element(t, op, r, c);
        } else if (s - 1 < packets) {
          packet[u] = true;
          row[u] = r;
          col[u] = head + (s - 1) * W;
          load_packets<W>(t, r, col[u], in[u]);
        }
      }
      FA_UNROLL
      for (int u = 0; u < kInFlight; ++u) {
        if (packet[u]) finish<W, true>(t, op, row[u], col[u], W, in[u]);
      }
    }
  }
}

// The whole kernel body: picks the path once per launch (uniform across threads).
template <class S, int N, int M, class Op>
FA_HD void elementwise_body(int64_t tid, int64_t nthreads, const Operands<S, N, M>& t, const Op& op, bool vectorized,
                            const Items& it) {
  if (vectorized) {
    elementwise_thread<kPacketElems<S>>(tid, nthreads, t, op, it);
  } else {
    elementwise_thread<1>(tid, nthreads, t, op, it);
  }
}

}  // namespace fused_act::cuda
