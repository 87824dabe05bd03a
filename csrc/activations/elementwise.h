// The elementwise computations every backend runs (forward, backward, double backward), built
// from the functors, and the dispatch from run-time values (activation id, kind, dtype) to a
// concrete op type. Backends only supply a loop; every instantiation comes from here.
#pragma once

#include <type_traits>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "common.h"
#include "list.h"

namespace fused_act {

// Compute type: float for float, half and bfloat16; double for double.
template <class S>
using opmath_t = std::conditional_t<std::is_same_v<S, double>, double, float>;

// One elementwise launch, backend-neutral. `in` holds num_inputs(kind) pointers; every tensor
// has n elements laid out identically (the op front makes sure of it).
struct ElementwiseArgs {
  ActId act;
  Kind kind;
  bool from_output;  // backward kinds: s is y (true) or x (false)
  DType dtype;
  const void* in[3];
  void* out;
  int64_t n;
  double params[kMaxParams];
};

template <class Act>
constexpr bool has_output_form() {
  return Act::kSaved == Saved::kOutput || Act::kSaved == Saved::kEither ||
         Act::kSaved == Saved::kNone;
}
template <class Act>
constexpr bool has_input_form() {
  return Act::kSaved == Saved::kInput || Act::kSaved == Saved::kEither;
}

template <class Act, class C>
struct ForwardOp {
  static constexpr int kInputs = 1;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T x) const {
    return Act::forward(x, p);
  }
};

template <class Act, bool kFromOutput, class C>
struct BackwardOp {
  static constexpr int kInputs = 2;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T g, T s) const {
    if constexpr (kFromOutput) {
      return g * Act::d_output(s, p);
    } else {
      return g * Act::d_input(s, p);
    }
  }
};

// Derivative of g * f'(s) with respect to s, times the incoming gradient gg.
template <class Act, bool kFromOutput, class C>
struct DoubleBackwardOp {
  static constexpr int kInputs = 3;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T gg, T g, T s) const {
    if constexpr (kFromOutput) {
      return gg * g * Act::d2_output(s, p);
    } else {
      return gg * g * Act::d2_input(s, p);
    }
  }
};

// Calls f(op) with the op object for (act, kind, from_output) in compute type C. Only the
// derivative forms a functor defines are instantiated; the op front never asks for another.
template <class C, class F>
inline void visit_elementwise_op(const ElementwiseArgs& a, F&& f) {
  const Params<C> p = make_params<C>(a.params);
  visit_activation(a.act, [&](auto functor) {
    using Act = decltype(functor);
    if (a.kind == Kind::kForward) {
      f(ForwardOp<Act, C>{p});
      return;
    }
    auto with_form = [&](auto from_output) {
      constexpr bool kFromOutput = decltype(from_output)::value;
      if (a.kind == Kind::kBackward) {
        f(BackwardOp<Act, kFromOutput, C>{p});
      } else {
        f(DoubleBackwardOp<Act, kFromOutput, C>{p});
      }
    };
    if constexpr (has_output_form<Act>() && has_input_form<Act>()) {
      if (a.from_output) {
        with_form(std::true_type{});
      } else {
        with_form(std::false_type{});
      }
    } else {
      with_form(std::bool_constant<has_output_form<Act>()>{});
    }
  });
}

// Calls f(scalar_t{}) for the storage type.
template <class F>
inline void visit_dtype(DType d, F&& f) {
  switch (d) {
    case DType::kFloat:
      f(float{});
      break;
    case DType::kDouble:
      f(double{});
      break;
    case DType::kHalf:
      f(c10::Half{});
      break;
    case DType::kBFloat16:
      f(c10::BFloat16{});
      break;
  }
}

}  // namespace fused_act
