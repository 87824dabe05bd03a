// batch_norm_act(x, ...) = act(batch_norm(x, ...)) with channels along dim 1, and its backward:
// the normalisation is applied as z = x * scale + shift inside the activation's loop (elementwise.h,
// AffineForwardOp), so batch norm's output never reaches memory. Training takes one pass more for
// the statistics, and backward two passes (the per-channel sums of dz and dz * x, then dx), where
// F.batch_norm followed by an activation takes 2 + 1 passes forward and 1 + 2 backward, and
// torch.compile's inductor, which fuses both, takes as many as this op but cannot fuse across a
// custom op (docs/fusions.md). inplace_abn (Rota Bulo et al. 2018) fuses the same two layers.
//
// The per-channel arithmetic (statistics from the sums, the affine coefficients, the running
// averages, the backward's k0 and k1) is written once, as templates over the container: a double
// (on the CPU, a loop over the channels that writes the arrays the kernels read) or an at::Tensor
// of all channels (on a device, which a host loop would have to copy back). On the CPU the op
// makes no ATen call it can avoid: at mobilenet_v3_small's sizes (a few thousand elements per
// batch norm) each costs about what the kernels' work on a hundred channels does, and the first
// version, which built every per-channel vector with tensor ops, took 50 us of host time per
// forward + backward where eager's batch norm and activation take 70 us in all.
#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/core/DeviceGuard.h>

#include "activation_ops.h"
#include "channel_layout.h"

namespace fused_act {

namespace {

using at::Tensor;

double rsqrt_of(double v) { return 1.0 / std::sqrt(v); }
Tensor rsqrt_of(const Tensor& v) { return v.rsqrt(); }
double clamp_nonneg(double v) { return v > 0.0 ? v : 0.0; }
Tensor clamp_nonneg(const Tensor& v) { return v.clamp_min(0.0); }

// Batch statistics from the kernel's sums s1 = sum(x - k), s2 = sum((x - k)^2) over m elements.
template <class V>
void batch_stats(const V& k, const V& s1, const V& s2, double m, double eps, V& mean, V& var, V& invstd) {
  const V d = s1 / m;
  mean = k + d;
  var = clamp_nonneg(s2 / m - d * d);  // rounding can take a constant channel's variance below 0
  invstd = rsqrt_of(var + eps);
}

// z = x * scale + shift is weight * (x - mean) * invstd + bias.
template <class V>
void affine(const V& w, const V& b, const V& mean, const V& invstd, V& scale, V& shift) {
  scale = w * invstd;
  shift = b - mean * scale;
}

// torch's running averages: the unbiased variance, momentum the weight of the new value.
template <class V>
V running(const V& old, const V& batch, double momentum) {
  return old + (batch - old) * momentum;
}

// The backward's per-channel results from sdz = sum(dz) and sdzx = sum(dz * x) (elementwise.h):
// grad_weight = sum(dz xhat) = invstd (sdzx - mean sdz), grad_bias = sdz, and in training
// dx = scale * dz + k0 + k1 * x.
template <class V>
void backward_coefs(const V& scale, const V& mean, const V& invstd, const V& sdz, const V& sdzx, double m, V& grad_w,
                    V& k0, V& k1) {
  grad_w = invstd * (sdzx - mean * sdz);
  k1 = -(scale * invstd * grad_w) / m;
  k0 = -(scale * sdz) / m - k1 * mean;
}

at::ScalarType acc_type(const Tensor& x) { return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

bool present(const c10::optional<Tensor>& t) { return t.has_value() && t->defined(); }

// A per-channel vector as a contiguous vector of the compute type: t itself when it already is
// one (then writes through Values reach t).
Tensor as_acc(const Tensor& t, at::ScalarType acc) {
  return t.scalar_type() == acc && t.is_contiguous() ? t : t.to(acc).contiguous();
}

// Read and written as double by index: a contiguous vector of the compute type (float or double),
// or nothing (every read gives `fill`: an absent weight reads 1, bias 0). The pointer is taken
// once: data_ptr<T>() checks the dtype on every call.
class Values {
 public:
  Values() = default;
  explicit Values(const Tensor& t, double fill = 0.0)
      : p_(t.defined() ? t.data_ptr() : nullptr), dbl_(t.defined() && t.scalar_type() == at::kDouble), fill_(fill) {}
  double operator[](int64_t c) const {
    if (p_ == nullptr) return fill_;
    return dbl_ ? static_cast<const double*>(p_)[c] : static_cast<const float*>(p_)[c];
  }
  void set(int64_t c, double v) const {
    if (dbl_) {
      static_cast<double*>(p_)[c] = v;
    } else {
      static_cast<float*>(p_)[c] = static_cast<float>(v);
    }
  }

 private:
  void* p_ = nullptr;
  bool dbl_ = false;
  double fill_ = 0.0;
};

// How this op's launches see a tensor: channel_layout.h's two shapes, with short rows widened.
// Every row costs a set-up per pass (pointers, a masked tail), so rows of a few floats are slow:
//   contiguous with short rows (H * W): rows = N, cols = C * H * W, every per-channel array
//     expanded to one value per column (each value repeated H * W times). Row by row, each (n, c)
//     row of 4 floats (2 x 2 images) cost a masked block and a row's set-up per pass: forward +
//     backward of (8, 576, 2, 2) took 400 us against eager's 210;
//   channels innermost with few channels (channels-last images, which inductor hands the op
//     under torch.compile): `tiles` consecutive rows as one, every per-channel array repeated
//     `tiles` times. (8, 16, 32, 32) channels-last, rows of 16 floats: forward 112 and backward
//     221 us against 49 and 83 for the same tensor contiguous.
// The sums of reduce-only launches are then taken per column and added up per channel.
class Launch {
 public:
  explicit Launch(const Tensor& out) : l_(layout_of(out, 1)), real_(l_), channels_(l_.channels) {
    if (!l_.per_col && l_.cols < kShortRows) {
      repeat_ = l_.cols;
      l_ = {l_.rows / l_.channels, width(), width(), true};
    } else if (l_.per_col && l_.cols < kShortRows) {
      tiles_ = tiles_for(l_.rows, l_.cols);
      l_ = {l_.rows / tiles_, width(), width(), true};
    }
  }

  const ChannelLayout& real() const { return real_; }
  void shape(ElementwiseArgs& a) const {
    a.rows = l_.rows;
    a.cols = l_.cols;
  }
  Operand tensor(const Tensor& t) const { return row_operand(t, l_); }
  OutOperand output(Tensor& t) const { return OutOperand{t.data_ptr(), l_.cols}; }

  // `count` per-channel arrays of the compute type, as the kernels read them (expanded for
  // widened rows): set(j, c, v) writes array j's channel c.
  class Arrays {
   public:
    Arrays(const Launch& l, const Tensor& like, int count)
        : storage_(at::empty({count * l.width()}, like.options().dtype(acc_type(like)))),
          values_(storage_),
          launch_(&l) {}
    // On a device: from per-channel tensors, expanded there.
    Arrays(const Launch& l, const std::vector<Tensor>& vectors)
        : storage_(at::stack(vectors)
                       .view({static_cast<int64_t>(vectors.size()), 1, l.channels_, 1})
                       .expand({static_cast<int64_t>(vectors.size()), l.tiles_, l.channels_, l.repeat_})
                       .contiguous()),
          launch_(&l) {}
    void set(int j, int64_t c, double v) const {
      const Launch& l = *launch_;
      for (int64_t t = 0; t < l.tiles_; ++t) {
        for (int64_t i = 0; i < l.repeat_; ++i) values_.set(l.index(j, t, c, i), v);
      }
    }
    Operand operand(int j) const {
      const auto* base = static_cast<const char*>(storage_.const_data_ptr());
      return channel_operand_at(base + j * launch_->width() * storage_.element_size(), launch_->l_);
    }

   private:
    Tensor storage_;
    Values values_;
    const Launch* launch_;
  };

  // Runs a reduce-only launch; returns its two sums per channel: (2, width) of the compute type,
  // read per channel by fold().
  Tensor sums(const ElementwiseArgs& a, const Tensor& like, Runner run) const {
    // The CPU loop adds into the sums, the CUDA kernels (and their simulation) write them.
    const auto opts = like.options().dtype(acc_type(like));
    Tensor sums = like.is_cpu() ? at::zeros({2, l_.channels}, opts) : at::empty({2, l_.channels}, opts);
    const ChannelSum channel_sum{sums.data_ptr(), l_.channels, l_.per_col};
    run(a, &channel_sum);
    return sums;
  }
  // Sum j of channel c, from sums() of a CPU launch.
  double fold(const Values& sums, int j, int64_t c) const {
    double total = 0;
    for (int64_t t = 0; t < tiles_; ++t) {
      for (int64_t i = 0; i < repeat_; ++i) total += sums[index(j, t, c, i)];
    }
    return total;
  }
  // sums() of a device launch as (2, C) tensors.
  Tensor fold(const Tensor& sums) const {
    return width() > channels_ ? sums.view({2, tiles_, channels_, repeat_}).sum({1, 3}) : sums;
  }

 private:
  // Below this row length, a widened shape. Contiguous, forward + backward (hardswish, 2 threads)
  // with the bound at 65, 257 and 1025: (8, 88, 8, 8) expanded took 51-54 + 74-76 us against
  // 43 + 67 by rows, and (8, 72, 16, 16) and (8, 16, 32, 32) 3-5x longer (two per-column sums
  // per element).
  static constexpr int64_t kShortRows = 64;
  // Channels-last rows below kShortRows are widened to at least kWideRows floats, keeping at
  // least kMinRows rows for the threads to share. The forward and backward ops at 2 threads,
  // widened to 16 (not at all) / 64 / 256 / 1024: (8, 16, 32, 32) 108 + 227 / 61 + 128 / 58 + 107
  // / 64 + 116 us; (8, 96, 4, 4), rows of 96, 21 + 29 us as they are, 27 + 47 widened to 1024.
  static constexpr int64_t kWideRows = 256;
  static constexpr int64_t kMinRows = 16;
  // The fewest rows that, taken together, are kWideRows wide (up to 4x that) and divide `rows`;
  // 1 when none does.
  static int64_t tiles_for(int64_t rows, int64_t cols) {
    const int64_t fewest = (kWideRows + cols - 1) / cols;
    for (int64_t k = fewest; k <= 4 * fewest && k * kMinRows <= rows; ++k) {
      if (rows % k == 0) return k;
    }
    return 1;
  }
  int64_t width() const { return tiles_ * channels_ * repeat_; }
  int64_t index(int j, int64_t t, int64_t c, int64_t i) const {
    return j * width() + (t * channels_ + c) * repeat_ + i;
  }
  ChannelLayout l_, real_;
  int64_t channels_;
  int64_t repeat_ = 1, tiles_ = 1;
};

struct Checked {
  std::string op;
  const ActivationInfo* info;
  DType dtype;
};

// A per-channel vector argument (weight, bias, running statistics), when given.
void check_channel_vector(const c10::optional<Tensor>& t, const char* what, const Tensor& x, const std::string& op) {
  if (!present(t)) return;
  TORCH_CHECK(t->device() == x.device(), op, ": ", what, " is on ", t->device(), ", expected ", x.device());
  TORCH_CHECK_TYPE(at::isFloatingType(t->scalar_type()), op, ": ", what, " must be floating point, got ",
                   t->scalar_type());
  TORCH_CHECK(t->dim() == 1 && t->size(0) == x.size(1), op, ": ", what, " must be 1-D with x.size(1) = ", x.size(1),
              " elements, got shape ", t->sizes());
}

Checked check_args(const Tensor& x, const c10::optional<Tensor>& weight, const c10::optional<Tensor>& bias,
                   std::string_view act, c10::ArrayRef<double> params) {
  const ActivationInfo& info = checked_activation(act, params);
  std::string op = op_name("batch_norm_act", info);
  check_device(x, op);
  const DType dtype = checked_dtype(x, op);
  TORCH_CHECK(x.dim() >= 2, op, ": expected x with at least 2 dimensions (N, C, ...), got shape ", x.sizes());
  check_channel_vector(weight, "weight", x, op);
  check_channel_vector(bias, "bias", x, op);
  return {std::move(op), &info, dtype};
}

// Each channel's first element of xl (laid out as l): the statistics' shift, as doubles (CPU).
std::vector<double> first_of_channels(const Tensor& xl, const ChannelLayout& l) {
  std::vector<double> k(l.channels);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, xl.scalar_type(), "batch_norm_act", [&] {
    const auto* p = xl.const_data_ptr<scalar_t>();
    for (int64_t c = 0; c < l.channels; ++c) k[c] = static_cast<double>(p[l.per_col ? c : c * l.cols]);
  });
  return k;
}

// The same on a device, as a (C,) tensor of the compute type.
Tensor first_of_channels_tensor(const Tensor& xl, const ChannelLayout& l) {
  return at::as_strided(xl, {l.channels}, {l.per_col ? 1 : l.cols}, xl.storage_offset()).to(acc_type(xl));
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor> batch_norm_act(const Tensor& x, const c10::optional<Tensor>& weight,
                                                  const c10::optional<Tensor>& bias,
                                                  const c10::optional<Tensor>& running_mean,
                                                  const c10::optional<Tensor>& running_var, bool training,
                                                  double momentum, double eps, std::string_view act,
                                                  c10::ArrayRef<double> params, Runner run) {
  const Checked ck = check_args(x, weight, bias, act, params);
  check_channel_vector(running_mean, "running_mean", x, ck.op);
  check_channel_vector(running_var, "running_var", x, ck.op);
  TORCH_CHECK(present(running_mean) == present(running_var), ck.op,
              ": running_mean and running_var must be given together");
  TORCH_CHECK(training || present(running_mean), ck.op,
              ": eval mode (training=False) needs running_mean and running_var");
  TORCH_CHECK(eps > 0.0, ck.op, ": eps must be > 0, got ", eps);
  const int64_t channels = x.size(1);
  const int64_t m = channels == 0 ? 0 : x.numel() / channels;
  TORCH_CHECK(!training || m > 1, ck.op, ": expected more than 1 value per channel when training, got input of shape ",
              x.sizes());
  c10::OptionalDeviceGuard guard(guard_device(x));
  Tensor out = channel_output(x, 1);
  const auto acc = acc_type(x);
  const auto opts = x.options().dtype(acc);
  Tensor mean = at::empty({channels}, opts), invstd = at::empty({channels}, opts);
  if (out.numel() == 0) return {out, mean, invstd};
  const Tensor xl = with_layout_of(x, out);
  const Launch launch(out);
  const bool update = training && present(running_mean);

  auto stats_sums = [&](const Launch::Arrays& shift_k) {
    ElementwiseArgs s = make_args(find_activation("identity"), Kind::kChannelStats, ck.dtype, {});
    s.in[0] = launch.tensor(xl);
    s.in[1] = shift_k.operand(0);
    launch.shape(s);
    return launch.sums(s, xl, run);
  };

  std::optional<Launch::Arrays> coefs;  // scale, shift
  if (x.is_cpu()) {
    const Tensor w = present(weight) ? as_acc(*weight, acc) : Tensor(),
                 b = present(bias) ? as_acc(*bias, acc) : Tensor();
    const Values W(w, 1.0), B(b, 0.0), Mean(mean), Invstd(invstd);
    coefs.emplace(launch, x, 2);
    Tensor rm, rv;
    if (present(running_mean)) rm = as_acc(*running_mean, acc), rv = as_acc(*running_var, acc);
    const Values Rm(rm), Rv(rv);
    if (training) {
      const std::vector<double> k = first_of_channels(xl, launch.real());
      const Launch::Arrays shift_k(launch, x, 1);
      for (int64_t c = 0; c < channels; ++c) shift_k.set(0, c, k[c]);
      const Tensor sums = stats_sums(shift_k);
      const Values S(sums);
      for (int64_t c = 0; c < channels; ++c) {
        double mu, var, is;
        batch_stats(k[c], launch.fold(S, 0, c), launch.fold(S, 1, c), static_cast<double>(m), eps, mu, var, is);
        Mean.set(c, mu), Invstd.set(c, is);
        if (update) {
          Rm.set(c, running(Rm[c], mu, momentum));
          Rv.set(c, running(Rv[c], var * m / (m - 1), momentum));
        }
      }
      if (update && !rm.is_same(*running_mean)) running_mean->copy_(rm);
      if (update && !rv.is_same(*running_var)) running_var->copy_(rv);
    } else {
      for (int64_t c = 0; c < channels; ++c) Mean.set(c, Rm[c]), Invstd.set(c, rsqrt_of(Rv[c] + eps));
    }
    for (int64_t c = 0; c < channels; ++c) {
      double sc, sh;
      affine(W[c], B[c], Mean[c], Invstd[c], sc, sh);
      coefs->set(0, c, sc), coefs->set(1, c, sh);
    }
  } else {
    const Tensor w = present(weight) ? weight->to(acc) : at::ones({channels}, opts);
    const Tensor b = present(bias) ? bias->to(acc) : at::zeros({channels}, opts);
    Tensor mu, var, is;
    if (training) {
      const Tensor k = first_of_channels_tensor(xl, launch.real());
      const Tensor sums = launch.fold(stats_sums(Launch::Arrays(launch, {k})));
      batch_stats(k, sums[0], sums[1], static_cast<double>(m), eps, mu, var, is);
      if (update) {
        running_mean->copy_(running(running_mean->to(acc), mu, momentum));
        running_var->copy_(running(running_var->to(acc), var * (static_cast<double>(m) / (m - 1)), momentum));
      }
    } else {
      mu = running_mean->to(acc), is = rsqrt_of(running_var->to(acc) + eps);
    }
    mean.copy_(mu), invstd.copy_(is);
    Tensor scale, shift;
    affine(w, b, mu, is, scale, shift);
    coefs.emplace(launch, std::vector<Tensor>{scale, shift});
  }

  ElementwiseArgs a = make_args(*ck.info, Kind::kAffineForward, ck.dtype, params);
  a.in[0] = launch.tensor(xl);
  a.in[1] = coefs->operand(0);
  a.in[2] = coefs->operand(1);
  launch.shape(a);
  a.out[0] = launch.output(out);
  run(a, nullptr);
  return {out, mean, invstd};
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_act_backward(const Tensor& grad, const Tensor& x,
                                                           const c10::optional<Tensor>& weight,
                                                           const c10::optional<Tensor>& bias, const Tensor& save_mean,
                                                           const Tensor& save_invstd, bool training,
                                                           std::string_view act, c10::ArrayRef<double> params,
                                                           std::array<bool, 3> output_mask, Runner run) {
  const Checked ck = check_args(x, weight, bias, act, params);
  check_like(grad, x, "grad", ck.op);
  const int64_t channels = x.size(1);
  for (const auto& [t, what] : {std::pair{&save_mean, "save_mean"}, std::pair{&save_invstd, "save_invstd"}}) {
    TORCH_CHECK(t->dim() == 1 && t->size(0) == channels && t->device() == x.device(), ck.op, ": ", what,
                " must be 1-D with x.size(1) = ", channels, " elements on ", x.device(), ", got shape ", t->sizes());
  }
  c10::OptionalDeviceGuard guard(guard_device(x));
  const auto acc = acc_type(x);
  const auto wopts = present(weight) ? weight->options() : x.options().dtype(acc);
  Tensor grad_x = output_mask[0] ? channel_output(x, 1) : Tensor();
  const int64_t m = channels == 0 ? 0 : x.numel() / channels;
  if (x.numel() == 0) {
    return {grad_x, output_mask[1] ? at::zeros({channels}, wopts) : Tensor(),
            output_mask[2] ? at::zeros({channels}, wopts) : Tensor()};
  }
  const Tensor like = output_mask[0] ? grad_x : channel_output(x, 1);
  const Tensor xl = with_layout_of(x, like), g = with_layout_of(grad, like);
  const Launch launch(like);
  // The sums are needed for dx in training, and for the weight and bias gradients.
  const bool sums_needed = (training && output_mask[0]) || output_mask[1] || output_mask[2];
  auto grad_sums = [&](const Launch::Arrays& coefs) {
    ElementwiseArgs s = make_args(*ck.info, Kind::kAffineGradSums, ck.dtype, params);
    s.in[0] = launch.tensor(g);
    s.in[1] = launch.tensor(xl);
    s.in[2] = coefs.operand(0);
    s.in[3] = coefs.operand(1);
    launch.shape(s);
    return launch.sums(s, xl, run);
  };

  std::optional<Launch::Arrays> coefs;  // scale, shift, k0, k1
  Tensor grad_w, grad_b;
  if (x.is_cpu()) {
    const Tensor w = present(weight) ? as_acc(*weight, acc) : Tensor(),
                 b = present(bias) ? as_acc(*bias, acc) : Tensor();
    const Tensor mean = as_acc(save_mean, acc), invstd = as_acc(save_invstd, acc);
    const Values W(w, 1.0), B(b, 0.0), Mean(mean), Invstd(invstd);
    coefs.emplace(launch, x, 4);
    std::vector<double> scale(channels);
    for (int64_t c = 0; c < channels; ++c) {
      double sh;
      affine(W[c], B[c], Mean[c], Invstd[c], scale[c], sh);
      coefs->set(0, c, scale[c]), coefs->set(1, c, sh), coefs->set(2, c, 0.0), coefs->set(3, c, 0.0);
    }
    if (sums_needed) {
      const Tensor sums = grad_sums(*coefs);
      const Values S(sums);
      grad_w = at::empty({channels}, x.options().dtype(acc)), grad_b = at::empty_like(grad_w);
      const Values Gw(grad_w), Gb(grad_b);
      for (int64_t c = 0; c < channels; ++c) {
        const double sdz = launch.fold(S, 0, c);
        double gw, k0, k1;
        backward_coefs(scale[c], Mean[c], Invstd[c], sdz, launch.fold(S, 1, c), static_cast<double>(m), gw, k0, k1);
        Gw.set(c, gw), Gb.set(c, sdz);
        if (training) coefs->set(2, c, k0), coefs->set(3, c, k1);
      }
    }
  } else {
    const Tensor w = present(weight) ? weight->to(acc) : at::ones({channels}, x.options().dtype(acc));
    const Tensor b = present(bias) ? bias->to(acc) : at::zeros_like(w);
    const Tensor mean = save_mean.to(acc), invstd = save_invstd.to(acc);
    Tensor scale, shift, k0 = at::zeros_like(w), k1 = at::zeros_like(w);
    affine(w, b, mean, invstd, scale, shift);
    if (sums_needed) {
      const Tensor sums = launch.fold(grad_sums(Launch::Arrays(launch, {scale, shift})));
      Tensor gw, c0, c1;
      backward_coefs(scale, mean, invstd, sums[0], sums[1], static_cast<double>(m), gw, c0, c1);
      grad_w = gw, grad_b = sums[0];
      if (training) k0 = c0, k1 = c1;
    }
    coefs.emplace(launch, std::vector<Tensor>{scale, shift, k0, k1});
  }
  if (output_mask[0]) {
    ElementwiseArgs a = make_args(*ck.info, Kind::kAffineBackward, ck.dtype, params);
    a.in[0] = launch.tensor(g);
    a.in[1] = launch.tensor(xl);
    for (int j = 0; j < 4; ++j) a.in[2 + j] = coefs->operand(j);
    launch.shape(a);
    a.out[0] = launch.output(grad_x);
    run(a, nullptr);
  }
  return {grad_x, output_mask[1] ? grad_w.to(wopts.dtype()) : Tensor(),
          output_mask[2] ? grad_b.to(wopts.dtype()) : Tensor()};
}

}  // namespace fused_act
