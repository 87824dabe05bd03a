// The generic CPU loop: SIMD over at::vec::Vectorized in the compute type (scalars in x86-64's
// baseline build, kScalarLoop), threads over at::parallel_for. Compiled once per instruction set
// (see activation_kernels.cpp), so it must only be included from a file built with CPU_CAPABILITY
// defined.
#pragma once

#include <algorithm>
#include <array>
#include <type_traits>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include "../activations/elementwise.h"
#include "storage.h"
#include "streaming.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {

// ATen's own grain for elementwise loops (at::internal::GRAIN_SIZE): below it one thread wins.
constexpr int64_t kGrainSize = 32768;
// Software prefetch, kPrefetchAhead bytes ahead of the loads of every input read along the rows,
// in launches that move at least kPrefetchMinBytes (inputs read + outputs written), i.e. past a
// core's L2. A loop with a costly op (exp, a division, a long polynomial) issues its loads too
// slowly for the hardware prefetchers alone to keep memory busy: at 2^24 floats, forward +
// backward on 2 threads (`python -m bench --acts relu sigmoid softplus rescaled_sigmoid gelu
// --sizes 24 --modes fwd fwdbwd`, Intel Xeon AVX-512, two runs a side), ours / the limit
// allocating, in place: softplus 1.47-1.49x, 1.38-1.39x -> 1.18-1.20x, 1.01-1.12x;
// rescaled_sigmoid in place 1.12-1.17x -> 1.01-1.02x; relu unchanged; 4096 bytes ahead measured
// the same as 1024. In one thread at 2^20 floats the forwards of sigmoid, softplus and gelu took
// 8-14% less. In cache (65,536 floats) it measured within the runs' spread, and below the bound
// the loop does not prefetch at all. Memory-bound loops (kMayStream: a select-and-multiply
// functor's ops, every backward from the output) do not prefetch: they issue loads as fast as
// the hardware prefetchers serve them, and the extra instructions cost them inside L3. On the
// Zen 4 (2-core AMD EPYC, AVX-512), 2^20 floats, prefetch on -> off, eager / fused, two runs a
// side: forward relu 0.90-0.93 -> 1.01-1.03, hardtanh 0.83-0.89 -> 1.05, relu6 0.90-0.91 ->
// 1.02, leaky_relu 0.92 -> 1.10-1.17; forward + backward relu6 0.75-0.79 -> 1.02-1.07, hardtanh
// 0.77-0.84 -> 0.94; sigmoid, softplus and gelu unchanged within the runs' spread, and at 2^24
// every one of them within it.
constexpr int64_t kPrefetchAhead = 1024;
constexpr int64_t kPrefetchMinBytes = int64_t(4) << 20;
// Chunks of a launch that fuses a channel sum. Fixed by the size alone, never by the thread
// count, so that the float sums (added chunk by chunk, in order) are reproducible.
constexpr int64_t kMaxSumChunks = 64;

// Storage <-> compute vectors: float and double compute in place; half and bfloat16 widen one
// storage vector into two float vectors.
template <class S>
struct Lanes {
  using C = opmath_t<S>;
  using V = at::vec::Vectorized<C>;
  static constexpr bool kReduced = !std::is_same_v<S, C>;
  static constexpr int kVecs = kReduced ? 2 : 1;
  static constexpr int64_t kWidth = kVecs * V::size();

  // The first `count` elements (the rest zero); without count, a full kWidth.
  static void load(const S* p, int64_t count, V* v) {
    if constexpr (kReduced) {
      std::tie(v[0], v[1]) = at::vec::convert_to_float<S>(load_first(p, count));
    } else {
      v[0] = V::loadu(p, count);
    }
  }
  static void load(const S* p, V* v) {
    if constexpr (kReduced) {
      std::tie(v[0], v[1]) = at::vec::convert_to_float<S>(at::vec::Vectorized<S>::loadu(p));
    } else {
      v[0] = V::loadu(p);
    }
  }
  static void store(S* p, int64_t count, const V* v) {
    if constexpr (kReduced) {
      store_first(p, from_float<S>(v[0], v[1]), count);
    } else {
      v[0].store(p, count);
    }
  }
  static void store(S* p, const V* v) {
    if constexpr (kReduced) {
      from_float<S>(v[0], v[1]).store(p);
    } else {
      v[0].store(p);
    }
  }
  // A full block by non-temporal stores, to an address aligned to kStreamAlign (see
  // cpu/streaming.h): the lines go to memory without first being read into the cache.
  static void stream(S* p, const V* v) {
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (kReduced) {
      _mm512_stream_si512(reinterpret_cast<__m512i*>(p), from_float<S>(v[0], v[1]));
    } else if constexpr (std::is_same_v<C, float>) {
      _mm512_stream_ps(p, v[0]);
    } else {
      _mm512_stream_pd(p, v[0]);
    }
#elif defined(CPU_CAPABILITY_AVX2)
    if constexpr (kReduced) {
      _mm256_stream_si256(reinterpret_cast<__m256i*>(p), from_float<S>(v[0], v[1]));
    } else if constexpr (std::is_same_v<C, float>) {
      _mm256_stream_ps(p, v[0]);
    } else {
      _mm256_stream_pd(p, v[0]);
    }
#else
    store(p, v);
#endif
  }
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
  static constexpr bool kCanStream = true;
  static constexpr int64_t kStreamAlign = kWidth * sizeof(S);  // one block: a whole vector register
#else
  static constexpr bool kCanStream = false;
  static constexpr int64_t kStreamAlign = 1;
#endif
};

template <class Op, class V, std::size_t... I>
inline auto apply(const Op& op, const std::array<V, sizeof...(I)>& v, std::index_sequence<I...>) {
  return op(v[I]...);
}

// The baseline build on x86-64 (CPUs without AVX2) gets ATen's generic Vectorized: arrays walked
// element by element, every bit trick of our SIMD math a loop through memory. There the functors
// run on scalars, as on CUDA (libm's expf, tanhf, erff). ATEN_CPU_CAPABILITY=default, 65,536
// floats, forward, eager's time / ours: generic Vectorized at -O2 0.03x (gelu) to 0.48x (elu),
// at -O3 0.06x-0.80x; the scalar loop: see docs/build.md. Elsewhere (aarch64) DEFAULT is the
// NEON build and keeps the vector loop.
#if defined(CPU_CAPABILITY_DEFAULT) && (defined(__x86_64__) || defined(_M_X64))
constexpr bool kScalarLoop = true;
#else
constexpr bool kScalarLoop = false;
#endif

// out_m(r, c) = op(in_0(r, c), ..., in_{N-1}(r, c)) over the launch's rows x cols (see Operand),
// in scalar_t storage, computed in opmath; optionally fused with a per-channel sum of output 0, or,
// for a reduce-only op, storing nothing and summing every output per channel (ChannelSum).
// kMayStream: the op's loop is memory-bound (cpu/activation_kernels.cpp, kStreams); see
// `streaming` below.
template <class scalar_t, bool kMayStream, class Op>
void vectorized_map(const ElementwiseArgs& a, const Op& op, const ChannelSum* sum) {
  constexpr int N = Op::kInputs;
  constexpr int M = Op::kOutputs;
  using L = Lanes<scalar_t>;
  using C = typename L::C;
  using V = typename L::V;
  constexpr int64_t W = L::kWidth;
  constexpr int64_t kV = V::size();
  const int64_t cols = a.cols;
  const int64_t numel = a.numel();
  // Only bias_act's ops broadcast an operand per row or sum per channel; the other ops' loops
  // test neither.
  constexpr bool kBroadcasts = BroadcastsRows<Op>::value;
  constexpr bool kSums = SumsChannels<Op>::value;
  constexpr bool kReduceOnly = ReducesOnly<Op>::value;
  // Inputs [kCoef, N) hold compute-type values (CoefficientInputs).
  constexpr int kCoef = CoefficientInputs<Op>::value;
  // Outputs summed per channel: output 0, or every output of a reduce-only op.
  constexpr int kSummed = kReduceOnly ? M : 1;
  TORCH_INTERNAL_ASSERT(kSums || sum == nullptr, "vectorized_map: this op cannot sum per channel");
  TORCH_INTERNAL_ASSERT(!kReduceOnly || sum != nullptr, "vectorized_map: a reduce-only op needs its sums");
  bool per_row[N];
  for (int k = 0; k < N; ++k) {
    per_row[k] = a.in[k].per_row;
    TORCH_INTERNAL_ASSERT(kBroadcasts || !per_row[k], "vectorized_map: this op has no per-row operand");
  }

  // Non-temporal stores, for memory-bound loops (kMayStream), in launches that move at least
  // the L3 size into pages already mapped (cpu/streaming.h). A normal store first reads the line
  // it overwrites into the cache (read-for-ownership), a third stream of memory traffic beside
  // the read of x and the write of y, for an output too large to still be in cache for the next
  // op. `python -m bench.streaming` (2 threads, AMD EPYC Zen 4, 32 MiB L3; bench/results/
  // streaming.md), relu at 2^22 floats: forward 0.52 -> 0.40 ms, forward + backward 2.18 ->
  // 1.67. Streaming lost elsewhere: below the L3 size (2^20 floats, forward 0.06 -> 0.15 ms, the
  // output was in cache), in place (the line was just read in: 10-20%), into fresh pages
  // (streaming.cpp), and in compute-bound forwards (an earlier run that streamed every op, 2^22:
  // gelu 0.88 -> 1.05 ms, tanh 1.24 -> 1.42; stores that trickle out between long computations
  // cost less left to the cache). Only aligned full blocks stream; masked tails store normally.
  const int64_t bytes = numel * static_cast<int64_t>(sizeof(scalar_t));
  int64_t moved = kReduceOnly ? 0 : M * bytes;
  for (int k = 0; k < N; ++k) moved += per_row[k] ? 0 : bytes;
  const int64_t prefetch_ahead =
      !kMayStream && moved >= kPrefetchMinBytes ? kPrefetchAhead / static_cast<int64_t>(sizeof(scalar_t)) : 0;
  bool streaming = false;
  if constexpr (kMayStream && L::kCanStream && !kReduceOnly) {
    bool in_place = false;
    void* outs[M];
    for (int m = 0; m < M; ++m) {
      outs[m] = a.out[m].ptr;
      for (int k = 0; k < N; ++k) in_place = in_place || a.out[m].ptr == a.in[k].ptr;
    }
    streaming = !in_place && stream_outputs(moved, outs, M, bytes);
  }

  // Columns [c0, c1) of row r; writes the sums of the summed outputs there into row_sums (when
  // summing per row) or adds them column by column into col_sums, output m's at m * cols (when
  // summing per column).
  auto segment = [&](int64_t r, int64_t c0, int64_t c1, C* col_sums, C* row_sums) {
    // Flags as the segment's own locals, which stay in registers. Read through the captures
    // (their addresses escape into parallel_for) GCC reloaded them after every vector store
    // (the intrinsics' stores may alias anything): a load, a test and a branch per vector, 15%
    // of relu's forward loop at 16,384 floats in cache (perf samples per call, one thread).
    const bool summing = kSums && sum != nullptr;
    const bool per_col = summing && sum->per_col;
    bool bcast_row[N];
    for (int k = 0; k < N; ++k) bcast_row[k] = kBroadcasts && per_row[k];
    const scalar_t* in[N];
    for (int k = 0; k < N; ++k) {
      const Operand& o = a.in[k];
      const int64_t row = o.period > 0 ? r % o.period : r;
      // a coefficient input's strides count compute-type values
      in[k] = k >= kCoef ? reinterpret_cast<const scalar_t*>(static_cast<const C*>(o.ptr) + row * o.row_stride)
                         : static_cast<const scalar_t*>(o.ptr) + row * o.row_stride;
    }
    scalar_t* out[M] = {};
    bool stream = streaming;
    if constexpr (!kReduceOnly) {
      for (int m = 0; m < M; ++m) {
        out[m] = static_cast<scalar_t*>(a.out[m].ptr) + r * a.out[m].row_stride;
        stream = stream && reinterpret_cast<uintptr_t>(out[m] + c0) % L::kStreamAlign == 0;
      }
    }
    if constexpr (kScalarLoop) {
      C acc[kSummed] = {};
      for (int64_t c = c0; c < c1; ++c) {
        std::array<C, N> args;
        for (int k = 0; k < N; ++k) {
          const int64_t at = bcast_row[k] ? 0 : c;
          args[k] = k >= kCoef ? reinterpret_cast<const C*>(in[k])[at] : static_cast<C>(in[k][at]);
        }
        C res[M];
        if constexpr (M == 2) {
          const auto r2 = apply(op, args, std::make_index_sequence<N>{});
          res[0] = r2.first;
          res[1] = r2.second;
        } else {
          res[0] = apply(op, args, std::make_index_sequence<N>{});
        }
        if constexpr (!kReduceOnly) {
          for (int m = 0; m < M; ++m) out[m][c] = static_cast<scalar_t>(res[m]);
        }
        if (summing) {
          for (int m = 0; m < kSummed; ++m) {
            if (per_col) {
              col_sums[m * cols + c] += res[m];
            } else {
              acc[m] += res[m];
            }
          }
        }
      }
      if (summing && !per_col) {
        for (int m = 0; m < kSummed; ++m) row_sums[m] = acc[m];
      }
    } else {
      V bcast[N];
      for (int k = 0; k < N; ++k) {
        if (bcast_row[k]) bcast[k] = V(k >= kCoef ? *reinterpret_cast<const C*>(in[k]) : static_cast<C>(*in[k]));
      }
      V row_acc[kSummed];
      for (int m = 0; m < kSummed; ++m) row_acc[m] = V(C(0));
      // One block of W elements at column c; kFull: all W are in the row (no masked loads).
      // always_inline: GCC otherwise keeps it out of line (three call sites, large op bodies),
      // passing every vector through memory: 2-4x slower in cache.
      // stream_now and sum_now are constants at every full-block call site (full_blocks below),
      // so that after inlining neither is a test in the loop.
      auto block = [&]<bool kFull>(int64_t c, bool stream_now, bool sum_now) __attribute__((always_inline)) {
        const int64_t count = kFull ? W : std::min(W, c1 - c);
        V v[N][L::kVecs];
        for (int k = 0; k < N; ++k) {
          if (kBroadcasts && bcast_row[k]) {
            for (int l = 0; l < L::kVecs; ++l) v[k][l] = bcast[k];
          } else if (k >= kCoef) {
            const C* p = reinterpret_cast<const C*>(in[k]) + c;
            for (int l = 0; l < L::kVecs; ++l) {
              v[k][l] = kFull ? V::loadu(p + l * kV) : V::loadu(p + l * kV, std::clamp<int64_t>(count - l * kV, 0, kV));
            }
          } else if constexpr (kFull) {
            L::load(in[k] + c, v[k]);
          } else {
            L::load(in[k] + c, count, v[k]);
          }
        }
        V res[M][L::kVecs];
        for (int l = 0; l < L::kVecs; ++l) {
          std::array<V, N> args;
          for (int k = 0; k < N; ++k) args[k] = v[k][l];
          if constexpr (M == 2) {
            const auto r2 = apply(op, args, std::make_index_sequence<N>{});
            res[0][l] = r2.first;
            res[1][l] = r2.second;
          } else {
            res[0][l] = apply(op, args, std::make_index_sequence<N>{});
          }
        }
        for (int m = 0; m < M && !kReduceOnly; ++m) {
          if constexpr (kFull) {
            if (stream_now) {
              L::stream(out[m] + c, res[m]);
            } else {
              L::store(out[m] + c, res[m]);
            }
          } else {
            L::store(out[m] + c, count, res[m]);
          }
        }
        if (kSums && sum_now) {
          for (int m = 0; m < kSummed; ++m) {
            for (int l = 0; l < L::kVecs; ++l) {
              const int64_t lanes = std::min(kV, count - l * kV);
              if (lanes <= 0) break;
              // lanes past the end were computed from zero-filled loads: keep them out of the sum
              const V part = lanes == kV ? res[m][l] : V::set(V(C(0)), res[m][l], lanes);
              if (per_col) {
                C* dst = col_sums + m * cols + c + l * kV;
                (V::loadu(dst, lanes) + part).store(dst, lanes);
              } else {
                row_acc[m] = row_acc[m] + part;
              }
            }
          }
        }
      };
      // Full blocks two at a time, then the tail. Loads and stores of a known full width skip
      // the masked path, and two independent blocks per iteration overlap the latency of
      // exp/div chains. In cache (65536 float32, 1 thread, ATen's time / ours) this took relu's
      // forward from 0.53 to 0.71 and sigmoid's backward from 0.67 to 0.78; the rest of the gap
      // is the op's fixed cost (~2.5 us more than ATen's per call). Memory-bound sizes were
      // already at ATen's speed.
      // The rest (under 2W) goes through the masked block, at most twice, not through one more
      // full block and then a masked one: one inlined copy of the op fewer, a quarter less
      // compile time for every kernel object when measured.
      // Half and bfloat16 take one block per iteration: a block is already two float vectors, and
      // four interleaved copies of the op measured slower (2 threads, eager / fused, bfloat16:
      // gelu forward at 2^16 0.97 -> 1.12, silu 1.16 -> 1.26, relu forward + backward at 2^20
      // 0.81 -> 0.95) and cost 12% more compile time per object.
      // The full-block loop is compiled once per (stream, sum) pair the op can take, so that it
      // tests neither per block. With both as runtime tests in one loop (two compares and
      // branches per block beside sigmoid's three arithmetic ops), the backward from the output,
      // which carries bias_act's channel sum and may stream, ran slower than ATen's
      // sigmoid_backward in cache (65,536 floats, one thread: 17.4 against 14.1 us); one loop per
      // pair took ours / ATen's time there from 1.10-1.23 to 1.08-1.11 (docs/speed-log.md, the sigmoid miss).
      int64_t c = c0;
      // The lines of the `span` elements kPrefetchAhead bytes on, in every input read along the
      // row (see kPrefetchAhead). A local copy of the distance, so that the loop tests a register.
      const int64_t ahead = prefetch_ahead;
      auto prefetch = [&]<int64_t span>(int64_t at) __attribute__((always_inline)) {
        if (ahead == 0) return;
        for (int k = 0; k < kCoef; ++k) {
          if (kBroadcasts && bcast_row[k]) continue;
          const char* p = reinterpret_cast<const char*>(in[k] + at + ahead);
          for (int64_t b = 0; b < span * static_cast<int64_t>(sizeof(scalar_t)); b += 64) __builtin_prefetch(p + b);
        }
      };
      auto full_blocks = [&]<bool kStream, bool kSum>() __attribute__((always_inline)) {
        if constexpr (L::kReduced) {
          for (; c + W <= c1; c += W) {
            prefetch.template operator()<W>(c);
            block.template operator()<true>(c, kStream, kSum);
          }
        } else {
          for (; c + 2 * W <= c1; c += 2 * W) {
            prefetch.template operator()<2 * W>(c);
            block.template operator()<true>(c, kStream, kSum);
            block.template operator()<true>(c + W, kStream, kSum);
          }
        }
      };
      auto full_blocks_summing = [&]<bool kStream>() __attribute__((always_inline)) {
        if constexpr (kReduceOnly) {  // always sums, never stores: one loop
          full_blocks.template operator()<false, true>();
          return;
        }
        if constexpr (kSums) {
          if (summing) {
            full_blocks.template operator()<kStream, true>();
            return;
          }
        }
        full_blocks.template operator()<kStream, false>();
      };
      if constexpr (kMayStream && L::kCanStream && !kReduceOnly) {
        if (stream) {
          full_blocks_summing.template operator()<true>();
        } else {
          full_blocks_summing.template operator()<false>();
        }
      } else {
        full_blocks_summing.template operator()<false>();
      }
      for (; c < c1; c += W) block.template operator()<false>(c, false, summing);
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
      if (stream) _mm_sfence();  // order the non-temporal stores before the launch's end
#endif
      if (summing && !per_col) {
        for (int m = 0; m < kSummed; ++m) {
          row_sums[m] = at::vec::vec_reduce_all<C>([](V x, V y) { return x + y; }, row_acc[m]);
        }
      }
    }
  };

  // Elements [begin, end) in row-major order, cut at row ends. partial: the chunk's sums, output
  // m's at m * channels (channels = cols when per_col).
  auto range = [&](int64_t begin, int64_t end, C* partial) {
    int64_t r = begin / cols, c = begin % cols;
    for (int64_t i = begin; i < end; ++r, c = 0) {
      const int64_t c1 = std::min(cols, c + (end - i));
      C row_sums[kSummed];
      segment(r, c, c1, partial, row_sums);
      if (partial != nullptr && !sum->per_col) {
        for (int m = 0; m < kSummed; ++m) partial[m * sum->channels + r % sum->channels] += row_sums[m];
      }
      i += c1 - c;
    }
  };

  if (sum == nullptr) {
    // Below the grain, no at::parallel_for at all (its serial path still sets two thread-local
    // guards), as TensorIterator's for_each does.
    if (numel < kGrainSize) {
      range(0, numel, nullptr);
    } else {
      // Threads split the launch at whole blocks, so that each one's stores start aligned.
      const int64_t blocks = (numel + W - 1) / W;
      at::parallel_for(0, blocks, kGrainSize / W,
                       [&](int64_t b, int64_t e) { range(b * W, std::min(e * W, numel), nullptr); });
    }
    return;
  }
  const int64_t chunks = std::clamp<int64_t>(numel / kGrainSize, 1, kMaxSumChunks);
  const int64_t ch = kSummed * sum->channels;
  std::vector<C> partials(static_cast<size_t>(chunks * ch), C(0));
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) range(numel * k / chunks, numel * (k + 1) / chunks, partials.data() + k * ch);
  });
  for (int64_t k = 0; k < chunks; ++k) {
    for (int64_t j = 0; j < ch; ++j) static_cast<C*>(sum->sums)[j] += partials[k * ch + j];
  }
}

}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
