"""Stage 1, data: the kit's data contract, video decoding, window plans and the demo dataset.

The names a notebook needs most are importable from here (``from kit.data import load_records``);
each lives in its own module: :mod:`kit.data.contract` (folders, CSV annotations, records),
:mod:`kit.data.poses` (keypoints), :mod:`kit.data.pose_formats` (pose estimators' files, skeletons),
:mod:`kit.data.splits` (train/val/test), :mod:`kit.data.labels`
(vocabularies, class indices), :mod:`kit.data.video` (frame-exact decoding; data errors),
:mod:`kit.data.stream` (one sequential decode pass per video), :mod:`kit.data.windows` (which frames
a model looks at; window datasets), :mod:`kit.data.demo` (the synthetic dataset).
"""
from .contract import VideoRecord, load_records, validate
from .labels import IGNORE_INDEX, build_vocab, encode_labels, tasks_of
from .poses import COCO17_EDGES
from .splits import split_records
from .video import DECODE_STATS, VIDEO_EXTS, DataError, probe_video, read_frames, reset_decode_stats, video_key

__all__ = ["COCO17_EDGES", "IGNORE_INDEX", "VIDEO_EXTS", "DataError", "VideoRecord", "build_vocab", "encode_labels",
           "load_records", "split_records", "tasks_of", "validate", "DECODE_STATS", "probe_video", "read_frames",
           "reset_decode_stats", "video_key"]
