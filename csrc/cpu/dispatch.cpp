#include "dispatch.h"

#include <ATen/Version.h>

namespace fused_act::cpu {

// One declaration per build of kernels.cpp and softmax_kernels.cpp; setup.py defines FUSED_ACT_CPU_AVX2 / _AVX512 when
// it builds those variants (x86-64 with a compiler that accepts the flags).
namespace DEFAULT {
void run_elementwise(const ElementwiseArgs& a, const ChannelSum* sum);
void run_softmax(const SoftmaxArgs& a);
void run_mask(const MaskArgs& a);  // mask_kernels.cpp
}
#ifdef FUSED_ACT_CPU_AVX2
namespace AVX2 {
void run_elementwise(const ElementwiseArgs& a, const ChannelSum* sum);
void run_softmax(const SoftmaxArgs& a);
void run_mask(const MaskArgs& a);  // mask_kernels.cpp
}
#endif
#ifdef FUSED_ACT_CPU_AVX512
namespace AVX512 {
void run_elementwise(const ElementwiseArgs& a, const ChannelSum* sum);
void run_softmax(const SoftmaxArgs& a);
void run_mask(const MaskArgs& a);  // mask_kernels.cpp
}
#endif

namespace {

using Kernel = void (*)(const ElementwiseArgs&, const ChannelSum*);
using SoftmaxKernel = void (*)(const SoftmaxArgs&);
using MaskKernel = void (*)(const MaskArgs&);

struct Isa {
  std::string name;
  Kernel kernel;
  SoftmaxKernel softmax;
  MaskKernel mask;
};

const std::vector<Isa>& isas() {
  static const std::vector<Isa> list = {
#ifdef FUSED_ACT_CPU_AVX512
      {"AVX512", &AVX512::run_elementwise, &AVX512::run_softmax, &AVX512::run_mask},
#endif
#ifdef FUSED_ACT_CPU_AVX2
      {"AVX2", &AVX2::run_elementwise, &AVX2::run_softmax, &AVX2::run_mask},
#endif
      {"DEFAULT", &DEFAULT::run_elementwise, &DEFAULT::run_softmax, &DEFAULT::run_mask},
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

void run_elementwise(const ElementwiseArgs& a, const ChannelSum* sum) { chosen().kernel(a, sum); }

void run_softmax(const SoftmaxArgs& a) { chosen().softmax(a); }

void run_mask(const MaskArgs& a) { chosen().mask(a); }

}  // namespace fused_act::cpu
