// Batched transposes (cpu/transpose.h) for one instruction set: built once per entry of
// setup.py's CPU_ISAS, as fused_act::cpu::{DEFAULT,AVX2,AVX512,AVX512_BF16}::run_transpose.
#include <algorithm>
#include <type_traits>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include "transpose.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {

namespace {

// ATen's elementwise grain (at::internal::GRAIN_SIZE), in elements moved.
constexpr int64_t kGrainSize = 32768;

// Tile side: what one register-resident transpose of ATen's vec headers takes (16 x 16 floats or
// 32 x 32 16-bit values in AVX-512 registers, 8 x 8 floats in AVX2 ones); the scalar loop walks
// 16 x 16 tiles, whose 16 source rows stay in L1 while their columns are written.
template <class T>
constexpr int tile_side() {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<T, at::BFloat16>) return 32;
#elif defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<T, float>) return 8;
#endif
  return 16;
}

// d[j * ld + i] = s[i * ls + j] for i < m, j < n (m, n <= tile_side<T>()).
template <class T>
void tile(const T* s, int64_t ls, T* d, int64_t ld, int m, int n) {
#if defined(CPU_CAPABILITY_AVX512)
  // masked loads and stores for partial tiles; BFloat16's only moves 16-bit lanes, so it serves
  // half too
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, at::BFloat16>) {
    at::vec::transpose_mxn<T>(s, ls, d, ld, m, n);
    return;
  }
#elif defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<T, float>) {
    if (m == 8 && n == 8) {
      at::vec::transpose_mxn<float, 8, 8>(s, ls, d, ld);
      return;
    }
  }
#endif
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) d[j * ld + i] = s[i * ls + j];
  }
}

// Bands of tile_side rows of one source matrix, each written as tile_side-wide column strips
// of the destination; threads split the bands of all matrices.
template <class T>
void transpose(const TransposeArgs& a) {
  constexpr int kSide = tile_side<T>();
  const T* src = static_cast<const T*>(a.src);
  T* dst = static_cast<T*>(a.dst);
  const int64_t rows = a.rows, cols = a.cols, size = rows * cols;
  const int64_t bands = (rows + kSide - 1) / kSide;
  const int64_t grain = std::max<int64_t>(1, kGrainSize / (kSide * cols));
  at::parallel_for(0, a.batch * bands, grain, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b = k / bands, r = (k % bands) * kSide;
      const int m = static_cast<int>(std::min<int64_t>(kSide, rows - r));
      const T* s = src + b * size + r * cols;
      T* d = dst + b * size + r;
      for (int64_t c = 0; c < cols; c += kSide) {
        tile(s + c, cols, d + c * rows, rows, m, static_cast<int>(std::min<int64_t>(kSide, cols - c)));
      }
    }
  });
}

}  // namespace

void run_transpose(const TransposeArgs& a) {
  switch (a.elem_size) {
    case 2:
      return transpose<at::BFloat16>(a);
    case 4:
      return transpose<float>(a);
    case 8:
      return transpose<double>(a);
    default:
      TORCH_INTERNAL_ASSERT(false, "run_transpose: elements of ", a.elem_size, " bytes");
  }
}

}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
