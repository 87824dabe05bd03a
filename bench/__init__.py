"""Benchmark suite of fused_act: fused kernels vs eager PyTorch vs torch.compile vs the memory
limit (copy_/clone), generated from the activation registry. See bench/README.md.

    python -m bench            # the committed report for this machine -> bench/results/
    python -m bench guard      # the regression guard
"""
