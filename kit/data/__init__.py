"""Stage 1, data: the kit's data contract, video decoding, window plans and the demo dataset.

The names a notebook needs most are importable from here (``from kit.data import load_records``);
each lives in its own module: :mod:`kit.data.contract` (CSV annotations, keypoints, splits,
vocabularies), :mod:`kit.data.video` (frame-exact decoding), :mod:`kit.data.windows` (which frames a
model looks at; window datasets), :mod:`kit.data.demo` (the synthetic dataset).
"""
from .contract import (COCO17_EDGES, IGNORE_INDEX, VIDEO_EXTS, VideoRecord, build_vocab, encode_labels, load_records,
                       split_records, tasks_of, validate)
from .video import DECODE_STATS, DataError, probe_video, read_frames, reset_decode_stats, video_key

__all__ = ["COCO17_EDGES", "IGNORE_INDEX", "VIDEO_EXTS", "DataError", "VideoRecord", "build_vocab", "encode_labels",
           "load_records", "split_records", "tasks_of", "validate", "DECODE_STATS", "probe_video", "read_frames",
           "reset_decode_stats", "video_key"]
