// fused_act._C.functional_entry (python_functional.cpp): the builtins behind fused_act.<name>.
#pragma once

#include <pybind11/pybind11.h>

namespace fused_act {

void add_functional_entries(pybind11::module_& m);

}  // namespace fused_act
