"""Build of the fused_act extension.

    pip install --no-build-isolation -e .      (needs torch already installed)

Environment:
    FUSED_ACT_CUDA=1|0       force the CUDA kernels on (error if impossible) or off; default: on
                             when torch is a CUDA build and nvcc is found.
    TORCH_CUDA_ARCH_LIST     GPU architectures (torch's variable). Default: the visible GPUs', or
                             DEFAULT_CUDA_ARCHS below when none is visible.
    MAX_JOBS                 parallel compile jobs (ninja).
    FUSED_ACT_DEBUG=1        -O0 -g.
"""

import os
import platform
from concurrent.futures import ThreadPoolExecutor
import shutil
import sys
from pathlib import Path

# torch guesses CUDA_HOME from nvcc's path (/usr/local here) and then cannot find libcudart:
# point it at the toolkit before torch.utils.cpp_extension reads it.
if "CUDA_HOME" not in os.environ and Path("/usr/local/cuda/bin/nvcc").exists():
    os.environ["CUDA_HOME"] = "/usr/local/cuda"

import torch  # noqa: E402
from setuptools import setup  # noqa: E402
from setuptools.command.build_clib import build_clib  # noqa: E402
from torch.utils import cpp_extension  # noqa: E402

ROOT = Path(__file__).parent
CSRC = "csrc"
DEFAULT_CUDA_ARCHS = "7.5;8.0;8.6;8.9;9.0;10.0;12.0+PTX"

# Per-instruction-set builds of csrc/cpu/kernels.cpp and softmax_kernels.cpp (name, compiler flags). Flags as PyTorch's
# own CPU_CAPABILITY builds; the run-time choice is in csrc/cpu/dispatch.cpp. DEFAULT is built
# into the extension itself, and linked first, so that inline functions the variants share
# resolve to the baseline copy.
CPU_ISAS = [
    ("AVX2", ["-mavx2", "-mfma", "-mf16c"]),
    ("AVX512", ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]),
]


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


def common_flags(debug: bool) -> list[str]:
    # -fopenmp only at compile time: at::parallel_for's OpenMP pragmas then call the libgomp
    # that libtorch_cpu already loads, instead of linking a second OpenMP runtime.
    return ["-O0", "-g"] if debug else ["-O3", "-fopenmp"]


def isa_libraries(debug: bool):
    """build_clib entries: the CPU kernel sources once per instruction set, with its own flags."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return [], []
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    libs, macros = [], []
    for name, flags in CPU_ISAS:
        libs.append((
            f"fused_act_cpu_{name.lower()}",
            {
                "sources": [f"{CSRC}/cpu/kernels.cpp", f"{CSRC}/cpu/softmax_kernels.cpp", f"{CSRC}/cpu/mask_kernels.cpp"],
                "include_dirs": cpp_extension.include_paths(),
                "macros": [("CPU_CAPABILITY", name), (f"CPU_CAPABILITY_{name}", None)],
                "cflags": ["-std=c++20", "-fPIC", "-Wno-unknown-pragmas", abi, *common_flags(debug), *flags],
            },
        ))
        macros.append((f"FUSED_ACT_CPU_{name}", None))
    return libs, macros


def extension():
    debug = os.environ.get("FUSED_ACT_DEBUG") == "1"
    libraries, isa_macros = isa_libraries(debug)
    sources = [
        f"{CSRC}/cpu/kernels.cpp",  # the DEFAULT build; first, see CPU_ISAS
        f"{CSRC}/cpu/softmax_kernels.cpp",  # likewise
        f"{CSRC}/cpu/mask_kernels.cpp",  # likewise
        f"{CSRC}/cpu/dispatch.cpp",
        f"{CSRC}/ops/registry.cpp",
        f"{CSRC}/ops/front.cpp",
        f"{CSRC}/ops/library.cpp",
        f"{CSRC}/ops/autograd.cpp",
        f"{CSRC}/ops/activation_ops.cpp",
        f"{CSRC}/ops/bias_act_ops.cpp",
        f"{CSRC}/ops/gated_ops.cpp",
        f"{CSRC}/ops/cuda_simulation.cpp",
        f"{CSRC}/ops/softmax_ops.cpp",
        f"{CSRC}/ops/softmax_simulation.cpp",
        f"{CSRC}/ops/mask_ops.cpp",
        f"{CSRC}/ops/cuda_mask_simulation.cpp",
        f"{CSRC}/python_module.cpp",
    ]
    macros = [("CPU_CAPABILITY", "DEFAULT"), ("CPU_CAPABILITY_DEFAULT", None), *isa_macros]
    cxx = ["-std=c++20", *common_flags(debug)]
    kwargs = dict(
        name="fused_act._C",
        define_macros=macros,
        extra_compile_args={"cxx": cxx},
    )
    if want_cuda():
        archs = cuda_arch_list()
        sources += [f"{CSRC}/cuda/kernels.cu", f"{CSRC}/cuda/softmax_kernels.cu", f"{CSRC}/cuda/mask_kernels.cu",
                    f"{CSRC}/cuda/ops_cuda.cpp"]
        macros += [("FUSED_ACT_WITH_CUDA", None), ("FUSED_ACT_CUDA_ARCHS", f'"{archs}"')]
        nvcc = ["-O0", "-g", "-G"] if debug else ["-O3"]
        kwargs["extra_compile_args"]["nvcc"] = [*nvcc, "-std=c++20", "--expt-relaxed-constexpr"]
        ext = cpp_extension.CUDAExtension(sources=sources, **kwargs)
    else:
        ext = cpp_extension.CppExtension(sources=sources, **kwargs)
    return ext, libraries


class BuildIsaLibraries(build_clib):
    """Compiles each per-instruction-set library in its own folder (they share their sources),
    MAX_JOBS sources at a time (distutils alone compiles one after another). A source is
    recompiled when it, or any header under csrc/ (distutils tracks none), is newer than its
    object file; a library is re-archived when any of its objects changed."""

    def build_libraries(self, libraries):
        headers = [p for ext in ("*.h", "*.cuh") for p in (ROOT / CSRC).rglob(ext)]
        newest_header = max((p.stat().st_mtime for p in headers), default=0.0)
        jobs = []  # (library, source, object): compiled in parallel, MAX_JOBS at a time
        for name, info in libraries:
            out_dir = Path(self.build_temp, name)
            for src in info["sources"]:
                obj = out_dir / Path(self.compiler.object_filenames([src])[0])
                if not obj.exists() or obj.stat().st_mtime < max(newest_header, Path(src).stat().st_mtime):
                    jobs.append((name, info, src, out_dir))

        def compile_one(job):
            name, info, src, out_dir = job
            self.compiler.compile([src], output_dir=str(out_dir), macros=info["macros"],
                                  include_dirs=info["include_dirs"], extra_postargs=info["cflags"], debug=self.debug)

        workers = max(1, int(os.environ.get("MAX_JOBS") or os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(compile_one, jobs))  # list(): re-raise the first compile error
        changed = {name for name, *_ in jobs}
        for name, info in libraries:
            lib = Path(self.build_clib, self.compiler.library_filename(name))
            if name in changed or not lib.exists():
                objects = [str(Path(self.build_temp, name) / self.compiler.object_filenames([src])[0])
                           for src in info["sources"]]
                lib.unlink(missing_ok=True)
                self.compiler.create_static_lib(objects, name, output_dir=self.build_clib, debug=self.debug)


class BuildExtension(cpp_extension.BuildExtension):
    """Builds the per-instruction-set libraries first: plain build_ext (as in editable
    installs) only links against them."""

    def run(self):
        if self.distribution.has_c_libraries():
            self.run_command("build_clib")
        super().run()


ext, libraries = extension()

setup(
    ext_modules=[ext],
    libraries=libraries,
    cmdclass={"build_ext": BuildExtension, "build_clib": BuildIsaLibraries},
)
