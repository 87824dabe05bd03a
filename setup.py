"""Build of the fused_act extension.

    pip install --no-build-isolation -e .      (needs torch already installed)
    python setup.py build_ext --inplace        (the same build, incremental, while iterating)

Environment:
    FUSED_ACT_CUDA=1|0       force the CUDA kernels on (error if impossible) or off; default: on
                             when torch is a CUDA build and nvcc is found.
    TORCH_CUDA_ARCH_LIST     GPU architectures (torch's variable). Default: the visible GPUs', or
                             DEFAULT_CUDA_ARCHS below when none is visible.
    MAX_JOBS                 parallel compile jobs (ninja).
    FUSED_ACT_DEBUG=1        -O0 -g.

Layout of the build (docs/build.md): the kernels are compiled by a ninja file of our own,
one object per (activation x backend), so that a change to one activation's functor rebuilds
only that activation's objects; the op fronts and registration are the extension's sources,
compiled by torch's BuildExtension. Everything lives under ./build, also for
`pip install -e .`, so every build is incremental.
"""

import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# torch guesses CUDA_HOME from nvcc's path (/usr/local here) and then cannot find libcudart:
# point it at the toolkit before torch.utils.cpp_extension reads it.
if "CUDA_HOME" not in os.environ and Path("/usr/local/cuda/bin/nvcc").exists():
    os.environ["CUDA_HOME"] = "/usr/local/cuda"

import torch  # noqa: E402
from setuptools import setup  # noqa: E402
from torch.utils import cpp_extension  # noqa: E402

ROOT = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
BUILD = ROOT / "build"
DEFAULT_CUDA_ARCHS = "7.5;8.0;8.6;8.9;9.0;10.0;12.0+PTX"

# Instruction sets of the CPU kernels (name, compiler flags), as PyTorch's own CPU_CAPABILITY
# builds; the run-time choice is in csrc/cpu/dispatch.cpp. DEFAULT is built on every machine
# (without ISA flags: any x86-64, or NEON on aarch64 through ATen's vec headers).
_AVX512 = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]
X86_ISAS = [
    ("AVX2", ["-mavx2", "-mfma", "-mf16c"]),
    ("AVX512", _AVX512),
    # bfloat16's kernels only, for AVX-512 CPUs with avx512_bf16 (Cooper Lake, Sapphire Rapids,
    # Zen 4): the AVX512 build with one-instruction float -> bfloat16 rounding (csrc/cpu/storage.h).
    # CPU_CAPABILITY_AVX512 too: ATen's vec headers and our math key on it.
    ("AVX512_BF16", [*_AVX512, "-mavx512bf16", "-DCPU_CAPABILITY_AVX512"]),
]

# Sources compiled once per activation (see csrc/activations/list.h). Each gets
# FUSED_ACT_ACTIVATION (the functor) and FUSED_ACT_ACTIVATION_HEADER defined.
CPU_PER_ACTIVATION = "cpu/activation_kernels.cpp"  # also once per instruction set
CUDA_PER_ACTIVATION = "cuda/activation_kernels.cu"
HOST_PER_ACTIVATION = ["ops/activation_traits.cpp", "simulation/activation_threads.cpp"]

HOST_SOURCES = [  # the extension's own sources (torch's BuildExtension)
    "cpu/dispatch.cpp",
    "cpu/streaming.cpp",
    "ops/registry.cpp",
    "ops/front.cpp",
    "ops/library.cpp",
    "ops/autograd.cpp",
    "ops/softmax_autograd.cpp",
    "ops/mask_autograd.cpp",
    "ops/activation_ops.cpp",
    "ops/bias_act_ops.cpp",
    "ops/batch_norm_ops.cpp",
    "ops/batch_norm_autograd.cpp",
    "ops/gated_ops.cpp",
    "ops/softmax_ops.cpp",
    "ops/mask_ops.cpp",
    "simulation/elementwise_simulation.cpp",
    "simulation/mask_simulation.cpp",
    "simulation/softmax_simulation.cpp",
    "python_module.cpp",
    "python_functional.cpp",
]
CUDA_HOST_SOURCES = ["cuda/ops_cuda.cpp"]


def activations() -> list[tuple[str, str]]:
    """(functor, snake_case name) for each entry of the C++ list, in order. The functor's
    header is csrc/activations/act/<snake_case name>.h."""
    text = (CSRC / "activations" / "list.h").read_text()
    names = re.findall(r"^\s*X\((\w+)\)", text, re.M)
    return [(n, re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", n).lower()) for n in names]


def want_cuda() -> bool:
    flag = os.environ.get("FUSED_ACT_CUDA", "").strip().lower()
    nvcc = cpp_extension.CUDA_HOME is not None and (
        Path(cpp_extension.CUDA_HOME, "bin", "nvcc").exists() or shutil.which("nvcc")
    )
    possible = torch.version.cuda is not None and bool(nvcc)
    if flag in ("1", "on", "true", "yes"):
        if not possible:
            sys.exit(
                "FUSED_ACT_CUDA=1 but the CUDA kernels cannot be built: "
                f"torch.version.cuda={torch.version.cuda!r}, CUDA_HOME={cpp_extension.CUDA_HOME!r}. "
                "Install a CUDA build of torch and the matching CUDA toolkit (nvcc), or set FUSED_ACT_CUDA=0."
            )
        return True
    if flag in ("0", "off", "false", "no"):
        return False
    return possible


def cuda_arch_list() -> str:
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if not archs and not torch.cuda.is_available():
        archs = DEFAULT_CUDA_ARCHS
        os.environ["TORCH_CUDA_ARCH_LIST"] = archs  # torch fails with no GPU and no list
    return archs or "visible GPUs"


def cpu_isas() -> list[tuple[str, list[str]]]:
    isas = [("DEFAULT", [])]
    if platform.machine().lower() in ("x86_64", "amd64"):
        isas += X86_ISAS
    return isas


class KernelBuild:
    """The per-activation objects, as a ninja file of our own: torch's BuildExtension compiles
    every source once with one set of flags, and these need a source compiled many times
    (per activation, per instruction set). ninja's depfiles make the rebuild exact: touching
    act/gelu.h recompiles gelu's objects and nothing else."""

    def __init__(self, debug: bool, cuda: bool):
        self.debug = debug
        self.cuda = cuda
        self.dir = BUILD / f"kernels-{sysconfig.get_platform()}-{sys.implementation.cache_tag}"
        self.rules: dict[str, str] = {}
        self.builds: list[str] = []
        self.objects: list[Path] = []

    def common_cxx(self) -> list[str]:
        abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
        incs = [f"-I{p}" for p in [str(CSRC), *cpp_extension.include_paths()]]
        # -fopenmp only at compile time: at::parallel_for's OpenMP pragmas then call the libgomp
        # that libtorch_cpu already loads, instead of linking a second OpenMP runtime.
        opt = ["-O0", "-g"] if self.debug else ["-O3", "-fopenmp"]
        # -Wno-psabi: GCC's note that passing 32-byte vectors changed ABI in GCC 4.6 (the
        # DEFAULT build's Vectorized), once per instantiation; nothing here crosses that ABI.
        return ["-std=c++20", "-fPIC", "-Wno-unknown-pragmas", "-Wno-psabi", abi, *opt, *incs]

    def add(self, rule: str, source: str, obj: str, flags: list[str]) -> None:
        out = self.dir / obj
        self.objects.append(out)
        self.builds.append(
            f"build {esc(out)}: {rule} {esc(CSRC / source)}\n  flags = {' '.join(shlex.quote(f) for f in flags)}\n"
        )

    def plan(self) -> list[Path]:
        cxx = shutil.which(os.environ.get("CXX", "c++")) or "c++"
        self.rules["cxx"] = (
            f"rule cxx\n  command = {cxx} -MMD -MF $out.d {' '.join(map(shlex.quote, self.common_cxx()))} "
            "$flags -c $in -o $out\n  depfile = $out.d\n  deps = gcc\n  description = CXX $out\n"
        )
        acts = activations()
        # Link order matters: an inline function compiled into several objects resolves to the
        # first copy the linker sees, so the DEFAULT (no ISA flags) objects come before the
        # AVX2 / AVX-512 ones (the extension's own objects come first of all).
        for isa, isa_flags in cpu_isas():
            defs = [f"-DCPU_CAPABILITY={isa}", f"-DCPU_CAPABILITY_{isa}", *isa_flags]
            if isa == "DEFAULT" and len(cpu_isas()) > 1 and not self.debug:
                # x86-64's baseline (CPUs without AVX2) runs the scalar loop (vectorized_loop.h):
                # -O3 spent 186 s of CPU on its 23 objects (relu6 13.5 s), these flags 103 s with
                # the same code where it counts (the loop unswitched on broadcast operands, then
                # vectorized with SSE2; at plain -O2 relu ran 5x slower). Elsewhere (aarch64:
                # NEON through ATen's vec headers) DEFAULT is the main build and keeps -O3.
                defs += ["-O2", "-ftree-vectorize", "-fvect-cost-model=dynamic", "-funswitch-loops"]
            sub = f"cpu/{isa.lower()}"
            for functor, snake in acts:
                self.add("cxx", CPU_PER_ACTIVATION, f"{sub}/{snake}.o", [*defs, *act_defs(functor, snake)])
            self.add("cxx", "cpu/softmax_kernels.cpp", f"{sub}/softmax.o", defs)
            self.add("cxx", "cpu/transpose_kernels.cpp", f"{sub}/transpose.o", defs)
        # Traits and the simulated CUDA threads: scalar host code that only tests run (356 simulation
        # tests in 1.1 s). -O1 compiles a simulation object in 2.8 s instead of 4.6 s at -O2.
        host_opt = [] if self.debug else ["-O1"]
        for source in HOST_PER_ACTIVATION:
            sub = Path(source).parent.name
            for functor, snake in acts:
                self.add("cxx", source, f"{sub}/{snake}.o", [*host_opt, *act_defs(functor, snake)])
        if self.cuda:
            nvcc = str(Path(cpp_extension.CUDA_HOME, "bin", "nvcc"))
            abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
            incs = [f"-I{p}" for p in [str(CSRC), *cpp_extension.include_paths(device_type="cuda")]]
            opt = ["-O0", "-g", "-G"] if self.debug else ["-O3"]
            arch = cpp_extension._get_cuda_arch_flags()
            flags = [
                *cpp_extension.COMMON_NVCC_FLAGS,
                "--compiler-options",
                "-fPIC",
                "-std=c++20",
                abi,
                *opt,
                *arch,
                *incs,
            ]
            self.rules["nvcc"] = (
                f"rule nvcc\n  command = {nvcc} --generate-dependencies-with-compile --dependency-output $out.d "
                f"{' '.join(map(shlex.quote, flags))} $flags -c $in -o $out\n"
                "  depfile = $out.d\n  deps = gcc\n  description = NVCC $out\n"
            )
            # Two objects per activation: float and double with IEEE division and CUDA's expf /
            # logf; half and bfloat16 with fast division and __expf / __logf (csrc/cuda/launch.h).
            reduced = ["-DFUSED_ACT_CUDA_REDUCED_PRECISION", "--prec-div=false"]
            for functor, snake in acts:
                self.add("nvcc", CUDA_PER_ACTIVATION, f"cuda/{snake}.o", act_defs(functor, snake))
                self.add("nvcc", CUDA_PER_ACTIVATION, f"cuda/{snake}_reduced.o", [*reduced, *act_defs(functor, snake)])
            self.add("nvcc", "cuda/softmax_kernels.cu", "cuda/softmax.o", [])
        return self.objects

    def run(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        text = "ninja_required_version = 1.3\n\n" + "\n".join(self.rules.values()) + "\n" + "\n".join(self.builds)
        path = self.dir / "build.ninja"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        jobs = os.environ.get("MAX_JOBS") or str(os.cpu_count() or 1)
        subprocess.check_call([ninja_binary(), "-C", str(self.dir), "-j", jobs])


def act_defs(functor: str, snake: str) -> list[str]:
    return [f"-DFUSED_ACT_ACTIVATION={functor}", f'-DFUSED_ACT_ACTIVATION_HEADER="activations/act/{snake}.h"']


def esc(path: Path) -> str:
    return str(path).replace("$", "$$").replace(" ", "$ ").replace(":", "$:")


def ninja_binary() -> str:
    """The PyPI ninja of this environment (requirements.txt) when installed, else the one on
    PATH: the same one whether or not the venv is activated, since a ninja of another version
    discards the build log ("starting over") and the next build recompiles everything."""
    try:
        import ninja
    except ImportError:
        found = shutil.which("ninja")
        if found is None:
            sys.exit("fused_act: ninja is needed to build (pip install ninja)")
        return found
    return str(Path(ninja.BIN_DIR, "ninja"))


def extension():
    debug = os.environ.get("FUSED_ACT_DEBUG") == "1"
    cuda = want_cuda()
    archs = cuda_arch_list() if cuda else ""
    kernels = KernelBuild(debug, cuda)
    objects = kernels.plan()
    macros = [(f"FUSED_ACT_CPU_{isa}", None) for isa, _ in cpu_isas() if isa != "DEFAULT"]
    sources = [f"csrc/{s}" for s in HOST_SOURCES]
    kwargs = dict(
        name="fused_act._C",
        define_macros=macros,
        # -g0: Python's CFLAGS carry -g, and debug info for torch's headers doubles the host
        # sources' compile time (mask_autograd.cpp: 28.9 s with -g, 14.9 s with -g0).
        extra_compile_args={"cxx": ["-std=c++20", *(["-O0", "-g"] if debug else ["-O3", "-g0"])]},
        extra_objects=[str(o) for o in objects],
        depends=[str(o) for o in objects],  # relink when a kernel object changed
    )
    if cuda:
        sources += [f"csrc/{s}" for s in CUDA_HOST_SOURCES]
        macros += [("FUSED_ACT_WITH_CUDA", None), ("FUSED_ACT_CUDA_ARCHS", f'"{archs}"')]
        ext = cpp_extension.CUDAExtension(sources=sources, **kwargs)
    else:
        ext = cpp_extension.CppExtension(sources=sources, **kwargs)
    return ext, kernels


class BuildExtension(cpp_extension.BuildExtension):
    """Builds the kernel objects first, and keeps every object under ./build: an editable
    install (pip install -e .) otherwise compiles in a fresh temporary folder each time."""

    def finalize_options(self):
        super().finalize_options()
        self.build_temp = str(BUILD / f"temp-{sysconfig.get_platform()}-{sys.implementation.cache_tag}")

    def run(self):
        KERNELS.run()
        super().run()


EXT, KERNELS = extension()

setup(
    ext_modules=[EXT],
    cmdclass={"build_ext": BuildExtension},
)
