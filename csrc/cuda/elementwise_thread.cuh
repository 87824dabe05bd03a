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

// 128-bit accesses need every streamed pointer 16-byte aligned (a view that starts
// mid-allocation, x[1:], is not) and, with several rows, whole packets per row. Otherwise the
// launch takes the scalar path. Per-row operands are read one value at a time either way.
template <class S, int N, int M>
FA_HD bool can_vectorize(const Operands<S, N, M>& t) {
  constexpr int W = kPacketElems<S>;
  const bool rows = t.rows > 1;
  bool ok = !rows || t.cols % W == 0;
  for (int k = 0; k < N; ++k) {
    if (t.in_per_row[k]) continue;
    ok = ok && reinterpret_cast<uintptr_t>(t.in[k]) % 16 == 0 && (!rows || t.in_stride[k] % W == 0);
  }
  for (int m = 0; m < M; ++m) {
    ok = ok && reinterpret_cast<uintptr_t>(t.out[m]) % 16 == 0 && (!rows || t.out_stride[m] % W == 0);
  }
  return ok;
}

// Work items (packets, or elements on the scalar path) the grid strides over.
template <class S, int N, int M>
FA_HD int64_t work_items(const Operands<S, N, M>& t, bool vectorized) {
  constexpr int W = kPacketElems<S>;
  if (!vectorized) return t.rows * t.cols;
  return t.rows == 1 ? (t.cols + W - 1) / W : t.rows * (t.cols / W);
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

// W elements of row r from column c: whole packets when V (W > 1), one by one otherwise.
template <int W, bool V, class S, int N, int M, class Op>
FA_HD void elements(const Operands<S, N, M>& t, const Op& op, int64_t r, int64_t c, int count) {
  using C = opmath_t<S>;
  using P = Packet<S, W>;
  const S* base[N];
  for (int k = 0; k < N; ++k) base[k] = in_row(t, k, r);
  P in[N];
  if constexpr (V) {
    for (int k = 0; k < N; ++k) {
      if (!t.in_per_row[k]) in[k] = *reinterpret_cast<const P*>(base[k] + c);
    }
  }
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

// Thread `tid` of `nthreads` (grid-stride, 64-bit indices) handles items tid, tid + nthreads, ...
// of W elements each, loaded and stored whole. A single row's last, partial packet (the tail)
// is done element by element by the thread that owns it; several rows only vectorize when they
// hold whole packets. W = 1 is the scalar path.
template <int W, class S, int N, int M, class Op>
FA_HD void elementwise_thread(int64_t tid, int64_t nthreads, const Operands<S, N, M>& t, const Op& op) {
  const int64_t per_row = t.cols / W;
  const int64_t full = t.rows * per_row;
  for (int64_t p = tid; p < full; p += nthreads) {
    const int64_t r = t.rows == 1 ? 0 : p / per_row;
    elements<W, (W > 1)>(t, op, r, (p - r * per_row) * W, W);
  }
  if (W > 1 && t.rows == 1 && per_row * W < t.cols && full % nthreads == tid) {
    for (int64_t c = per_row * W; c < t.cols; ++c) elements<1, false>(t, op, 0, c, 1);
  }
}

// The whole kernel body: picks the path once per launch (uniform across threads).
template <class S, int N, int M, class Op>
FA_HD void elementwise_body(int64_t tid, int64_t nthreads, const Operands<S, N, M>& t, const Op& op, bool vectorized) {
  if (vectorized) {
    elementwise_thread<kPacketElems<S>>(tid, nthreads, t, op);
  } else {
    elementwise_thread<1>(tid, nthreads, t, op);
  }
}

}  // namespace fused_act::cuda
