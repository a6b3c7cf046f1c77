"""Shared fixtures: the demo dataset (generated once per session) and the real sample videos."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kit.data.demo import make_demo_data

SHARED_VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "videos"


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """A 6-video demo dataset (4 train, 1 val, 1 test), shared read-only by all tests."""
    return make_demo_data(tmp_path_factory.mktemp("demo") / "demo_data", num_videos=6)


@pytest.fixture
def shared_videos() -> Path:
    """``../shared/videos`` (real MP4/AVI files), or skip when this checkout has none."""
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"no sample videos at {SHARED_VIDEOS}")
    return SHARED_VIDEOS.resolve()


@pytest.fixture
def data_copy(demo_root, tmp_path) -> Path:
    """A writable 2-video copy of the demo data (no splits.csv), for tests that break it."""
    root = tmp_path / "data"
    for sub, ext in (("Videos", "mp4"), ("Annotations", "csv"), ("Poses", "npy")):
        (root / sub).mkdir(parents=True)
        for stem in ("demo_000", "demo_001"):
            shutil.copy(demo_root / sub / f"{stem}.{ext}", root / sub / f"{stem}.{ext}")
    return root


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Hugging Face cache and no hub: the kit must decide from the cache alone."""
    import kit.features.backbones as kb

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(kb, "hf_cache", lambda: str(cache))
    monkeypatch.setattr(kb, "_hub_online", lambda: False)
    return cache


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny tensors: a thread pool only adds overhead, a lot on a busy machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
