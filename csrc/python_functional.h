// fused_act._C.functional_entry and functional_by_name (python_functional.cpp): the builtins
// behind fused_act.<name> and fused_act.activation.
#pragma once

#include <pybind11/pybind11.h>

namespace fused_act {

void add_functional_entries(pybind11::module_& m);

}  // namespace fused_act
