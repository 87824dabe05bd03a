// Every CPU kernel, for one instruction set. setup.py builds this file once per entry of its
// CPU_ISAS list, each time with that set's compiler flags and CPU_CAPABILITY defined to its
// name, so the same source becomes fused_act::cpu::DEFAULT::run_elementwise,
// ...::AVX2::run_elementwise and ...::AVX512::run_elementwise; dispatch.cpp picks one at run time.
#define FUSED_ACT_CPU_VEC 1

#include "vectorized_loop.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {

void run_elementwise(const ElementwiseArgs& a, const ChannelSum* sum) {
  visit_dtype(a.dtype, [&](auto storage) {
    using scalar_t = decltype(storage);
    visit_elementwise_op<opmath_t<scalar_t>>(a, [&](const auto& op) { vectorized_map<scalar_t>(a, op, sum); });
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
