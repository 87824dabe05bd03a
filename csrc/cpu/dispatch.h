// Run-time choice among the per-instruction-set builds of the CPU kernels (cpu/kernels.h).
#pragma once

#include <string>
#include <vector>

#include "../activations/elementwise.h"
#include "../activations/mask.h"
#include "../activations/softmax_args.h"

namespace fused_act::cpu {

// The instruction sets this build has kernels for, best first ("AVX512_BF16", "AVX512", "AVX2",
// "DEFAULT"); AVX512_BF16 holds bfloat16's kernels only.
const std::vector<std::string>& built_isas();

// The one the kernels use on this machine: the best built set that
// at::get_cpu_capability() allows (it honours ATEN_CPU_CAPABILITY=default|avx2|avx512).
const std::string& runtime_isa();

// The one bfloat16's kernels use: AVX512_BF16 where runtime_isa() is AVX512 and the CPU has
// avx512_bf16 (FUSED_ACT_NATIVE_BF16=0 turns it off), else runtime_isa().
const std::string& runtime_isa_bf16();

// One launch on the chosen instruction set; `sum` (may be null) is fused into it.
void run_elementwise(const ElementwiseArgs& a, const ChannelSum* sum);
void run_softmax(const SoftmaxArgs& a);
void run_mask(const MaskArgs& a);

}  // namespace fused_act::cpu
