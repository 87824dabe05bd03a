// The per-thread body of the CUDA mask kernels (activations/mask.h), host-and-device so that
// simulation/activation_threads.cpp runs exactly this code on the CPU over a simulated grid.
//
// One work item is one mask byte: 8 consecutive elements, loaded and stored as 128-bit packets
// when every pointer is 16-byte aligned (elementwise_thread.cuh's rule), element by element
// otherwise and for the last, partial byte. Thread tid owns bytes tid, tid + nthreads, ...,
// so no two threads write the same byte.
#pragma once

#include <cstdint>

#include "../activations/mask.h"
#include "elementwise_thread.cuh"

namespace fused_act::cuda {

template <class S>
struct MaskOperands {
  const S* in;  // x (forward) or grad (backward)
  S* out;       // y or grad_input; may equal in
  uint8_t* mask;
  int64_t n;
};

template <class S>
FA_HD bool can_vectorize_mask(const MaskOperands<S>& t) {
  return reinterpret_cast<uintptr_t>(t.in) % 16 == 0 && reinterpret_cast<uintptr_t>(t.out) % 16 == 0;
}

template <class S, class C>
FA_HD void load8(const S* p, int64_t count, bool packets, C (&v)[8]) {
  constexpr int W = kPacketElems<S> < 8 ? kPacketElems<S> : 8;
  if (packets && count == 8) {
    FA_UNROLL
    for (int q = 0; q < 8 / W; ++q) {
      const Packet<S, W> pk = reinterpret_cast<const Packet<S, W>*>(p)[q];
      FA_UNROLL
      for (int j = 0; j < W; ++j) v[q * W + j] = static_cast<C>(pk.v[j]);
    }
  } else {
    FA_UNROLL
    for (int j = 0; j < 8; ++j) v[j] = j < count ? static_cast<C>(p[j]) : C(0);
  }
}

template <class S, class C>
FA_HD void store8(S* p, int64_t count, bool packets, const C (&v)[8]) {
  constexpr int W = kPacketElems<S> < 8 ? kPacketElems<S> : 8;
  if (packets && count == 8) {
    FA_UNROLL
    for (int q = 0; q < 8 / W; ++q) {
      Packet<S, W> pk;
      FA_UNROLL
      for (int j = 0; j < W; ++j) pk.v[j] = static_cast<S>(v[q * W + j]);
      reinterpret_cast<Packet<S, W>*>(p)[q] = pk;
    }
  } else {
    for (int j = 0; j < 8 && j < count; ++j) p[j] = static_cast<S>(v[j]);
  }
}

template <class Act, class S>
FA_HD void mask_forward_thread(int64_t tid, int64_t nthreads, const MaskOperands<S>& t, const Params<opmath_t<S>>& p,
                               bool packets) {
  using C = opmath_t<S>;
  const C high = Act::template d_mask<C>(true, p);
  for (int64_t b = tid; b < mask_bytes(t.n); b += nthreads) {
    const int64_t count = t.n - 8 * b < 8 ? t.n - 8 * b : 8;
    C v[8];
    load8(t.in + 8 * b, count, packets, v);
    uint8_t byte = 0;
    FA_UNROLL
    for (int j = 0; j < 8; ++j) {
      const C y = Act::forward(v[j], p);
      byte |= static_cast<uint8_t>(j < count && mask_derivative<Act>(v[j], y, p) == high) << j;
      v[j] = y;
    }
    store8(t.out + 8 * b, count, packets, v);
    t.mask[b] = byte;
  }
}

template <class Act, class S>
FA_HD void mask_backward_thread(int64_t tid, int64_t nthreads, const MaskOperands<S>& t, const Params<opmath_t<S>>& p,
                                bool packets) {
  using C = opmath_t<S>;
  const C high = Act::template d_mask<C>(true, p);
  const C low = Act::template d_mask<C>(false, p);
  for (int64_t b = tid; b < mask_bytes(t.n); b += nthreads) {
    const int64_t count = t.n - 8 * b < 8 ? t.n - 8 * b : 8;
    C g[8];
    load8(t.in + 8 * b, count, packets, g);
    const uint8_t byte = t.mask[b];
    FA_UNROLL
    for (int j = 0; j < 8; ++j) g[j] = grad_times<Act>(g[j], (byte >> j) & 1 ? high : low);
    store8(t.out + 8 * b, count, packets, g);
  }
}

template <class Act, class S>
FA_HD void mask_body(int64_t tid, int64_t nthreads, const MaskOperands<S>& t, const Params<opmath_t<S>>& p,
                     bool backward, bool packets) {
  if (backward) {
    mask_backward_thread<Act>(tid, nthreads, t, p, packets);
  } else {
    mask_forward_thread<Act>(tid, nthreads, t, p, packets);
  }
}

}  // namespace fused_act::cuda
