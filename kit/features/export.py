"""``python -m kit export``: a dataset in the kit's layout + its extracted features -> the MS-TCN layout.

Writes what MS-TCN, ASFormer, DiffAct, LTContext and FACT read, so their code runs on the kit's
features unchanged::

    <out>/features/<vid>.npy       (D, T) as extracted (the feature store's files, copied)
    <out>/groundTruth/<vid>.txt    the ``action`` label of each frame, one per line
    <out>/mapping.txt              "<id> <name>": every action class of the dataset, sorted
    <out>/splits/{train,val,test}.split<N>.bundle   "<vid>.txt" per line

Folds: the kit's own split (``splits.csv`` or the seeded ``split_seed`` split) as fold 1, or with
``folds=K`` K seeded folds by video (every video in exactly one test fold), which ``python -m kit
crossval`` then trains and evaluates one by one. Features are extracted first where missing.
"""
from __future__ import annotations

import logging
from pathlib import Path

from kit.config import RunConfig
from kit.data.dataset import dataset_format, run_data
from kit.data.mstcn_export import kfold_splits, write_mstcn_layout
from kit.features.extract import ensure_features

log = logging.getLogger("kit")


def export_dataset(cfg: RunConfig, out: str | Path, folds: int = 0, unlabeled_as: str = "", batch_size: int | None = None,
                   device=None, progress: bool = True) -> Path:
    """Extracts what is missing, then writes the MS-TCN layout of ``cfg``'s data into ``out``.

    Args:
        folds: 0 = the kit's split as fold 1; K >= 2 = K seeded folds (``cfg.split_seed``).
        unlabeled_as: a class name for unlabeled frames (MS-TCN's ground truth has a label on every
            frame); "" refuses videos with unlabeled frames, naming them.
    """
    if dataset_format(cfg) == "mstcn":
        raise ValueError(f"{cfg.data_root} is already in the MS-TCN layout: there is nothing to export")
    if folds == 1 or folds < 0:
        raise ValueError(f"folds must be 0 (the kit's split) or >= 2, got {folds}")
    data = run_data(cfg)
    store, _, _ = ensure_features(cfg, data.records, device=device, batch_size=batch_size, progress=progress)
    classes = sorted({v for r in data.records for v in r.labels.get("action", ()) if v})
    if folds:
        plan = kfold_splits([r.stem for r in data.records], folds, seed=cfg.split_seed)
    else:
        plan = [{name: [r.stem for r in recs] for name, recs in data.splits.items()}]
    path = write_mstcn_layout(out, data.records, {"action": classes}, plan, lambda stem: store.path(stem),
                              unlabeled_as=unlabeled_as)
    log.info(f"[info] Wrote the MS-TCN layout of {len(data.records)} videos, {len(classes)} classes, {len(plan)} "
             f"fold(s) to {path} (features: {store.root})")
    return path
