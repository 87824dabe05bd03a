// The eager entry of the functionals without parameters given: fused_act.relu(x) and
// fused_act.activation(x, "relu") as one C call.
//
// fused_act.<name>(x, *params, inplace=False, memory="auto") is a Python function
// (fused_act/functional.py). The common call, one plain tensor and nothing else, spent ~0.4 us of
// a ~1.35 us call in its two Python frames (sigmoid on 16 floats: torch.sigmoid 1.23 us,
// _C.activation 0.95; 2-core AMD EPYC, Zen 4). The entry made here is what fused_act.<name> is:
// a builtin (PyCFunction, vectorcall) that runs that call, and the same call with inplace=
// and memory= keywords, through the typed dispatcher handles (ops/autograd.h), and hands every
// other call, unchanged, to the Python function, its `fallback` (memory="mask" through it cost
// ~1.5 us more per call: relu on 16 floats 2.69 us against torch.relu's 1.14). Python registers
// the same function as the entry's polyfill for torch.compile (torch.compiler.substitute_in_graph),
// so Dynamo traces the Python code and its registered ops.
//
// The fast path takes a tensor of the exact type torch.Tensor (or nn.Parameter): subclasses
// (FakeTensor under torch.export's non-strict tracing, FunctionalTensor, user subclasses) and
// fx Proxies go to the fallback, as do parameters given and calls the Python function rejects
// (a mode the activation does not allow, a non-bool inplace): the fallback raises their errors.
//
// The builtin's self is the Python module that publishes it, so it pickles by name as the
// Python function did (a model holding `self.act = fused_act.relu` still saves whole); its state
// is found through the slot its C function was instantiated for.
#include <Python.h>

#include <array>
#include <cstddef>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/grad_mode.h>
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
  std::string name;              // the functional's name, also the builtin's __name__
  std::string doc;               // "name(signature)\n--\n\n" + docstring: CPython's __text_signature__ form
  PyObject* name_obj = nullptr;  // name, interned (fused_act.activation's lookup)
  std::string act;
  std::vector<double> params;
  bool maskable = false;
  Saved saved = Saved::kNone;  // what backward keeps with the default parameters
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

// What backward keeps, as memory= names it (fused_act/memory.py's MEMORY_MODES).
enum class Memory { kAuto, kMask, kOutput, kInput };

// The keyword arguments of a call: inplace=True/False and memory=<one of MEMORY_MODES>. False for
// anything else (another keyword, a value of another type, an unknown mode): the fallback takes
// the call, and raises where it should.
bool parse_keywords(PyObject* const* values, PyObject* kwnames, bool& inplace, Memory& memory) {
  static PyObject* const inplace_key = PyUnicode_InternFromString("inplace");
  static PyObject* const memory_key = PyUnicode_InternFromString("memory");
  static PyObject* const modes[] = {PyUnicode_InternFromString("auto"), PyUnicode_InternFromString("mask"),
                                    PyUnicode_InternFromString("output"), PyUnicode_InternFromString("input")};
  // Keyword names and string literals of a call site are interned: the pointer test decides
  // nearly always, the comparison covers strings built at run time.
  const auto same = [](PyObject* a, PyObject* b) { return a == b || PyUnicode_Compare(a, b) == 0; };
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, i);
    PyObject* value = values[i];
    if (same(key, inplace_key)) {
      if (value != Py_True && value != Py_False) return false;  // truthiness is Python's to apply
      inplace = value == Py_True;
    } else if (same(key, memory_key)) {
      if (!PyUnicode_CheckExact(value)) return false;
      size_t m = 0;
      while (m < std::size(modes) && !same(value, modes[m])) ++m;
      if (m == std::size(modes)) return false;
      memory = static_cast<Memory>(m);
    } else {
      return false;
    }
  }
  return true;
}

// Whether the call keeps the 1-bit mask, as fused_act/memory.py's _resolve_for decides; nullopt
// where the Python function must take the call: a mode these parameters do not allow (it raises
// the error), or AUTO_PREFERS_MASK set to something other than a bool.
std::optional<bool> keeps_mask(const Entry& e, Memory memory) {
  switch (memory) {
    case Memory::kMask:
      return e.maskable ? std::optional<bool>(true) : std::nullopt;
    case Memory::kOutput:
      return e.saved == Saved::kOutput ? std::optional<bool>(false) : std::nullopt;
    case Memory::kInput:
      return e.saved == Saved::kInput ? std::optional<bool>(false) : std::nullopt;
    case Memory::kAuto:
      break;
  }
  if (!e.maskable) return false;
  static PyObject* const key = PyUnicode_InternFromString("AUTO_PREFERS_MASK");  // fused_act/memory.py
  PyObject* flag = PyDict_GetItemWithError(e.memory_globals.ptr(), key);         // borrowed
  if (flag == nullptr && PyErr_Occurred()) throw python_error();
  if (flag == Py_True || flag == Py_False) return flag == Py_True;
  return std::nullopt;
}

// The call in C: e's activation on x, with the keywords parse_keywords takes (their values at
// kwvalues); nullopt where the Python function must take the call.
std::optional<at::Tensor> fast_call(const Entry& e, PyObject* x_obj, PyObject* const* kwvalues, PyObject* kwnames) {
  bool inplace = false;
  Memory memory = Memory::kAuto;
  if (!THPVariable_CheckExact(x_obj) || (kwnames != nullptr && !parse_keywords(kwvalues, kwnames, inplace, memory))) {
    return std::nullopt;
  }
  const std::optional<bool> mask = keeps_mask(e, memory);
  if (!mask) return std::nullopt;
  at::Tensor x = THPVariable_Unpack(x_obj);
  // ops/activation.py's activation_op: without a gradient to compute there is no mask to keep
  if (*mask && at::GradMode::is_enabled() && x.requires_grad()) {
    return inplace ? eager_activation_mask_inplace(x, e.act, e.params) : eager_activation_mask(x, e.act, e.params);
  }
  return inplace ? eager_activation_inplace(x, e.act, e.params) : eager_activation(x, e.act, e.params);
}

PyObject* call_entry(Entry& e, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  HANDLE_TH_ERRORS
  if (PyVectorcall_NARGS(nargs) == 1) {
    if (std::optional<at::Tensor> y = fast_call(e, args[0], args + 1, kwnames)) {
      return THPVariable_Wrap(std::move(*y));  // in place: x's own Python object
    }
  }
  return PyObject_Vectorcall(e.fallback.ptr(), args, nargs, kwnames);
  END_HANDLE_TH_ERRORS
}

// fused_act.activation(x, name, inplace=, memory=): a registered functional's name with its
// default parameters takes that functional's fast path; every other call (parameters given,
// identity, an unknown name, name not a str) goes to the Python function, which raises where
// it should. The Python function cost ~0.5 us more than fused_act.relu(x) per call, three frames
// (relu on 16 floats: 1.04 us against 0.53 and torch.relu's 0.83; Intel Xeon, 2026-12-07).
struct ByName {
  std::string doc;
  py::object fallback;
  PyMethodDef def{};
};
ByName* const by_name = new ByName;  // never freed, as entries

const Entry* find_entry(PyObject* name) {
  for (size_t i = 0; i < used; ++i) {  // a literal at the call site is interned, as the names are
    if (entries[i].name_obj == name) return &entries[i];
  }
  for (size_t i = 0; i < used; ++i) {
    if (PyUnicode_Compare(entries[i].name_obj, name) == 0) return &entries[i];
  }
  return nullptr;
}

PyObject* call_by_name(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  HANDLE_TH_ERRORS
  if (PyVectorcall_NARGS(nargs) == 2 && PyUnicode_CheckExact(args[1])) {
    if (const Entry* e = find_entry(args[1])) {
      if (std::optional<at::Tensor> y = fast_call(*e, args[0], args + 2, kwnames)) {
        return THPVariable_Wrap(std::move(*y));
      }
    }
  }
  return PyObject_Vectorcall(by_name->fallback.ptr(), args, nargs, kwnames);
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
        e.name_obj = PyUnicode_InternFromString(name.c_str());
        if (e.name_obj == nullptr) throw py::error_already_set();
        e.doc = name + signature + "\n--\n\n" + doc;
        e.act = act;
        e.params = params;
        e.maskable = info.maskable;
        e.saved = saved_for(info, params);
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
  m.def(
      "functional_by_name",
      [](const std::string& signature, const std::string& doc, py::object fallback, py::module_ owner) {
        if (by_name->fallback) throw std::runtime_error("fused_act: functional_by_name was already made");
        by_name->doc = "activation" + signature + "\n--\n\n" + doc;
        by_name->fallback = std::move(fallback);
        by_name->def = {"activation", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&call_by_name)),
                        METH_FASTCALL | METH_KEYWORDS, by_name->doc.c_str()};
        PyObject* fn = PyCFunction_NewEx(&by_name->def, owner.ptr(), owner.attr("__name__").ptr());
        if (fn == nullptr) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(fn);
      },
      "the builtin fused_act.activation: fast path for (x, name) with a functional's name, else fallback");
}

}  // namespace fused_act
