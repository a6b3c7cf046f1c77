"""An upstream repository's checkpoint as a kit run folder: ``import_upstream(...) -> Path``.

``python -m kit import-model --temporal_model asformer --checkpoint epoch-120.model --mapping mapping.txt
--features_dim 2048 --out outputs/asformer-50salads [--data_root data/50salads --split_index 1 --sample_rate 2]``

reads the ``state_dict`` that MS-TCN, MS-TCN++ or ASFormer training saves (``epoch-N.model``), puts
it into the kit's model (:func:`kit.temporal.models.from_upstream`, which reads the sizes off the
weights and refuses weights that do not fit) and writes a run folder that ``evaluate``, ``predict``
and ``export`` take like a trained one::

    config.json   temporal_model and its sizes, use_pose False, feature_proj False (the raw features
                  go to the model, as upstream), the data (MS-TCN layout) and sample_rate
    labels.json   {"action": the classes of mapping.txt, in id order (the logit order)}
    splits.json   the fold's videos when data_root is given ({} otherwise)
    best.pt, last.pt   the kit's checkpoint layout (epoch 0: nothing was trained here)
    imported.json  where the weights came from (path, sha256), the sizes read off them

The folder must not exist yet (nothing a user made is replaced).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from kit.config import RunConfig, cli_path, resolve_path
from kit.data.dataset import run_data
from kit.data.mstcn import read_mapping
from kit.errors import ConfigError, RunError
from kit.files import save_checkpoint, write_json
from kit.temporal.model import build_model
from kit.temporal.models import from_upstream, upstream_hyper

log = logging.getLogger("kit")


def read_upstream(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` in an upstream ``.model`` file (also inside a dict under ``model``/``state_dict``)."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist: pass the upstream epoch-N.model file")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"cannot read {path} as a PyTorch state_dict ({type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0][:160]})") from None
    for key in ("model", "state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConfigError(f"{path} holds no state_dict (a dict of tensors), but a {type(sd).__name__}")
    return sd


def import_upstream(temporal_model: str, checkpoint: str | Path, mapping: str | Path, features_dim: int,
                    out: str | Path, *, data_root: str = "", split_index: int = 1, sample_rate: int = 1,
                    **hyper) -> Path:
    """Writes a kit run folder holding an upstream checkpoint; returns the folder.

    Args:
        temporal_model: ``mstcn``, ``mstcn++``, ``asformer`` or ``diffact`` (the repository that trained it).
        checkpoint: upstream's ``epoch-N.model``. mapping: its ``mapping.txt`` (the class order).
        features_dim: ``D`` of the features it was trained on (2048 for the I3D features).
        out: the run folder to create (must not exist).
        data_root: an MS-TCN-layout dataset to evaluate on (its ``split_index`` fold gives splits.json).
        sample_rate: upstream's (2 on 50Salads): predict on every n-th frame, repeat each prediction.
        **hyper: sizes to set instead of reading them off the weights.
    """
    out = resolve_path(out)
    if out.exists():
        raise RunError(f"{out} exists: import-model writes a new run folder; choose another --out")
    sd = read_upstream(checkpoint)
    classes = read_mapping(mapping)
    sizes = {**upstream_hyper(temporal_model, {k.removeprefix("module."): v for k, v in sd.items()}), **hyper}
    tcn = from_upstream(temporal_model, sd, feature_dim=features_dim, num_classes={"action": len(classes)}, **sizes)
    main = {k: sizes.pop(k) for k in ("channels", "layers", "stages")}
    cfg = RunConfig(temporal_model=temporal_model, tcn_channels=int(main["channels"]), tcn_layers=int(main["layers"]),
                    tcn_stages=int(main["stages"]), temporal_hyper={k: v for k, v in sizes.items()},
                    use_pose=False, feature_proj=False, data_root=str(data_root),
                    dataset_format="mstcn" if data_root else "auto", split_index=split_index,
                    sample_rate=sample_rate, output_dir=str(out.parent), run_name=out.name, recipe="",
                    mixed_precision="no")
    vocab = {"action": classes}
    splits: dict[str, list[str]] = {}
    if data_root:
        data = run_data(cfg)
        if data.vocab and data.vocab["action"] != classes:
            raise ConfigError(f"{mapping} and {Path(data_root) / 'mapping.txt'} list different classes (or orders): "
                              "the checkpoint's logits follow the mapping it was trained with; pass that one")
        splits = {k: [r.stem for r in v] for k, v in data.splits.items()}
    head = build_model(cfg, features_dim, vocab)
    head.tcn.load_state_dict(tcn.state_dict())
    digest = hashlib.sha256(Path(checkpoint).expanduser().read_bytes()).hexdigest()
    state = {"model": head.checkpoint_state(), "epoch": 0, "best": float("nan"), "best_epoch": 0,
             "best_metrics": {}, "config": cfg.to_dict(), "vocab": vocab, "num_joints": 17,
             "backbone_fingerprint": f"upstream:{temporal_model}:{digest[:16]}", "pipeline": "whole_video",
             "feature_dim": int(features_dim), "features": str(Path(data_root) / "features") if data_root else ""}
    out.mkdir(parents=True)
    cfg.save(out / "config.json")
    write_json(out / "labels.json", vocab)
    write_json(out / "splits.json", splits)
    save_checkpoint(out / "best.pt", state)
    save_checkpoint(out / "last.pt", state)
    write_json(out / "imported.json", {"temporal_model": temporal_model, "checkpoint": str(Path(checkpoint).resolve()),
                                       "sha256": digest, "sizes": {**main, **sizes}, "mapping": str(mapping)})
    log.info(f"[info] Imported {checkpoint} ({temporal_model}, {dict(main, **sizes)}) into {out}")
    return out


def main_import(argv: list[str]) -> int:
    """``python -m kit import-model``: an upstream checkpoint as a run folder (see the module docstring)."""
    import argparse

    from kit.config import TEMPORAL_MODELS, json_object, positive_int

    p = argparse.ArgumentParser(prog="python -m kit import-model", description="Write a kit run folder holding an "
                                "upstream MS-TCN / MS-TCN++ / ASFormer / DiffAct checkpoint, for evaluate, predict and export.")
    p.add_argument("--temporal_model", required=True, choices=TEMPORAL_MODELS,
                   help="the repository that trained the checkpoint")
    p.add_argument("--checkpoint", type=cli_path, required=True, help="upstream's epoch-N.model (its model's state_dict)")
    p.add_argument("--mapping", type=cli_path, required=True, help="the mapping.txt it was trained with (the class order)")
    p.add_argument("--features_dim", required=True, type=positive_int, help="D of its input features (I3D: 2048)")
    p.add_argument("--out", type=cli_path, required=True, help="the run folder to create, e.g. outputs/asformer-50salads-split1")
    p.add_argument("--data_root", type=cli_path, default="", help="an MS-TCN-layout dataset to evaluate on (default: none)")
    p.add_argument("--split_index", type=positive_int, default=1, help="its fold (default 1)")
    p.add_argument("--sample_rate", type=positive_int, default=1, help="upstream's sample_rate (50Salads: 2)")
    p.add_argument("--temporal_hyper", type=json_object, default={}, metavar="JSON",
                   help="sizes to set instead of reading them off the weights, e.g. '{\"r1\": 2}'")
    a = p.parse_args(argv)
    out = import_upstream(a.temporal_model, a.checkpoint, a.mapping, a.features_dim, a.out, data_root=a.data_root,
                          split_index=a.split_index, sample_rate=a.sample_rate, **a.temporal_hyper)
    print(f"run folder: {out}\nnext: python -m kit evaluate --run {out} --split test   (or predict --run {out} ...)")
    return 0
