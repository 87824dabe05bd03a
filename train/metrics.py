"""Iterations-to-threshold, the evaluation schedule and per-layer statistics."""

from __future__ import annotations

import math

import torch
from torch import nn

from fused_act.registry import ACTIVATIONS


def steps_to_threshold(evals: list[tuple[int, float]], threshold: float) -> dict | None:
    """First evaluated step whose test accuracy is >= threshold, with the evaluation before it:
    the true crossing lies in (prev_step, step]. None if never reached."""
    prev = 0
    for step, acc in evals:
        if acc >= threshold:
            return {"step": int(step), "prev_eval_step": int(prev)}
        prev = step
    return None


def should_eval(step: int, every: str) -> bool:
    """'epoch': only at epoch ends; '<n>': every n steps; 'log16': 16 evaluations per doubling."""
    if every == "epoch" or step <= 0:
        return False
    if every == "log16":
        return step % max(1, (1 << int(math.log2(step))) // 16) == 0
    return step % int(every) == 0


# Output range of a bounded activation (its registry entry's ``bounds``); an output within 1% of
# that range from a bound counts as saturated (the sources' sigmoid/tanh saturation).
def _bounds(m: nn.Module):
    spec = ACTIVATIONS.get(getattr(m, "act_name", None))
    if spec is None or spec.bounds is None:
        return None
    params = getattr(m, "params", None) or {k: getattr(m, k) for k in spec.params if hasattr(m, k)}
    return spec.bounds(**{**spec.params, **params})


class LayerStats:
    """Per activation layer: fraction of dead units (zero output on every sample of the batch),
    fraction of saturated outputs, output mean/std and the variance of the gradient reaching the
    layer's output; per weight layer: the weight gradient's variance (Glorot & Bengio's plots).

    Hooks are attached only for the duration of ``measure`` so ordinary steps pay nothing.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.acts = [m for m in model.modules() if getattr(m, "is_activation", False)]
        self.weights = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]

    def measure(self, x: torch.Tensor, y: torch.Tensor, loss_fn) -> dict:
        rows = [dict(layer=i, act=getattr(m, "act_name", "?")) for i, m in enumerate(self.acts)]
        grads: dict[int, torch.Tensor] = {}

        def hook(i):
            def fwd(mod, inp, out):
                o = out.detach().float()
                dims = [d for d in range(o.dim()) if d != 1]
                rows[i]["dead_frac"] = float(
                    (o == 0).all(dim=0).all().item()
                    if o.dim() == 1
                    else (o == 0).permute(1, *dims).flatten(1).all(1).float().mean()
                )
                b = _bounds(mod)
                if b is not None:
                    tol = 0.01 * (b[1] - b[0])
                    rows[i]["sat_frac"] = float(((o <= b[0] + tol) | (o >= b[1] - tol)).float().mean())
                rows[i]["out_mean"], rows[i]["out_std"] = float(o.mean()), float(o.std())
                if out.requires_grad:
                    out.register_hook(lambda g: grads.__setitem__(i, g.detach().float().var()))

            return fwd

        handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(self.acts)]
        was_training = self.model.training
        try:
            self.model.eval()
            for p in self.model.parameters():
                p.grad = None
            loss = loss_fn(self.model(x), y)
            loss.backward()
        finally:
            for h in handles:
                h.remove()
            self.model.train(was_training)
        for i, g in grads.items():
            rows[i]["act_grad_var"] = float(g)
        wrows = [
            dict(
                layer=n,
                weight_grad_var=float(m.weight.grad.float().var()),
                weight_std=float(m.weight.detach().float().std()),
            )
            for n, m in self.weights
            if m.weight.grad is not None
        ]
        for p in self.model.parameters():
            p.grad = None
        return {"loss": float(loss.detach()), "activations": rows, "weights": wrows}
