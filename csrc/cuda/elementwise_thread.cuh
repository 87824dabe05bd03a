// The per-thread body of the CUDA elementwise kernel, as a host-and-device function so that
// tests can run exactly this code on the CPU over a simulated grid (ops/cuda_simulation.cpp).
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

template <class S, int N>
struct Operands {
  const S* in[N];
  S* out;
  int64_t n;
};

// 128-bit accesses need every pointer 16-byte aligned; a view that starts mid-allocation
// (x[1:]) is not, and takes the scalar path instead.
template <class S, int N>
FA_HD bool can_vectorize(const Operands<S, N>& t) {
  bool ok = reinterpret_cast<uintptr_t>(t.out) % 16 == 0;
  for (int k = 0; k < N; ++k) ok = ok && reinterpret_cast<uintptr_t>(t.in[k]) % 16 == 0;
  return ok;
}

// Work items (packets, or elements on the scalar path) the grid strides over.
template <class S, int N>
FA_HD int64_t work_items(const Operands<S, N>& t, bool vectorized) {
  return vectorized ? (t.n + kPacketElems<S> - 1) / kPacketElems<S> : t.n;
}

template <class Op, class C, int N>
FA_HD C call(const Op& op, const C (&v)[N]) {
  if constexpr (N == 1) {
    return op(v[0]);
  } else if constexpr (N == 2) {
    return op(v[0], v[1]);
  } else {
    return op(v[0], v[1], v[2]);
  }
}

// Thread `tid` of `nthreads` (grid-stride, 64-bit indices) handles packets tid, tid + nthreads,
// ... of W elements each, loaded and stored whole; the packet that runs past n (the tail) is
// done element by element by the thread that owns it. W = 1 is the scalar path.
template <int W, class S, int N, class Op>
FA_HD void elementwise_thread(int64_t tid, int64_t nthreads, const Operands<S, N>& t, const Op& op) {
  using C = opmath_t<S>;
  using P = Packet<S, W>;
  const int64_t full = t.n / W;
  for (int64_t p = tid; p < full; p += nthreads) {
    P in[N];
    for (int k = 0; k < N; ++k) in[k] = reinterpret_cast<const P*>(t.in[k])[p];
    P out;
FA_UNROLL
    for (int j = 0; j < W; ++j) {
      C v[N];
      for (int k = 0; k < N; ++k) v[k] = static_cast<C>(in[k].v[j]);
      out.v[j] = static_cast<S>(call(op, v));
    }
    reinterpret_cast<P*>(t.out)[p] = out;
  }
  if (W > 1 && full * W < t.n && full % nthreads == tid) {
    for (int64_t i = full * W; i < t.n; ++i) {
      C v[N];
      for (int k = 0; k < N; ++k) v[k] = static_cast<C>(t.in[k][i]);
      t.out[i] = static_cast<S>(call(op, v));
    }
  }
}

// The whole kernel body: picks the path once per launch (uniform across threads).
template <class S, int N, class Op>
FA_HD void elementwise_body(int64_t tid, int64_t nthreads, const Operands<S, N>& t, const Op& op,
                            bool vectorized) {
  if (vectorized) {
    elementwise_thread<kPacketElems<S>>(tid, nthreads, t, op);
  } else {
    elementwise_thread<1>(tid, nthreads, t, op);
  }
}

}  // namespace fused_act::cuda
