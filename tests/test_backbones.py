"""kit.features.backbones: shapes per mode, real save/load round trips, the fallback chain, offline speed.

Everything runs offline on tiny models; the chain tests point the kit at a temporary Hugging
Face cache and declare the hub unreachable.
"""
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
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


@pytest.fixture(scope="module")
def tiny_vit_file(tmp_path_factory):
    file = tmp_path_factory.mktemp("vit") / "model.safetensors"
    return file, save_tiny_vit(file)


# --- tiny: shapes, clip geometry and the frame mapping ---------------------------------------------
def test_clip_mode_on_windows_is_the_seeds_uniform_sampling():
    bb = load_backbone("tiny", mode="clip", img_size=TINY_IMG)
    v = video(T=180)
    pos = bb.sample_positions(180)
    assert pos.tolist() == torch.linspace(0, 179, 16).long().tolist()  # the original script's 16 frames
    emb = bb.embed(v[:, pos])
    assert emb.shape == (B, 1, 64) and bb.num_points(180) == 1
    out = bb(v)
    assert out.shape == (B, 180, 64) and torch.equal(out[:, 0], out[:, -1])  # one vector expanded to T


@pytest.mark.parametrize("step", [1, 2, 3])
def test_tokens_tile_windows_with_a_fixed_span(step):
    bb = load_backbone("tiny", mode="tokens", img_size=TINY_IMG, frame_step=step)
    span = 16 * step
    for T in (5, span, 100, 180):
        C = -(-T // span)
        pos = bb.sample_positions(T)
        assert bb.num_clips(T) == C and pos.shape == (C * 16,) and bb.num_points(T) == C * 8
        for c, clip in enumerate(pos.view(C, 16)):  # clip c: frames c*span, +step, ... (clamped to the window)
            assert clip.tolist() == [min(c * span + i * step, T - 1) for i in range(16)]
        assert bb.time_points(T)[1] - bb.time_points(T)[0] == 2 * step  # one vector per tubelet: T-independent
    v = video(T=100)
    emb = bb.embed(v[:, bb.sample_positions(100)])
    clips = bb.sample_positions(100).view(-1, 16)
    want = torch.cat([bb.embed_clips(v[:, c]) for c in clips], 1)  # clip after clip
    assert torch.allclose(emb, want, atol=1e-5) and bb(v).shape == (B, 100, 64)


def test_whole_video_geometry_matches_the_windowed_features():
    """A video seen whole (clips tiling it, spread to frames) equals one window of the same length."""
    for mode in ("tokens", "clip"):
        bb = load_backbone("tiny", mode=mode, img_size=TINY_IMG, frame_step=2)
        L = 75  # 3 clips of 32, the last one cut short: it repeats the last frame
        assert bb.clip_starts(L) == [0, 32, 64]
        assert bb.clip_frames(64, L).tolist() == [min(64 + 2 * i, 74) for i in range(16)]
        v = video(T=L)[:1]
        pts = torch.stack([bb.embed_clips(v[:, bb.clip_frames(s, L)])[0] for s in bb.clip_starts(L)])  # (C, K, D)
        whole = bb.spread(pts, L)
        assert whole.shape == (L, 64)
        assert torch.allclose(torch.cat([bb.spread(pts, L, a, min(a + 20, L)) for a in range(0, L, 20)]), whole)
        if mode == "tokens":  # the windowed path with T = L computes exactly the same
            assert torch.allclose(bb(v)[0], whole, atol=1e-5)
        else:  # each frame takes its clip's vector
            assert torch.equal(whole[31], pts[0, 0]) and torch.equal(whole[32], pts[1, 0])


def test_tokens_vary_over_time_clip_does_not():
    tokens = load_backbone("tiny", mode="tokens", img_size=TINY_IMG)(video())
    clip = load_backbone("tiny", mode="clip", img_size=TINY_IMG)(video())
    assert not torch.allclose(tokens[:, 0], tokens[:, -1], atol=1e-3)
    assert torch.equal(clip[:, 0], clip[:, -1])


def test_to_frames_interpolates_linearly_between_time_points():
    bb = load_backbone("tiny", mode="tokens", img_size=TINY_IMG)
    x = bb.time_points(T)  # centres of the tubelets' frame pairs, 3 clips of 16 frames for T = 40
    out = bb.to_frames(x.view(1, -1, 1), T)[0, :, 0]  # features = their own time: interpolation = identity
    assert torch.allclose(out, torch.arange(T).float().clamp(x[0], x[-1]), atol=1e-5)


def test_wrong_shapes_say_expected_and_got():
    bb = load_backbone("tiny", mode="tokens", img_size=TINY_IMG)
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\).*got shape \(2, 3, 32, 32\)"):
        bb(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"S = a multiple of 16 frames, got \(2, 15, 3, 32, 32\)"):
        bb.embed(video()[:, :15])
    with pytest.raises(ValueError, match=r"expects \(B, 24, D\) for T=40.*got \(2, 1, 64\)"):
        bb.to_frames(torch.zeros(2, 1, 64), T)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bb(video().float())
    with pytest.raises(ValueError, match=r"must be 32x32 \(got \(48, 48\)\).*read_frames"):
        bb(video(size=48))  # frames get their geometry when decoded, never a silent squash here
    with pytest.raises(ValueError, match="img_size=40 is not a multiple of the tiny backbone.s patch size 16"):
        load_backbone("tiny", img_size=40)


def test_tiny_is_loud_deterministic_and_fingerprinted(caplog):
    caplog.set_level(logging.INFO, logger="kit")
    a, b = (load_backbone("tiny", img_size=TINY_IMG) for _ in range(2))
    assert any("[warn]" in m and "RANDOM weights" in m for m in lines(caplog))
    assert a.random_init and torch.equal(a(video()), b(video())) and a.fingerprint == b.fingerprint
    assert a.summary()["random_init"] and a.summary()["parameters"] > 0
    others = [load_backbone("tiny", img_size=TINY_IMG, mode="clip"), load_backbone("tiny", img_size=48),
              load_backbone("tiny", img_size=TINY_IMG, num_frames=8),
              load_backbone("tiny", img_size=TINY_IMG, frame_step=2),
              load_backbone("tiny", img_size=TINY_IMG, resize_mode="squash"),
              load_backbone("tiny", img_size=TINY_IMG, resize_mode="pad")]
    assert len({a.fingerprint, *(o.fingerprint for o in others)}) == 1 + len(others)


def test_frozen_vs_trainable():
    frozen = load_backbone("tiny", img_size=TINY_IMG)
    frozen.train()  # e.g. by the model that holds it
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    assert not frozen(video()).requires_grad
    tuned = load_backbone("tiny", img_size=TINY_IMG, freeze=False)
    tuned.train()
    tuned.gradient_checkpointing_enable()
    tuned(video()).sum().backward()
    assert tuned.encoder.model.embeddings.patch_embeddings.projection.weight.grad is not None


def test_token_map_for_inspection():
    bb = load_backbone("tiny", img_size=64)
    tok = bb.tokens(video(size=64))
    assert tok.shape == (B, 8, 4 * 4, 64) and bb.token_grid == (8, 4, 4)


# --- VideoMAE checkpoints from disk -------------------------------------------------------------
def test_finetuned_checkpoint_applies_fc_norm_and_processor_stats(tmp_path, offline, caplog):
    caplog.set_level(logging.INFO, logger="kit")
    src = save_tiny_videomae(tmp_path / "ckpt")
    bb = load_backbone("videomae", path=tmp_path / "ckpt", mode="clip", img_size=TINY_IMG)
    assert bb.mean == pytest.approx(MEAN) and bb.std == pytest.approx(STD)
    clip = video()[:, bb.sample_positions(T)]  # (B, 16, 3, 32, 32)
    with torch.no_grad():
        h = src.videomae(pixel_values=pixels(clip, MEAN, STD)).last_hidden_state  # (B, 8*2*2, 32)
        want_clip = src.fc_norm(h.mean(1))
        want_steps = src.fc_norm(h.view(B, 8, 4, 32).mean(2))
    assert torch.allclose(bb.embed_clips(clip)[:, 0], want_clip, atol=1e-5)
    assert not torch.allclose(want_clip, h.mean(1), atol=1e-3)  # fc_norm matters here
    tokens = load_backbone("videomae", path=tmp_path / "ckpt", mode="tokens", img_size=TINY_IMG)
    assert torch.allclose(tokens.embed_clips(clip), want_steps, atol=1e-5)
    assert "[info] Using VideoMAE (3D) backbone from Hugging Face" in lines(caplog)
    assert f"[info] Model: {tmp_path / 'ckpt'}" in lines(caplog)
    assert "fc_norm" in bb.encoder.pooling and bb.resize.mode == "crop"


def test_plain_videomae_model_has_no_fc_norm(tmp_path, offline):
    src = save_tiny_videomae(tmp_path / "plain", classification=False)
    bb = load_backbone("videomae", path=tmp_path / "plain", mode="clip", img_size=TINY_IMG)
    clip = video()[:, bb.sample_positions(T)]
    with torch.no_grad():
        want = src(pixel_values=pixels(clip, MEAN, STD)).last_hidden_state.mean(1)
    assert bb.encoder.fc_norm is None and torch.allclose(bb.embed_clips(clip)[:, 0], want, atol=1e-5)


def test_another_img_size_resamples_videomaes_positions_as_a_3d_grid(tmp_path, offline, caplog):
    """At 64 px the 4x4 grid's token (t0, h1, w0) must get the code of (t0, h~1, w~0), not (t0, h0, w4)."""
    from transformers import VideoMAEConfig
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    caplog.set_level(logging.INFO, logger="kit")
    save_tiny_videomae(tmp_path / "ckpt")  # trained at 32 px: a 2x2 grid; use a larger one to see rows
    cfg = VideoMAEConfig.from_pretrained(tmp_path / "ckpt")
    cfg.image_size = 96  # a 6x6 grid, 8 time steps, as if the checkpoint had been trained at 96 px
    cfg.save_pretrained(tmp_path / "ckpt")
    bb = load_backbone("videomae", path=tmp_path / "ckpt", img_size=64)  # 4x4 grid
    table = bb.encoder.model.embeddings.position_embeddings[0]  # (8*4*4, 32)
    old = get_sinusoid_encoding_table(8 * 6 * 6, 32)[0].view(8, 6, 6, 32)
    probe = table.view(8, 4, 4, 32)[0, 1, 0]  # token (t0, h1, w0) of the new grid
    dist = ((old - probe) ** 2).sum(-1)  # (8, 6, 6): distance to every original code
    t, h, w = [int(i) for i in torch.unravel_index(dist.argmin(), dist.shape)]
    assert t == 0 and w == 0 and h in (1, 2)  # rows 1-2 of 6 are where row 1 of 4 lies; the 1D rebuild gives (0, 0, 4)
    assert bb(video(size=64)).shape == (B, T, 32)
    assert any("resampled from the 8x6x6 token grid to 8x4x4" in m for m in lines(caplog))


def test_fingerprint_follows_the_weights(tmp_path, offline):
    """A new hub snapshot (another commit) or a re-saved folder gives new features, never stale ones."""
    save_tiny_videomae(tmp_path / "ckpt")
    files = list((tmp_path / "ckpt").iterdir())
    snap = fake_hub_cache(offline, kb.DEFAULT_MODEL_ID, files)
    a = load_backbone("auto", img_size=TINY_IMG)
    assert a.identity == f"{kb.DEFAULT_MODEL_ID}@{snap.name}"
    new = snap.parent / ("f" * 40)  # the hub moved on: a new commit is now what refs/main names
    shutil.copytree(snap, new)
    (snap.parent.parent / "refs" / "main").write_text(new.name)
    b = load_backbone("auto", img_size=TINY_IMG)
    assert b.identity.endswith("@" + "f" * 40) and a.fingerprint != b.fingerprint
    c = load_backbone("videomae", path=tmp_path / "ckpt", img_size=TINY_IMG)
    save_tiny_videomae(tmp_path / "ckpt")  # re-saved: new weight files
    os.utime(tmp_path / "ckpt" / "model.safetensors", ns=(1, 1))
    d = load_backbone("videomae", path=tmp_path / "ckpt", img_size=TINY_IMG)
    assert c.fingerprint != d.fingerprint and len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3


def test_processor_geometry_scales_with_img_size(tmp_path, offline):
    """crop mode: the shortest edge goes to the processor's size times img_size / its crop size."""
    from transformers import VideoMAEImageProcessor

    save_tiny_videomae(tmp_path / "ckpt")
    VideoMAEImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                           image_mean=list(MEAN), image_std=list(STD), resample=3).save_pretrained(tmp_path / "ckpt")
    bb = load_backbone("videomae", path=tmp_path / "ckpt", img_size=TINY_IMG)
    assert (bb.resize.mode, bb.resize.size, bb.resize.short_side, bb.resize.interpolation) == (
        "crop", 32, round(256 * 32 / 224), "bicubic")
    squash = load_backbone("videomae", path=tmp_path / "ckpt", img_size=TINY_IMG, resize_mode="squash")
    pad = load_backbone("videomae", path=tmp_path / "ckpt", img_size=TINY_IMG, resize_mode="pad")
    assert squash.resize.mode == "squash" and pad.resize.fill == tuple(round(255 * m) for m in MEAN)
    assert len({bb.fingerprint, squash.fingerprint, pad.fingerprint}) == 3


# --- timm 2D ----------------------------------------------------------------------------------
def test_vit2d_from_local_file_uses_its_weights(tiny_vit_file, offline):
    import timm

    file, src = tiny_vit_file
    bb = load_backbone("vit2d", model_id="vit_tiny_patch16_224", path=file, mode="clip", img_size=TINY_IMG)
    data = timm.data.resolve_data_config({}, model=src)
    mean, std = data["mean"], data["std"]
    assert (bb.name, bb.family, bb.tubelet, bb.feature_dim, bb.mean, bb.std) == ("vit2d", "vit2d", 1, 192, mean, std)
    assert (bb.resize.short_side, bb.resize.interpolation) == (int(32 / data["crop_pct"]), data["interpolation"])
    clip = video()[:, bb.sample_positions(T)]
    with torch.no_grad():
        want = src(pixels(clip, mean, std).flatten(0, 1)).view(B, 16, 192).mean(1)  # the seed's mean pooling
    assert torch.allclose(bb.embed_clips(clip)[:, 0], want, atol=1e-4)
    per_frame = load_backbone("vit2d", model_id="vit_tiny_patch16_224", path=file, img_size=TINY_IMG)
    assert per_frame.embed_clips(clip).shape == (B, 16, 192) and per_frame(video()).shape == (B, T, 192)
    assert per_frame.tokens(video()).shape == (B, 16, 4, 192) and per_frame.token_grid == (16, 2, 2)


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
    assert (bb.name, bb.family, bb.source, bb.feature_dim) == ("videomae", "videomae", kb.DEFAULT_MODEL_ID, 32)
    assert bb.mean == pytest.approx(MEAN) and bb.encoder.fc_norm is not None  # processor and fc_norm from the cache
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


# --- faithful to the checkpoint: the kit's frames and features equal its own processor's ----------------
def _frames(path, n=16, step=2):
    """The first ``n * step`` frames of a real video, every ``step``-th, full size RGB, as OpenCV decodes them."""
    import cv2

    cap, out = cv2.VideoCapture(str(path)), []
    for i in range(n * step):
        ok, bgr = cap.read()
        assert ok
        if i % step == 0:
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return out


def test_videomae_features_equal_its_processor_and_model_on_a_non_square_video(tmp_path, offline, shared_videos):
    """demo.mp4 is 340x256: the processor resizes the shortest edge to the crop size and centre-crops
    (no squashing); the kit's extraction must give what processor + model give, on the same frames."""
    from transformers import VideoMAEImageProcessor

    from kit.features.extract import extract, store_for
    from kit.data.inputs import video_records

    src = save_tiny_videomae(tmp_path / "ckpt")
    VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                           image_mean=list(MEAN), image_std=list(STD)).save_pretrained(tmp_path / "ckpt")
    bb = load_backbone("videomae", path=tmp_path / "ckpt", mode="clip", img_size=TINY_IMG, frame_step=2)
    frames = _frames(shared_videos / "demo.mp4")  # the first clip: frames 0, 2, ..., 30
    pixel_values = VideoMAEImageProcessor.from_pretrained(tmp_path / "ckpt")(frames, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        h = src.videomae(pixel_values=pixel_values).last_hidden_state  # (1, 8*2*2, 32)
        want = src.fc_norm(h.mean(1))[0]  # what the classifier sees
    store = store_for(bb, shared_videos, tmp_path / "out")
    extract(video_records([shared_videos / "demo.mp4"]), bb, store, dtype="float32", progress=False)
    got = torch.from_numpy(np.load(store.path("demo"))[:, 0])  # frame 0 belongs to the first clip
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)  # bit-identical pixels: float noise only
    squash = load_backbone("videomae", path=tmp_path / "ckpt", mode="clip", img_size=TINY_IMG, frame_step=2,
                           resize_mode="squash")
    other = store_for(squash, shared_videos, tmp_path / "out")
    extract(video_records([shared_videos / "demo.mp4"]), squash, other, dtype="float32", progress=False)
    assert not torch.allclose(torch.from_numpy(np.load(other.path("demo"))[:, 0]), want, atol=1e-3)  # it matters


def test_timm_features_equal_timms_own_eval_transform_on_a_non_square_video(tiny_vit_file, offline, shared_videos):
    """timm's eval transform (shortest edge to img / crop_pct, bicubic, centre crop) on PIL images, then the
    model's pooled vector per frame: the kit (torchvision's antialiased bicubic on uint8, torchvision's
    crop rounding) within a measured tolerance (PIL's and torchvision's bicubic differ by a level or two
    on some pixels)."""
    import timm
    from PIL import Image

    from kit.data import read_frames

    file, src = tiny_vit_file
    bb = load_backbone("vit2d", model_id="vit_tiny_patch16_224", path=file, mode="tokens", img_size=TINY_IMG)
    frames = _frames(shared_videos / "demo.mp4", n=4, step=1)
    data = timm.data.resolve_data_config({}, model=src) | {"input_size": (3, TINY_IMG, TINY_IMG)}  # the kit's size
    transform = timm.data.create_transform(**data, is_training=False)
    with torch.no_grad():
        want = src(torch.stack([transform(Image.fromarray(f)) for f in frames]))  # (4, 192)
        kit = bb.encoder(bb.preprocess(read_frames(shared_videos / "demo.mp4", [0, 1, 2, 3], bb.resize)[None])).steps[0]
    cos = torch.nn.functional.cosine_similarity(kit, want, dim=-1)
    assert cos.min() > 0.999, cos  # measured here: 1.0000 (squashed instead: 0.81-0.84)
    assert (kit - want).abs().max() < 0.05 * want.abs().max()
