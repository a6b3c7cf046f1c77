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

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

MODEL_TYPES = ("multitask", "action_only")
BACKBONES = ("", "auto", "videomae", "vit2d", "tiny", "hf")
VISUAL_MODES = ("clip", "tokens")
PIPELINES = ("auto", "whole_video", "windows")
RESIZE_MODES = ("crop", "squash", "pad")
FEATURE_DTYPES = ("float16", "float32")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
CHECKPOINTS = ("best", "last")
DATASET_FORMATS = ("auto", "kit", "mstcn")
RECIPES = ("", "mstcn")
OPTIMIZERS = ("adamw", "adam")
LR_SCHEDULES = ("cosine", "constant")
REPORT_TO = ("none", "tensorboard", "trackio")

# The fields whose value is one of a fixed set (the CLI offers them as choices).
CHOICES = {"model_type": MODEL_TYPES, "backbone": BACKBONES, "visual_mode": VISUAL_MODES, "pipeline": PIPELINES,
           "resize_mode": RESIZE_MODES, "feature_dtype": FEATURE_DTYPES, "mixed_precision": MIXED_PRECISION,
           "dataset_format": DATASET_FORMATS, "recipe": RECIPES, "optimizer": OPTIMIZERS, "lr_schedule": LR_SCHEDULES,
           "report_to": REPORT_TO}


@dataclass
class RunConfig:
    # --- data -------------------------------------------------------------------------------
    data_root: str = ""  # folder holding Videos/ Annotations/ [Poses/] [splits.csv]; "" = demo data
    annotations: str = ""  # seed flag: the Annotations folder (default <data_root>/Annotations)
    videos: str = ""  # seed flag: the Videos folder (default <data_root>/Videos)
    poses: str = ""  # keypoint folder of <stem>.npy (default <data_root>/Poses when present)
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
    # --- windows ----------------------------------------------------------------------------
    max_len: int = 0  # whole videos: train on random crops of at most this many frames; 0 = whole videos
    train_T: int = 180  # windows: frames per training window
    val_T: int = 240  # windows: frames per evaluation window
    window_stride: int = 0  # windows: stride between training windows; 0 = train_T // 2
    # --- optimisation -----------------------------------------------------------------------
    recipe: str = ""  # "" | mstcn: a published recipe's hyper-parameters replace the defaults (README, Benchmarks)
    optimizer: str = "adamw"  # adamw (decoupled weight decay) | adam (the MS-TCN recipe)
    lr_schedule: str = "cosine"  # cosine: linear warm-up, then cosine decay to 0 | constant: warm-up, then the peak
    epochs: int = 10  # passes over the training windows
    batch_size: int = 2  # windows per step (per process)
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
    task_weights: dict = field(default_factory=dict)  # {task: weight} for the multi-task sum; missing = 1
    feature_cache: bool = True  # cache frozen-backbone features (memory and <output_dir>/.feature_cache)
    num_workers: int = 0  # DataLoader worker processes
    seed: int = 0  # seeds the weights, the shuffling, the windows and the crops (not the split: split_seed)
    # --- outputs ----------------------------------------------------------------------------
    output_dir: str = "outputs"  # runs land in <output_dir>/<run_name>/
    run_name: str = ""  # "" = a timestamped name
    resume: bool = False  # continue the run in <output_dir>/<run_name> from last.pt
    report_to: str = "none"  # none | tensorboard (event files in <run>/tensorboard) | trackio (when installed)

    def __post_init__(self) -> None:
        _check_types(self)
        _check_choice("model_type", self.model_type, MODEL_TYPES)
        _check_choice("backbone", self.backbone, BACKBONES)
        if self.visual_mode == "sliding":
            raise ValueError("RunConfig.visual_mode='sliding' became 'tokens' in kit 0.2 (clips of a fixed span tile "
                             "every window and every video): set visual_mode='tokens'")
        _check_choice("visual_mode", self.visual_mode, VISUAL_MODES)
        _check_choice("pipeline", self.pipeline, PIPELINES)
        _check_choice("resize_mode", self.resize_mode, RESIZE_MODES)
        _check_choice("feature_dtype", self.feature_dtype, FEATURE_DTYPES)
        if self.pipeline == "whole_video" and not self.freeze_backbone:
            raise ValueError("RunConfig.pipeline='whole_video' needs freeze_backbone=True (features are extracted "
                             "once); fine-tuning trains on windows: pipeline='windows' or 'auto'")
        _check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _check_choice("dataset_format", self.dataset_format, DATASET_FORMATS)
        _check_choice("recipe", self.recipe, RECIPES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _check_choice("report_to", self.report_to, REPORT_TO)
        for name in ("num_frames", "frame_step", "sample_rate", "img_size", "train_T", "val_T", "epochs", "batch_size",
                     "grad_accum", "tcn_channels", "tcn_layers", "tcn_stages", "pose_dim", "split_index"):
            if getattr(self, name) < 1:
                raise ValueError(f"RunConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("val_fraction", "test_fraction", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"RunConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("RunConfig.val_fraction + test_fraction must be < 1 (nothing left to train on)")
        if min(self.window_stride, self.num_workers, self.warmup_steps, self.max_len, self.fps) < 0:
            raise ValueError("RunConfig.window_stride, num_workers, warmup_steps, max_len and fps must be >= 0")
        if self.lr <= 0 or self.backbone_lr <= 0:
            raise ValueError(f"RunConfig.lr and backbone_lr must be > 0, got {self.lr}, {self.backbone_lr}")

    # --- (de)serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Builds a config from a dict, rejecting keys that are not fields."""
        if not isinstance(d, dict):
            raise TypeError(f"RunConfig.from_dict expects a dict, got {type(d).__name__}")
        unknown = sorted(set(d) - set(field_names()))
        if unknown:
            raise ValueError(
                f"unknown RunConfig field(s): {', '.join(unknown)}. "
                f"Valid fields: {', '.join(field_names())}")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); fix or delete the file") from None
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None

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
            raise TypeError(
                f"RunConfig.{name} must be {typ.__name__}, got {type(value).__name__} {value!r}")
        if typ is float:
            object.__setattr__(cfg, name, float(value))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"RunConfig.{name}={value!r} is not one of {shown}")


def project_root() -> Path:
    """The checkout holding ``kit/`` when the kit runs from one (``pip install -e .``), else the cwd.

    Relative paths in a config (``output_dir="outputs"``) are resolved against it, so a notebook
    run from ``notebooks/`` and a CLI run from the root write to the same ``outputs/``.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "kit").is_dir():
        return here
    return Path.cwd()


def resolve_path(path: str | Path) -> Path:
    """``path`` itself when absolute (or ``~``), else relative to :func:`project_root`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p
