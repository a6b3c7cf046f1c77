"""What a checkpoint is and how it wants its frames: identity and preprocessing, read from its files.

- :func:`identity`: a string that changes whenever the weights do. A Hugging Face cache snapshot is
  named by its commit (``.../models--org--name/snapshots/<commit>/``): ``org/name@<commit>``
  (transformers 5 no longer sets ``config._commit_hash``). Any other folder or file: a hash of the
  names, sizes and modification times of its weight files and of ``config.json``'s content.
- :func:`processor_resize`: the :class:`kit.data.video.Resize` and mean/std of the checkpoint's own
  image or video processor (``preprocessor_config.json`` / ``video_preprocessor_config.json``), for
  the kit's ``img_size`` and ``resize_mode``; :func:`normalisation` turns any rescale/offset/normalise
  into the mean/std the kit applies to ``[0, 1]`` pixels.
"""
from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from kit.data.resize import INTERPOLATIONS, Resize

log = logging.getLogger("kit")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RESIZE_MODES = ("crop", "squash", "pad")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
_SNAPSHOT = re.compile(r"models--(?P<repo>[^/]+)/snapshots/(?P<commit>[0-9a-f]{7,64})(/|$)")
_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}  # PIL's numbering, as HF configs store it


def hf_cache() -> str:
    """The Hugging Face hub cache folder ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    import huggingface_hub.constants as hf

    return str(hf.HF_HUB_CACHE)


def identity(path: str | Path) -> str:
    """What the weights at ``path`` (a folder or a file) are; see the module docstring."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist: cannot tell which weights it holds")
    m = _SNAPSHOT.search(path.as_posix())
    if m:
        return f"{m.group('repo').replace('--', '/')}@{m.group('commit')}"
    folder = path if path.is_dir() else path.parent
    files = [path] if path.is_file() else sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    config = folder / "config.json"
    if config.is_file():
        h.update(config.read_bytes())
    return f"files:{h.hexdigest()[:16]}"


def make_resize(img_size: int, resize_mode: str, short_side: int = 0, interpolation: str = "bilinear",
                mean=IMAGENET_MEAN, offsets: str = "floor") -> Resize:
    """The kit's :class:`Resize` for a checkpoint: ``crop`` uses its processor's shortest-edge size."""
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
    fill = tuple(int(round(255 * m)) for m in mean)  # pad with the mean colour: 0 after normalisation
    return Resize(img_size, mode=resize_mode, short_side=short_side if resize_mode == "crop" else 0,
                  interpolation=interpolation, fill=fill if resize_mode == "pad" else (0, 0, 0), offsets=offsets)


def processor_resize(src: str, hf_kw: dict, img_size: int, resize_mode: str,
                     processor_cls: str | tuple[str, ...] = "AutoImageProcessor") -> tuple[Resize, tuple, tuple, str]:
    """Geometry and normalisation of a checkpoint's own processor, at the kit's ``img_size``.

    The processor's shortest-edge size is scaled by ``img_size / crop size``, so at the checkpoint's
    own resolution the frames are exactly what its processor makes (VideoMAE Kinetics: shortest edge
    224, centre crop 224, bilinear, ImageNet mean/std). Mean/std are what the processor's rescale
    and normalisation amount to on ``[0, 1]`` pixels (:func:`normalisation`).

    Args:
        processor_cls: the ``transformers`` auto class(es) to try, in order (e.g.
            ``("AutoVideoProcessor", "AutoImageProcessor")`` for video models).

    Returns:
        (resize, mean, std, a one-line description for the log).
    """
    import transformers

    proc, errors = None, []
    for cls in (processor_cls,) if isinstance(processor_cls, str) else processor_cls:
        try:
            proc = getattr(transformers, cls).from_pretrained(src, **hf_kw)
            break
        except Exception as e:  # noqa: BLE001 - a checkpoint without a processor config is usable
            errors.append(f"{cls}: {type(e).__name__}")
    if proc is None:
        log.warning(f"[warn] {src}: no usable processor config ({'; '.join(errors)}); using a shortest-edge resize, "
                    "a centre crop and the ImageNet mean/std")
        resize = make_resize(img_size, resize_mode, img_size, "bilinear")
        return resize, IMAGENET_MEAN, IMAGENET_STD, "no processor config: ImageNet defaults"
    mean, std = normalisation(proc)
    size, crop = _as_dict(getattr(proc, "size", None)), _as_dict(getattr(proc, "crop_size", None))
    crop_side = crop.get("height") if getattr(proc, "do_center_crop", False) and crop else None
    if "shortest_edge" in size:
        short = size["shortest_edge"]
        short_side = round(short * img_size / crop_side) if crop_side else img_size
    else:  # resized to a fixed (height, width): the aspect ratio was not kept; keep it here, crop the centre
        short_side = img_size
        if resize_mode == "crop" and "height" in size and not crop_side:
            log.warning(f"[warn] {src}: its processor stretches every frame to {size['height']}x{size.get('width')} "
                        "(aspect ratio not kept); the kit keeps the aspect ratio (shortest edge, centre crop). "
                        "resize_mode='squash' reproduces the processor exactly")
    interpolation = _interpolation(getattr(proc, "resample", 2))
    if interpolation not in INTERPOLATIONS:  # nearest / lanczos: the kit scales with bilinear or bicubic
        log.warning(f"[warn] {src}: its processor resamples with {interpolation}; the kit uses bicubic")
        interpolation = "bicubic"
    resize = make_resize(img_size, resize_mode, short_side, interpolation, mean)
    text = (f"{type(proc).__name__}: size {size or '-'}, crop {crop or '-'}, {interpolation}, mean={mean}, std={std}; "
            f"the kit's resize: {resize.describe()}")
    return resize, mean, std, text


def normalisation(proc) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean/std on ``[0, 1]`` pixels equivalent to a processor's rescale, offset and normalisation.

    A processor maps a uint8 value ``x`` to ``(x * r + o - M) / S`` (rescale factor ``r``, offset
    ``o``: -1 for ViViT's ``offset``, mean ``M``, std ``S``); with ``u = x / 255`` that is
    ``(u - (M - o) / 255r) / (S / 255r)``. ViViT's checkpoints (``r = 1/127.5``, offset, ``M = S = 0.5``)
    thus see ``4u - 3``: mean 0.75, std 0.25; VideoPrism's (no normalisation) ``u`` itself.
    """
    r = float(getattr(proc, "rescale_factor", 1 / 255)) if getattr(proc, "do_rescale", True) else 1.0
    # VivitImageProcessor stores `offset`; VivitVideoProcessor applies it unconditionally (rescale_and_normalize)
    offset = -1.0 if getattr(proc, "offset", False) or type(proc).__name__ == "VivitVideoProcessor" else 0.0
    if getattr(proc, "do_normalize", True):
        M, S = _triple(proc.image_mean), _triple(proc.image_std)
    else:
        M, S = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    scale = 255 * r
    if abs(scale - 1) < 1e-9 and offset == 0:  # the common 1/255: keep the processor's own numbers exactly
        return M, S
    return tuple((m - offset) / scale for m in M), tuple(s / scale for s in S)


def _interpolation(resample) -> str:
    """A processor's ``resample`` (PIL's number, a PIL enum or a torchvision mode) as a name."""
    value = getattr(resample, "value", resample)
    if isinstance(value, str):  # torchvision InterpolationMode
        return value
    return _RESAMPLE.get(int(value), "bilinear")


def _triple(v) -> tuple[float, float, float]:
    return tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else (float(v),) * 3


def _as_dict(v) -> dict:
    if v is None:
        return {}
    if isinstance(v, dict):
        return {k: x for k, x in v.items() if x is not None}
    return {k: getattr(v, k) for k in ("shortest_edge", "longest_edge", "height", "width")
            if getattr(v, k, None) is not None}
