// fused_act._C: loading it registers the torch ops (TORCH_LIBRARY in ops/); the functions here
// describe the build and the activation list to Python, and give the eager call path a direct
// entry into the ops (ops/autograd.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include "cpu/dispatch.h"
#include "cpu/streaming.h"
#include "ops/autograd.h"
#include "ops/registry.h"
#include "python_functional.h"

namespace py = pybind11;

namespace {

const char* saved_name(fused_act::Saved s) {
  switch (s) {
    case fused_act::Saved::kNone:
      return "none";
    case fused_act::Saved::kInput:
      return "input";
    case fused_act::Saved::kOutput:
      return "output";
    case fused_act::Saved::kEither:
      return "either";
  }
  return "?";
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "fused_act kernels; the ops live under torch.ops.fused_act";
  m.def(
      "activations",
      [] {
        py::list out;
        for (const auto& info : fused_act::activation_infos()) {
          out.append(py::make_tuple(info.name, info.params, saved_name(info.saved), info.functor));
        }
        return out;
      },
      "(name, parameter names, saved, functor struct) for every kernel in the C++ list, in list order");
  m.def(
      "saved_for",
      [](const std::string& name, const std::vector<double>& params) {
        const auto& info = fused_act::find_activation(name);
        fused_act::check_params(info, params);
        return saved_name(fused_act::saved_for(info, params));
      },
      "what backward keeps for this activation and these parameters: 'none', 'input' or 'output'");
  m.def(
      "maskable", [] { return fused_act::maskable_names(); },
      "activations whose backward can keep a 1-bit mask (torch.ops.fused_act.activation_mask)");
  m.def(
      "memory_bound",
      [] {
        std::vector<std::string> out;
        for (const auto& info : fused_act::activation_infos()) {
          if (info.memory_bound) out.push_back(info.name);
        }
        return out;
      },
      "activations whose functor is memory-bound (kMemoryBound): AVX2 on AVX-512, streaming stores");
  m.def("check_params", [](const std::string& name, const std::vector<double>& params) {
    fused_act::check_params(fused_act::find_activation(name), params);
  });
  // Eager only: torch.compile and torch.export must see torch.ops.fused_act (fused_act/ops.py).
  m.def(
      "activation",
      [](const at::Tensor& x, const std::string& act, const std::vector<double>& params) {
        return fused_act::eager_activation(x, act, params);
      },
      "torch.ops.fused_act.activation through a typed dispatcher handle (no boxing)");
  m.def(
      "activation_inplace",
      [](at::Tensor& x, const std::string& act, const std::vector<double>& params) {
        return fused_act::eager_activation_inplace(x, act, params);
      },
      "x = f(x), with autograd (in-place rules as torch's) when x requires grad; returns x");
  m.def(
      "bias_act",
      [](const at::Tensor& x, const at::Tensor& bias, int64_t dim, const std::string& act,
         const std::vector<double>& params) { return fused_act::eager_bias_act(x, bias, dim, act, params); },
      "torch.ops.fused_act.bias_act through a typed dispatcher handle");
  m.def(
      "batch_norm_act",
      [](const at::Tensor& x, const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias,
         const c10::optional<at::Tensor>& running_mean, const c10::optional<at::Tensor>& running_var, bool training,
         double momentum, double eps, const std::string& act, const std::vector<double>& params) {
        return fused_act::eager_batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps, act,
                                               params);
      },
      "torch.ops.fused_act.batch_norm_act's output through a typed dispatcher handle");
  m.def(
      "glu",
      [](const at::Tensor& x, int64_t dim, bool gate_first, const std::string& act, const std::vector<double>& params) {
        return fused_act::eager_glu(x, dim, gate_first, act, params);
      },
      "torch.ops.fused_act.glu through a typed dispatcher handle");
  m.def(
      "gated",
      [](const at::Tensor& a, const at::Tensor& u, const std::string& act, const std::vector<double>& params) {
        return fused_act::eager_gated(a, u, act, params);
      },
      "torch.ops.fused_act.gated through a typed dispatcher handle");
  m.def(
      "softmax", [](const at::Tensor& x, int64_t dim, bool log) { return fused_act::eager_softmax(x, dim, log); },
      "torch.ops.fused_act.softmax through a typed dispatcher handle");
  m.def(
      "activation_mask",
      [](const at::Tensor& x, const std::string& act, const std::vector<double>& params) {
        return fused_act::eager_activation_mask(x, act, params);
      },
      "the output of torch.ops.fused_act.activation_mask (the graph keeps the mask)");
  m.def(
      "activation_mask_inplace",
      [](at::Tensor& x, const std::string& act, const std::vector<double>& params) {
        return fused_act::eager_activation_mask_inplace(x, act, params);
      },
      "x = f(x) keeping the 1-bit mask, with autograd's in-place checks; returns x");
  fused_act::add_functional_entries(m);
  m.def("cpu_isas_built", [] { return fused_act::cpu::built_isas(); });
  m.def("cpu_isa", [] { return fused_act::cpu::runtime_isa(); });
  m.def("cpu_isa_bfloat16", [] { return fused_act::cpu::runtime_isa_bf16(); });
  m.def(
      "cpu_streaming",
      [] {
        const auto p = fused_act::cpu::stream_policy();
        return py::make_tuple(p.min_bytes, p.fresh_pages);
      },
      "(min_bytes, fresh_pages): when CPU launches store past the caches (csrc/cpu/streaming.h)");
  m.def(
      "set_cpu_streaming",
      [](int64_t min_bytes, bool fresh_pages) {
        const auto p = fused_act::cpu::set_stream_policy({min_bytes, fresh_pages});
        return py::make_tuple(p.min_bytes, p.fresh_pages);
      },
      py::arg("min_bytes"), py::arg("fresh_pages") = false, "sets it (min_bytes 0: never); returns the previous one");
  m.def("cpu_streamed_launches", &fused_act::cpu::streamed_launches, "CPU launches that streamed, since start-up");
#ifdef FUSED_ACT_WITH_CUDA
  m.attr("cuda_built") = true;
  m.attr("cuda_archs") = FUSED_ACT_CUDA_ARCHS;
#else
  m.attr("cuda_built") = false;
  m.attr("cuda_archs") = "";
#endif
}
