"""The documentation's per-activation tables agree with the registry and the C++ facts, so a new
activation (or a changed one) cannot leave them stale: README's activation table and
docs/memory.md's bytes-kept table."""

import re
from pathlib import Path

import torch

import fused_act
from fused_act.ops import saved_for
from fused_act.registry import ACTIVATIONS

ROOT = Path(__file__).resolve().parent.parent


def _table_after(path: Path, heading: str) -> list[list[str]]:
    """The body rows (cells stripped) of the first Markdown table after the line ``heading``, or of
    the table whose header row ``heading`` is."""
    lines = path.read_text().splitlines()
    start = lines.index(heading)
    rows, inside = [], False
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            inside = True
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif inside:
            break
    assert rows, f"no table after {heading!r} in {path.name}"
    return rows[1:] if heading.startswith("|") else rows[2:]  # without header and separator


def test_readme_activation_table():
    rows = _table_after(ROOT / "README.md", "## Activations")
    assert [r[0] for r in rows] == list(ACTIVATIONS), "README's table lists the registry's activations in order"
    for name, params, _, keeps in rows:
        spec = ACTIVATIONS[name]
        assert re.findall(r"(\w+)=", params) == list(spec.params), name
        for k, v in spec.params.items():
            assert f"{k}={v!r}".replace("'", '"') in params, (name, k)
        kernel, kp = spec.kernel_args({})
        saved = saved_for(kernel, tuple(kp))
        assert keeps.split(" (")[0] == {"none": "nothing"}.get(saved, saved), name


def _cell_value(cell: str):
    return None if cell == "-" else float(cell)


def test_memory_doc_table():
    header = "| activation (float32, default parameters) | auto | mask | output | input |"
    rows = _table_after(ROOT / "docs" / "memory.md", header)
    seen = []
    for names, *cells in rows:
        for name in names.split(", "):
            seen.append(name)
            modes = fused_act.memory_modes(name)
            for mode, cell in zip(("auto", "mask", "output", "input"), cells):
                want = fused_act.saved_bytes_per_element(name, torch.float32, mode) if mode in modes else None
                assert _cell_value(cell) == want, (name, mode, cell)
    assert sorted(seen) == sorted(ACTIVATIONS), "every activation in exactly one row"
