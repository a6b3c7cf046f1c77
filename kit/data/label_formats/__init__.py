"""Annotations from annotation tools into the kit's own ``Annotations/<stem>.csv``.

``python -m kit import-labels FILE ... --data_root D`` reads BORIS exports (tabular and aggregated
events), ELAN ``.eaf`` tiers, CVAT for video 1.1 XML and segment JSON (ActivityNet/THUMOS), one
module per tool, converts times to frames with each video's own frame timestamps
(:mod:`kit.data.label_formats.timeline`) and writes one per-frame CSV ``frame,action[,...]`` per
video. Every problem (unknown behaviours, overlapping states, events past the end, a time base
that is not the video's, an existing CSV) is reported with counts before anything is written;
nothing is overwritten unless ``overwrite=True``.
"""
from __future__ import annotations

from kit.data.label_formats.importer import FORMATS, ImportedVideo, import_labels, main_import

__all__ = ["FORMATS", "ImportedVideo", "import_labels", "main_import"]
