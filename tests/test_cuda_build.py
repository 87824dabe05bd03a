"""The CUDA machine code of the built extension, read with cuobjdump (NVIDIA's
nvidia-cuda-cuobjdump wheel, in requirements.txt): a kernel for every activation, kind, form
and dtype; 128-bit global loads and stores; no local memory. Runs wherever the CUDA kernels
were built (CI builds them), GPU or not."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import fused_act
from fused_act import _C


def _cuobjdump():
    try:
        import nvidia

        for base in nvidia.__path__:
            for cand in Path(base).glob("cu*/bin/cuobjdump"):
                return str(cand)
    except ImportError:
        pass
    return shutil.which("cuobjdump")


def _run_cuobjdump(flag: str) -> str:
    """cuobjdump 13.5 disassembles through nvdisasm (the nvidia-cuda-nvdisasm wheel installs it
    beside cuobjdump), which it looks for on PATH."""
    tool = _cuobjdump()
    env = dict(os.environ)
    env["PATH"] = f"{Path(tool).parent}{os.pathsep}{env.get('PATH', '')}"
    out = subprocess.run([tool, flag, _C.__file__], capture_output=True, text=True, env=env)
    assert out.returncode == 0, f"cuobjdump {flag} failed ({out.returncode}): {out.stderr.strip()}"
    return out.stdout


pytestmark = [
    pytest.mark.skipif(not fused_act.info()["cuda_kernels_built"], reason="built without CUDA kernels"),
    pytest.mark.skipif(_cuobjdump() is None, reason="cuobjdump not installed"),
]

DTYPES = {"f": "float", "d": "double", "N3c104HalfE": "half", "N3c108BFloat16E": "bfloat16"}


@pytest.fixture(scope="module")
def sass():
    kernels, name = {}, None
    for line in _run_cuobjdump("-sass").splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            name = m.group(1)
            kernels.setdefault(name, [])
        elif name:
            kernels[name].append(line)
    return kernels


@pytest.fixture(scope="module")
def resources():
    out = _run_cuobjdump("-res-usage")
    return re.findall(r"Function (\S+):\s*\n\s*REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", out)


def test_a_kernel_for_every_activation_kind_form_and_dtype(sass):
    for name, _, saved, functor in _C.activations():
        forms = 2 if saved == "either" else 1
        for code in DTYPES:
            tag = f"{len(functor)}{functor}"
            found = [k for k in sass if tag in k and f"elementwise_kernelI{code}" in k]
            # forward, backward and double backward per form; bias forward, bias backward
            # (input form only: the output form reuses the plain backward); gated forward and backward;
            # batch_norm_act's forward and backward (AffineForwardOp, AffineBackwardOp)
            expected = 1 + 2 * forms + 1 + (saved in ("input", "either")) + 2 + 2
            assert len(found) == expected, (name, DTYPES[code], found)
            # Row and column sum kernels, packets and scalar: bias_act's backward with the bias
            # gradient, for each form it has (BiasBackwardOp, and BackwardOp through the output), and
            # batch_norm_act's backward sums (AffineGradSumsOp, reduce-only)
            sums = [k for k in sass if tag in k and re.search(rf"(row|column)_sum_kernelILi\d+E{code}", k)]
            bias_forms = (saved != "input") + (saved in ("input", "either"))
            assert len(sums) == 4 * (bias_forms + 1), (name, DTYPES[code], sums)
    # batch_norm_act's statistics, the same for every activation (ChannelStatsOp, in identity's
    # objects, no functor in the name): the four sum kernels per dtype
    for code in DTYPES:
        stats = [k for k in sass if "ChannelStatsOp" in k and re.search(rf"(row|column)_sum_kernelILi\d+E{code}", k)]
        assert len(stats) == 4, (DTYPES[code], stats)


def test_packet_path_uses_128_bit_accesses(sass):
    """The elementwise and mask kernels stream whole 16-byte packets, and so do the softmax row
    kernels instantiated for packets (their template's last argument, the packet width, > 1).
    The softmax columns kernel walks rows with a stride and is not expected to, nor the scalar
    sum kernels (first template argument 1) and second pass. The reduce-only sum kernels
    (batch_norm_act's statistics and backward sums: Operands<S, N, 0>, no stored output) store
    only their partial sums, one value per warp or column, so only their loads are checked."""
    packed_rows = 0
    for name, lines in sass.items():
        text = "\n".join(lines)
        m = re.search(r"(row|column)_sum_kernelILi(\d+)E(?:f|d|N3c104HalfE|N3c108BFloat16E)Li\d+ELi(\d+)E", name)
        if "channel_total_kernel" in name or (m and m.group(2) == "1"):
            continue
        if m and m.group(3) == "0":
            assert "LDG.E.128" in text, name
            continue
        if "softmax" in name:
            m = re.search(r"softmax_rows_kernel.*?EEE(\w+?)Li(\d+)ELi(\d+)EEEv", name)
            if not m or m.group(3) == "1":
                continue
            packed_rows += 1
        # A kernel whose result is a constant loads nothing (relu's double backward: f'' = 0,
        # selected, grad_times), and only its stores must be whole packets.
        assert "LDG.E.128" in text or "LDG" not in text, name
        assert "STG.E.128" in text, name
    assert packed_rows == 4 * 4 * 3, "a packet row kernel per op, dtype and lane count"


def test_no_local_memory(resources):
    """LOCAL is spilled registers or local arrays; STACK only holds the call frames of
    libdevice's slow paths (IEEE division, double-precision exp; 64 bytes in float64 gelu's
    bias backward, whose erf and exp calls keep two in-flight packets live)."""
    assert resources, "cuobjdump -res-usage printed no functions"
    for name, _reg, stack, _shared, local in resources:
        assert int(local) == 0, name
        assert int(stack) <= 64, (name, stack)


def test_half_and_bfloat16_kernels_use_fast_division(sass):
    """The half / bfloat16 kernels are compiled with --prec-div=false (csrc/cuda/launch.h): no
    FCHK, the check that routes an IEEE float division to its slow path, while the float kernels
    keep IEEE division."""
    with_check = {"f": 0, "N3c104HalfE": 0, "N3c108BFloat16E": 0}
    for name, lines in sass.items():
        m = re.search(
            r"(?:elementwise|mask|row_sum|column_sum)_kernelI(?:Li\d+E)?(?:NS_3act\w+?E)?(N3c104HalfE|N3c108BFloat16E|f)",
            name,
        )
        if m and any("FCHK" in line for line in lines):
            with_check[m.group(1)] += 1
    assert with_check["f"] > 0, "no float kernel divides: the check lost its reference"
    assert with_check["N3c104HalfE"] == with_check["N3c108BFloat16E"] == 0, with_check
