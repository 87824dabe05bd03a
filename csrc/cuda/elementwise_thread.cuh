// The per-thread body of the CUDA elementwise kernel, as a host-and-device function so that
// tests can run exactly this code on the CPU over a simulated grid (simulation/activation_threads.cpp).
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "../activations/elementwise.h"

namespace fused_act::cuda {

// 128-bit loads and stores: 4 floats, 2 doubles, 8 halves or bfloat16s per access.
template <class S>
constexpr int kPacketElems = 16 / static_cast<int>(sizeof(S));

template <class S, int W>
struct alignas(sizeof(S) * W) Packet {
  S v[W];
};

// Outputs a launch stores: none for a reduce-only op, whose output pointers are null.
template <class Op>
constexpr int kStoredOutputs = ReducesOnly<Op>::value ? 0 : Op::kOutputs;
// Outputs a launch with a ChannelSum sums: output 0 beside storing it (bias_act's backward), or
// every output of a reduce-only op (batch norm's statistics and backward sums).
template <class Op>
constexpr int kSummedOutputs = ReducesOnly<Op>::value ? Op::kOutputs : 1;

// An op's coefficient inputs (CoefficientInputs): inputs [kFirstCoef, N), in arrays of
// kCoefSlots (one unused slot when there are none, so that the arrays stay legal C++).
template <class Op>
constexpr int kFirstCoef = CoefficientInputs<Op>::value;
template <class Op>
constexpr int kCoefSlots = Op::kInputs > kFirstCoef<Op> ? Op::kInputs - kFirstCoef<Op> : 1;

// ElementwiseArgs with typed pointers (see Operand in activations/elementwise.h); M stored
// outputs (kStoredOutputs), where M = 0 keeps one unused slot so that the arrays stay legal C++.
// The op's coefficient inputs (k >= kFirstCoef<Op>) point at compute-type values, not S: only
// coef_row reads them, casting back and striding in C units.
template <class S, int N, int M>
struct Operands {
  const S* in[N];
  int64_t in_stride[N];
  int64_t in_period[N];
  bool in_per_row[N];
  S* out[M > 0 ? M : 1];
  int64_t out_stride[M > 0 ? M : 1];
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

// Division by a runtime divisor without a divide instruction (Granlund & Montgomery 1994, as
// CUTLASS's FastDivmod): n / d = (umulhi(n, mul) + n) >> shift for every 32-bit n, with mul and
// shift found once on the host. A 64-bit division costs a GPU ~100 instructions per item.
struct FastDivmod {
  uint32_t divisor = 1, mul = 1, shift = 0;
  FastDivmod() = default;
  explicit FastDivmod(uint32_t d) : divisor(d) {
    while ((uint64_t{1} << shift) < d) ++shift;
    mul = static_cast<uint32_t>((((uint64_t{1} << shift) - d) << 32) / d + 1);
  }
  FA_HD uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(n, mul);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(n) * mul) >> 32);
#endif
    return static_cast<uint32_t>((static_cast<uint64_t>(hi) + n) >> shift);
  }
};

template <class S, int N, int M>
FA_HD const S* in_row(const Operands<S, N, M>& t, int k, int64_t r) {
  const int64_t row = t.in_period[k] > 0 ? r % t.in_period[k] : r;
  return t.in[k] + row * t.in_stride[k];
}

// Row r of coefficient input k (CoefficientInputs): C values (float for half and bfloat16), its
// row stride (a per-row operand's 1 per channel) counting C values.
template <class S, int N, int M>
FA_HD const opmath_t<S>* coef_row(const Operands<S, N, M>& t, int k, int64_t r) {
  const int64_t row = t.in_period[k] > 0 ? r % t.in_period[k] : r;
  return reinterpret_cast<const opmath_t<S>*>(t.in[k]) + row * t.in_stride[k];
}

// Row r of the operand whose place within 16 bytes every streamed one must share: output 0, or,
// when nothing is stored, input 0 (a reduce-only op's g or x; can_vectorize checks it streams).
template <class S, int N, int M>
FA_HD const S* anchor_row(const Operands<S, N, M>& t, int64_t r) {
  if constexpr (M > 0) {
    return t.out[0] + r * t.out_stride[0];
  } else {
    return in_row(t, 0, r);
  }
}

// 128-bit accesses need the streamed pointers of a row (per-row operands aside) to share their
// position within 16 bytes, in every row: equal base misalignment and, with several rows, row
// strides that keep it (or whole-packet strides where an operand repeats rows). Then each row is
// a scalar head up to the first 16-byte boundary, whole packets, a scalar tail. Otherwise the
// launch takes the scalar path. A streamed coefficient input of Op (a column of C values, see
// CoefPacket) is loaded in packets of C at the same columns: column c of it is c sizeof(C) =
// kRatio c sizeof(S) bytes in, so it is on a 16-byte boundary wherever the anchor is when its own
// misalignment is kRatio times the anchor's and its row stride keeps that in packets of C
// (channels-last batch norm: stride 0, channels a multiple of 4 for float coefficients).
template <class Op, class S, int N, int M>
FA_HD bool can_vectorize(const Operands<S, N, M>& t) {
  constexpr int W = kPacketElems<S>;
  constexpr int kCoef = kFirstCoef<Op>;
  constexpr int kRatio = static_cast<int>(sizeof(opmath_t<S>) / sizeof(S));
  const auto misalign = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16; };
  int64_t s0 = 0, p0 = 0;
  if constexpr (M > 0) {
    s0 = t.out_stride[0];
  } else {
    if (t.in_per_row[0]) return false;  // no streamed anchor; never launched so, but stay correct
    s0 = t.in_stride[0];
    p0 = t.in_period[0];
  }
  const uintptr_t a0 = misalign(anchor_row(t, 0));
  // w: the operand's elements per 16 bytes (W, or kPacketElems<C> for a coefficient input)
  const auto keeps = [&](int64_t stride, int64_t period, int64_t w) {
    if (t.rows <= 1) return true;
    if (period > 0 || p0 > 0) return stride % w == 0 && s0 % w == 0;
    return (stride - s0) % w == 0;
  };
  bool ok = true;
  for (int k = 0; k < N; ++k) {
    if (t.in_per_row[k]) continue;
    if (k >= kCoef) {
      ok = ok && misalign(t.in[k]) == kRatio * a0 % 16 &&
           keeps(t.in_stride[k], t.in_period[k], kPacketElems<opmath_t<S>>);
    } else {
      ok = ok && misalign(t.in[k]) == a0 && keeps(t.in_stride[k], t.in_period[k], W);
    }
  }
  for (int m = 0; m < M; ++m) ok = ok && misalign(t.out[m]) == a0 && keeps(t.out_stride[m], 0, W);
  return ok;
}

// The items the grid strides over: on the packet path, `slots` per row (the head, one per whole
// packet the row can hold, the tail), else one per element; 32-bit divmods when they fit. One
// row on the packet path (every plain activation, contiguous) is `flat`: the items are the
// row's packets, found without a division (flat_thread).
struct Items {
  int64_t total = 0;
  int64_t per_row = 1;
  bool fast = false;
  bool flat = false;
  FastDivmod row_of;
};

template <class S, int N, int M>
inline Items plan_items(const Operands<S, N, M>& t, bool vectorized) {
  constexpr int W = kPacketElems<S>;
  Items it;
  it.per_row = vectorized ? t.cols / W + 2 : t.cols;
  it.total = t.rows * it.per_row;
  it.flat = vectorized && t.rows == 1;
  it.fast = it.total < (int64_t{1} << 32) && it.per_row < (int64_t{1} << 32);
  if (it.fast) it.row_of = FastDivmod(static_cast<uint32_t>(it.per_row));
  return it;
}

// Elements of row r before its first 16-byte boundary (the same for every streamed operand).
template <class S, int N, int M>
FA_HD int64_t head_of(const Operands<S, N, M>& t, int64_t r) {
  const auto addr = reinterpret_cast<uintptr_t>(anchor_row(t, r));
  const int64_t head = static_cast<int64_t>(((16 - addr % 16) % 16) / sizeof(S));
  return head < t.cols ? head : t.cols;
}

template <class Op, class C, int N, size_t... I>
FA_HD auto call(const Op& op, const C (&v)[N], std::index_sequence<I...>) {
  return op(v[I]...);
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

// Output m of one element's result.
template <class C>
FA_HD C output_of(C r, int) {
  return r;
}
template <class C>
FA_HD C output_of(Two<C> r, int m) {
  return m == 0 ? r.first : r.second;
}

// A coefficient input's W values at a packet's columns: C values in 128-bit packets of C, two of
// 4 floats beside a packet of 8 halves, one for float and double. A coefficient column
// (channels-last batch norm) could instead be read element by element from its C pointer, with
// no second alignment rule in can_vectorize; but that is W 4-byte loads per coefficient and
// packet, 32 for the backward's four coefficients in bfloat16 beside the two 128-bit loads of g
// and x, each warp-wide one spanning 1 KB for 128 useful bytes: four times the L1 traffic of
// packets, in launches batch norm runs every training step. Per-row coefficients (NCHW) are one
// value per row either way (finish). Kept apart from the storage inputs' Packet<S, W> array,
// which an op without coefficients sees exactly as before they existed (one struct holding both
// compiled its kernels to the same instructions, scheduled differently).
template <class S, int W>
struct CoefPacket {
  using C = opmath_t<S>;
  static constexpr int kWidth = W < kPacketElems<C> ? W : kPacketElems<C>;
  Packet<C, kWidth> p[W / kWidth];
  FA_HD C operator[](int j) const { return p[j / kWidth].v[j % kWidth]; }
};

// The streamed inputs of the packet at column c of row r (per-row operands are read per element):
// storage inputs into `in`, coefficients into `coef`.
template <int W, class Op, class S, int N, int M>
FA_HD void load_packets(const Operands<S, N, M>& t, int64_t r, int64_t c, Packet<S, W> (&in)[N],
                        CoefPacket<S, W> (&coef)[kCoefSlots<Op>]) {
  constexpr int kCoef = kFirstCoef<Op>;
  for (int k = 0; k < kCoef; ++k) {
    if (!t.in_per_row[k]) in[k] = *reinterpret_cast<const Packet<S, W>*>(in_row(t, k, r) + c);
  }
  for (int k = kCoef; k < N; ++k) {
    if (!t.in_per_row[k]) coef[k - kCoef] = *reinterpret_cast<const CoefPacket<S, W>*>(coef_row(t, k, r) + c);
  }
}

// What finish adds to `acc` for each summed output m (kSummedOutputs): nothing, its sum over the
// W elements (acc[m]), or each element (acc[m * W + j], a column's sum).
enum class Sum { kNone, kTotal, kPerElement };

// W elements of row r from column c: from packets loaded by load_packets (V), or read one by one
// (count of them, the scalar path, heads and tails).
template <int W, bool V, Sum kSum = Sum::kNone, class S, int N, int M, class Op>
FA_HD void finish(const Operands<S, N, M>& t, const Op& op, int64_t r, int64_t c, int count,
                  const Packet<S, W> (&in)[N], const CoefPacket<S, W> (&coef)[kCoefSlots<Op>],
                  opmath_t<S>* acc = nullptr) {
  constexpr int kCoef = kFirstCoef<Op>;
  using C = opmath_t<S>;
  using P = Packet<S, W>;
  // storage inputs, then coefficients (as in load_packets)
  const S* base[kCoef];
  for (int k = 0; k < kCoef; ++k) base[k] = in_row(t, k, r);
  const C* coef_base[N > kCoef ? N - kCoef : 1];
  for (int k = kCoef; k < N; ++k) coef_base[k - kCoef] = coef_row(t, k, r);
  P out[M > 0 ? M : 1];
  FA_UNROLL
  for (int j = 0; j < W; ++j) {
    if (j >= count) break;
    C v[N];
    for (int k = 0; k < kCoef; ++k) {
      if (t.in_per_row[k]) {
        v[k] = static_cast<C>(base[k][0]);
      } else {
        v[k] = static_cast<C>(V ? in[k].v[j] : base[k][c + j]);
      }
    }
    for (int k = kCoef; k < N; ++k) {
      const C* p = coef_base[k - kCoef];
      v[k] = t.in_per_row[k] ? p[0] : (V ? coef[k - kCoef][j] : p[c + j]);
    }
    const auto result = call(op, v, std::make_index_sequence<N>{});
    if constexpr (kSum != Sum::kNone) {
      FA_UNROLL
      for (int m = 0; m < kSummedOutputs<Op>; ++m) {
        acc[kSum == Sum::kTotal ? m : m * W + j] += output_of(result, m);
      }
    }
    if constexpr (M > 0) put<S, W>(out, j, result);
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

template <Sum kSum = Sum::kNone, class S, int N, int M, class Op>
FA_HD void scalar_element(const Operands<S, N, M>& t, const Op& op, int64_t r, int64_t c, opmath_t<S>* acc = nullptr) {
  const Packet<S, 1> none[N] = {};
  const CoefPacket<S, 1> no_coef[kCoefSlots<Op>] = {};
  finish<1, false, kSum>(t, op, r, c, 1, none, no_coef, acc);
}

// Slot s of row r on the packet path covers columns [c0, c1): the head (s = 0) and the tail (the
// last slot) element by element, else one packet (none past the row's last packet). Returns
// whether the slot is a packet.
template <int W, class S, int N, int M>
FA_HD bool slot_columns(const Operands<S, N, M>& t, int64_t slots, int64_t r, int64_t s, int64_t& c0, int64_t& c1) {
  const int64_t head = head_of(t, r);
  const int64_t packets = (t.cols - head) / W;
  if (s == 0) {
    c0 = 0;
    c1 = head;
    return false;
  }
  if (s == slots - 1) {
    c0 = head + packets * W;
    c1 = t.cols;
    return false;
  }
  c0 = head + (s - 1) * W;
  c1 = s - 1 < packets ? c0 + W : c0;
  return c1 > c0;
}

// Packets each thread loads before computing any (their loads overlap).
constexpr int kInFlight = 2;

// Item p's row and its index within the row.
FA_HD void locate(const Items& it, int64_t p, int64_t& r, int64_t& s) {
  if (it.fast) {
    const uint32_t q = it.row_of.div(static_cast<uint32_t>(p));
    r = q;
    s = p - static_cast<int64_t>(q) * it.per_row;
  } else {
    r = p / it.per_row;
    s = p - r * it.per_row;
  }
}

// Thread `tid` of `nthreads` handles items tid, tid + nthreads, ... (grid-stride, 64-bit
// indices), kInFlight at a time so that their packet loads overlap. Packet path: item s of a
// row is the slot slot_columns describes; W = 1 is the scalar path, one element per item.
template <int W, class S, int N, int M, class Op>
FA_HD void elementwise_thread(int64_t tid, int64_t nthreads, const Operands<S, N, M>& t, const Op& op,
                              const Items& it) {
  for (int64_t p0 = tid; p0 < it.total; p0 += kInFlight * nthreads) {
    if constexpr (W == 1) {
      for (int u = 0; u < kInFlight && p0 + u * nthreads < it.total; ++u) {
        int64_t r, c;
        locate(it, p0 + u * nthreads, r, c);
        scalar_element(t, op, r, c);
      }
    } else {
      // Load every packet first, then compute and store: the loads are in flight together
      // (a store before the next load could alias it, so the compiler would not reorder them).
      Packet<S, W> in[kInFlight][N];
      CoefPacket<S, W> coef[kInFlight][kCoefSlots<Op>];
      int64_t row[kInFlight], col[kInFlight];
      bool packet[kInFlight];
      FA_UNROLL
      for (int u = 0; u < kInFlight; ++u) {
        packet[u] = false;
        const int64_t p = p0 + u * nthreads;
        if (p >= it.total) continue;
        int64_t r, s, c0, c1;
        locate(it, p, r, s);
        if (slot_columns<W>(t, it.per_row, r, s, c0, c1)) {
          packet[u] = true;
          row[u] = r;
          col[u] = c0;
          load_packets<W, Op>(t, r, c0, in[u], coef[u]);
        } else {
          for (int64_t c = c0; c < c1; ++c) scalar_element(t, op, r, c);
        }
      }
      FA_UNROLL
      for (int u = 0; u < kInFlight; ++u) {
        if (packet[u]) finish<W, true>(t, op, row[u], col[u], W, in[u], coef[u]);
      }
    }
  }
}

// One row on the packet path (every plain activation, contiguous), in the shape of ATen's
// vectorized elementwise kernel: one packet per thread, and a launch with a thread for every packet
// in 128-thread blocks (flat_kernel), so the loop only strides when the grid is capped; the scalar
// head and tail go to the first threads. Measured on an H200 against the earlier grid-stride loop
// (8 blocks per SM, two packets in flight per thread) and tiles of 2-8 packets per thread (64-248
// registers; __launch_bounds__ caps did not rescue them): this shape ran relu, sigmoid and silu
// forward at 1.00-1.07x eager's speed at 2^24 and 2^26 elements (float32 and bfloat16), the
// grid-stride loop at 0.91-1.00x, the tiles at 0.39-1.04x (docs/design.md, "GPU runs").
template <int W, class S, int N, int M, class Op>
FA_HD void flat_thread(int64_t tid, int64_t nthreads, const Operands<S, N, M>& t, const Op& op) {
  const int64_t head = head_of(t, 0);
  const int64_t packets = (t.cols - head) / W;
  const int64_t tail = head + packets * W;
  for (int64_t c = tid; c < head; c += nthreads) scalar_element(t, op, 0, c);
  for (int64_t c = tail + tid; c < t.cols; c += nthreads) scalar_element(t, op, 0, c);
  for (int64_t q = tid; q < packets; q += nthreads) {
    Packet<S, W> in[N];
    CoefPacket<S, W> coef[kCoefSlots<Op>];
    load_packets<W, Op>(t, 0, head + q * W, in, coef);
    finish<W, true>(t, op, 0, head + q * W, W, in, coef);
  }
}

// The general kernel's body (elementwise_kernel): any layout, on the packet or the scalar path.
template <class S, int N, int M, class Op>
FA_HD void strided_body(int64_t tid, int64_t nthreads, const Operands<S, N, M>& t, const Op& op, bool vectorized,
                        const Items& it) {
  if (vectorized) {
    elementwise_thread<kPacketElems<S>>(tid, nthreads, t, op, it);
  } else {
    elementwise_thread<1>(tid, nthreads, t, op, it);
  }
}

// What one thread of a launch does (the simulation runs this): one-row launches are flat_kernel's.
template <class S, int N, int M, class Op>
FA_HD void elementwise_body(int64_t tid, int64_t nthreads, const Operands<S, N, M>& t, const Op& op, bool vectorized,
                            const Items& it) {
  if (it.flat) {
    flat_thread<kPacketElems<S>>(tid, nthreads, t, op);
  } else {
    strided_body(tid, nthreads, t, op, vectorized, it);
  }
}

// ---- Sums per channel, in the launch that computes the outputs (ChannelSum in elementwise.h) ----
//
// bias_act's backward stores grad_x and sums it (the bias gradient); a reduce-only op (batch
// norm) stores nothing and sums each of its K outputs (kSummedOutputs): sums[m * channels + ch] =
// the sum of output m over channel ch's elements. No atomics, so every run gives the same bits:
// the main kernel writes one partial sum per output and group of work, and a second kernel with a
// thread per channel adds that channel's partials in order. Output m's partials are a block of
// SumPlan::partials(rows, cols) values at m times that:
//   per row (NCHW: channel r % C owns whole rows): row r's slots are split into `groups`
//     segments of `per_group` slots, a warp per segment: partials[r * groups + g];
//   per column (channels innermost): a block's threads cover column items (x) and rows (y); the
//     grid's y walks chunks of `per_group` rows: partials[chunk * cols + c].
constexpr int kWarpSize = 32;
constexpr int kSumThreads = 256;
// Resident blocks per SM the launches aim for (grid-stride beyond that): enough to saturate HBM
// for a streaming kernel without millions of tiny blocks on 2^30-element inputs.
constexpr int kBlocksPerSm = 8;

struct SumPlan {
  bool per_col = false;
  bool vectorized = false;
  int64_t items = 0;      // per row: slots of a row (as Items::per_row); per column: column items
  int64_t groups = 1;     // segments of a row, or chunks of rows
  int64_t per_group = 1;  // slots per segment, or rows per chunk
  int block_x = kSumThreads, block_y = 1;
  int64_t grid_x = 1, grid_y = 1;
  FA_HD int64_t partials(int64_t rows, int64_t cols) const { return per_col ? groups * cols : rows * groups; }
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline int64_t clamp_to(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Work for kBlocksPerSm full blocks on each of sm_count SMs where the tensor allows, and each
// thread still at least two slots (per row) or one row (per column) of a group.
template <class Op, class S, int N, int M>
inline SumPlan plan_channel_sum(const Operands<S, N, M>& t, bool per_col, int sm_count) {
  constexpr int W = kPacketElems<S>;
  SumPlan p;
  p.per_col = per_col;
  const int64_t blocks = static_cast<int64_t>(sm_count) * kBlocksPerSm;
  if (!per_col) {
    p.vectorized = can_vectorize<Op>(t);
    p.items = p.vectorized ? t.cols / W + 2 : t.cols;
    const int64_t warps = blocks * (kSumThreads / kWarpSize);
    p.groups = clamp_to(ceil_div(warps, t.rows), 1, ceil_div(p.items, 2 * kWarpSize));
    p.per_group = ceil_div(p.items, p.groups);
    p.groups = ceil_div(p.items, p.per_group);
    p.grid_x = clamp_to(ceil_div(t.rows * p.groups, kSumThreads / kWarpSize), 1, blocks);
  } else {
    // One packet of W columns per x thread needs every row to start on a packet boundary: rows 0
    // and 1 do, so the row stride keeps it (the fronts' rows are contiguous, cols apart, but a
    // padded stride would not be).
    p.vectorized = can_vectorize<Op>(t) && t.cols % W == 0 && head_of(t, 0) == 0 && (t.rows == 1 || head_of(t, 1) == 0);
    p.items = p.vectorized ? t.cols / W : t.cols;
    int bx = 1;
    while (bx < p.items && bx < kWarpSize) bx *= 2;
    p.block_x = bx;
    p.block_y = kSumThreads / bx;
    p.grid_x = ceil_div(p.items, bx);
    p.groups = clamp_to(ceil_div(blocks, p.grid_x), 1, ceil_div(t.rows, p.block_y));
    p.per_group = ceil_div(t.rows, p.groups);
    p.groups = ceil_div(t.rows, p.per_group);
    p.grid_y = p.groups < 65535 ? p.groups : 65535;  // gridDim.y's limit; the kernel strides
  }
  return p;
}

// Lane `lane`'s share of segment g of row r: its slots, each summed output added up into acc[m].
template <int W, class S, int N, int M, class Op>
FA_HD void row_segment_thread(int lane, const Operands<S, N, M>& t, const Op& op, const SumPlan& p, int64_t r,
                              int64_t g, opmath_t<S> (&acc)[kSummedOutputs<Op>]) {
  for (int m = 0; m < kSummedOutputs<Op>; ++m) acc[m] = opmath_t<S>(0);
  const int64_t end = (g + 1) * p.per_group < p.items ? (g + 1) * p.per_group : p.items;
  for (int64_t s = g * p.per_group + lane; s < end; s += kWarpSize) {
    if constexpr (W == 1) {
      scalar_element<Sum::kTotal>(t, op, r, s, acc);
    } else {
      int64_t c0, c1;
      if (slot_columns<W>(t, p.items, r, s, c0, c1)) {
        Packet<S, W> in[N];
        CoefPacket<S, W> coef[kCoefSlots<Op>];
        load_packets<W, Op>(t, r, c0, in, coef);
        finish<W, true, Sum::kTotal>(t, op, r, c0, W, in, coef, acc);
      } else {
        for (int64_t c = c0; c < c1; ++c) scalar_element<Sum::kTotal>(t, op, r, c, acc);
      }
    }
  }
}

// Thread (x, y) of a column block: column item q (W columns from q W) over rows y, y + block_y,
// ... of chunk `chunk`; acc[m * W + j] gets column q W + j's sum of summed output m.
template <int W, class S, int N, int M, class Op>
FA_HD void column_chunk_thread(int64_t q, int y, const Operands<S, N, M>& t, const Op& op, const SumPlan& p,
                               int64_t chunk, opmath_t<S> (&acc)[kSummedOutputs<Op> * W]) {
  for (int i = 0; i < kSummedOutputs<Op> * W; ++i) acc[i] = opmath_t<S>(0);
  if (q >= p.items) return;
  const int64_t end = (chunk + 1) * p.per_group < t.rows ? (chunk + 1) * p.per_group : t.rows;
  for (int64_t r = chunk * p.per_group + y; r < end; r += p.block_y) {
    if constexpr (W == 1) {
      scalar_element<Sum::kPerElement>(t, op, r, q, acc);
    } else {
      Packet<S, W> in[N];
      CoefPacket<S, W> coef[kCoefSlots<Op>];
      load_packets<W, Op>(t, r, q * W, in, coef);
      finish<W, true, Sum::kPerElement>(t, op, r, q * W, W, in, coef, acc);
    }
  }
}

// The second pass: channel ch's partials of each of the K summed outputs in a fixed order, into
// sums[m * channels + ch].
template <int K, class C>
FA_HD void channel_total_thread(int64_t ch, const C* partials, const SumPlan& p, int64_t rows, int64_t channels,
                                C* sums) {
  for (int m = 0; m < K; ++m) {
    const C* part = partials + m * p.partials(rows, channels);  // per column, cols = channels
    C total(0);
    if (p.per_col) {
      for (int64_t k = 0; k < p.groups; ++k) total += part[k * channels + ch];
    } else {
      for (int64_t r = ch; r < rows; r += channels) {
        for (int64_t g = 0; g < p.groups; ++g) total += part[r * p.groups + g];
      }
    }
    sums[m * channels + ch] = total;
  }
}

}  // namespace fused_act::cuda
