// The CPU kernels, as the per-instruction-set builds declare them. Each activation's kernels
// are one object per instruction set (cpu/activation_kernels.cpp, compiled by setup.py with that
// set's flags and CPU_CAPABILITY defined to its name); softmax is one object per set
// (cpu/softmax_kernels.cpp). cpu/dispatch.cpp picks a set at run time.
#pragma once

#include "../activations/elementwise.h"
#include "../activations/mask.h"
#include "../activations/softmax_args.h"

// Declares the kernels of one instruction set's namespace (DEFAULT, AVX2, AVX512, AVX512_BF16).
#define FUSED_ACT_DECLARE_CPU_KERNELS(ISA)                                          \
  namespace fused_act::cpu::ISA {                                                   \
  template <class Act>                                                              \
  struct ActivationKernels {                                                        \
    /* One elementwise launch; `sum` (may be null) is fused into it. */             \
    static void elementwise(const ElementwiseArgs& a, const ChannelSum* sum);       \
    /* One mask launch; only called for maskable activations (the front checks). */ \
    static void mask(const MaskArgs& a);                                            \
  };                                                                                \
  void run_softmax(const SoftmaxArgs& a);                                           \
  }

FUSED_ACT_DECLARE_CPU_KERNELS(DEFAULT)
FUSED_ACT_DECLARE_CPU_KERNELS(AVX2)
FUSED_ACT_DECLARE_CPU_KERNELS(AVX512)
FUSED_ACT_DECLARE_CPU_KERNELS(AVX512_BF16)
