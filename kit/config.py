"""Every run parameter in one place.

The field names here are the notebook parameters, the CLI flags and the keys of
``outputs/<run_name>/config.json``: ``-p epochs 50`` in papermill, ``--epochs 50`` on the
command line and ``RunConfig(epochs=50)`` in Python mean the same thing.

Example:
    >>> cfg = RunConfig(epochs=2, backbone="tiny")
    >>> RunConfig.from_dict(cfg.to_dict()) == cfg
    True
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import ConfigError, ConfigTypeError

MODEL_TYPES = ("multitask", "action_only")
BACKBONES = ("", "auto", "videomae", "vit2d", "tiny", "hf")
VISUAL_MODES = ("clip", "tokens")
PIPELINES = ("auto", "whole_video", "windows")
RESIZE_MODES = ("crop", "squash", "pad")
FEATURE_DTYPES = ("float16", "float32")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
CHECKPOINTS = ("best", "last")
DATASET_FORMATS = ("auto", "kit", "mstcn")
RECIPES = ("", "mstcn", "mstcn++", "asformer", "diffact")
TEMPORAL_MODELS = ("mstcn", "mstcn++", "asformer", "diffact")  # kit.temporal.models.TEMPORAL_MODELS registers each
OPTIMIZERS = ("adamw", "adam")
LR_SCHEDULES = ("cosine", "constant")
LOSSES = ("ce", "focal")
REPORT_TO = ("none", "tensorboard", "trackio")

TINY_PATCH, TINY_TUBELET = 16, 2  # the tiny backbone's patch and tubelet sizes (kit.features.backbones.videomae)

# The fields whose value is one of a fixed set (the CLI offers them as choices).
CHOICES = {"model_type": MODEL_TYPES, "backbone": BACKBONES, "visual_mode": VISUAL_MODES, "pipeline": PIPELINES,
           "resize_mode": RESIZE_MODES, "feature_dtype": FEATURE_DTYPES, "mixed_precision": MIXED_PRECISION,
           "dataset_format": DATASET_FORMATS, "recipe": RECIPES, "optimizer": OPTIMIZERS, "lr_schedule": LR_SCHEDULES,
           "temporal_model": TEMPORAL_MODELS, "loss": LOSSES, "report_to": REPORT_TO}


@dataclass
class RunConfig:
    # --- data -------------------------------------------------------------------------------
    data_root: str = ""  # folder holding Videos/ Annotations/ [Poses/] [splits.csv]; "" = demo data
    annotations: str = ""  # seed flag: the Annotations folder (default <data_root>/Annotations)
    videos: str = ""  # seed flag: the Videos folder (default <data_root>/Videos)
    poses: str = ""  # keypoint folder: <stem>.npy, DeepLabCut, SLEAP, OpenPose, MMPose files (default <data_root>/Poses)
    skeleton: str = ""  # coco17 | body25 | coco18 | blazepose33 | a JSON file of joints and edges; "" = from the pose files
    individual: str = ""  # follow this individual (track) of multi-animal pose files; "" = all, pooled
    pose_min_score: float = 0.0  # joints whose likelihood/confidence is below this are missing
    splits: str = ""  # CSV video,split (default <data_root>/splits.csv when present)
    val_fraction: float = 0.2  # seeded split by video when there is no splits file: the model-selection split
    test_fraction: float = 0.2  # likewise, held out: scores nothing was chosen on
    split_seed: int = 0  # seeds that split (not `seed`: another training seed keeps the same held-out videos)
    dataset_format: str = "auto"  # auto | kit | mstcn; auto = mstcn when data_root holds mapping.txt or groundTruth/
    split_index: int = 1  # the fold of an MS-TCN layout: splits/{train,val,test}.split<N>.bundle, 1-based
    sample_rate: int = 1  # train on every n-th frame (MS-TCN: 2 for 50Salads); predictions repeat to every frame
    fps: float = 0.0  # frame rate of data given as features only (MS-TCN layout); 0 = unknown
    # --- model ------------------------------------------------------------------------------
    model_type: str = "multitask"  # multitask (one head per label column) | action_only
    backbone: str = ""  # auto | videomae | vit2d | tiny | hf (model_id: a HF video model); "" = auto on your data, tiny on the demo
    backbone_path: str = ""  # a checkpoint folder on disk (save_pretrained layout)
    model_id: str = "MCG-NJU/videomae-base-finetuned-kinetics"  # Hugging Face id of the 3D backbone
    visual_mode: str = "tokens"  # tokens (one vector per tubelet step) | clip (one per clip; on windows: the seed's)
    use_pose: bool = True  # pose-graph branch, used when keypoints exist
    freeze_backbone: bool = True  # frozen: features extracted once per video; False: fine-tune on windows
    pipeline: str = "auto"  # auto (whole_video when frozen, else windows) | whole_video | windows (the seed's)
    num_frames: int = 16  # frames per clip the backbone sees
    frame_step: int = 2  # frames between a clip's frames: a clip spans num_frames * frame_step frames
    img_size: int = 224  # backbone input resolution
    resize_mode: str = "crop"  # crop (the checkpoint's processor: shortest edge, centre crop) | squash | pad
    feature_dtype: str = "float16"  # dtype of features/<video>.npy: float16 | float32
    pose_dim: int = 64  # width of the pose-graph features
    tcn_channels: int = 64  # width of the temporal conv net
    tcn_layers: int = 8  # dilated layers per stage (dilation 1, 2, 4, ...)
    tcn_stages: int = 2  # MS-TCN stages; later stages refine the earlier ones
    dropout: float = 0.3  # dropout in every TCN layer (as MS-TCN) and after the feature projection
    feature_proj: bool = True  # LayerNorm -> Linear -> Dropout on the features before the TCN (MS-TCN: none)
    temporal_model: str = "mstcn"  # mstcn | mstcn++ | asformer | diffact: the temporal model, sized by tcn_channels/layers/stages (docs/guides/temporal-models.md)
    temporal_hyper: dict = field(default_factory=dict)  # the temporal model's own extra sizes, e.g. {"layers_pg": 11} (MS-TCN++), {"r1": 2, "channel_masking_rate": 0.3} (ASFormer)
    diffact_sampling_steps: int = 25  # DiffAct: DDIM denoising steps at inference (upstream 25; docs/guides/diffact.md)
    # --- windows ----------------------------------------------------------------------------
    max_len: int = 0  # whole videos: train on random crops of at most this many frames; 0 = whole videos
    train_T: int = 180  # windows: frames per training window
    val_T: int = 240  # windows: frames per evaluation window
    window_stride: int = 0  # windows: stride between training windows; 0 = train_T // 2
    # --- optimisation -----------------------------------------------------------------------
    recipe: str = ""  # "" | mstcn | mstcn++ | asformer | diffact: a published recipe's hyper-parameters replace the defaults (README, Benchmarks)
    optimizer: str = "adamw"  # adamw (decoupled weight decay) | adam (the MS-TCN recipe)
    lr_schedule: str = "cosine"  # cosine: linear warm-up, then cosine decay to 0 | constant: warm-up, then the peak
    epochs: int = 50  # passes over the training videos (windows: over the training windows)
    batch_size: int = 1  # whole videos (windows) per optimizer step, per process; MS-TCN: 1
    lr: float = 1e-3  # peak AdamW learning rate of the head
    backbone_lr: float = 1e-5  # peak learning rate of the backbone when freeze_backbone=False
    weight_decay: float = 0.01  # AdamW weight decay
    warmup_steps: int = 20  # linear warm-up, then cosine decay to 0
    grad_accum: int = 1  # gradient accumulation steps
    grad_clip: float = 1.0  # max gradient norm; 0 = off
    mixed_precision: str = "auto"  # auto (bf16 on a GPU that has it, else fp16; none on CPU) | no | bf16 | fp16
    smooth_weight: float = 0.15  # MS-TCN smoothing loss weight (lambda)
    smooth_tau: float = 4.0  # MS-TCN smoothing truncation (tau)
    class_weights: bool = False  # weight the cross-entropy by inverse class frequency
    loss: str = "ce"  # ce (cross-entropy; BCE per behaviour if multi-label) | focal (rare classes, docs/guides/labels.md)
    focal_gamma: float = 2.0  # focal loss exponent: (1 - p_true) ** focal_gamma down-weights easy frames
    task_weights: dict = field(default_factory=dict)  # {task: weight} for the multi-task sum; missing = 1
    feature_cache: bool = True  # cache frozen-backbone features (memory and <output_dir>/.feature_cache)
    num_workers: int = 0  # DataLoader worker processes
    seed: int = 0  # seeds the weights, the shuffling, the windows and the crops (not the split: split_seed)
    # --- outputs ----------------------------------------------------------------------------
    output_dir: str = "outputs"  # runs land in <output_dir>/<run_name>/
    run_name: str = ""  # "" = a timestamped name
    resume: bool = False  # continue the run in <output_dir>/<run_name> from last.pt
    overwrite: bool = False  # start <run_name> afresh: the kit's files of the old run move to <run>/.replaced-<time>/
    report_to: str = "none"  # none | tensorboard (event files in <run>/tensorboard) | trackio (when installed)

    def __post_init__(self) -> None:
        _check_types(self)
        _check_choice("model_type", self.model_type, MODEL_TYPES)
        _check_choice("backbone", self.backbone, BACKBONES)
        if self.visual_mode == "sliding":
            raise ConfigError("RunConfig.visual_mode='sliding' became 'tokens' in kit 0.2 (clips of a fixed span tile "
                             "every window and every video): set visual_mode='tokens'")
        _check_choice("visual_mode", self.visual_mode, VISUAL_MODES)
        _check_choice("pipeline", self.pipeline, PIPELINES)
        _check_choice("resize_mode", self.resize_mode, RESIZE_MODES)
        _check_choice("feature_dtype", self.feature_dtype, FEATURE_DTYPES)
        if self.pipeline == "whole_video" and not self.freeze_backbone:
            raise ConfigError("RunConfig.pipeline='whole_video' needs freeze_backbone=True (features are extracted "
                             "once); fine-tuning trains on windows: pipeline='windows' or 'auto'")
        _check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _check_choice("dataset_format", self.dataset_format, DATASET_FORMATS)
        _check_choice("recipe", self.recipe, RECIPES)
        _check_choice("temporal_model", self.temporal_model, TEMPORAL_MODELS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _check_choice("loss", self.loss, LOSSES)
        for name, typ in field_types().items():
            if typ is float and not math.isfinite(getattr(self, name)):
                raise ConfigError(f"RunConfig.{name} must be a finite number, got {getattr(self, name)}")
        _check_choice("report_to", self.report_to, REPORT_TO)
        for name in ("num_frames", "frame_step", "sample_rate", "img_size", "train_T", "val_T", "epochs", "batch_size",
                     "grad_accum", "tcn_channels", "tcn_layers", "tcn_stages", "pose_dim", "split_index"):
            if getattr(self, name) < 1:
                raise ConfigError(f"RunConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("val_fraction", "test_fraction", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"RunConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ConfigError("RunConfig.val_fraction + test_fraction must be < 1 (nothing left to train on)")
        if min(self.window_stride, self.num_workers, self.warmup_steps, self.max_len, self.fps, self.pose_min_score) < 0:
            raise ConfigError("RunConfig.window_stride, num_workers, warmup_steps, max_len, fps and pose_min_score "
                              "must be >= 0")
        if self.lr <= 0 or self.backbone_lr <= 0:
            raise ConfigError(f"RunConfig.lr and backbone_lr must be > 0, got {self.lr}, {self.backbone_lr}")
        for name in ("weight_decay", "grad_clip", "smooth_weight", "smooth_tau", "focal_gamma"):
            if getattr(self, name) < 0:
                raise ConfigError(f"RunConfig.{name} must be >= 0, got {getattr(self, name)}")
        _check_task_weight_values(self.task_weights)
        if self.diffact_sampling_steps < 1:
            raise ConfigError(f"RunConfig.diffact_sampling_steps must be >= 1, got {self.diffact_sampling_steps}")
        if self.run_name:
            check_run_name(self.run_name)
        if self.loss == "focal" and self.temporal_model == "diffact":
            raise ConfigError("RunConfig.loss='focal' weights the cross-entropy of models trained on their stage outputs; "
                              "DiffAct trains with its own objective: use loss='ce' (or class_weights) with diffact")
        if self.resolved_backbone == "tiny":  # known without loading anything: fail before a run folder is made
            check_clip_geometry(self.img_size, self.num_frames, TINY_PATCH, TINY_TUBELET, "tiny")
        if self.resume and self.overwrite:
            raise ConfigError("RunConfig.resume and overwrite exclude each other: resume continues the run in "
                              f"run_name={self.run_name!r}, overwrite starts it afresh; set one")

    # --- (de)serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Builds a config from a dict, rejecting keys that are not fields."""
        if not isinstance(d, dict):
            raise ConfigTypeError(f"RunConfig.from_dict expects a dict, got {type(d).__name__}")
        unknown = sorted(set(d) - set(field_names()))
        if unknown:
            raise ConfigError(
                f"unknown RunConfig field(s): {', '.join(unknown)}. "
                f"Valid fields: {', '.join(field_names())}")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """A saved ``config.json``; :class:`ConfigError` naming the file for anything unusable."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist (relative to {Path.cwd()}); pass the config.json of a "
                              "run (outputs/<run_name>/config.json) or one saved with RunConfig.save, or leave out "
                              "--config") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a folder; pass the config.json inside it") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e}); fix or delete the file") from None
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            raise type(e)(f"{path}: {e}") from None

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    # --- derived values -------------------------------------------------------------------------
    @property
    def uses_demo_data(self) -> bool:
        return not (self.data_root or self.annotations or self.videos)

    @property
    def resolved_backbone(self) -> str:
        """The backbone name actually loaded: "" means tiny on the demo data, auto otherwise."""
        if self.backbone:
            return self.backbone
        return "tiny" if self.uses_demo_data else "auto"

    @property
    def resolved_pipeline(self) -> str:
        """``whole_video`` or ``windows``: ``auto`` is whole videos exactly when the backbone is frozen."""
        if self.pipeline != "auto":
            return self.pipeline
        return "whole_video" if self.freeze_backbone else "windows"

    @property
    def train_stride(self) -> int:
        return self.window_stride or max(1, self.train_T // 2)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


def field_types() -> dict[str, type]:
    hints = typing.get_type_hints(RunConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(RunConfig)}


def field_help() -> dict[str, str]:
    """The comment after each field, used for ``--help`` and checked against the README."""
    import inspect
    import re

    helps = {}
    for line in inspect.getsource(RunConfig).splitlines():
        m = re.match(r"\s+(\w+): [\w\[\], |]+ = .*?#\s*(.+)$", line)
        if m:
            helps[m.group(1)] = m.group(2).strip()
    return helps


def config_table() -> str:
    """The README's configuration reference, generated from the fields and their comments (one truth)."""
    def shown(v) -> str:
        return '""' if v == "" else f'"{v}"' if isinstance(v, str) else repr(v)

    rows = ["| field (`--flag`) | type | default | meaning |", "|---|---|---|---|"]
    defaults, helps = RunConfig(), field_help()
    for name, typ in field_types().items():
        text = helps.get(name, "").replace("|", "\\|")
        rows.append(f"| `{name}` | {typ.__name__} | `{shown(getattr(defaults, name))}` | {text} |")
    return "\n".join(rows)


def _check_types(cfg: RunConfig) -> None:
    for name, typ in field_types().items():
        value = getattr(cfg, name)
        ok = (isinstance(value, bool) if typ is bool
              else isinstance(value, (int, float)) and not isinstance(value, bool) if typ is float
              else isinstance(value, int) and not isinstance(value, bool) if typ is int
              else isinstance(value, typ))
        if not ok:
            raise ConfigTypeError(
                f"RunConfig.{name} must be {typ.__name__}, got {type(value).__name__} {value!r}")
        if typ is float:
            object.__setattr__(cfg, name, float(value))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"RunConfig.{name}={value!r} is not one of {shown}")


RUN_NAME_MAX_BYTES = 255  # NAME_MAX of ext4, xfs, btrfs, APFS, NTFS
RESERVED_RUN_NAMES = ("demo_data",)  # the kit's demo dataset in output_dir: run files would land in it


def check_run_name(name: str) -> str:
    """``name`` if it can name one folder directly inside ``output_dir``, else :class:`ConfigError`.

    The rule: one folder name, no ``/`` or ``\\``, not ``.``/``..`` or any name starting with ``.``
    (the kit's own hidden folders), no surrounding spaces, at most 255 bytes in UTF-8, and not
    ``demo_data`` (the kit's demo dataset in ``output_dir``).
    """
    rule = ("a run_name must be one folder name inside output_dir: no '/' or '\\', not starting with '.', "
            f"no surrounding spaces, at most {RUN_NAME_MAX_BYTES} bytes, not {'/'.join(RESERVED_RUN_NAMES)}")
    why = ("is empty" if not name.strip() else
           "has surrounding spaces" if name != name.strip() else
           "contains a path separator" if "/" in name or "\\" in name else
           "contains a NUL character" if "\0" in name else
           "starts with '.'" if name.startswith(".") else
           f"is {len(name.encode())} bytes long" if len(name.encode()) > RUN_NAME_MAX_BYTES else
           "is the folder of the kit's demo dataset" if name in RESERVED_RUN_NAMES else "")
    if why:
        raise ConfigError(f"RunConfig.run_name={name[:80]!r}{'...' if len(name) > 80 else ''} {why}: {rule}")
    return name


def _check_task_weight_values(weights: dict) -> None:
    for task, w in weights.items():
        if not isinstance(task, str) or not task:
            raise ConfigError(f"RunConfig.task_weights keys must be task names (label columns), got {task!r}")
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise ConfigError(f"RunConfig.task_weights[{task!r}] must be a number, got {type(w).__name__} {w!r}")
        if not math.isfinite(w) or w < 0:
            raise ConfigError(f"RunConfig.task_weights[{task!r}] must be a finite number >= 0, got {w} "
                              "(a negative weight rewards the loss for growing)")


def check_task_weights(weights: dict, tasks: list[str]) -> None:
    """At fit time, once the data's tasks are known: every weighted task exists and one weight is > 0.

    Args:
        weights: ``RunConfig.task_weights`` (values already checked by ``RunConfig``).
        tasks: the tasks the model gets a head for (the training vocabulary's keys).
    """
    unknown = sorted(set(weights) - set(tasks))
    if unknown:
        raise ConfigError(f"RunConfig.task_weights names {unknown}, which this run has no head for (its tasks: "
                          f"{', '.join(tasks)}); fix the names (they are the annotation CSV's label columns)")
    if tasks and all(weights.get(t, 1.0) == 0 for t in tasks):
        raise ConfigError(f"RunConfig.task_weights gives every task weight 0 ({weights}): nothing would be learned")


def check_clip_geometry(img_size: int, num_frames: int, patch: int, tubelet: int, backbone: str) -> None:
    """``img_size`` a multiple of the backbone's patch size and ``num_frames`` of its tubelet size.

    A backbone's patch embedding silently drops the pixels (frames) past the last whole patch
    (tubelet): the loader calls this so a size it cannot take is an error that says which to use.
    """
    for field_name, value, unit, what in (("img_size", img_size, patch, "patch size"),
                                          ("num_frames", num_frames, tubelet, "tubelet size")):
        if unit > 1 and value % unit:
            lo, hi = value // unit * unit, (value // unit + 1) * unit
            near = f"{lo} or {hi}" if lo else str(hi)
            raise ConfigError(f"RunConfig.{field_name}={value} is not a multiple of the {backbone} backbone's {what} "
                              f"{unit} (the remainder would be cut off): use {near}")


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts such as ``--batch_size``: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def json_object(text: str) -> dict:
    """An argparse ``type`` for dict flags such as ``--task_weights '{"action": 1.0}'``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}): write e.g. '{{\"action\": 1.0}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return value


def project_root() -> Path:
    """The checkout holding ``kit/`` when the kit runs from one (``pip install -e .``), else the cwd.

    Relative paths in a config (``output_dir="outputs"``) are resolved against it, so a notebook
    run from ``notebooks/`` and a CLI run from the root write to the same ``outputs/``.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "kit").is_dir():
        return here
    return Path.cwd()


# RunConfig fields that name a file or folder: the command line makes them absolute (cli_path)
PATH_FIELDS = ("data_root", "annotations", "videos", "poses", "splits", "backbone_path", "output_dir")


def cli_path(value: str) -> str:
    """A path given on the command line, made absolute against the current directory ("" stays "").

    The one rule of the CLI, as every command-line tool: ``--data_root mydemo`` is ``./mydemo``
    where the command runs. (Python and notebooks resolve relative paths against the checkout:
    :func:`resolve_path`.) Also an argparse ``type``.
    """
    return os.path.abspath(os.path.expanduser(value)) if value else value


def resolve_path(path: str | Path) -> Path:
    """``path`` itself when absolute (or ``~``), else relative to :func:`project_root`.

    The rule of the Python API and the notebooks: ``data_root="data/mine"`` is the same folder
    whether a notebook runs from ``notebooks/`` or a script from the checkout's root. The command
    line makes every path absolute first (:func:`cli_path`), so this never changes a CLI path.
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p
