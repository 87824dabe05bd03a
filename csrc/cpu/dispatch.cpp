#include "dispatch.h"

#include <cstdlib>

#include <ATen/Version.h>
#include <ATen/cpu/Utils.h>

#include "kernels.h"
#include "transpose.h"

namespace fused_act::cpu {

namespace {

using ElementwiseKernel = void (*)(const ElementwiseArgs&, const ChannelSum*);
using MaskKernel = void (*)(const MaskArgs&);
using SoftmaxKernel = void (*)(const SoftmaxArgs&);
using TransposeKernel = void (*)(const TransposeArgs&);

// One instruction set's kernels, indexed by ActId.
struct Isa {
  std::string name;
  ElementwiseKernel elementwise[kNumActivations];
  MaskKernel mask[kNumActivations];
  SoftmaxKernel softmax;
  TransposeKernel transpose;
};

template <template <class> class Kernels>
Isa make_isa(const char* name, SoftmaxKernel softmax, TransposeKernel transpose) {
#define FA_ELEMENTWISE(F) &Kernels<act::F>::elementwise,
#define FA_MASK(F) &Kernels<act::F>::mask,
  return {name,
          {FUSED_ACT_FOR_EACH_ACTIVATION(FA_ELEMENTWISE)},
          {FUSED_ACT_FOR_EACH_ACTIVATION(FA_MASK)},
          softmax,
          transpose};
#undef FA_ELEMENTWISE
#undef FA_MASK
}

// setup.py defines FUSED_ACT_CPU_AVX2 / _AVX512 when it builds those sets (x86-64).
const std::vector<Isa>& isas() {
  static const std::vector<Isa> list = {
#ifdef FUSED_ACT_CPU_AVX512
      make_isa<AVX512::ActivationKernels>("AVX512", &AVX512::run_softmax, &AVX512::run_transpose),
#endif
#ifdef FUSED_ACT_CPU_AVX2
      make_isa<AVX2::ActivationKernels>("AVX2", &AVX2::run_softmax, &AVX2::run_transpose),
#endif
      make_isa<DEFAULT::ActivationKernels>("DEFAULT", &DEFAULT::run_softmax, &DEFAULT::run_transpose),
  };
  return list;
}

int rank(const std::string& isa) {
  if (isa == "AVX512") return 2;
  if (isa == "AVX2") return 1;
  return 0;
}

const Isa& chosen() {
  static const Isa& isa = [&]() -> const Isa& {
    const int allowed = rank(at::get_cpu_capability());
    for (const Isa& candidate : isas()) {
      if (rank(candidate.name) <= allowed) return candidate;
    }
    return isas().back();
  }();
  return isa;
}

#ifdef FUSED_ACT_CPU_AVX512_BF16
const Isa& avx512_bf16() {
  static const Isa isa =
      make_isa<AVX512_BF16::ActivationKernels>("AVX512_BF16", &AVX512_BF16::run_softmax, &AVX512_BF16::run_transpose);
  return isa;
}
#endif

// bfloat16's set: AVX512_BF16 where the AVX512 kernels run and the CPU has avx512_bf16 (ATen's
// cpuinfo), unless FUSED_ACT_NATIVE_BF16=0 (the tests compare the two roundings); else the chosen set.
const Isa& chosen_bf16() {
  static const Isa& isa = []() -> const Isa& {
#ifdef FUSED_ACT_CPU_AVX512_BF16
    const char* env = std::getenv("FUSED_ACT_NATIVE_BF16");
    const bool allowed = env == nullptr || std::string(env) != "0";
    const auto caps = at::cpu::get_cpu_capabilities();
    const auto bf16 = caps.find("avx512_bf16");
    if (allowed && chosen().name == "AVX512" && bf16 != caps.end() && bf16->second.toBool()) return avx512_bf16();
#endif
    return chosen();
  }();
  return isa;
}

const Isa& for_dtype(DType d) { return d == DType::kBFloat16 ? chosen_bf16() : chosen(); }

}  // namespace

const std::vector<std::string>& built_isas() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const Isa& isa : isas()) out.push_back(isa.name);
#ifdef FUSED_ACT_CPU_AVX512_BF16
    out.insert(out.begin(), avx512_bf16().name);
#endif
    return out;
  }();
  return names;
}

const std::string& runtime_isa() { return chosen().name; }

const std::string& runtime_isa_bf16() { return chosen_bf16().name; }

void run_elementwise(const ElementwiseArgs& a, const ChannelSum* sum) {
  for_dtype(a.dtype).elementwise[static_cast<int>(a.act)](a, sum);
}

void run_softmax(const SoftmaxArgs& a) { for_dtype(a.dtype).softmax(a); }

void run_mask(const MaskArgs& a) { for_dtype(a.dtype).mask[static_cast<int>(a.act)](a); }

void run_transpose(const TransposeArgs& a) { chosen().transpose(a); }

}  // namespace fused_act::cpu
