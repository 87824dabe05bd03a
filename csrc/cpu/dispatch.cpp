#include "dispatch.h"

#include <ATen/Version.h>

#include "kernels.h"

namespace fused_act::cpu {

namespace {

using ElementwiseKernel = void (*)(const ElementwiseArgs&, const ChannelSum*);
using MaskKernel = void (*)(const MaskArgs&);
using SoftmaxKernel = void (*)(const SoftmaxArgs&);

// One instruction set's kernels, indexed by ActId.
struct Isa {
  std::string name;
  ElementwiseKernel elementwise[kNumActivations];
  MaskKernel mask[kNumActivations];
  SoftmaxKernel softmax;
};

template <template <class> class Kernels>
Isa make_isa(const char* name, SoftmaxKernel softmax) {
#define FA_ELEMENTWISE(F) &Kernels<act::F>::elementwise,
#define FA_MASK(F) &Kernels<act::F>::mask,
  return {name, {FUSED_ACT_FOR_EACH_ACTIVATION(FA_ELEMENTWISE)}, {FUSED_ACT_FOR_EACH_ACTIVATION(FA_MASK)}, softmax};
#undef FA_ELEMENTWISE
#undef FA_MASK
}

// setup.py defines FUSED_ACT_CPU_AVX2 / _AVX512 when it builds those sets (x86-64).
const std::vector<Isa>& isas() {
  static const std::vector<Isa> list = {
#ifdef FUSED_ACT_CPU_AVX512
      make_isa<AVX512::ActivationKernels>("AVX512", &AVX512::run_softmax),
#endif
#ifdef FUSED_ACT_CPU_AVX2
      make_isa<AVX2::ActivationKernels>("AVX2", &AVX2::run_softmax),
#endif
      make_isa<DEFAULT::ActivationKernels>("DEFAULT", &DEFAULT::run_softmax),
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

}  // namespace

const std::vector<std::string>& built_isas() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const Isa& isa : isas()) out.push_back(isa.name);
    return out;
  }();
  return names;
}

const std::string& runtime_isa() { return chosen().name; }

void run_elementwise(const ElementwiseArgs& a, const ChannelSum* sum) {
  chosen().elementwise[static_cast<int>(a.act)](a, sum);
}

void run_softmax(const SoftmaxArgs& a) { chosen().softmax(a); }

void run_mask(const MaskArgs& a) { chosen().mask[static_cast<int>(a.act)](a); }

}  // namespace fused_act::cpu
