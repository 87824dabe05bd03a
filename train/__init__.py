"""train: reproduce published activation-function comparisons (REPRODUCE.md E1-E4) with fused_act.

python -m train e1 --epochs 1            # an experiment, every activation it compares
python -m train e3 --act mish --model mlp1
python -m train report runs/e1           # Markdown report beside the published numbers
python -m train list                     # experiments, models, activations
"""

__version__ = "0.1.0"
