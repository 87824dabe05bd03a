// The CUDA thread bodies of one activation compiled for the host (see simulation.h). setup.py
// compiles this file once per activation, like cpu/activation_kernels.cpp.
#include FUSED_ACT_ACTIVATION_HEADER

#include <type_traits>
#include <vector>

#include <c10/util/Exception.h>

#include "../cuda/elementwise_thread.cuh"
#include "../cuda/mask_thread.cuh"
#include "simulation.h"

namespace fused_act {

namespace {

// row_sum_kernel: each warp's lanes in turn, added in the xor-shuffle tree's order.
template <int W, class S, int N, int M, class Op>
void row_sums(const cuda::Operands<S, N, M>& t, const Op& op, const cuda::SumPlan& p, opmath_t<S>* partials) {
  using C = opmath_t<S>;
  constexpr int K = cuda::kSummedOutputs<Op>;
  const int64_t segments = t.rows * p.groups;
  for (int64_t w = 0; w < segments; ++w) {
    const int64_t r = w / p.groups;
    C lanes[cuda::kWarpSize][K];
    for (int lane = 0; lane < cuda::kWarpSize; ++lane) {
      cuda::row_segment_thread<W>(lane, t, op, p, r, w - r * p.groups, lanes[lane]);
    }
    for (int m = 0; m < K; ++m) {
      for (int offset = cuda::kWarpSize / 2; offset > 0; offset /= 2) {
        for (int lane = 0; lane < offset; ++lane) lanes[lane][m] += lanes[lane + offset][m];
      }
      partials[m * segments + w] = lanes[0][m];
    }
  }
}

// column_sum_kernel: every block's threads, then thread (x, 0)'s sum over y.
template <int W, class S, int N, int M, class Op>
void column_sums(const cuda::Operands<S, N, M>& t, const Op& op, const cuda::SumPlan& p, opmath_t<S>* partials) {
  using C = opmath_t<S>;
  constexpr int K = cuda::kSummedOutputs<Op>;
  for (int64_t chunk = 0; chunk < p.groups; ++chunk) {
    for (int64_t q = 0; q < p.grid_x * p.block_x; ++q) {
      C total[K * W] = {};
      for (int y = 0; y < p.block_y; ++y) {
        C acc[K * W];
        cuda::column_chunk_thread<W>(q, y, t, op, p, chunk, acc);
        for (int i = 0; i < K * W; ++i) total[i] += acc[i];
      }
      if (q >= p.items) continue;
      for (int m = 0; m < K; ++m) {
        for (int j = 0; j < W; ++j) partials[(m * p.groups + chunk) * t.cols + q * W + j] = total[m * W + j];
      }
    }
  }
}

// Returns whether the packet path was taken.
template <class S, int N, int M, class Op>
bool channel_sum(const cuda::Operands<S, N, M>& t, const Op& op, const ChannelSum& sum) {
  using C = opmath_t<S>;
  constexpr int W = cuda::kPacketElems<S>;
  constexpr int K = cuda::kSummedOutputs<Op>;
  const cuda::SumPlan p = cuda::plan_channel_sum<Op>(t, sum.per_col, kSimulatedSms);
  std::vector<C> partials(K * p.partials(t.rows, t.cols));
  if (sum.per_col) {
    p.vectorized ? column_sums<W>(t, op, p, partials.data()) : column_sums<1>(t, op, p, partials.data());
  } else {
    p.vectorized ? row_sums<W>(t, op, p, partials.data()) : row_sums<1>(t, op, p, partials.data());
  }
  for (int64_t ch = 0; ch < sum.channels; ++ch) {
    cuda::channel_total_thread<K>(ch, partials.data(), p, t.rows, sum.channels, static_cast<C*>(sum.sums));
  }
  return p.vectorized;
}

}  // namespace

template <class Act>
bool SimulatedThreads<Act>::elementwise(const ElementwiseArgs& a, int64_t nthreads, int64_t only_thread,
                                        const ChannelSum* sum) {
  bool vectorized = false;
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_elementwise_op<Act, opmath_t<S>>(a, [&](const auto& op) {
      using Op = std::decay_t<decltype(op)>;
      const auto t = cuda::make_operands<S, Op::kInputs, cuda::kStoredOutputs<Op>>(a);
      if constexpr (SumsChannels<Op>::value) {
        if (sum != nullptr) {
          vectorized = channel_sum(t, op, *sum);
          return;
        }
      }
      TORCH_INTERNAL_ASSERT(sum == nullptr, "a channel sum for an op that has none");
      TORCH_INTERNAL_ASSERT(!ReducesOnly<Op>::value, "a reduce-only op needs its sums");
      if constexpr (!ReducesOnly<Op>::value) {
        vectorized = cuda::can_vectorize<Op>(t);
        const cuda::Items it = cuda::plan_items(t, vectorized);
        for (int64_t tid = 0; tid < nthreads; ++tid) {
          if (only_thread < 0 || tid == only_thread) cuda::elementwise_body(tid, nthreads, t, op, vectorized, it);
        }
      }
    });
  });
  return vectorized;
}

template <class Act>
bool SimulatedThreads<Act>::mask(const MaskArgs& a, int64_t nthreads) {
  bool packets = false;
  if constexpr (is_maskable<Act>()) {
    visit_dtype(a.dtype, [&](auto storage) {
      using S = decltype(storage);
      const cuda::MaskOperands<S> t{static_cast<const S*>(a.in), static_cast<S*>(a.out), a.mask, a.n};
      packets = cuda::can_vectorize_mask(t);
      const Params<opmath_t<S>> p = make_params<opmath_t<S>>(a.params);
      for (int64_t tid = 0; tid < nthreads; ++tid) cuda::mask_body<Act>(tid, nthreads, t, p, a.backward, packets);
    });
  }
  return packets;
}

template struct SimulatedThreads<act::FUSED_ACT_ACTIVATION>;

}  // namespace fused_act
