// The eager entry of the functionals without parameters given: fused_act.relu(x) as one C call.
//
// fused_act.<name>(x, *params, inplace=False, memory="auto") is a Python function
// (fused_act/functional.py). The common call, one plain tensor and nothing else, spent ~0.4 us of
// a ~1.35 us call in its two Python frames (sigmoid on 16 floats: torch.sigmoid 1.23 us,
// _C.activation 0.95; 2-core AMD EPYC, Zen 4). The entry made here is what fused_act.<name> is:
// a builtin (PyCFunction, vectorcall) that runs that call through the typed dispatcher handle
// (ops/autograd.h) and hands every other call, unchanged, to the Python function, its
// `fallback`. Python registers the same function as the entry's polyfill for torch.compile
// (torch.compiler.substitute_in_graph), so Dynamo traces the Python code and its registered ops.
//
// The fast path takes a tensor of the exact type torch.Tensor (or nn.Parameter): subclasses
// (FakeTensor under torch.export's non-strict tracing, FunctionalTensor, user subclasses) and
// fx Proxies go to the fallback, as do calls while fused_act.memory.AUTO_PREFERS_MASK holds for a
// maskable activation (memory="auto" then keeps the mask, which the Python path decides).
//
// The builtin's self is the Python module that publishes it, so it pickles by name as the
// Python function did (a model holding `self.act = fused_act.relu` still saves whole); its state
// is found through the slot its C function was instantiated for.
#include <Python.h>

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>

#include "ops/autograd.h"
#include "ops/registry.h"
#include "python_functional.h"

namespace fused_act {

namespace py = pybind11;

namespace {

struct Entry {
  std::string name;  // the functional's name, also the builtin's __name__
  std::string doc;   // "name(signature)\n--\n\n" + docstring: CPython's __text_signature__ form
  std::string act;
  std::vector<double> params;
  bool maskable = false;
  py::object fallback;
  py::dict memory_globals;  // fused_act.memory's namespace, for AUTO_PREFERS_MASK
  PyMethodDef def{};
};

// One slot per functional (the registry has 21 activations; identity keeps its Python function).
// Never freed: the builtins live as long as the process, and Python objects must not be released
// by static destructors after the interpreter has finalized.
constexpr size_t kSlots = 32;
Entry* const entries = new Entry[kSlots];
size_t used = 0;

PyObject* call_entry(Entry& e, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  HANDLE_TH_ERRORS
  const Py_ssize_t n = PyVectorcall_NARGS(nargs);
  if (n == 1 && kwnames == nullptr && THPVariable_CheckExact(args[0])) {
    bool plain = !e.maskable;
    if (!plain) {
      static PyObject* const key = PyUnicode_InternFromString("AUTO_PREFERS_MASK");  // fused_act/memory.py
      PyObject* flag = PyDict_GetItemWithError(e.memory_globals.ptr(), key);         // borrowed
      if (flag == nullptr && PyErr_Occurred()) return nullptr;
      plain = flag == Py_False;
    }
    if (plain) return THPVariable_Wrap(eager_activation(THPVariable_Unpack(args[0]), e.act, e.params));
  }
  return PyObject_Vectorcall(e.fallback.ptr(), args, nargs, kwnames);
  END_HANDLE_TH_ERRORS
}

template <size_t I>
PyObject* call_slot(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return call_entry(entries[I], args, nargs, kwnames);
}

template <size_t... I>
constexpr std::array<_PyCFunctionFastWithKeywords, kSlots> slot_functions(std::index_sequence<I...>) {
  return {&call_slot<I>...};
}
constexpr auto kSlotFunctions = slot_functions(std::make_index_sequence<kSlots>{});

}  // namespace

void add_functional_entries(py::module_& m) {
  m.def(
      "functional_entry",
      [](const std::string& name, const std::string& signature, const std::string& doc, const std::string& act,
         const std::vector<double>& params, py::object fallback, py::module_ owner, py::dict memory_globals) {
        const auto& info = find_activation(act);
        check_params(info, params);  // raises for bad parameters, once
        if (used == kSlots) throw std::runtime_error("fused_act: no functional entry slot left (kSlots)");
        Entry& e = entries[used];
        e.name = name;
        e.doc = name + signature + "\n--\n\n" + doc;
        e.act = act;
        e.params = params;
        e.maskable = info.maskable;
        e.fallback = std::move(fallback);
        e.memory_globals = std::move(memory_globals);
        e.def = {e.name.c_str(), reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(kSlotFunctions[used])),
                 METH_FASTCALL | METH_KEYWORDS, e.doc.c_str()};
        ++used;
        PyObject* fn = PyCFunction_NewEx(&e.def, owner.ptr(), owner.attr("__name__").ptr());
        if (fn == nullptr) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(fn);
      },
      "the builtin fused_act.<name>: fast path for (x) alone, else fallback(*args, **kwargs)");
}

}  // namespace fused_act
