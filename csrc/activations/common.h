// Portability macros and the small types shared by every backend (CPU SIMD, CUDA, the CPU
// simulation of CUDA threads). No torch headers here: nvcc compiles this file too.
#pragma once

#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FA_HD __host__ __device__ __forceinline__
#define FA_UNROLL _Pragma("unroll")
#else
#define FA_HD inline
#define FA_UNROLL
#endif

namespace fused_act {

// Most parameters any activation takes (hardtanh: min_val, max_val; softplus: beta, threshold).
constexpr int kMaxParams = 2;

// Parameters in the compute type C (float for float/half/bfloat16, double for double), so that
// float64 gradcheck sees double-precision parameters and the GPU never converts per element.
template <class C>
struct Params {
  C v[kMaxParams];
  FA_HD C operator[](int i) const { return v[i]; }
};

template <class C>
inline Params<C> make_params(const double* p) {
  Params<C> out{};
  for (int i = 0; i < kMaxParams; ++i) out.v[i] = static_cast<C>(p[i]);
  return out;
}

// What the backward of an activation needs to have kept from the forward.
enum class Saved : int {
  kNone = 0,    // derivative is constant (identity)
  kInput = 1,   // derivative written in terms of x
  kOutput = 2,  // derivative written in terms of y = f(x): allows in-place forward
  kEither = 3,  // both forms exist; the output form is valid only for some parameters
};

// Which elementwise computation a kernel runs. Inputs and outputs are listed in order.
enum class Kind : int {
  kForward = 0,         // (x)            -> f(x)
  kBackward = 1,        // (g, s)         -> g * f'(s)        s = saved input or output
  kDoubleBackward = 2,  // (gg, g, s)     -> gg * g * d f'(s)/ds
  kBiasForward = 3,     // (x, b)         -> f(x + b)
  kBiasBackward = 4,    // (g, x, b)      -> g * f'(x + b)    (input form; the output form is kBackward)
  kGatedForward = 5,    // (a, u)         -> f(a) * u
  kGatedBackward = 6,   // (g, a, u)      -> (g * u * f'(a), g * f(a))
  // Batch norm + activation (csrc/ops/batch_norm_ops.cpp), z = x * scale + shift per channel:
  kAffineForward = 7,   // (x, scale, shift)                 -> f(z)
  kAffineGradSums = 8,  // (g, x, scale, shift)              -> sums per channel of (dz, dz * x), dz = g * f'(z)
  kAffineBackward = 9,  // (g, x, scale, shift, k0, k1)      -> scale * dz + k0 + k1 * x
  kChannelStats = 10,   // (x, k)                            -> sums per channel of (x - k, (x - k)^2)
};

constexpr int num_inputs(Kind k) {
  constexpr int n[] = {1, 2, 3, 2, 3, 2, 3, 3, 4, 6, 2};
  return n[static_cast<int>(k)];
}
constexpr int num_outputs(Kind k) {
  return k == Kind::kGatedBackward || k == Kind::kAffineGradSums || k == Kind::kChannelStats ? 2 : 1;
}
// Kinds that store nothing: each output is summed per channel (ChannelSum) instead.
constexpr bool reduces_only(Kind k) { return k == Kind::kAffineGradSums || k == Kind::kChannelStats; }

// Most inputs of one launch (kAffineBackward's six).
constexpr int kMaxInputs = 6;

// Floating dtypes the kernels are instantiated for (mirrors c10::ScalarType without its header).
enum class DType : int { kFloat = 0, kDouble = 1, kHalf = 2, kBFloat16 = 3 };

}  // namespace fused_act
