"""Drop fused activations into an existing model.

    model, report = fused_act.convert(model)                      # torch.nn activations -> fused
    print(report)                                                 # what was replaced, what was left and why
    model, report = fused_act.convert(model, to="leaky_tanh", a=0.25)   # every activation -> one choice

Two passes, for the two ways a model can hold an activation:

* ``convert`` swaps *modules*: every ``torch.nn`` activation module whose exact type is in the
  registry's table (``ActivationSpec.torch_module``) becomes the ``fused_act.nn`` module with the
  same parameters, ``inplace`` flag, training mode and module name. Fused modules hold no
  parameters or buffers, so ``state_dict`` is unchanged. It also swaps activation *functions*
  stored as module attributes (``nn.TransformerEncoderLayer(activation="gelu")`` keeps
  ``self.activation = F.gelu``) for the fused function.
* ``convert_functional`` rewrites activation *calls* inside ``forward`` (``F.relu(x)``,
  ``torch.tanh(x)``, ``x.sigmoid()``, ...) in a ``torch.fx`` graph; it needs a model that
  ``torch.fx.symbolic_trace`` can trace (no data-dependent Python control flow) and returns a
  ``GraphModule``. ``convert(model, functional=True)`` runs both.

Everything else is left alone and listed in the report with the reason.

Layout (``fused_act/convert/``): ``modules.py`` (``convert``: the module swap and function-valued
attributes), ``fx_rewrite.py`` (``convert_functional``: the torch.fx rewrite of calls),
``fold.py`` (Linear/Conv2d + activation into one fused layer, in a ``Sequential`` and in a traced
graph), ``tables.py`` (torch <-> fused_act lookups built from the registry), ``selection.py``
(include / exclude and the hooks check), ``target.py`` (``to=``), ``report.py`` (``ConvertReport``).
"""

from __future__ import annotations

from .fx_rewrite import convert_functional
from .modules import convert
from .report import ConvertReport, Left, Replaced
from .selection import Selector as Selector

__all__ = ["convert", "convert_functional", "ConvertReport", "Replaced", "Left"]
