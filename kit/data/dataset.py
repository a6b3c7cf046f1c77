"""The data a config names: which folder, which format, which videos in which split.

``run_data(cfg)`` is what training, extraction and evaluation all read: the kit's own layout
(``Videos/``, ``Annotations/``, ...; the embedded demo data when no data is given) or a benchmark in
the MS-TCN layout (``features/``, ``groundTruth/``, ``mapping.txt``, ``splits/``), checked, split by
``splits.csv`` / the fold's bundles / a split seeded by ``split_seed``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kit.config import RunConfig, resolve_path
from kit.data.contract import VideoRecord, load_records
from kit.data.demo import demo_root
from kit.data.mstcn import is_mstcn_layout, load_mstcn
from kit.data.pose_formats import PoseOptions
from kit.data.splits import split_records

log = logging.getLogger("kit")


# --- the data a run uses ---------------------------------------------------------------------------
def data_paths(cfg: RunConfig, output_dir: str | Path | None = None) -> dict[str, str]:
    """The data folders a config names; the embedded demo data (generated when absent) if none.

    The demo data lives in ``<output_dir>/demo_data``; ``output_dir`` defaults to the config's.
    """
    if cfg.uses_demo_data:
        root = demo_root(resolve_path(output_dir or cfg.output_dir))
        log.info(f"[info] No data given: using the embedded demo data in {root}")
        return dict(data_root=str(root), annotations="", videos="", poses="", splits="")
    # relative paths: from the checkout (resolve_path), as output_dir; the CLI passes them absolute
    return {k: str(resolve_path(v)) if v else "" for k, v in
            dict(data_root=cfg.data_root, annotations=cfg.annotations, videos=cfg.videos, poses=cfg.poses,
                 splits=cfg.splits).items()}


def run_records(cfg: RunConfig, output_dir: str | Path | None = None,
                stems: list[str] | None = None) -> list[VideoRecord]:
    """The videos of the config's data, checked, in the order of ``stems``.

    Args:
        stems: only these videos (e.g. one split of a run's ``splits.json``): the others are
            neither read nor probed, so evaluating ``val`` does not need the training videos.
            A named video that is missing is a :class:`DataError` naming the file. None = all.
    """
    if dataset_format(cfg) == "mstcn":
        records = run_data(cfg, output_dir).records
        return records if stems is None else [r for r in records if r.stem in set(stems)]
    paths = data_paths(cfg, output_dir)
    return load_records(paths["data_root"], paths["annotations"], paths["videos"], paths["poses"], stems=stems,
                        pose_options=PoseOptions.of(cfg))


@dataclass
class RunData:
    """A run's videos: all records, ``{train, val, test: [VideoRecord]}``, and the class list when the
    dataset defines one (``mapping.txt`` of the MS-TCN layout; None: the vocabulary comes from training)."""

    records: list[VideoRecord]
    splits: dict[str, list[VideoRecord]]
    vocab: dict[str, list[str]] | None = None


def dataset_format(cfg: RunConfig) -> str:
    """``kit`` or ``mstcn``: ``auto`` is the MS-TCN layout when ``data_root`` holds it."""
    if cfg.dataset_format != "auto":
        return cfg.dataset_format
    return "mstcn" if cfg.data_root and is_mstcn_layout(resolve_path(cfg.data_root)) else "kit"


def run_data(cfg: RunConfig, output_dir: str | Path | None = None) -> RunData:
    """Every video of the config's data, checked, split as training splits it (``split_seed``)."""
    if dataset_format(cfg) == "mstcn":
        records, splits, vocab = load_mstcn(resolve_path(cfg.data_root), cfg.split_index, cfg.fps)
        return RunData(records, splits, vocab)
    paths = data_paths(cfg, output_dir)
    records = load_records(paths["data_root"], paths["annotations"], paths["videos"], paths["poses"],
                           pose_options=PoseOptions.of(cfg))
    return RunData(records, split_records(records, paths["splits"], cfg.val_fraction, cfg.test_fraction,
                                          cfg.split_seed))


def run_splits(cfg: RunConfig, output_dir: str | Path | None = None) -> tuple[list[VideoRecord], dict]:
    """Every video of the config's data and ``{train, val, test: [VideoRecord]}`` as training splits them."""
    data = run_data(cfg, output_dir)
    return data.records, data.splits
