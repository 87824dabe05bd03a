// What every op front shares: argument checks with messages that name the op, output layout,
// and building an ElementwiseArgs for one launch. A front checks, allocates, and calls a
// backend's Runner once per launch; the backends (cpu/, cuda/) never see a tensor.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <ATen/core/Tensor.h>

#include "../activations/elementwise.h"
#include "registry.h"

namespace fused_act {

// Runs one launch; with `sum` (bias_act's backward) it also sums output 0 per channel.
using Runner = void (*)(const ElementwiseArgs& a, const ChannelSum* sum);

// "fused_act.<op>" for messages: the activation's own name for the plain activation ops,
// "bias_act(relu)", "glu(silu)", ... for the fused ones.
std::string op_name(std::string_view op, const ActivationInfo& info);

// The activation, with its parameters checked; errors name the activation ("fused_act.elu(alpha=...)").
const ActivationInfo& checked_activation(std::string_view act, c10::ArrayRef<double> params);

// Raises unless from_output is the form backward takes for these parameters (saved_for).
void check_form(const ActivationInfo& info, c10::ArrayRef<double> params, bool from_output, const std::string& op);

DType checked_dtype(const at::Tensor& t, const std::string& op);
void check_device(const at::Tensor& t, const std::string& op);
// Same shape, dtype and device as ref; `what` names t in the message.
void check_like(const at::Tensor& t, const at::Tensor& ref, const char* what, const std::string& op);
// Same dtype and device as ref.
void check_dtype_device(const at::Tensor& t, const at::Tensor& ref, const char* what, const std::string& op);

// Dense: no gaps, no overlaps (contiguous, channels-last, any permutation of those).
bool is_linear(const at::Tensor& t);

// at::empty_like(t), through at::empty for a contiguous t, and for a contiguous CPU t straight to
// the CPU allocator (at::detail::empty_cpu, as ATen's structured kernels allocate), without
// at::empty's dispatcher round trip (0.21 -> 0.15 us per call). empty_like's strided path
// (empty_strided, set_sizes_and_strides) and a heap-allocated operand list in run_flat were
// ~0.2 us of a 1.5 us call: forward at 16 elements, relu 1.51 -> 1.31 us (bench.call_cost).
at::Tensor empty_as(const at::Tensor& t);
// at::empty(sizes, options), for CPU straight from the CPU allocator as empty_as.
at::Tensor empty_with(c10::IntArrayRef sizes, const at::TensorOptions& options);

// The device a front's c10::OptionalDeviceGuard switches to: none for a CPU tensor, where a guard
// only costs a virtual call (ATen's CPU kernels take none).
inline std::optional<c10::Device> guard_device(const at::Tensor& t) {
  return t.is_cpu() ? std::nullopt : std::optional<c10::Device>(t.device());
}

// Whether t is dense and every element of it sits where `strides` would put it: strides equal in
// every dimension longer than 1. A size-1 dimension's stride never meets a nonzero index, so
// (8, C, 1, 1) channels-last, strides (C, 1, C, C), and contiguous, (C, 1, 1, 1), are one layout;
// inductor hands over such tensors with either (and with (C, 1, 8C, 8C)), and comparing whole
// stride lists copied each of them: 37 copies in a compiled training step of mobilenet_v3_small
// (its squeeze-excitation blocks), ~1 us a call (hardswish on (8, 576, 1, 1) channels-last through
// torch.ops, Intel Xeon: forward 2.98 -> 2.01 us, backward 3.6 -> 2.6).
bool has_layout(const at::Tensor& t, c10::IntArrayRef strides);

// dst.copy_(src), through a batched transpose (cpu/transpose.h) where both are dense CPU tensors
// of one dtype and shape whose memory orders swap two groups of dimensions (NCHW <-> NHWC).
// ATen's copy_ walks such a pair element by element: hardswish's backward through autograd with
// grad NCHW and saved channels-last, float32, 2 threads, Intel Xeon AVX-512, (8, 16, 32, 32)
// 60-66 -> 48-49 us, (8, 240, 4, 4) 30-32 -> 25-26 (`python -m bench.layouts`; docs/design.md,
// "Layouts under torch.compile").
void copy_into(at::Tensor& dst, const at::Tensor& src);

// t with ref's layout, so that element i of one storage is element i of the other. Dense tensors
// already laid out like ref (has_layout) pass through untouched; others are copied (copy_into).
at::Tensor with_layout_of(const at::Tensor& t, const at::Tensor& ref);

// The launch skeleton: activation, kind, dtype, parameters; operands are filled by the front.
ElementwiseArgs make_args(const ActivationInfo& info, Kind kind, DType dtype, c10::ArrayRef<double> params,
                          bool from_output = false);

// A whole dense tensor as one row (its storage order).
Operand flat(const at::Tensor& t);
OutOperand flat_out(at::Tensor& t);
void set_flat(ElementwiseArgs& a, int64_t numel);

// Dimension `dim` of t wrapped into [0, t.dim()), or an error naming the op.
int64_t wrap_dim(int64_t dim, const at::Tensor& t, const std::string& op);

}  // namespace fused_act
