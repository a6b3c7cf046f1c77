"""What every pose reader returns, and the options that shape it.

Readers (one module per tool family) turn a file into :class:`PoseData` or raise
:class:`PoseFileError` with what is wrong and how to fix it; :mod:`kit.data.pose_formats.assemble`
makes the kit's keypoints of it.

Legend: ``L`` frames in the file, ``I`` individuals, ``J`` joints of one individual.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PoseData", "PoseFileError", "PoseOptions"]


class PoseFileError(Exception):
    """A pose file the kit cannot use: ``problem`` says what, ``fix`` what to do."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.problem, self.fix = problem, fix


@dataclass
class PoseData:
    """Keypoints as a reader found them.

    Shapes:
        xy: (L, I, J, 2) float, NaN where a joint is missing.
        score: (L, I, J) float (likelihood, confidence or visibility) or None (every joint trusted).
    """

    xy: np.ndarray
    score: np.ndarray | None
    joints: list[str] | None = None  # names from the file
    edges: list[tuple[int, int]] | None = None  # from the file (SLEAP, a DeepLabCut config, COCO categories)
    individuals: list[str] = field(default_factory=lambda: [""])
    default_skeleton: str = ""  # a built-in skeleton the format implies (OpenPose BODY_25 / COCO-18)
    fmt: str = ""  # the format's name, for messages

    def __post_init__(self):
        if self.xy.ndim != 4 or self.xy.shape[-1] != 2:
            raise ValueError(f"PoseData.xy expected (L, I, J, 2), got {self.xy.shape}")
        if self.score is not None and self.score.shape != self.xy.shape[:3]:
            raise ValueError(f"PoseData.score expected {self.xy.shape[:3]}, got {self.score.shape}")


@dataclass(frozen=True)
class PoseOptions:
    """How poses are read: ``skeleton`` (built-in name or JSON path, "" = from the files), ``individual``
    (follow one by name, "" = all), ``min_score`` (joints scoring below it are missing)."""

    skeleton: str = ""
    individual: str = ""
    min_score: float = 0.0

    @classmethod
    def of(cls, cfg) -> "PoseOptions":
        """The options of a :class:`~kit.config.RunConfig` (or anything with those fields)."""
        return cls(getattr(cfg, "skeleton", ""), getattr(cfg, "individual", ""),
                   float(getattr(cfg, "pose_min_score", 0.0)))
