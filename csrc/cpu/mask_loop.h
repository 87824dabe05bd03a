// The CPU loops of the mask ops (activations/mask.h) for one activation, compiled into that
// activation's kernel object once per instruction set (cpu/activation_kernels.cpp).
//
// Work goes in blocks of kBlock elements staged in the compute type: SIMD computes y, f' and a
// 0/1 value per lane, and a plain byte loop (which the compiler vectorizes) packs 8 lanes per
// mask byte. Threads split the mask bytes, so no two threads write the same byte.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include "../activations/mask.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {
namespace mask_loop {

// 8 mask bytes; a whole number of SIMD vectors of every width (16 floats under AVX-512) and
// of half/bfloat16 storage vectors (32 under AVX-512).
constexpr int64_t kBlock = 64;
// Mask bytes per task: ATen's elementwise grain (32768 elements) in bytes.
constexpr int64_t kGrainBytes = 32768 / 8;

template <class scalar_t, class C = opmath_t<scalar_t>>
inline void load_block(const scalar_t* p, int64_t len, C* dst) {
  if constexpr (std::is_same_v<scalar_t, C>) {
    using Vec = at::vec::Vectorized<C>;
    for (int64_t k = 0; k < kBlock; k += Vec::size()) {
      const int64_t count = std::clamp<int64_t>(len - k, 0, Vec::size());
      (count > 0 ? Vec::loadu(p + k, count) : Vec(C(0))).store(dst + k);
    }
  } else {
    using SVec = at::vec::Vectorized<scalar_t>;
    using Vec = at::vec::Vectorized<C>;
    for (int64_t k = 0; k < kBlock; k += SVec::size()) {
      const int64_t count = std::clamp<int64_t>(len - k, 0, SVec::size());
      auto [lo, hi] = at::vec::convert_to_float<scalar_t>(count > 0 ? SVec::loadu(p + k, count) : SVec(scalar_t(0)));
      lo.store(dst + k);
      hi.store(dst + k + Vec::size());
    }
  }
}

template <class scalar_t, class C = opmath_t<scalar_t>>
inline void store_block(const C* src, int64_t len, scalar_t* p) {
  if constexpr (std::is_same_v<scalar_t, C>) {
    using Vec = at::vec::Vectorized<C>;
    for (int64_t k = 0; k < len; k += Vec::size()) {
      Vec::loadu(src + k).store(p + k, std::min<int64_t>(len - k, Vec::size()));
    }
  } else {
    using SVec = at::vec::Vectorized<scalar_t>;
    using Vec = at::vec::Vectorized<C>;
    for (int64_t k = 0; k < len; k += SVec::size()) {
      const SVec r = at::vec::convert_from_float<scalar_t>(Vec::loadu(src + k), Vec::loadu(src + k + Vec::size()));
      r.store(p + k, std::min<int64_t>(len - k, SVec::size()));
    }
  }
}

// Comparison results (all bits set, or none) read as integers, so packing is integer work.
template <class C>
using LaneBits = std::conditional_t<sizeof(C) == 4, uint32_t, uint64_t>;

template <class scalar_t, class Act>
void mask_forward(const MaskArgs& a) {
  using C = opmath_t<scalar_t>;
  using Vec = at::vec::Vectorized<C>;
  constexpr bool kDirect = std::is_same_v<scalar_t, C>;
  const Params<C> p = make_params<C>(a.params);
  const Vec high(Act::template d_mask<C>(true, p));
  const auto* in = static_cast<const scalar_t*>(a.in);
  auto* out = static_cast<scalar_t*>(a.out);
  at::parallel_for(0, mask_bytes(a.n), kGrainBytes, [&](int64_t b0, int64_t b1) {
    alignas(64) C x[kBlock], y[kBlock], cmp[kBlock];
    alignas(64) LaneBits<C> lanes[kBlock];
    const int64_t end = std::min(b1 * 8, a.n);
    for (int64_t i = b0 * 8; i < end; i += kBlock) {
      const int64_t len = std::min(kBlock, end - i);
      // float and double blocks go straight from x to y; the rest through the staging arrays
      const bool direct = kDirect && len == kBlock;
      const C* xp = x;
      C* yp = y;
      if constexpr (kDirect) {
        if (direct) {
          xp = reinterpret_cast<const C*>(in + i);
          yp = reinterpret_cast<C*>(out + i);
        }
      }
      if (!direct) load_block(in + i, len, x);
      for (int64_t k = 0; k < kBlock; k += Vec::size()) {
        const Vec vx = Vec::loadu(xp + k);
        const Vec vy = Act::forward(vx, p);
        vy.store(yp + k);
        Vec(mask_derivative<Act>(vx, vy, p) == high).store(cmp + k);
      }
      if (!direct) store_block(y, len, out + i);
      std::memcpy(lanes, cmp, sizeof(lanes));
      for (int64_t j = len; j < kBlock; ++j) lanes[j] = 0;  // padding bits are 0
      uint8_t* m = a.mask + i / 8;
      for (int64_t b = 0; b < (len + 7) / 8; ++b) {
        uint8_t byte = 0;
        for (int j = 0; j < 8; ++j) byte |= static_cast<uint8_t>((lanes[8 * b + j] & 1) << j);
        m[b] = byte;
      }
    }
  });
}

// table[byte][j]: all ones where bit j of byte is set.
template <class C>
const std::array<std::array<LaneBits<C>, 8>, 256>& widened_bytes() {
  static const auto table = [] {
    std::array<std::array<LaneBits<C>, 8>, 256> t{};
    for (int byte = 0; byte < 256; ++byte) {
      for (int j = 0; j < 8; ++j) t[byte][j] = (byte >> j) & 1 ? ~LaneBits<C>(0) : LaneBits<C>(0);
    }
    return t;
  }();
  return table;
}

template <class scalar_t, class Act>
void mask_backward(const MaskArgs& a) {
  using C = opmath_t<scalar_t>;
  using Vec = at::vec::Vectorized<C>;
  constexpr bool kDirect = std::is_same_v<scalar_t, C>;
  const Params<C> p = make_params<C>(a.params);
  const Vec high(Act::template d_mask<C>(true, p));
  const Vec low(Act::template d_mask<C>(false, p));
  const auto* grad = static_cast<const scalar_t*>(a.in);
  auto* out = static_cast<scalar_t*>(a.out);
  at::parallel_for(0, mask_bytes(a.n), kGrainBytes, [&](int64_t b0, int64_t b1) {
    alignas(64) C g[kBlock], sel[kBlock];
    alignas(64) LaneBits<C> lanes[kBlock];
    const int64_t end = std::min(b1 * 8, a.n);
    for (int64_t i = b0 * 8; i < end; i += kBlock) {
      const int64_t len = std::min(kBlock, end - i);
      const bool direct = kDirect && len == kBlock;
      const C* gp = g;
      C* op = g;
      if constexpr (kDirect) {
        if (direct) {
          gp = reinterpret_cast<const C*>(grad + i);
          op = reinterpret_cast<C*>(out + i);
        }
      }
      if (!direct) load_block(grad + i, len, g);
      // each bit widened to a lane of all ones or all zeros (a ready-made blend mask), 8 lanes
      // per table lookup: the shift-per-lane loop was slower than the whole saved-output read
      const uint8_t* m = a.mask + i / 8;
      const int64_t bytes = (len + 7) / 8;
      const auto& table = widened_bytes<C>();
      for (int64_t b = 0; b < kBlock / 8; ++b) {
        std::memcpy(lanes + 8 * b, table[b < bytes ? m[b] : 0].data(), 8 * sizeof(LaneBits<C>));
      }
      std::memcpy(sel, lanes, sizeof(sel));
      for (int64_t k = 0; k < kBlock; k += Vec::size()) {
        (Vec::loadu(gp + k) * math::where(Vec::loadu(sel + k), high, low)).store(op + k);
      }
      if (!direct) store_block(g, len, out + i);
    }
  });
}

}  // namespace mask_loop
}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
