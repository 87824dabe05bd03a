// The CPU loops of the mask ops (activations/mask.h) for one activation, compiled into that
// activation's kernel object once per instruction set (cpu/activation_kernels.cpp).
//
// Work goes in blocks of kBlock elements staged in the compute type: SIMD computes y and f', and
// the comparison of f' with d_mask(true) becomes mask bits with one instruction per vector
// (equal_bits); backward turns them back into a blend (blend_bits). Threads split the mask
// bytes, so no two threads write the same byte.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include "../activations/mask.h"
#include "storage.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {
namespace mask_loop {

// 8 mask bytes; a whole number of SIMD vectors of every width (16 floats under AVX-512) and
// of half/bfloat16 storage vectors (32 under AVX-512).
constexpr int64_t kBlock = 64;
// A block's mask bits are one 64-bit word, copied to and from the mask bytes: bit j of the word
// is bit j % 8 of byte j / 8 on a little-endian machine.
static_assert(kBlock == 64 && std::endian::native == std::endian::little);
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
      const SVec r = from_float<scalar_t>(Vec::loadu(src + k), Vec::loadu(src + k + Vec::size()));
      r.store(p + k, std::min<int64_t>(len - k, SVec::size()));
    }
  }
}

// The mask bytes of a block of len elements. A full block's 8 bytes are one constant-size copy
// (a register move); a memcpy of a run-time size is a libc call per 64 elements.
inline void copy_bits(void* dst, const void* src, int64_t len) {
  if (len == kBlock) {
    std::memcpy(dst, src, kBlock / 8);
  } else {
    std::memcpy(dst, src, static_cast<size_t>((len + 7) / 8));
  }
}

// A lane of all bits set, or none, as an integer (widened_bytes).
template <class C>
using LaneBits = std::conditional_t<sizeof(C) == 4, uint32_t, uint64_t>;

// Bit j = (a == b) in lane j: the compare's own bit mask on AVX-512, a movemask on AVX2 (a
// vector of all-ones lanes and a shift loop cost the mask forward ~2x the plain forward).
template <class C>
inline uint64_t equal_bits(const at::vec::Vectorized<C>& a, const at::vec::Vectorized<C>& b) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (sizeof(C) == 4) {
    return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
  } else {
    return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ);
  }
#elif defined(CPU_CAPABILITY_AVX2)
  if constexpr (sizeof(C) == 4) {
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ)));
  } else {
    return static_cast<uint32_t>(_mm256_movemask_pd(_mm256_cmp_pd(a, b, _CMP_EQ_OQ)));
  }
#else
  alignas(64) C va[at::vec::Vectorized<C>::size()], vb[at::vec::Vectorized<C>::size()];
  a.store(va);
  b.store(vb);
  uint64_t bits = 0;
  for (int j = 0; j < at::vec::Vectorized<C>::size(); ++j) bits |= static_cast<uint64_t>(va[j] == vb[j]) << j;
  return bits;
#endif
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

// Lane j = bit j of `bits` ? high : low, for the lanes of one vector.
template <class C>
inline at::vec::Vectorized<C> blend_bits(uint64_t bits, const at::vec::Vectorized<C>& low,
                                         const at::vec::Vectorized<C>& high) {
  using Vec = at::vec::Vectorized<C>;
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (sizeof(C) == 4) {
    return _mm512_mask_blend_ps(static_cast<__mmask16>(bits), low, high);
  } else {
    return _mm512_mask_blend_pd(static_cast<__mmask8>(bits), low, high);
  }
#else
  // 8 lanes per table row: widen each byte of the vector's bits
  alignas(64) LaneBits<C> lanes[Vec::size()];
  const auto& table = widened_bytes<C>();
  for (int b = 0; b < (Vec::size() + 7) / 8; ++b) {
    const int count = std::min(8, Vec::size() - 8 * b);
    std::memcpy(lanes + 8 * b, table[(bits >> (8 * b)) & 0xff].data(), count * sizeof(LaneBits<C>));
  }
  alignas(64) C sel[Vec::size()];
  std::memcpy(sel, lanes, sizeof(sel));
  return math::where(Vec::loadu(sel), high, low);
#endif
}

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
    alignas(64) C x[kBlock], y[kBlock];
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
      uint64_t bits = 0;
      for (int64_t k = 0; k < kBlock; k += Vec::size()) {
        const Vec vx = Vec::loadu(xp + k);
        const Vec vy = Act::forward(vx, p);
        vy.store(yp + k);
        bits |= equal_bits<C>(mask_derivative<Act>(vx, vy, p), high) << k;
      }
      if (!direct) store_block(y, len, out + i);
      if (len < kBlock) bits &= (uint64_t{1} << len) - 1;  // padding bits are 0
      copy_bits(a.mask + i / 8, &bits, len);
    }
  });
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
    alignas(64) C g[kBlock];
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
      uint64_t bits = 0;
      copy_bits(&bits, a.mask + i / 8, len);
      for (int64_t k = 0; k < kBlock; k += Vec::size()) {
        grad_times<Act>(Vec::loadu(gp + k), blend_bits<C>(bits >> k, low, high)).store(op + k);
      }
      if (!direct) store_block(g, len, out + i);
    }
  });
}

}  // namespace mask_loop
}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
