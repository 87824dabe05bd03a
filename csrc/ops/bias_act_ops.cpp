// bias_act(x, bias, dim, act) = act(x + bias broadcast along dim), and its backward, which
// returns the bias gradient too (summed in the launch that computes grad_x, on every backend).
//
// The launch sees the output as rows x cols with the bias a per-channel operand (channel_layout.h).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/core/DeviceGuard.h>

#include "activation_ops.h"
#include "channel_layout.h"

namespace fused_act {

namespace {

const ActivationInfo& check_bias_args(const at::Tensor& x, const at::Tensor& bias, int64_t& dim, std::string_view act,
                                      c10::ArrayRef<double> params, std::string& op) {
  const ActivationInfo& info = checked_activation(act, params);
  op = op_name("bias_act", info);
  check_device(x, op);
  checked_dtype(x, op);
  dim = wrap_dim(dim, x, op);
  check_dtype_device(bias, x, "bias", op);
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == x.size(dim), op, ": bias must be 1-D with x.size(", dim,
              ") = ", x.size(dim), " elements, got shape ", bias.sizes());
  return info;
}

// Short rows cost the CPU loop a set-up and a partial SIMD block each (~10-25 ns a row), so the
// CPU launch widens them when there are many (CPU only: the CUDA kernels were not measured this
// way). Both forms cost a small copy of the bias and, in backward, a sum of the wider per-column
// sums (~6 us per forward + backward at (4, 64, 7, 7) when ATen's repeat_interleave and sum made
// them, which set the minimum of 1024 rows; plain loops since, below).
//   expanded: contiguous images with few pixels per channel (late convolutions: 2x2, 3x3), rows
//     of `cols` elements with one bias value each, become rows of channels * cols with the bias
//     repeated per pixel, a per-column operand (as for a Linear output); at least 4 images, so
//     that the expanded bias is at most a quarter of x. Longer rows lost: relu over 7 x 7 pixels
//     1.3x -> 1.0x eager forward + backward (a per-column sum reads and writes its sums for every
//     row, a per-row one keeps it in a register).
//   tiled: few channels innermost (Linear outputs (N, 10), channels-last images of 3 channels)
//     become rows of k * channels with the bias tiled k times, k the largest divisor of the row
//     count up to kTileTo / channels.
// 2 cores, Intel AVX-512 build, 2026-12-07, eager / fused, forward and forward + backward: gelu
// (64, 512, 2, 2) 0.50x-0.51x / 0.57x-0.59x -> 3.0x-3.2x / 2.1x-2.2x, (8, 256, 3, 3) 1.6x-1.8x /
// 1.1x-1.2x -> 3.7x-3.9x / 1.8x; relu (64, 512, 2, 2) 0.57x-0.60x / 0.88x-0.91x -> 3.7x-3.9x /
// 1.9x, (32, 256, 4, 4) 0.85x / 1.2x-1.3x -> 1.4x-1.7x / 1.2x-1.5x; tiled, forward + backward:
// gelu (65536, 10) 0.97x -> 1.76x, (4096, 3) 0.69x -> 1.48x (bench/results/intel_avx512/
// bias_act_images and bias_act_short_rows).
constexpr int64_t kWidenRows = 1024;
constexpr int64_t kExpandBelow = 32;
constexpr int64_t kExpandImages = 4;
constexpr int64_t kTileBelow = 64;
constexpr int64_t kTileTo = 256;

struct Widened {
  ChannelLayout l;         // what the launch sees
  int64_t interleave = 1;  // expanded: each bias value repeated this many times
  int64_t tile = 1;        // tiled: the bias repeated this many times
};

Widened widen(const at::Tensor& x, const ChannelLayout& l) {
  if (!x.is_cpu() || l.rows < kWidenRows) return {l};
  if (!l.per_col && l.cols < kExpandBelow && l.rows / l.channels >= kExpandImages) {
    const int64_t cols = l.channels * l.cols;
    return {{l.rows / l.channels, cols, cols, true}, l.cols, 1};
  }
  if (l.per_col && l.cols < kTileBelow) {
    for (int64_t k = kTileTo / l.cols; k >= 2; --k) {
      if (l.rows % k == 0) return {{l.rows / k, k * l.cols, k * l.cols, true}, 1, k};
    }
  }
  return {l};
}

// The widened bias and the per-channel sums by plain loops: at::repeat took ~6 us per call (it
// builds an expanded view and copies through TensorIterator), repeat_interleave ~3 us, a small
// sum ~2 us, against the 45 us of eager's whole forward + backward at (4096, 3) (measured from
// Python, 2026-12-07). Only CPU tensors are widened.
// f(c, j) for the widened bias's columns j in order: `tile` copies of the channels c, each
// repeated `interleave` times.
template <class F>
void for_each_column(const Widened& w, int64_t channels, F f) {
  int64_t j = 0;
  for (int64_t t = 0; t < w.tile; ++t) {
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t r = 0; r < w.interleave; ++r) f(c, j++);
    }
  }
}

at::Tensor widened_bias(const at::Tensor& bias, const Widened& w) {
  const at::Tensor b = bias.contiguous();
  if (w.interleave == 1 && w.tile == 1) return b;
  at::Tensor out = at::empty({b.numel() * w.interleave * w.tile}, b.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.scalar_type(), "fused_act.bias_act", [&] {
    const scalar_t* src = b.const_data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    for_each_column(w, b.numel(), [&](int64_t c, int64_t j) { dst[j] = src[c]; });
  });
  return out;
}

// The launch's per-column sums (float or double), added up per channel in a fixed order.
at::Tensor channel_sums(const at::Tensor& sums, const Widened& w) {
  if (w.interleave == 1 && w.tile == 1) return sums;
  const int64_t channels = sums.numel() / (w.interleave * w.tile);
  at::Tensor out = at::zeros({channels}, sums.options());
  AT_DISPATCH_FLOATING_TYPES(sums.scalar_type(), "fused_act.bias_act", [&] {
    const scalar_t* src = sums.const_data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    for_each_column(w, channels, [&](int64_t c, int64_t j) { dst[c] += src[j]; });
  });
  return out;
}

}  // namespace

at::Tensor bias_act(const at::Tensor& x, const at::Tensor& bias, int64_t dim, std::string_view act,
                    c10::ArrayRef<double> params, Runner run) {
  std::string op;
  const ActivationInfo& info = check_bias_args(x, bias, dim, act, params, op);
  c10::OptionalDeviceGuard guard(guard_device(x));
  at::Tensor out = channel_output(x, dim);
  if (out.numel() == 0) return out;
  const at::Tensor xl = with_layout_of(x, out);
  const Widened w = widen(x, layout_of(out, dim));
  const ChannelLayout& l = w.l;
  const at::Tensor b = widened_bias(bias, w);
  ElementwiseArgs a = make_args(info, Kind::kBiasForward, checked_dtype(x, op), params);
  a.in[0] = row_operand(xl, l);
  a.in[1] = channel_operand(b, l);
  set_rows(a, l, out);
  run(a, nullptr);
  return out;
}

std::tuple<at::Tensor, at::Tensor> bias_act_backward(const at::Tensor& grad, const at::Tensor& saved,
                                                     const at::Tensor& bias, int64_t dim, std::string_view act,
                                                     c10::ArrayRef<double> params, bool from_output, Runner run) {
  std::string op;
  const ActivationInfo& info = check_bias_args(saved, bias, dim, act, params, op);
  check_form(info, params, from_output, op);
  check_like(grad, saved, "grad", op);
  c10::OptionalDeviceGuard guard(guard_device(saved));
  at::Tensor grad_x = channel_output(saved, dim);
  const at::ScalarType acc = saved.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  if (grad_x.numel() == 0) return {grad_x, at::zeros_like(bias)};
  const at::Tensor g = with_layout_of(grad, grad_x);
  const at::Tensor s = with_layout_of(saved, grad_x);
  const Widened w = widen(saved, layout_of(grad_x, dim));
  const ChannelLayout& l = w.l;
  // The runners sum the bias gradient in the launch that computes grad_x: the CPU loop adds into
  // `sums`, the CUDA kernels (and their simulation) write it, so only the CPU's needs clearing.
  at::Tensor sums = saved.is_cpu() ? at::zeros({l.channels}, saved.options().dtype(acc))
                                   : empty_with({l.channels}, saved.options().dtype(acc));
  // The output form needs no bias: y already holds it, and the kernel is the plain backward.
  ElementwiseArgs a = make_args(info, from_output ? Kind::kBackward : Kind::kBiasBackward, checked_dtype(saved, op),
                                params, from_output);
  a.in[0] = row_operand(g, l);
  a.in[1] = row_operand(s, l);
  const at::Tensor b = from_output ? at::Tensor() : widened_bias(bias, w);
  if (!from_output) a.in[2] = channel_operand(b, l);
  set_rows(a, l, grad_x);
  const ChannelSum channel_sum{sums.data_ptr(), l.channels, l.per_col};
  run(a, &channel_sum);
  return {grad_x, channel_sums(sums, w).to(bias.scalar_type())};
}

}  // namespace fused_act
