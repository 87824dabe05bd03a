// Host-side metadata generated from the activation list: names, parameter names, what backward
// saves, and parameter checks. Used by the op front and exposed to Python.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <c10/util/ArrayRef.h>

#include "../activations/list.h"
#include "../activations/common.h"

namespace fused_act {

struct ActivationTraits;  // traits.h

struct ActivationInfo {
  ActId id;
  std::string name;
  std::string op;  // "fused_act.<name>": the plain ops' name in messages
  std::vector<std::string> params;
  Saved saved;          // as declared by the functor (kEither resolved per call by saved_for)
  std::string functor;  // the functor's struct (names the kernels in the machine code)
  bool maskable;        // backward can keep a 1-bit mask (activations/mask.h)
  bool memory_bound;    // kMemoryBound (activations/functor.h)
  const ActivationTraits* traits;
};

const std::vector<ActivationInfo>& activation_infos();

// Names of the maskable activations, in list order.
std::vector<std::string> maskable_names();

// Looks the name up; unknown names raise an error that lists the known ones.
const ActivationInfo& find_activation(std::string_view name);

// Raises "fused_act.<name>: ..." unless params has the right length and values.
void check_params(const ActivationInfo& info, c10::ArrayRef<double> params);

// What backward needs for this activation with these parameters: kNone, kInput or kOutput.
Saved saved_for(const ActivationInfo& info, c10::ArrayRef<double> params);

}  // namespace fused_act
