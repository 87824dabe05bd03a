// How the per-channel ops (bias_act, batch_norm_act) see a tensor with channels along `dim`: in
// its own memory order as rows x cols, in one of two shapes:
//   channels innermost (stride 1 at dim: Linear outputs (N, C), channels-last images):
//     rows = numel / C, cols = C, a per-channel operand is a vector every row reads (row stride 0);
//   otherwise, contiguous (N, C, H, W): rows = N * C, cols = H * W, a per-channel operand is one
//     value per row, row r reading channel r % C.
// Any other layout is computed in a contiguous copy.
#pragma once

#include <ATen/core/Tensor.h>

#include "front.h"

namespace fused_act {

struct ChannelLayout {
  int64_t rows, cols, channels;
  bool per_col;
};

// An empty output for x whose layout is one of the two above (x's own when possible).
inline at::Tensor channel_output(const at::Tensor& like, int64_t dim) {
  at::Tensor out = empty_as(like);
  if (out.stride(dim) == 1 || out.is_contiguous()) return out;
  return empty_with(like.sizes(), like.options());
}

// out is non-empty and laid out as channel_output makes it.
inline ChannelLayout layout_of(const at::Tensor& out, int64_t dim) {
  const int64_t c = out.size(dim);
  if (out.stride(dim) == 1) return {out.numel() / c, c, c, true};
  // contiguous; computed rather than read from stride(dim), which is arbitrary when c == 1
  int64_t inner = 1;
  for (int64_t d = dim + 1; d < out.dim(); ++d) inner *= out.size(d);
  return {out.numel() / inner, inner, c, false};
}

inline Operand row_operand(const at::Tensor& t, const ChannelLayout& l) {
  return Operand{t.const_data_ptr(), l.cols, 0, false};
}

// A contiguous array of one value per channel at p.
inline Operand channel_operand_at(const void* p, const ChannelLayout& l) {
  if (l.per_col) return Operand{p, 0, 0, false};
  return Operand{p, 1, l.channels, true};
}
inline Operand channel_operand(const at::Tensor& v, const ChannelLayout& l) {
  return channel_operand_at(v.const_data_ptr(), l);
}

inline void set_rows(ElementwiseArgs& a, const ChannelLayout& l, at::Tensor& out) {
  a.rows = l.rows;
  a.cols = l.cols;
  a.out[0] = OutOperand{out.data_ptr(), l.cols};
}

}  // namespace fused_act
