#include "dispatch.h"

#include <ATen/Version.h>

namespace fused_act::cpu {

// One declaration per build of kernels.cpp; setup.py defines FUSED_ACT_CPU_AVX2 / _AVX512 when
// it builds those variants (x86-64 with a compiler that accepts the flags).
namespace DEFAULT {
void run_elementwise(const ElementwiseArgs& a);
void run_mask(const MaskArgs& a);  // mask_kernels.cpp
}
#ifdef FUSED_ACT_CPU_AVX2
namespace AVX2 {
void run_elementwise(const ElementwiseArgs& a);
void run_mask(const MaskArgs& a);  // mask_kernels.cpp
}
#endif
#ifdef FUSED_ACT_CPU_AVX512
namespace AVX512 {
void run_elementwise(const ElementwiseArgs& a);
void run_mask(const MaskArgs& a);  // mask_kernels.cpp
}
#endif

namespace {

struct Isa {
  std::string name;
  void (*kernel)(const ElementwiseArgs&);
  void (*mask_kernel)(const MaskArgs&);
};

const std::vector<Isa>& isas() {
  static const std::vector<Isa> list = {
#ifdef FUSED_ACT_CPU_AVX512
      {"AVX512", &AVX512::run_elementwise, &AVX512::run_mask},
#endif
#ifdef FUSED_ACT_CPU_AVX2
      {"AVX2", &AVX2::run_elementwise, &AVX2::run_mask},
#endif
      {"DEFAULT", &DEFAULT::run_elementwise, &DEFAULT::run_mask},
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

void run_elementwise(const ElementwiseArgs& a) { chosen().kernel(a); }

void run_mask(const MaskArgs& a) { chosen().mask_kernel(a); }

}  // namespace fused_act::cpu
