"""What the custom-op boundary costs a compiled model, apart from fused_act's kernels.

    python -m bench.op_boundary                               # bench.model_step's five models, ~5 min
    python -m bench.op_boundary --models mobilenet_v3_small --repeats 61

Under ``torch.compile`` a torch activation is code inductor generates, fused into the loop that
produces its input (a batch norm's normalisation, a residual add) and, in backward, into the one
that consumes its gradient. A registered custom op is opaque: inductor writes its input to
memory, calls it, and reads its output back, in forward and in backward. bench.model_step's
compiled rows compare a converted model against the original, so they measure that boundary
and fused_act's kernels together. This benchmark adds a third model that has the boundary and
ATen's kernels: the original with each activation module replaced by a custom op
(``fused_act_bench::aten_activation`` and its backward op) that calls ATen's own forward and
backward kernels (``aten::hardswish`` / ``aten::hardswish_backward``, ...), tagged
``flexible_layout`` as fused_act's ops are, so inductor hands both ops the same buffers. All
three start from the same weights and batch and are timed interleaved, as in bench.model_step.

Where "ATen kernels behind the boundary" reads well below 1.0x, an opaque op of any kind
costs that much in this model, and fused_act's row shows how much of it its kernels win back.
The ops here are Python functions (torch.library.custom_op) around ATen's: about 1 us a call
more than a C++ op, under 0.5% of a mobilenet_v3_small step. Eager mode has no such boundary
(every op is a call of its own), so only compiled steps are timed.

Supported activations: the modules of bench.model_step's models (ReLU, Sigmoid, GELU, Hardswish,
Hardsigmoid). Writes bench/results/op_boundary.md and .json (``--out`` for another .md; the json
goes beside it, where ``python -m bench report`` reads it to explain a compiled model-step miss).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

from bench.model_step import RESULTS, describe_machine, make, time_variants, variants
from fused_act.machine import isa_text

# A torch module, named as torch_name() names it -> (ATen's forward, ATen's backward, whether the
# backward reads the output): as eager autograd saves them. Keyed by torch's modules, not by
# fused_act's activations: this is torch's computation, behind the boundary.
_ATEN = {
    "ReLU": (torch.ops.aten.relu.default, lambda g, s: torch.ops.aten.threshold_backward.default(g, s, 0.0), True),
    "Sigmoid": (torch.ops.aten.sigmoid.default, torch.ops.aten.sigmoid_backward.default, True),
    "GELU": (torch.ops.aten.gelu.default, torch.ops.aten.gelu_backward.default, False),
    "GELU(tanh)": (
        lambda x: torch.ops.aten.gelu.default(x, approximate="tanh"),
        lambda g, s: torch.ops.aten.gelu_backward.default(g, s, approximate="tanh"),
        False,
    ),
    "Hardswish": (torch.ops.aten.hardswish.default, torch.ops.aten.hardswish_backward.default, False),
    "Hardsigmoid": (torch.ops.aten.hardsigmoid.default, torch.ops.aten.hardsigmoid_backward.default, False),
}


def _backward_layout_of(act: str, grad: torch.Tensor, saved: torch.Tensor) -> torch.Tensor:
    """The operand whose strides ATen's CPU backward gives its result when the two differ:
    threshold_backward follows its saved tensor, the others the gradient (torch 2.14's CPU
    kernels; its meta kernels disagree for some, so they cannot serve as the fake kernel)."""
    return saved if act == "ReLU" else grad


def _as_promised(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """out, laid out as ``torch.empty_like(ref)`` (what the fake kernels promise): a copy only
    where ATen's kernel chose other strides (a non-dense operand, or a torch whose rule differs).
    ATen's results are dense, so equal strides mean ref is dense and empty_like would keep them."""
    return out if out.stride() == ref.stride() else torch.empty_like(ref).copy_(out)


@torch.library.custom_op("fused_act_bench::aten_activation", mutates_args=(), tags=(torch.Tag.flexible_layout,))
def aten_activation(x: torch.Tensor, act: str) -> torch.Tensor:
    return _as_promised(_ATEN[act][0](x), x)


@aten_activation.register_fake
def _(x, act):
    return torch.empty_like(x)


@torch.library.custom_op(
    "fused_act_bench::aten_activation_backward", mutates_args=(), tags=(torch.Tag.flexible_layout,)
)
def aten_activation_backward(grad: torch.Tensor, saved: torch.Tensor, act: str) -> torch.Tensor:
    return _as_promised(_ATEN[act][1](grad, saved), _backward_layout_of(act, grad, saved))


@aten_activation_backward.register_fake
def _(grad, saved, act):
    return torch.empty_like(_backward_layout_of(act, grad, saved))


def _setup(ctx, inputs, output):
    x, act = inputs
    ctx.act = act
    ctx.save_for_backward(output if _ATEN[act][2] else x)


def _backward(ctx, grad):
    (saved,) = ctx.saved_tensors
    return aten_activation_backward(grad, saved, ctx.act), None


aten_activation.register_autograd(_backward, setup_context=_setup)


class AtenActivation(nn.Module):
    """A torch activation module's computation behind the custom op above."""

    def __init__(self, act: str):
        super().__init__()
        self.act = act

    def forward(self, x):
        return aten_activation(x, self.act)

    def extra_repr(self) -> str:
        return self.act


def torch_name(m: nn.Module) -> str | None:
    """The _ATEN key of a supported torch activation module (exact types), else None."""
    name = type(m).__name__ + ("(tanh)" if type(m) is nn.GELU and m.approximate == "tanh" else "")
    return name if name in _ATEN and type(m) is getattr(nn, type(m).__name__, None) else None


def behind_boundary(model: nn.Module) -> int:
    """Replaces, in place, every supported activation module by an AtenActivation; returns how many."""
    n = 0
    for name, child in model.named_children():
        act = torch_name(child)
        if act is not None:
            setattr(model, name, AtenActivation(act))
            n += 1
        else:
            n += behind_boundary(child)
    return n


def measure(name: str, warmup: int, repeats: int) -> dict:
    vs, x, y, _what = variants(name, "compile")  # original and converted, compiled
    model, _x, _y, opt = make(name)  # the same seeds: the same weights and batch
    swapped = behind_boundary(model)
    aten_op = (model, torch.compile(model, fullgraph=True), opt(model.parameters()))
    vs = {"original": vs["original"], "aten_op": aten_op, "converted": vs["converted"]}
    res = time_variants(vs, x, y, "compile", warmup, repeats)
    torch._dynamo.reset()
    return {"model": name, "activations": swapped, **res}


def render(rows: list[dict], machine: dict, args) -> str:
    lines = [
        "# The custom-op boundary under torch.compile: ATen's activation kernels behind it, and fused_act's",
        "",
        f"{machine.get('cpu_model', '?')}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"{isa_text(machine)}, commit {machine.get('git_commit', '?')}, {machine.get('date', '')}. "
        f"`python -m bench.op_boundary --models {args.models} --repeats {args.repeats}`: one training step "
        f"(forward, backward, optimizer) of each model compiled with inductor, median of {args.repeats} "
        "interleaved steps (IQR in brackets); speed-ups are original / this. `ATen op`: the original "
        "model with its activations behind an opaque custom op that runs ATen's own kernels "
        "(bench/op_boundary.py); `fused_act`: `fused_act.convert(model)`.",
        "",
        "| model | activations | original ms | ATen op ms | ATen op speed-up | fused_act ms | fused_act speed-up "
        "| inductor kernels: original / ATen op / fused_act |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o, a, c = r["original"], r["aten_op"], r["converted"]
        cell = lambda v: f"{v['median_ms']:.1f} [{v['q1_ms']:.1f}-{v['q3_ms']:.1f}]"  # noqa: E731
        lines.append(
            f"| {r['model']} | {r['activations']} | {cell(o)} | {cell(a)} | {o['median_ms'] / a['median_ms']:.2f}x | "
            f"{cell(c)} | {o['median_ms'] / c['median_ms']:.2f}x | "
            f"{o['inductor_kernels']} / {a['inductor_kernels']} / {c['inductor_kernels']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mlp_sigmoid,mlp_relu,resnet18,mobilenet_v3_small,transformer_mlp")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=41)
    p.add_argument("--out", type=Path, default=RESULTS / "op_boundary.md")
    args = p.parse_args(argv)
    torch.set_flush_denormal(True)  # as bench.model_step times its steps (its docstring says why)
    rows = []
    for name in args.models.split(","):
        print(f"{name} ...", file=sys.stderr, flush=True)
        rows.append(measure(name, args.warmup, args.repeats))
    machine = describe_machine()
    text = render(rows, machine, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    meta = {"machine": machine, "args": vars(args) | {"out": str(args.out)}, "results": rows}
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    print(text)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
