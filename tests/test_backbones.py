"""kit.features.backbones: shapes per mode, real save/load round trips, the fallback chain, offline speed.

Everything runs offline on tiny models; the chain tests point the kit at a temporary Hugging
Face cache and declare the hub unreachable.
"""
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import kit.features.backbones as kb
from kit.features.backbones import load_backbone

from _tiny_models import MEAN, STD, TIMM_TINY, TINY_IMG, fake_hub_cache, save_tiny_videomae, save_tiny_vit

B, T = 2, 40


def video(T=T, size=TINY_IMG, seed=0):
    """Random uint8 frames ``(B, T, 3, size, size)``: every frame different."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (B, T, 3, size, size), generator=g, dtype=torch.uint8)


def pixels(frames, mean, std):
    """What the backbone should feed its network: [0, 1] then the checkpoint's normalisation."""
    return (frames.float() / 255 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "kit"]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Hugging Face cache and no hub: the kit must decide from the cache alone."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(kb, "_hf_cache", lambda: str(cache))
    monkeypatch.setattr(kb, "_hub_online", lambda: False)
    return cache


@pytest.fixture(scope="module")
def tiny_vit_file(tmp_path_factory):
    file = tmp_path_factory.mktemp("vit") / "model.safetensors"
    return file, save_tiny_vit(file)


# --- tiny: shapes and the frame mapping ---------------------------------------------------------
@pytest.mark.parametrize("mode, K", [("clip", 1), ("tokens", 8), ("sliding", 8)])
def test_tiny_shapes_per_mode(mode, K):
    bb = load_backbone("tiny", mode=mode, img_size=TINY_IMG)
    v = video(T=40)  # sliding: round(40 / 32) = 1 clip; see test_sliding_positions for more
    pos = bb.sample_positions(T)
    emb = bb.embed(v[:, pos])
    assert pos.shape == (16,) and emb.shape == (B, K, 64) and bb.num_points(T) == K
    out = bb(v)
    assert out.shape == (B, T, 64) and torch.allclose(out, bb.to_frames(emb, T))
    assert bb(video(T=5)).shape == (B, 5, 64)  # shorter than a clip: positions repeat
    assert bb(video(T=7, size=48)).shape == (B, 7, 64)  # resized to img_size


def test_sliding_positions_cover_sub_windows():
    bb = load_backbone("tiny", mode="sliding", img_size=TINY_IMG)
    pos = bb.sample_positions(180)  # C = round(180 / 32) = 6 sub-windows of 30 frames
    assert bb.num_clips(180) == 6 and pos.shape == (96,) and bb.num_points(180) == 48
    for c, clip in enumerate(pos.view(6, 16)):
        assert clip.min() == 30 * c and clip.max() == 30 * c + 29
    v = video(T=180)
    per_clip = load_backbone("tiny", mode="tokens", img_size=TINY_IMG)
    want = torch.cat([per_clip.embed(v[:, clip]) for clip in pos.view(6, 16)], 1)  # clip after clip
    assert torch.allclose(bb.embed(v[:, pos]), want, atol=1e-5)
    assert bb(v).shape == (B, 180, 64)


def test_tokens_vary_over_time_clip_does_not():
    tokens = load_backbone("tiny", mode="tokens", img_size=TINY_IMG)(video())
    clip = load_backbone("tiny", mode="clip", img_size=TINY_IMG)(video())
    assert not torch.allclose(tokens[:, 0], tokens[:, -1], atol=1e-3)
    assert torch.equal(clip[:, 0], clip[:, -1])


def test_to_frames_interpolates_linearly_between_time_points():
    bb = load_backbone("tiny", mode="tokens", img_size=TINY_IMG)
    x = bb.time_points(T)  # centres of the 8 tubelets' frame pairs
    out = bb.to_frames(x.view(1, -1, 1), T)[0, :, 0]  # features = their own time: interpolation = identity
    assert torch.allclose(out, torch.arange(T).float().clamp(x[0], x[-1]), atol=1e-5)


def test_wrong_shapes_say_expected_and_got():
    bb = load_backbone("tiny", mode="tokens", img_size=TINY_IMG)
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\).*got shape \(2, 3, 32, 32\)"):
        bb(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"S = 16 frames .*got \(2, 15, 3, 32, 32\)"):
        bb.embed(video()[:, :15])
    with pytest.raises(ValueError, match=r"expects \(B, 8, D\) for T=40.*got \(2, 1, 64\)"):
        bb.to_frames(torch.zeros(2, 1, 64), T)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bb(video().float())


def test_tiny_is_loud_deterministic_and_fingerprinted(caplog):
    caplog.set_level(logging.INFO, logger="kit")
    a, b = (load_backbone("tiny", img_size=TINY_IMG) for _ in range(2))
    assert any("[warn]" in m and "RANDOM weights" in m for m in lines(caplog))
    assert a.random_init and torch.equal(a(video()), b(video())) and a.fingerprint == b.fingerprint
    assert a.summary()["random_init"] and a.summary()["parameters"] > 0
    others = [load_backbone("tiny", img_size=TINY_IMG, mode="clip"), load_backbone("tiny", img_size=48),
              load_backbone("tiny", img_size=TINY_IMG, num_frames=8)]
    assert len({a.fingerprint, *(o.fingerprint for o in others)}) == 4


def test_frozen_vs_trainable():
    frozen = load_backbone("tiny", img_size=TINY_IMG)
    frozen.train()  # e.g. by the model that holds it
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    assert not frozen(video()).requires_grad
    tuned = load_backbone("tiny", img_size=TINY_IMG, freeze=False)
    tuned.train()
    tuned.gradient_checkpointing_enable()
    tuned(video()).sum().backward()
    assert tuned.model.embeddings.patch_embeddings.projection.weight.grad is not None


def test_token_map_for_inspection():
    bb = load_backbone("tiny", img_size=64)
    tok = bb.tokens(video(size=64))
    assert tok.shape == (B, 8 * 4 * 4, 64) and bb.token_grid == (8, 4, 4)


# --- VideoMAE checkpoints from disk -------------------------------------------------------------
def test_finetuned_checkpoint_applies_fc_norm_and_processor_stats(tmp_path, offline, caplog):
    caplog.set_level(logging.INFO, logger="kit")
    src = save_tiny_videomae(tmp_path / "ckpt")
    bb = load_backbone("videomae", path=tmp_path / "ckpt", mode="clip", img_size=TINY_IMG)
    assert bb.mean == pytest.approx(MEAN) and bb.std == pytest.approx(STD)
    v = video()
    clip = v[:, bb.sample_positions(T)]
    with torch.no_grad():
        h = src.videomae(pixel_values=pixels(clip, MEAN, STD)).last_hidden_state  # (B, 8*2*2, 32)
        want_clip = src.fc_norm(h.mean(1))
        want_steps = src.fc_norm(h.view(B, 8, 4, 32).mean(2))
    assert torch.allclose(bb.embed(clip)[:, 0], want_clip, atol=1e-5)
    assert not torch.allclose(want_clip, h.mean(1), atol=1e-3)  # fc_norm matters here
    tokens = load_backbone("videomae", path=tmp_path / "ckpt", mode="tokens", img_size=TINY_IMG)
    assert torch.allclose(tokens.embed(clip), want_steps, atol=1e-5)
    assert "[info] Using VideoMAE (3D) backbone from Hugging Face" in lines(caplog)
    assert f"[info] Model: {tmp_path / 'ckpt'}" in lines(caplog)


def test_plain_videomae_model_has_no_fc_norm(tmp_path, offline):
    src = save_tiny_videomae(tmp_path / "plain", classification=False)
    bb = load_backbone("videomae", path=tmp_path / "plain", mode="clip", img_size=TINY_IMG)
    clip = video()[:, bb.sample_positions(T)]
    with torch.no_grad():
        want = src(pixel_values=pixels(clip, MEAN, STD)).last_hidden_state.mean(1)
    assert bb.fc_norm is None and torch.allclose(bb.embed(clip)[:, 0], want, atol=1e-5)


# --- timm 2D ----------------------------------------------------------------------------------
def test_vit2d_from_local_file_uses_its_weights(tiny_vit_file, offline):
    import timm

    file, src = tiny_vit_file
    bb = load_backbone("vit2d", model_id="vit_tiny_patch16_224", path=file, mode="clip", img_size=TINY_IMG)
    data = timm.data.resolve_data_config({}, model=src)
    mean, std = data["mean"], data["std"]
    assert (bb.name, bb.is_3d, bb.feature_dim, bb.mean, bb.std) == ("vit2d", False, 192, mean, std)
    clip = video()[:, bb.sample_positions(T)]
    with torch.no_grad():
        want = src(pixels(clip, mean, std).flatten(0, 1)).view(B, 16, 192).mean(1)  # the seed's mean pooling
    assert torch.allclose(bb.embed(clip)[:, 0], want, atol=1e-4)
    per_frame = load_backbone("vit2d", model_id="vit_tiny_patch16_224", path=file, img_size=TINY_IMG)
    assert per_frame.embed(clip).shape == (B, 16, 192) and per_frame(video()).shape == (B, T, 192)
    assert per_frame.tokens(video()).shape == (B, 16, 4, 192)


# --- the fallback chain -----------------------------------------------------------------------
def test_chain_empty_cache_offline_raises_with_fixes(offline, caplog):
    caplog.set_level(logging.INFO, logger="kit")
    with pytest.raises(RuntimeError) as err:
        load_backbone("auto")
    text = str(err.value)
    for needle in ("Tried:", "VideoMAE MCG-NJU/videomae-base-finetuned-kinetics from the Hugging Face cache",
                   "not in the cache", "skipped: offline", "timm vit_small_patch14_dinov2.lvd142m",
                   "backbone_path", "hf download MCG-NJU/videomae-base-finetuned-kinetics", 'backbone="tiny"'):
        assert needle in text
    assert any(m.startswith("[warn] VideoMAE not available (") and m.endswith("falling back to 2D path")
               for m in lines(caplog))


def test_chain_videomae_from_cache(tmp_path, offline, caplog):
    caplog.set_level(logging.INFO, logger="kit")
    save_tiny_videomae(tmp_path / "ckpt")
    fake_hub_cache(offline, kb.DEFAULT_MODEL_ID, list((tmp_path / "ckpt").iterdir()))
    bb = load_backbone("auto", img_size=TINY_IMG)
    assert (bb.name, bb.is_3d, bb.source, bb.feature_dim) == ("videomae", True, kb.DEFAULT_MODEL_ID, 32)
    assert bb.mean == pytest.approx(MEAN) and bb.fc_norm is not None  # processor and fc_norm found in the cache
    assert lines(caplog)[:2] == ["[info] Using VideoMAE (3D) backbone from Hugging Face",
                                 f"[info] Model: {kb.DEFAULT_MODEL_ID}"]


@pytest.mark.parametrize("transformers_missing", [False, True])
def test_chain_falls_back_to_cached_timm(tiny_vit_file, offline, caplog, monkeypatch, transformers_missing):
    caplog.set_level(logging.INFO, logger="kit")
    fake_hub_cache(offline, f"timm/{TIMM_TINY}", [tiny_vit_file[0]])
    if transformers_missing:
        monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    names = ("vit_small_patch14_dinov2.lvd142m", TIMM_TINY)  # the first is not cached: skipped
    bb = load_backbone("auto", mode="clip", img_size=TINY_IMG, timm_names=names)
    assert (bb.name, bb.source, bb.mean) == ("vit2d", TIMM_TINY, (0.5, 0.5, 0.5))
    first = ("[warn] transformers not installed, falling back to 2D path" if transformers_missing
             else "[warn] VideoMAE not available (not in the cache")
    got = lines(caplog)
    assert got[0].startswith(first) and got[1:] == [
        "[warn] Falling back to 2D path: collapsing clip_T frames with mean pooling.",
        f"[info] Using 2D backbone: {TIMM_TINY}"]


def test_videomae_name_never_falls_back(offline):
    with pytest.raises(RuntimeError) as err:
        load_backbone("videomae")
    assert "timm" not in str(err.value).split("Fixes")[0]


def test_bad_paths(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_backbone("auto", path=tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(RuntimeError, match=r"Tried:\n  - VideoMAE from folder \S*junk: \w+Error: "):
        load_backbone("auto", path=tmp_path / "junk")


OFFLINE_PROBE = textwrap.dedent("""
    import json, time
    import transformers, timm  # imported before the clock starts: the bound is on the decision
    import kit.features.backbones as backbones
    t0 = time.perf_counter()
    if backbones._hub_online():
        print(json.dumps({"online": True})); raise SystemExit
    try:
        backbones.load_backbone("auto")
        result = "loaded"
    except RuntimeError as e:
        result = str(e)
    print(json.dumps({"online": False, "seconds": time.perf_counter() - t0, "result": result}))
""")


def test_offline_empty_cache_decides_in_seconds(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HF_HOME")}
    env["HF_HOME"] = str(tmp_path)  # an empty cache
    runs = [subprocess.Popen([sys.executable, "-c", OFFLINE_PROBE], env={**env, **extra}, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for extra in ({}, {"HF_HUB_OFFLINE": "1"})]
    for run, label in zip(runs, ("no HF_HUB_OFFLINE", "HF_HUB_OFFLINE=1")):
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        got = json.loads(out.strip().splitlines()[-1])
        if got["online"]:
            assert label == "no HF_HUB_OFFLINE"
            continue  # this machine reaches the hub: the no-network case cannot be staged here
        assert got["seconds"] < 10, (label, got)
        assert got["result"].startswith("No backbone could be loaded"), (label, got)
