"""The per-activation build (setup.py, docs/build.md): every entry of the C++ list has its own
functor header, the build plans its objects from that list, and no functor is defined
anywhere else, so that editing one activation rebuilds only its objects."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest

from fused_act import _C

ROOT = Path(__file__).resolve().parent.parent
ACT_DIR = ROOT / "csrc" / "activations" / "act"


@pytest.fixture(scope="module")
def setup_py():
    """setup.py's functions, without running setup() (--name only prints the name)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["setup.py", "--name"])
        mp.setenv("FUSED_ACT_CUDA", "0")
        return runpy.run_path(str(ROOT / "setup.py"))


def test_every_list_entry_has_its_header(setup_py):
    acts = setup_py["activations"]()
    assert [functor for functor, _ in acts] == [functor for *_, functor in _C.activations()]
    headers = {p.stem for p in ACT_DIR.glob("*.h")}
    assert {snake for _, snake in acts} == headers, "a header in csrc/activations/act/ per list entry, and no other"
    for functor, snake in acts:
        text = (ACT_DIR / f"{snake}.h").read_text()
        assert re.findall(r"^struct (\w+) \{", text, re.M) == [functor], f"{snake}.h must define exactly {functor}"


def test_functors_are_defined_only_in_their_headers():
    functors = {functor for *_, functor in _C.activations()}
    for path in (ROOT / "csrc").rglob("*"):
        if path.suffix not in (".h", ".cuh", ".cpp", ".cu") or path.parent == ACT_DIR:
            continue
        defined = set(re.findall(r"^\s*struct (\w+) \{", path.read_text(), re.M)) & functors
        assert not defined, f"{path.relative_to(ROOT)} defines {defined}"


def _first_arguments(code: str, call: str):
    """The first argument of every `call(` in code, by matching parentheses."""
    for m in re.finditer(rf"\b{call}\(", code):
        depth, i = 0, m.end()
        while depth > 0 or code[i] not in ",)":
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        yield code[m.end() : i]


def test_selects_compare_through_math_functions():
    """where(lt(x, y), ...), never where(x < y, ...): on AVX-512 lt & co. keep the comparison in
    a mask register, while ATen's operators return a vector that blendv turns back into a mask
    (two more instructions per select; csrc/activations/math.h)."""
    files = [*ACT_DIR.glob("*.h"), *(ACT_DIR.parent / name for name in ("elementwise.h", "math.h"))]
    for path in files:
        code = re.sub(r"//[^\n]*", "", path.read_text())
        for arg in _first_arguments(code, "where"):
            if arg.endswith(" cond"):  # where's own definitions
                continue
            assert not re.search(r"[<>]|==|!=", arg), f"{path.name}: where({arg}, ...) compares with an operator"


def test_build_plans_one_object_per_activation_and_backend(setup_py, monkeypatch):
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0")  # the CUDA rule needs architectures
    kernels = setup_py["KernelBuild"](debug=False, cuda=True)
    objects = {p.relative_to(kernels.dir).as_posix() for p in kernels.plan()}
    isas = [isa.lower() for isa, _ in setup_py["cpu_isas"]()]
    for _, snake in setup_py["activations"]():
        for isa in isas:
            assert f"cpu/{isa}/{snake}.o" in objects
        # CUDA: float and double in one object, half and bfloat16 (fast math) in another
        assert {f"cuda/{snake}.o", f"cuda/{snake}_reduced.o", f"ops/{snake}.o", f"simulation/{snake}.o"} <= objects
    # the DEFAULT objects are linked before the ISA-flagged ones (see KernelBuild.plan)
    planned = [p.relative_to(kernels.dir).parts for p in kernels.plan()]
    order = [parts[1] for parts in planned if parts[0] == "cpu"]
    for isa in isas:
        assert order.index("default") <= order.index(isa)
