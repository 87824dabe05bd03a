// The arguments of one softmax launch, apart from the math (softmax.h), so that the dispatch
// tables and launch declarations (cpu/kernels.h, cpu/dispatch.h, cuda/launch.h) do not make every
// kernel object depend on the softmax math.
#pragma once

#include <cstdint>

#include "common.h"

namespace fused_act {

// Everything a backend needs to run one softmax op over a contiguous (outer, D, inner) tensor.
struct SoftmaxArgs {
  DType dtype;
  bool log;       // log_softmax
  bool backward;  // in = y (the forward's output), grad = upstream gradient
  const void* in;
  const void* grad;
  void* out;
  int64_t outer, dim, inner;
};

}  // namespace fused_act
