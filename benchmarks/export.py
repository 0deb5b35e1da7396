"""``python -m benchmarks export``: a pretrained run's codes at chosen t, as one ``.npz`` file.

The codes come from the feature cache (what is missing is encoded and cached,
as a protocol would), so an export gives exactly the numbers the protocols
read. Arrays: ``train``, ``val``, ``test`` of shape (K, N, d) for the K values
of ``t`` in the order given, ``train_labels``, ``val_labels``, ``test_labels``
and ``t``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.cache import CheckpointStore, FeatureCache
from benchmarks.plan import Plan, checkpoint_key
from benchmarks.runner import UsageError, prepare
from methods.base import DataSpec, create_method

SPLITS = ("train", "val", "test")


def export_codes(plan: Plan, seed: int, ts: Sequence[float], out: Path,
                 log: Callable[[str], None] = lambda s: None) -> Path:
    """Write the codes of ``plan``'s one method, pretrained with ``seed``, at ``ts`` to ``out``."""
    req = plan.request
    setup = prepare(plan)
    name, data = req.methods[0], setup.data
    cfg = setup.method_cfgs[name]
    ckpt, _ = checkpoint_key(name, cfg, setup.budget, data.fingerprint(), seed,
                             setup.options.resolved_precision(plan.device))
    method = create_method(name, cfg, DataSpec(data.image_shape, data.mean, data.std)).to(plan.device)
    saved = CheckpointStore(Path(req.results)).load(ckpt)
    if saved is None and method.pretrains:
        raise UsageError(f"no pretrained checkpoint {ckpt} for {name} seed {seed} at these settings under "
                         f"--results {req.results}; pretrain it first: python -m benchmarks run --method {name} "
                         f"--protocol probe --seeds {seed} with the same --dataset, --preset and --set")
    if saved is not None:
        method.load_state_dict(saved["state"])
    features = FeatureCache(Path(req.results), ckpt, method, data, progress=req.progress)
    arrays = {split: features(split, ts).cpu().numpy() for split in SPLITS}
    arrays |= {f"{split}_labels": data.split(split).labels.numpy() for split in SPLITS}
    arrays["t"] = np.asarray(ts, dtype=np.float64)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.npz")  # written whole, then renamed: never half a file
    np.savez(partial, **arrays)
    os.replace(partial, out)
    log(f"{name} seed {seed}: codes at {len(ts)} t of {', '.join(f'{s} {arrays[s].shape}' for s in SPLITS)} "
        f"written to {out}")
    return out
