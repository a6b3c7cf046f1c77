"""A feature array on disk: its header checked without loading it, its values checked, loaded
with an error naming the file.

The benchmarks' layout (:mod:`kit.data.mstcn`) stores one ``features/<vid>.npy`` per video; its
reader checks every header here (shape, dtype, size: nothing is loaded), its validation also scans
the values, and the trainer loads one array at a time with :func:`load_features`. Every problem
names the file and the fix (:func:`kit.data.video.problem`); arrays are loaded with
``allow_pickle=False``.

Legend: ``D`` feature width, ``T`` frames of a video (full frame rate).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.data.video import DataError, problem


def load_features(path: str | Path, num_frames: int | None = None) -> np.ndarray:
    """One video's ``(D, T)`` features as stored, cut to ``num_frames`` columns; checked finite.

    The one loader of stored features: the MS-TCN layout's and the kit's own feature store alike.

    The trainer subsamples with ``[:, ::sample_rate]`` itself (see :func:`kit.data.mstcn.load_mstcn`).
    """
    path = Path(path)
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError.of([problem(path, f"not a readable .npy array ({e})", "run validate_mstcn on the "
                                    "dataset folder: it says what is wrong with the file")]) from None
    if not isinstance(a, np.ndarray) or a.ndim != 2:
        raise DataError.of([problem(path, f"not a (D, T) array ({type(a).__name__} {getattr(a, 'shape', '')})",
                                    "save a 2-D float array with numpy.save")])
    if num_frames is not None and a.shape[1] < num_frames:
        raise DataError.of([problem(path, f"features of shape {a.shape}: fewer columns than the video's {num_frames} "
                                    "frames", "extract them again (delete the file; extraction rewrites it)")])
    a = a[:, :num_frames] if num_frames is not None else a
    bad = np.flatnonzero(~np.isfinite(a).all(0))
    if len(bad):
        raise DataError.of([problem(path, f"NaN or inf in {len(bad)} frame(s), first {bad[:5].tolist()} "
                                    "(columns of the (D, T) array)", "re-extract the features of this video")])
    return a


def load_feature_columns(path: str | Path, start: int, stop: int, step: int = 1,
                         num_frames: int | None = None) -> np.ndarray:
    """Columns ``start:stop:step`` of one video's ``(D, T)`` features as float32, read through a memory
    map that is closed before returning: the rest of the file is never loaded (long videos in chunks).

    Checked like :func:`load_features` (2-D, at least ``num_frames`` columns, finite in the columns read;
    frame numbers in errors are the file's).

    Shapes:
        returns: (D, ceil((stop - start) / step))
    """
    path = Path(path)
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError.of([problem(path, f"not a readable .npy array ({e})", "run validate_mstcn on the "
                                    "dataset folder: it says what is wrong with the file")]) from None
    if a.ndim != 2 or (num_frames is not None and a.shape[1] < num_frames):
        del a
        return load_features(path, num_frames)  # raises the loader's error
    out = np.array(a[:, start:stop:step], dtype=np.float32)  # (D, l): a copy, nothing of the map kept
    del a  # unmapped: pages read so far leave this process's resident memory
    bad = np.flatnonzero(~np.isfinite(out).all(0))
    if len(bad):
        raise DataError.of([problem(path, f"NaN or inf in frame(s) {(start + step * bad[:5]).tolist()} (columns of the "
                                    "(D, T) array)", "re-extract the features of this video")])
    return out


# --- checks that never load a whole array (the layout's reader and validation) ---------------
def _npy_header(path: Path, problems: list[dict]) -> tuple[tuple[int, int], np.dtype] | None:
    """``((rows, cols), dtype)`` from the header alone; None (and a problem) for anything but a 2-D float .npy."""
    fix = "save a float array of shape (D, T) with numpy.save(path, array)"
    size = path.stat().st_size
    with open(path, "rb") as f:
        start = f.read(8)
        f.seek(0)
        if start.startswith(b"PK\x03\x04"):
            problems.append(problem(path, "an .npz archive renamed to .npy", "np.load it, take the (D, T) array "
                                    "out and numpy.save it as .npy"))
            return None
        if not start.startswith(b"\x93NUMPY"):
            what = ("empty (0 bytes)" if not start else "a Python pickle, not .npy (kit loads with "
                    "allow_pickle=False)" if start[:1] == b"\x80" else f"not a .npy file (starts with {start!r})")
            problems.append(problem(path, what, fix))
            return None
        try:
            major, _ = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        except (ValueError, OSError, EOFError) as e:
            problems.append(problem(path, f"unreadable .npy header ({e})", fix))
            return None
        offset = f.tell()
    if dtype.hasobject:
        problems.append(problem(path, "holds Python objects (a pickle inside .npy; kit loads with allow_pickle=False)",
                                fix))
        return None
    if len(shape) != 2:
        problems.append(problem(path, f"{len(shape)}-D array of shape {shape}, expected 2-D (D, T)", fix))
        return None
    if dtype.kind != "f":
        problems.append(problem(path, f"dtype {dtype}, expected floats", fix + " (e.g. array.astype('float32'))"))
        return None
    need = offset + int(np.prod(shape)) * dtype.itemsize
    if size < need:
        problems.append(problem(path, f"truncated: the header promises {need} bytes, the file has {size}",
                                "copy or extract the file again"))
        return None
    return (int(shape[0]), int(shape[1])), dtype


def _finite(path: Path, problems: list[dict], rows_per_block: int = 64) -> bool:
    """Scans the values through a memory map, a block of feature rows at a time."""
    a = np.load(path, mmap_mode="r", allow_pickle=False)
    if a.size == 0:
        return True
    bad = np.zeros(a.shape[1], bool)
    for d in range(0, a.shape[0], rows_per_block):
        bad |= ~np.isfinite(a[d:d + rows_per_block]).all(0)  # (T,) frames with a NaN or inf in this block
    if bad.any():
        frames = np.flatnonzero(bad)
        problems.append(problem(path, f"NaN or inf in {len(frames)} frame(s), first {frames[:5].tolist()} "
                                "(columns of the (D, T) array)", "re-extract the features of this video"))
        return False
    return True
