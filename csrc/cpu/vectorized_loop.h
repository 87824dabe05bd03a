// The generic CPU loop: SIMD over at::vec::Vectorized in the compute type, threads over
// at::parallel_for. Compiled once per instruction set (see kernels.cpp), so it must only be
// included from a file built with CPU_CAPABILITY defined.
#pragma once

#include <array>
#include <tuple>
#include <utility>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include "../activations/elementwise.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {

// ATen's own grain for elementwise loops (at::internal::GRAIN_SIZE): below it one thread wins.
constexpr int64_t kGrainSize = 32768;

template <class Op, class V, std::size_t... I>
inline V apply(const Op& op, const std::array<V, sizeof...(I)>& v, std::index_sequence<I...>) {
  return op(v[I]...);
}

// out[i] = op(in_0[i], ..., in_{N-1}[i]) for i < n, all in scalar_t storage, computed in opmath.
template <class scalar_t, class Op>
void vectorized_map(const ElementwiseArgs& a, const Op& op) {
  constexpr int N = Op::kInputs;
  using C = opmath_t<scalar_t>;
  using Vec = at::vec::Vectorized<C>;
  using Seq = std::make_index_sequence<N>;
  std::array<const scalar_t*, N> in;
  for (int k = 0; k < N; ++k) in[k] = static_cast<const scalar_t*>(a.in[k]);
  scalar_t* out = static_cast<scalar_t*>(a.out);

  at::parallel_for(0, a.n, kGrainSize, [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<scalar_t, C>) {
      constexpr int64_t W = Vec::size();
      std::array<Vec, N> v;
      int64_t i = begin;
      for (; i + W <= end; i += W) {
        for (int k = 0; k < N; ++k) v[k] = Vec::loadu(in[k] + i);
        apply(op, v, Seq{}).store(out + i);
      }
      if (i < end) {  // tail: partial load (zero-filled lanes are computed and dropped)
        const int64_t rest = end - i;
        for (int k = 0; k < N; ++k) v[k] = Vec::loadu(in[k] + i, rest);
        apply(op, v, Seq{}).store(out + i, rest);
      }
    } else {
      // half / bfloat16: one storage vector holds two compute vectors.
      using SVec = at::vec::Vectorized<scalar_t>;
      constexpr int64_t W = SVec::size();
      std::array<Vec, N> lo, hi;
      auto step = [&](int64_t i, int64_t count) {
        for (int k = 0; k < N; ++k) {
          std::tie(lo[k], hi[k]) = at::vec::convert_to_float<scalar_t>(SVec::loadu(in[k] + i, count));
        }
        const SVec r = at::vec::convert_from_float<scalar_t>(apply(op, lo, Seq{}), apply(op, hi, Seq{}));
        r.store(out + i, count);
      };
      int64_t i = begin;
      for (; i + W <= end; i += W) step(i, W);
      if (i < end) step(i, end - i);
    }
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
