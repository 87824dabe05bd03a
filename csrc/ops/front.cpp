#include "front.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/EmptyTensor.h>
#include <c10/core/WrapDimMinimal.h>
#include <c10/util/SmallVector.h>

#include "../cpu/transpose.h"

namespace fused_act {

std::string op_name(std::string_view op, const ActivationInfo& info) {
  if (op.empty()) return info.op;
  std::string out = "fused_act.";
  return out.append(op).append("(").append(info.name).append(")");
}

const ActivationInfo& checked_activation(std::string_view act, c10::ArrayRef<double> params) {
  const ActivationInfo& info = find_activation(act);
  check_params(info, params);
  return info;
}

void check_form(const ActivationInfo& info, c10::ArrayRef<double> params, bool from_output, const std::string& op) {
  const bool expects_output = saved_for(info, params) != Saved::kInput;
  TORCH_CHECK(from_output == expects_output, op, ": backward with these parameters needs the forward's ",
              expects_output ? "output" : "input", " (from_output=", expects_output, ")");
}

DType checked_dtype(const at::Tensor& t, const std::string& op) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return DType::kFloat;
    case at::kDouble:
      return DType::kDouble;
    case at::kHalf:
      return DType::kHalf;
    case at::kBFloat16:
      return DType::kBFloat16;
    default:
      TORCH_CHECK_TYPE(false, op, ": expected a floating-point tensor (float32, float64, float16 or bfloat16), got ",
                       t.scalar_type());
  }
}

void check_device(const at::Tensor& t, const std::string& op) {
  TORCH_CHECK(t.is_cpu() || t.is_cuda(), op, ": expected a CPU or CUDA tensor, got one on ", t.device());
}

void check_dtype_device(const at::Tensor& t, const at::Tensor& ref, const char* what, const std::string& op) {
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": ", what, " has dtype ", t.scalar_type(), ", expected ",
                   ref.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), op, ": ", what, " is on ", t.device(), ", expected ", ref.device());
}

void check_like(const at::Tensor& t, const at::Tensor& ref, const char* what, const std::string& op) {
  TORCH_CHECK(t.sizes() == ref.sizes(), op, ": ", what, " has shape ", t.sizes(), ", expected ", ref.sizes());
  check_dtype_device(t, ref, what, op);
}

bool is_linear(const at::Tensor& t) { return t.is_non_overlapping_and_dense(); }

at::Tensor empty_as(const at::Tensor& t) {
  return t.is_contiguous() ? empty_with(t.sizes(), t.options()) : at::empty_like(t);
}

at::Tensor empty_with(c10::IntArrayRef sizes, const at::TensorOptions& options) {
  return options.device().is_cpu() ? at::detail::empty_cpu(sizes, options) : at::empty(sizes, options);
}

bool has_layout(const at::Tensor& t, c10::IntArrayRef strides) {
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) > 1 && t.stride(d) != strides[d]) return false;
  }
  return is_linear(t);
}

namespace {

// src and dst dense, alike but for their layouts: whether, taken in dst's memory order and with
// the dimensions that stay adjacent in src merged, src is a batch of transposed matrices (the
// NCHW <-> NHWC pair: dst NHWC orders (N, HW, C), where src's strides read (CHW, 1, HW)).
bool as_transpose(const at::Tensor& src, const at::Tensor& dst, cpu::TransposeArgs& a) {
  c10::SmallVector<int64_t, 6> order;
  for (int64_t d = 0; d < dst.dim(); ++d) {
    if (dst.size(d) > 1) order.push_back(d);
  }
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return dst.stride(i) > dst.stride(j); });
  c10::SmallVector<std::pair<int64_t, int64_t>, 6> dims;  // (size, src's stride), outermost first
  for (const int64_t d : order) {
    if (!dims.empty() && dims.back().second == src.size(d) * src.stride(d)) {
      dims.back() = {dims.back().first * src.size(d), src.stride(d)};
    } else {
      dims.emplace_back(src.size(d), src.stride(d));
    }
  }
  if (dims.size() == 2) dims.insert(dims.begin(), {1, 0});
  if (dims.size() != 3) return false;
  const auto [batch, sb] = dims[0];
  const auto [cols, sc] = dims[1];  // dst [batch][cols][rows] reads src [batch][rows][cols]
  const auto [rows, sr] = dims[2];
  if (sc != 1 || sr != cols || (batch > 1 && sb != rows * cols)) return false;
  // A group under 16 leaves a tile mostly empty, and the transpose network costs a whole tile's:
  // (8, 576, 2, 2) channels-last -> NCHW took 25.3 us against copy_'s 6.9 (one thread).
  if (std::min(rows, cols) < 16) return false;
  a = {src.const_data_ptr(), dst.data_ptr(), batch, rows, cols, static_cast<int>(src.element_size())};
  return true;
}

}  // namespace

void copy_into(at::Tensor& dst, const at::Tensor& src) {
  cpu::TransposeArgs a;
  if (src.is_cpu() && dst.is_cpu() && src.scalar_type() == dst.scalar_type() && src.sizes() == dst.sizes() &&
      src.numel() > 0 && is_linear(src) && is_linear(dst) && as_transpose(src, dst, a)) {
    cpu::run_transpose(a);
  } else {
    dst.copy_(src);
  }
}

at::Tensor with_layout_of(const at::Tensor& t, const at::Tensor& ref) {
  if (has_layout(t, ref.strides())) return t;
  at::Tensor out = empty_as(ref);
  copy_into(out, t);
  return out;
}

ElementwiseArgs make_args(const ActivationInfo& info, Kind kind, DType dtype, c10::ArrayRef<double> params,
                          bool from_output) {
  ElementwiseArgs a{};
  a.act = info.id;
  a.kind = kind;
  a.from_output = from_output;
  a.dtype = dtype;
  for (size_t i = 0; i < params.size(); ++i) a.params[i] = params[i];
  return a;
}

Operand flat(const at::Tensor& t) { return Operand{t.const_data_ptr(), 0, 0, false}; }

OutOperand flat_out(at::Tensor& t) { return OutOperand{t.data_ptr(), 0}; }

void set_flat(ElementwiseArgs& a, int64_t numel) {
  a.rows = 1;
  a.cols = numel;
}

int64_t wrap_dim(int64_t dim, const at::Tensor& t, const std::string& op) {
  const int64_t n = t.dim();
  TORCH_CHECK_INDEX(n > 0, op, ": expected a tensor with at least one dimension, got a 0-dim tensor");
  TORCH_CHECK_INDEX(dim >= -n && dim < n, op, ": dim ", dim, " is out of range for a tensor with ", n, " dimensions");
  return dim < 0 ? dim + n : dim;
}

}  // namespace fused_act
