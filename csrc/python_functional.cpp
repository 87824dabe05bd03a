// The eager entry of the functionals: fused_act.relu(x), fused_act.elu(x, 0.5),
// fused_act.activation(x, "elu", alpha=0.5) and fused_act.softmax(x, dim) as one C call.
//
// fused_act.<name>(x, *params, inplace=False, memory="auto") is a Python function
// (fused_act/functional.py). The common call, one plain tensor and nothing else, spent ~0.4 us of
// a ~1.35 us call in its two Python frames (sigmoid on 16 floats: torch.sigmoid 1.23 us,
// _C.activation 0.95; 2-core AMD EPYC, Zen 4). The entry made here is what fused_act.<name> is:
// a builtin (PyCFunction, vectorcall) that runs that call, with parameters (see Resolved) and with
// inplace= and memory= keywords, through the typed dispatcher handles (ops/autograd.h), and hands
// every other call, unchanged, to the Python function, its `fallback` (memory="mask" through it
// cost ~1.5 us more per call: relu on 16 floats 2.69 us against torch.relu's 1.14). Python
// registers the same function as the entry's polyfill for torch.compile
// (torch.compiler.substitute_in_graph), so Dynamo traces the Python code and its registered ops.
//
// The fast path takes a tensor of the exact type torch.Tensor (or nn.Parameter): subclasses
// (FakeTensor under torch.export's non-strict tracing, FunctionalTensor, user subclasses) and
// fx Proxies go to the fallback, as do parameter values other than float, int and str and calls
// the Python function rejects (a mode the activation does not allow, a non-bool inplace, a
// parameter it does not know): the fallback raises their errors.
//
// The builtin's self is the Python module that publishes it, so it pickles by name as the
// Python function did (a model holding `self.act = fused_act.relu` still saves whole); its state
// is found through the slot its C function was instantiated for.
#include <Python.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <deque>
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

// A kernel and its parameters, resolved from a call's parameters, with what decides the memory
// mode (fused_act/memory.py's _resolve_for).
struct Resolved {
  std::string act;
  std::vector<double> params;
  bool maskable = false;
  Saved saved = Saved::kNone;  // what backward keeps with these parameters
};

Resolved resolve(const std::string& act, std::vector<double> params) {
  const auto& info = find_activation(act);
  check_params(info, params);  // raises for bad parameters
  const Saved saved = saved_for(info, params);
  return {act, std::move(params), info.maskable, saved};
}

// Calls with parameters (fused_act.elu(x, 0.5), fused_act.activation(x, "elu", alpha=0.5)) are
// resolved once by the registry (fused_act.registry.kernel_args_for, the Python path's own
// function) and cached per entry, keyed by the parameters as given. Through the Python function
// they cost 1.6-2.2 us on 16 floats, against eager's 1.1-1.9; here 0.61-0.71 (leaky_relu(x, 0.2)
// 0.61 against F.leaky_relu's 1.11, elu(x, 0.5) 0.67 against 1.18, gelu(x, approximate="tanh")
// 0.71 against 1.07, hardtanh(x, -2.0, 2.0) 0.65 against 1.62; Intel Xeon, 2026-12-07).
constexpr Py_ssize_t kMaxCached = 64;  // per entry: a model uses a handful; beyond, the Python path

// What a builtin made here holds: its docstring, "name(signature)\n--\n\n" + doc (CPython's
// __text_signature__ form), the Python function that takes the calls the C path does not, and
// its method definition.
struct Builtin {
  std::string doc;
  py::object fallback;
  PyMethodDef def{};
};

// The builtin function for `fn` named `name` (a string that outlives it), recorded in b; its self
// is `owner` (see the top of this file).
py::object make_builtin(Builtin& b, const char* name, _PyCFunctionFastWithKeywords fn, const std::string& signature,
                        const std::string& doc, py::object fallback, const py::module_& owner) {
  b.doc = name + signature + "\n--\n\n" + doc;
  b.fallback = std::move(fallback);
  b.def = {name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn)), METH_FASTCALL | METH_KEYWORDS,
           b.doc.c_str()};
  PyObject* f = PyCFunction_NewEx(&b.def, owner.ptr(), owner.attr("__name__").ptr());
  if (f == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(f);
}

struct Entry {
  std::string name;                     // the functional's name, also the builtin's __name__
  PyObject* name_obj = nullptr;         // name, interned (fused_act.activation's lookup)
  Resolved defaults;                    // no parameters given
  std::vector<py::object> param_names;  // interned, in the signature's order (positional parameters)
  py::dict cache;                       // parameters as given -> index into `resolved`
  py::object resolver;                  // fused_act.registry.kernel_args_for
  Builtin builtin;
};

// One slot per functional (the registry has 21 activations; identity keeps its Python function).
// Never freed: the builtins live as long as the process, and Python objects must not be released
// by static destructors after the interpreter has finalized.
constexpr size_t kSlots = 32;
Entry* const entries = new Entry[kSlots];
size_t used = 0;
std::deque<Resolved>* const resolved = new std::deque<Resolved>;  // stable addresses, as the cache's values
py::dict* const memory_globals = new py::dict;                    // fused_act.memory's namespace, for AUTO_PREFERS_MASK

// What backward keeps, as memory= names it (fused_act/memory.py's MEMORY_MODES).
enum class Memory { kAuto, kMask, kOutput, kInput };

bool same_str(PyObject* a, PyObject* b) {
  // Keyword names and string literals of a call site are interned: the pointer test decides
  // nearly always, the comparison covers strings built at run time.
  return a == b || PyUnicode_Compare(a, b) == 0;
}

// A parameter value the cache may key on: an exact float (not -0.0, which equals 0.0 as a key but
// not as a bound, nor NaN, which equals no key and would fill the cache), int (not bool) or str;
// anything else (tensors, numpy scalars) takes the Python path, as registry.kernel_args_for
// leaves such values uncached.
bool plain(PyObject* v) {
  if (PyFloat_CheckExact(v)) {
    const double d = PyFloat_AS_DOUBLE(v);
    return !(d == 0.0 && std::signbit(d)) && !std::isnan(d);
  }
  return PyLong_CheckExact(v) || PyUnicode_CheckExact(v);
}

// The arguments of a call after x: `npos` positional parameters, then keywords. inplace=True/False
// and memory=<one of MEMORY_MODES> are read; other keywords are parameters. False for anything the
// Python function must see (a value of another type, an unknown mode): it takes the call, and
// raises where it should.
struct Call {
  bool inplace = false;
  Memory memory = Memory::kAuto;
  std::vector<std::pair<PyObject*, PyObject*>> params;  // (name or nullptr when positional, value)
};
bool parse_call(PyObject* const* pos, Py_ssize_t npos, PyObject* const* kwvalues, PyObject* kwnames, Call& call) {
  static PyObject* const inplace_key = PyUnicode_InternFromString("inplace");
  static PyObject* const memory_key = PyUnicode_InternFromString("memory");
  static PyObject* const modes[] = {PyUnicode_InternFromString("auto"), PyUnicode_InternFromString("mask"),
                                    PyUnicode_InternFromString("output"), PyUnicode_InternFromString("input")};
  for (Py_ssize_t i = 0; i < npos; ++i) {
    if (!plain(pos[i])) return false;
    call.params.emplace_back(nullptr, pos[i]);
  }
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t i = 0; i < nkw; ++i) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, i);
    PyObject* value = kwvalues[i];
    if (same_str(key, inplace_key)) {
      if (value != Py_True && value != Py_False) return false;  // truthiness is Python's to apply
      call.inplace = value == Py_True;
    } else if (same_str(key, memory_key)) {
      if (!PyUnicode_CheckExact(value)) return false;
      size_t m = 0;
      while (m < std::size(modes) && !same_str(value, modes[m])) ++m;
      if (m == std::size(modes)) return false;
      call.memory = static_cast<Memory>(m);
    } else {
      if (!plain(value)) return false;
      call.params.emplace_back(key, value);
    }
  }
  return true;
}

// The kernel for the call's parameters: e's defaults without any, else the cache, else the
// registry's resolution (then cached). nullptr where the Python function must take the call:
// more positional parameters than the signature has, one given twice, or a resolution that
// raises (the Python function raises the same error, with its message).
const Resolved* resolve_call(Entry& e, const Call& call) {
  if (call.params.empty()) return &e.defaults;
  // The key: the number of positional values, then each value, keywords preceded by their name
  // (so that elu(x, 0.5) and elu(x, alpha=0.5) are distinct keys that cannot collide).
  size_t npos = 0;
  for (const auto& [name, value] : call.params) npos += name == nullptr;
  if (npos > e.param_names.size()) return nullptr;
  py::tuple key(1 + call.params.size() * 2 - npos);
  key[0] = py::int_(npos);
  Py_ssize_t k = 1;
  for (const auto& [name, value] : call.params) {
    if (name != nullptr) key[k++] = py::reinterpret_borrow<py::object>(name);
    key[k++] = py::reinterpret_borrow<py::object>(value);
  }
  PyObject* hit = PyDict_GetItemWithError(e.cache.ptr(), key.ptr());  // borrowed
  if (hit != nullptr) return &(*resolved)[PyLong_AsSize_t(hit)];
  if (PyErr_Occurred()) throw python_error();
  if (PyDict_GET_SIZE(e.cache.ptr()) >= kMaxCached) return nullptr;
  py::dict given;
  size_t i = 0;
  for (const auto& [name, value] : call.params) {
    py::object n = name == nullptr ? e.param_names[i++] : py::reinterpret_borrow<py::object>(name);
    if (given.contains(n)) return nullptr;
    given[n] = py::reinterpret_borrow<py::object>(value);
  }
  try {
    auto [act, params] = e.resolver(e.name, given).cast<std::pair<std::string, std::vector<double>>>();
    resolved->push_back(resolve(act, std::move(params)));
  } catch (py::error_already_set&) {
    return nullptr;
  } catch (const c10::Error&) {
    return nullptr;
  }
  e.cache[key] = py::int_(resolved->size() - 1);
  return &resolved->back();
}

// Whether the call keeps the 1-bit mask, as fused_act/memory.py's _resolve_for decides; nullopt
// where the Python function must take the call: a mode these parameters do not allow (it raises
// the error), or AUTO_PREFERS_MASK set to something other than a bool.
std::optional<bool> keeps_mask(const Resolved& r, Memory memory) {
  switch (memory) {
    case Memory::kMask:
      return r.maskable ? std::optional<bool>(true) : std::nullopt;
    case Memory::kOutput:
      return r.saved == Saved::kOutput ? std::optional<bool>(false) : std::nullopt;
    case Memory::kInput:
      return r.saved == Saved::kInput ? std::optional<bool>(false) : std::nullopt;
    case Memory::kAuto:
      break;
  }
  if (!r.maskable) return false;
  static PyObject* const key = PyUnicode_InternFromString("AUTO_PREFERS_MASK");  // fused_act/memory.py
  PyObject* flag = PyDict_GetItemWithError(memory_globals->ptr(), key);          // borrowed
  if (flag == nullptr && PyErr_Occurred()) throw python_error();
  if (flag == Py_True || flag == Py_False) return flag == Py_True;
  return std::nullopt;
}

// The call in C: e's activation on x with the parameters and keywords after it; nullopt where
// the Python function must take the call.
std::optional<at::Tensor> fast_call(Entry& e, PyObject* x_obj, PyObject* const* pos, Py_ssize_t npos,
                                    PyObject* const* kwvalues, PyObject* kwnames) {
  Call call;
  if (!THPVariable_CheckExact(x_obj) || !parse_call(pos, npos, kwvalues, kwnames, call)) return std::nullopt;
  const Resolved* r = resolve_call(e, call);
  if (r == nullptr) return std::nullopt;
  const std::optional<bool> mask = keeps_mask(*r, call.memory);
  if (!mask) return std::nullopt;
  at::Tensor x = THPVariable_Unpack(x_obj);
  // ops/activation.py's activation_op: without a gradient to compute there is no mask to keep
  if (*mask && at::GradMode::is_enabled() && x.requires_grad()) {
    return call.inplace ? eager_activation_mask_inplace(x, r->act, r->params)
                        : eager_activation_mask(x, r->act, r->params);
  }
  return call.inplace ? eager_activation_inplace(x, r->act, r->params) : eager_activation(x, r->act, r->params);
}

PyObject* call_entry(Entry& e, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  HANDLE_TH_ERRORS
  const Py_ssize_t n = PyVectorcall_NARGS(nargs);
  if (n >= 1) {
    if (std::optional<at::Tensor> y = fast_call(e, args[0], args + 1, n - 1, args + n, kwnames)) {
      return THPVariable_Wrap(std::move(*y));  // in place: x's own Python object
    }
  }
  return PyObject_Vectorcall(e.builtin.fallback.ptr(), args, nargs, kwnames);
  END_HANDLE_TH_ERRORS
}

// fused_act.activation(x, name, inplace=, memory=, **params): a registered functional's name
// takes that functional's fast path; every other call (identity, an unknown name, name not a
// str) goes to the Python function, which raises where it should. The Python function cost
// ~0.5 us more than fused_act.relu(x) per call, three frames (relu on 16 floats: 1.04 us against
// 0.53 and torch.relu's 0.83; Intel Xeon, 2026-12-07).
Builtin* const by_name = new Builtin;  // never freed, as entries

Entry* find_entry(PyObject* name) {
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
    if (Entry* e = find_entry(args[1])) {
      if (std::optional<at::Tensor> y = fast_call(*e, args[0], nullptr, 0, args + 2, kwnames)) {
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

// fused_act.softmax(x, dim=-1) and log_softmax: a plain tensor and an int dim, positional or
// keyword, in C; every other call (a subclass, a Proxy, dim of another type) to the Python
// function, which raises where it should. Through the Python function the call cost ~0.3 us more
// than the C++ entry it ends in: on 16 floats 1.09 us against torch.softmax's 1.05 (2-core AMD
// EPYC, Zen 4, 2026-12-07).
Builtin* const softmax_entries = new Builtin[2];  // [log]; never freed, as entries

// dim as an int64 from an exact int (not bool, which Python's function must see); nullopt otherwise.
std::optional<int64_t> plain_dim(PyObject* v) {
  if (!PyLong_CheckExact(v)) return std::nullopt;
  int overflow = 0;
  const long long d = PyLong_AsLongLongAndOverflow(v, &overflow);
  if (overflow != 0 || (d == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    return std::nullopt;
  }
  return d;
}

template <bool Log>
PyObject* call_softmax(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  HANDLE_TH_ERRORS
  static PyObject* const dim_key = PyUnicode_InternFromString("dim");
  const Py_ssize_t n = PyVectorcall_NARGS(nargs);
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  if (n >= 1 && n + nkw <= 2 && THPVariable_CheckExact(args[0])) {
    std::optional<int64_t> dim = -1;
    if (n == 2) dim = plain_dim(args[1]);
    if (nkw == 1) dim = same_str(PyTuple_GET_ITEM(kwnames, 0), dim_key) ? plain_dim(args[1]) : std::nullopt;
    if (dim) return THPVariable_Wrap(eager_softmax(THPVariable_Unpack(args[0]), *dim, Log));
  }
  return PyObject_Vectorcall(softmax_entries[Log].fallback.ptr(), args, nargs, kwnames);
  END_HANDLE_TH_ERRORS
}

}  // namespace

void add_functional_entries(py::module_& m) {
  m.def(
      "functional_entry",
      [](const std::string& name, const std::string& signature, const std::string& doc, const std::string& act,
         const std::vector<double>& params, const std::vector<std::string>& param_names, py::object fallback,
         py::object resolver, py::module_ owner, py::dict memory) {
        if (used == kSlots) throw std::runtime_error("fused_act: no functional entry slot left (kSlots)");
        Entry& e = entries[used];
        e.defaults = resolve(act, params);  // raises for bad parameters, once
        e.name = name;
        e.name_obj = PyUnicode_InternFromString(name.c_str());
        if (e.name_obj == nullptr) throw py::error_already_set();
        for (const auto& p : param_names) {
          PyObject* interned = PyUnicode_InternFromString(p.c_str());
          if (interned == nullptr) throw py::error_already_set();
          e.param_names.push_back(py::reinterpret_steal<py::object>(interned));
        }
        e.resolver = std::move(resolver);
        *memory_globals = std::move(memory);
        py::object fn =
            make_builtin(e.builtin, e.name.c_str(), kSlotFunctions[used], signature, doc, std::move(fallback), owner);
        ++used;
        return fn;
      },
      "the builtin fused_act.<name>: fast path for (x, *params, **kwargs), else fallback(*args, **kwargs)");
  m.def(
      "functional_by_name",
      [](const std::string& signature, const std::string& doc, py::object fallback, py::module_ owner) {
        if (by_name->fallback) throw std::runtime_error("fused_act: functional_by_name was already made");
        return make_builtin(*by_name, "activation", &call_by_name, signature, doc, std::move(fallback), owner);
      },
      "the builtin fused_act.activation: fast path for (x, name) with a functional's name, else fallback");
  m.def(
      "softmax_entry",
      [](bool log, const std::string& signature, const std::string& doc, py::object fallback, py::module_ owner) {
        Builtin& b = softmax_entries[log];
        if (b.fallback) throw std::runtime_error("fused_act: softmax_entry was already made");
        return make_builtin(b, log ? "log_softmax" : "softmax", log ? &call_softmax<true> : &call_softmax<false>,
                            signature, doc, std::move(fallback), owner);
      },
      "the builtin fused_act.softmax / log_softmax: fast path for (x, dim) with an int dim, else fallback");
}

}  // namespace fused_act
