"""backbone="hf" families (VideoMAE, V-JEPA 2, TimeSformer, ViViT, VideoPrism) and the 2D timm towers.

Every checkpoint is TINY (2 layers, width 32), saved with ``save_pretrained`` (model + processor, in
the layout the real checkpoints ship) and loaded back through ``load_backbone``; the reference is the
library itself: ``AutoVideoProcessor`` + the ``transformers`` model class on the same full-size
frames. Tolerance: the kit's pixels are bit-identical to the processor's (asserted exactly); features
agree to float32 rounding (measured max abs difference 1e-6 on features of magnitude ~1-3): asserted
at ``atol=1e-5``. No network: the hub is declared unreachable.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from kit.features.backbones import load_backbone

from _tiny_models import MEAN, STD, fake_hub_cache, save_tiny_videomae

ATOL = 1e-5
FAMILIES = ("vjepa2", "vjepa2_base", "timesformer", "vivit", "videoprism", "videomae")
HEADS = ("videoprism_cls", "videoprism_lvt")  # VideoPrism's classifier and video-text checkpoints: pooling heads
IMG = {"videoprism": 36, "videoprism_cls": 36, "videoprism_lvt": 36}  # 18 px patches; others: 16 px, 32 px frames


def img_of(kind: str) -> int:
    return IMG.get(kind, 32)


def save_tiny(kind: str, folder: Path, seed: int = 0) -> Path:
    """A tiny checkpoint of ``kind`` with the processor config its real checkpoints ship."""
    import transformers as T

    torch.manual_seed(seed)
    small = dict(hidden_size=32, num_attention_heads=2)
    if kind in ("vjepa2", "vjepa2_base"):
        cfg = T.VJEPA2Config(patch_size=16, crop_size=32, frames_per_clip=16, tubelet_size=2, num_hidden_layers=2,
                             mlp_ratio=2.0, num_pooler_layers=1, pred_hidden_size=16, pred_num_attention_heads=2,
                             pred_num_hidden_layers=1, num_labels=3, **small)
        model = T.VJEPA2ForVideoClassification(cfg) if kind == "vjepa2" else T.VJEPA2Model(cfg)
        proc = T.VJEPA2VideoProcessor(crop_size=32)  # shortest edge int(32 * 256 / 224) = 36, as 292 for 256
    elif kind == "timesformer":
        cfg = T.TimesformerConfig(image_size=32, patch_size=16, num_frames=8, num_hidden_layers=2,
                                  intermediate_size=64, num_labels=3, **small)
        model = T.TimesformerForVideoClassification(cfg)
        proc = T.VideoMAEImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    elif kind == "vivit":
        cfg = T.VivitConfig(image_size=32, num_frames=16, tubelet_size=[2, 16, 16], num_hidden_layers=2,
                            intermediate_size=64, num_labels=3, **small)
        model = T.VivitForVideoClassification(cfg)
        proc = T.VivitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    elif kind.startswith("videoprism"):
        vision = dict(image_size=36, num_frames=16, tubelet_size=[1, 18, 18], intermediate_size=64,
                      num_spatial_layers=1, num_temporal_layers=1, num_auxiliary_layers=1, **small)
        if kind == "videoprism_lvt":
            model = T.VideoPrismClipModel(T.VideoPrismConfig(vision_config=vision, text_config=dict(
                vocab_size=50, intermediate_size=64, num_hidden_layers=1, **small)))
        elif kind == "videoprism_cls":
            model = T.VideoPrismForVideoClassification(T.VideoPrismVisionConfig(num_labels=3, **vision))
        else:
            model = T.VideoPrismVisionModel(T.VideoPrismVisionConfig(**vision))
        # what VideoPrismProcessor passes its video processor: 288 x 288 (here 36), no normalisation
        proc = T.LlavaOnevisionVideoProcessor(size={"height": 36, "width": 36}, do_normalize=False)
    elif kind == "videomae":
        save_tiny_videomae(folder)  # its processor config says 224 px: give it the model's 32 px, as a real one
        T.VideoMAEImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                                 image_mean=list(MEAN), image_std=list(STD)).save_pretrained(folder)
        return folder
    else:
        raise ValueError(kind)
    for p in model.parameters():  # LayerNorms start as the identity: make every weight matter
        torch.nn.init.normal_(p, 0.0, 0.3) if p.ndim == 1 else None
    model.eval().save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {k: save_tiny(k, root / k) for k in FAMILIES + HEADS}


def load(kind, folder, **kw):
    kw = {"img_size": img_of(kind), "num_frames": 8 if kind == "timesformer" else 16} | kw
    return load_backbone("hf", path=folder, **kw)


def frames(F=16, h=40, w=56, seed=0):
    """Random full-size, non-square uint8 RGB frames ``(F, h, w, 3)``."""
    return np.random.default_rng(seed).integers(0, 256, (F, h, w, 3), dtype=np.uint8)


def library_pixels(folder, clip: np.ndarray) -> torch.Tensor:
    """The checkpoint's own video processor on full-size frames. ``(F, h, w, 3) -> (1, F, 3, S, S)``"""
    from transformers import AutoVideoProcessor

    out = AutoVideoProcessor.from_pretrained(folder)(list(clip), return_tensors="pt")
    return out["pixel_values"] if "pixel_values" in out else out["pixel_values_videos"]


def library_features(kind, folder, px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(steps (B, T', D), clip (B, D))`` from the transformers classes, pooled as the docs of each family say.

    Where the checkpoint has a classifier, ``clip`` is checked to be exactly what it classifies.
    """
    import transformers as T

    B, Fr = px.shape[:2]
    with torch.no_grad():
        if kind == "vjepa2":
            m = T.VJEPA2ForVideoClassification.from_pretrained(folder).eval()
            h = m.vjepa2(pixel_values_videos=px, skip_predictor=True).last_hidden_state  # (B, T'*N, D)
            clip = m.pooler(h)
            assert torch.allclose(m.classifier(clip), m(pixel_values_videos=px).logits, atol=1e-6)
            steps = m.pooler(h.reshape(B * Fr // 2, -1, h.shape[-1])).reshape(B, Fr // 2, -1)
        elif kind == "vjepa2_base":
            m = T.VJEPA2Model.from_pretrained(folder).eval()
            h = m(pixel_values_videos=px, skip_predictor=True).last_hidden_state
            steps, clip = h.reshape(B, Fr // 2, -1, h.shape[-1]).mean(2), h.mean(1)
        elif kind == "timesformer":
            m = T.TimesformerForVideoClassification.from_pretrained(folder).eval()
            h = m.timesformer(px).last_hidden_state  # (B, 1 + N*F, D), patches space-major
            clip = h[:, 0]
            assert torch.allclose(m.classifier(clip), m(px).logits, atol=1e-6)
            steps = h[:, 1:].reshape(B, -1, Fr, h.shape[-1]).mean(1)
        elif kind == "vivit":
            m = T.VivitForVideoClassification.from_pretrained(folder).eval()
            h = m.vivit(px).last_hidden_state  # (B, 1 + T'*N, D)
            clip = h[:, 0]
            assert torch.allclose(m.classifier(clip), m(px).logits, atol=1e-6)
            steps = h[:, 1:].reshape(B, Fr // 2, -1, h.shape[-1]).mean(2)
        elif kind == "videoprism":
            h = T.VideoPrismVisionModel.from_pretrained(folder).eval()(pixel_values_videos=px).last_hidden_state
            steps, clip = h.reshape(B, Fr, -1, h.shape[-1]).mean(2), h.mean(1)
        elif kind == "videoprism_cls":
            m = T.VideoPrismForVideoClassification.from_pretrained(folder).eval()
            h = m.vision_model(pixel_values_videos=px).last_hidden_state  # (B, F*N, D), frame-major

            def pool(x):
                return m.head_layernorm(m.head(x)[0])[:, 0]
            clip = pool(h)
            assert torch.allclose(m.classifier(clip), m(pixel_values_videos=px).logits[:, 0], atol=1e-6)
            steps = pool(h.reshape(B * Fr, -1, h.shape[-1])).reshape(B, Fr, -1)
        elif kind == "videoprism_lvt":
            from transformers.models.videoprism.modeling_videoprism import l2norm

            vm = T.VideoPrismClipModel.from_pretrained(folder).eval().video_model
            h = vm.vision_model(pixel_values_videos=px).last_hidden_state

            def pool(x):
                for layer in vm.auxiliary_layers:
                    x = layer(x)
                return l2norm(vm.head_layernorm(vm.head(x)[0])[:, 0], dim=-1)
            clip = pool(h)
            video_embedding = vm(pixel_values_videos=px).pooler_output[:, 0]
            assert torch.allclose(clip, video_embedding, atol=1e-6)
            steps = pool(h.reshape(B * Fr, -1, h.shape[-1])).reshape(B, Fr, -1)
        elif kind == "videomae":
            m = T.VideoMAEForVideoClassification.from_pretrained(folder).eval()
            h = m.videomae(px).last_hidden_state
            clip = m.fc_norm(h.mean(1))
            assert torch.allclose(m.classifier(clip), m(px).logits, atol=1e-6)
            steps = m.fc_norm(h.reshape(B, Fr // 2, -1, h.shape[-1]).mean(2))
    return steps, clip


def kit_frames(bb, clip: np.ndarray) -> torch.Tensor:
    """The kit's geometry on the same full-size frames. ``(F, h, w, 3) -> (1, F, 3, S, S)`` uint8"""
    return torch.from_numpy(np.stack([bb.resize(f) for f in clip])).permute(0, 3, 1, 2)[None]


# --- every family: pixels, features, shapes ----------------------------------------------------
@pytest.mark.parametrize("kind", FAMILIES + HEADS)
def test_features_equal_the_librarys_processor_and_model(kind, ckpts, offline):
    F = 8 if kind == "timesformer" else 16
    clip = frames(F)
    squash = kind.startswith("videoprism")  # its processor stretches: resize_mode='squash' is the processor's geometry
    bb = load(kind, ckpts[kind], mode="tokens", resize_mode="squash" if squash else "crop")
    px = library_pixels(ckpts[kind], clip)
    x = kit_frames(bb, clip)
    assert x.shape == px.shape  # one level off anywhere would differ by 1/255/std > 1e-2: the pixels are identical
    assert torch.allclose(bb.preprocess(x), px, atol=1e-6, rtol=0)
    steps, clip_vec = library_features(kind, ckpts[kind], px)
    assert torch.allclose(bb.embed_clips(x), steps, atol=ATOL)
    bb_clip = load(kind, ckpts[kind], mode="clip", resize_mode="squash" if squash else "crop")
    assert torch.allclose(bb_clip.embed_clips(x)[:, 0], clip_vec, atol=ATOL)
    assert bb.family == kind.split("_")[0] and bb.name == "hf"


@pytest.mark.parametrize("kind", FAMILIES)
def test_shapes_per_visual_mode(kind, ckpts, offline):
    bb = load(kind, ckpts[kind], mode="tokens")
    S, F, T = bb.img_size, bb.num_frames, 40
    Tp, h, w = bb.token_grid
    assert (Tp, h, w) == (F // bb.tubelet, S // bb.patch, S // bb.patch)
    video = torch.randint(0, 256, (2, T, 3, S, S), dtype=torch.uint8)
    assert bb.tokens(video).shape == (2, Tp, h * w, 32)
    assert bb.embed_clips(video[:, :F]).shape == (2, Tp, 32) and bb(video).shape == (2, T, 32)
    clip = load(kind, ckpts[kind], mode="clip")
    out = clip(video)
    assert clip.embed_clips(video[:, :F]).shape == (2, 1, 32) and out.shape == (2, T, 32)
    assert torch.equal(out[:, 0], out[:, -1])  # one vector per window, the seed's clip mode
    assert bb.summary()["pooling"] and bb.fingerprint != clip.fingerprint


@pytest.mark.parametrize("kind", ("vjepa2", "timesformer", "vivit", "videoprism_lvt"))
def test_finetuning_reaches_every_weight(kind, ckpts, offline):
    """freeze_backbone=False: trainable, gradient checkpointing on, every weight (pooling heads too) gets a gradient."""
    bb = load(kind, ckpts[kind], freeze=False)
    bb.train()
    bb.gradient_checkpointing_enable()
    bb(torch.randint(0, 256, (1, 16, 3, bb.img_size, bb.img_size), dtype=torch.uint8)).sum().backward()
    assert bb.training and all(p.grad is not None for p in bb.parameters())


def test_fingerprint_differs_per_checkpoint(ckpts, tmp_path, offline):
    prints = {k: load(k, ckpts[k]).fingerprint for k in FAMILIES}
    assert len(set(prints.values())) == len(FAMILIES)
    other = save_tiny("vivit", tmp_path / "vivit2", seed=1)  # same family and shape, other weights
    assert load("vivit", other).fingerprint != prints["vivit"]


def test_hub_id_from_a_fake_cache(ckpts, offline, caplog):
    caplog.set_level(logging.INFO, logger="kit")
    repo = "facebook/vjepa2-vitl-fpc16-256-ssv2"
    snap = fake_hub_cache(offline, repo, list(ckpts["vjepa2"].iterdir()))
    bb = load_backbone("hf", model_id=repo, img_size=32)
    assert (bb.source, bb.identity, bb.family) == (repo, f"{repo}@{snap.name}", "vjepa2")
    assert "[info] Using V-JEPA 2 (3D) backbone from Hugging Face" in [r.getMessage() for r in caplog.records]
    with pytest.raises(RuntimeError, match=r"(?s)not in the cache.*skipped: offline.*hf download other/model"):
        load_backbone("hf", model_id="other/model", img_size=32)


def test_refuses_remote_code_and_unknown_models(tmp_path, offline):
    remote = tmp_path / "videomaev2"
    remote.mkdir()
    (remote / "config.json").write_text('{"model_type": "VideoMAEv2_Base", "auto_map": {"AutoModel": '
                                        '"modeling_videomaev2.VideoMAEv2"}}')
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_backbone("hf", path=remote, img_size=32)
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="'bert' model; backbone='hf' supports"):
        load_backbone("hf", path=tmp_path / "bert", img_size=32)


def test_other_resolution_keeps_each_familys_positions(ckpts, offline):
    """At 48 px: V-JEPA 2's rotary grid is 3 wide (as a model built for 48 px); VideoPrism interpolates
    its tables as the library does; ViViT's 3D table is resampled and runs on 8 frames."""
    import transformers as T

    x = torch.randint(0, 256, (1, 16, 3, 48, 48), dtype=torch.uint8)
    bb = load("vjepa2_base", ckpts["vjepa2_base"], img_size=48, mode="tokens")
    assert {layer.attention.grid_size for layer in bb.encoder.model.encoder.layer} == {3}
    ref = T.VJEPA2Model.from_pretrained(ckpts["vjepa2_base"], crop_size=48).eval()  # RoPE has no weights
    with torch.no_grad():
        h = ref(pixel_values_videos=bb.preprocess(x), skip_predictor=True).last_hidden_state
    assert torch.allclose(bb.embed_clips(x), h.reshape(1, 8, 9, 32).mean(2), atol=ATOL)
    vp = load("videoprism", ckpts["videoprism"], img_size=54, num_frames=8)
    y = torch.randint(0, 256, (1, 8, 3, 54, 54), dtype=torch.uint8)
    with torch.no_grad():
        h = T.VideoPrismVisionModel.from_pretrained(ckpts["videoprism"]).eval()(
            pixel_values_videos=vp.preprocess(y), interpolate_pos_encoding=True).last_hidden_state
    assert torch.allclose(vp.embed_clips(y), h.reshape(1, 8, 9, 32).mean(2), atol=ATOL)
    vivit = load("vivit", ckpts["vivit"], img_size=48, num_frames=8)
    assert vivit.encoder.model.embeddings.position_embeddings.shape == (1, 1 + 4 * 3 * 3, 32)
    assert torch.isfinite(vivit(torch.randint(0, 256, (1, 20, 3, 48, 48), dtype=torch.uint8))).all()


# --- a real, non-square video: extraction == processor + model --------------------------------------
@pytest.mark.parametrize("kind", ("vjepa2", "timesformer", "vivit", "videoprism", "videomae"))
def test_extraction_of_a_real_video_equals_processor_and_model(kind, ckpts, offline, shared_videos, tmp_path):
    """demo.mp4 (340x256, 280 frames) through kit extraction vs the library on the same decoded frames.

    The library's processor sees every full-size frame once (a frame's pixels do not depend on the
    others in its clip), the model each clip of the kit's tiling; both are spread to frames alike.
    """
    from kit.data.stream import iter_frames
    from kit.features.extract import extract_video
    from kit.features.store import FeatureStore

    path = shared_videos / "demo.mp4"
    bb = load(kind, ckpts[kind], mode="tokens", resize_mode="squash" if kind == "videoprism" else "crop")
    store = FeatureStore(tmp_path / "store")
    store.init({"fingerprint": bb.fingerprint}, "float32")
    extract_video(bb, path, store, "demo", dtype="float32", device=torch.device("cpu"))
    got = store.load("demo", mmap=False).T  # (L, D)
    video = np.stack(list(iter_frames(path)))  # (L, 256, 340, 3): full size
    L = len(video)
    px = library_pixels(ckpts[kind], video)[0]  # (L, 3, S, S)
    clips = torch.stack([px[bb.clip_frames(s, L)] for s in bb.clip_starts(L)])  # (C, F, 3, S, S)
    steps, _ = library_features(kind, ckpts[kind], clips)  # (C, T', D)
    want = bb.spread(steps, L).numpy()
    assert got.shape == (L, 32) and np.abs(got - want).max() < ATOL


# --- notebook support --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", FAMILIES)
def test_shape_walkthrough_every_family(kind, ckpts, offline):
    from kit.results.inspect import shape_walkthrough

    bb = load(kind, ckpts[kind])
    S = bb.img_size
    table = shape_walkthrough(bb, torch.randint(0, 256, (1, 36, 3, S, S), dtype=torch.uint8))
    Tp, h, w = bb.token_grid
    rows = dict(zip(table["step"], table["shape"]))
    assert rows["token grid"] == f"(1, {Tp}, {h}, {w}, 32)"
    assert rows["tokens, whole video: per-frame"] == "(36, 32)" and rows["clip, window: per-frame"] == "(1, 36, 32)"


def test_backbone_choice_names_hf():
    from kit.config import RunConfig
    from kit.results.inspect import backbone_choice

    text = backbone_choice(RunConfig(backbone="hf", model_id="facebook/vjepa2-vitl-fpc64-256"))
    assert text.startswith("[info] Backbone: hf from facebook/vjepa2-vitl-fpc64-256") and "V-JEPA 2" in text


# --- 2D towers per frame (timm): DINOv2 with registers, DINOv3, a CLIP image tower ---------------------
TIMM_2D = {"vit_small_patch14_reg4_dinov2.lvd142m": 28, "vit_small_patch16_dinov3.lvd1689m": 32,
           "vit_xsmall_patch16_clip_224.tinyclip_yfcc15m": 32}


@pytest.fixture(scope="module")
def timm_files(tmp_path_factory):
    """Randomly initialised full architectures (timm builds them by name), saved as weight files."""
    import timm
    from safetensors.torch import save_file

    out = {}
    for name, size in TIMM_2D.items():
        torch.manual_seed(3)
        model = timm.create_model(name, pretrained=False, num_classes=0, img_size=size).eval()
        file = tmp_path_factory.mktemp("timm") / "model.safetensors"
        save_file(model.state_dict(), str(file))
        out[name] = (file, model)
    return out


@pytest.mark.parametrize("name", TIMM_2D)
def test_vit2d_towers_per_frame(name, timm_files, offline):
    import timm

    from kit.results.inspect import shape_walkthrough

    file, src = timm_files[name]
    size, F = TIMM_2D[name], 4  # 4-frame clips: these are 8-22 M parameter towers on a CPU
    bb = load_backbone("vit2d", model_id=name, path=file, img_size=size, num_frames=F, mode="tokens")
    data = timm.data.resolve_data_config({}, model=src)
    assert (bb.mean, bb.std, bb.resize.interpolation) == (tuple(data["mean"]), tuple(data["std"]), "bicubic")
    assert bb.resize.short_side == int(size / data["crop_pct"])  # timm's eval transform at the kit's size
    x = torch.randint(0, 256, (1, F, 3, size, size), dtype=torch.uint8)
    with torch.no_grad():
        f = src.forward_features(bb.preprocess(x).flatten(0, 1))  # (F, P + N, D)
        want = src.forward_head(f, pre_logits=True).view(1, F, -1)
    assert torch.allclose(bb.embed_clips(x), want, atol=1e-4)
    P = src.num_prefix_tokens  # CLS + registers: dropped from the token grid
    assert P == (5 if "reg4" in name or "dinov3" in name else 1)
    assert bb.tokens(x).shape == (1, F, f.shape[1] - P, src.num_features)
    table = shape_walkthrough(bb, x)
    side = size // bb.patch
    assert dict(zip(table["step"], table["shape"]))["token grid"] == f"(1, {F}, {side}, {side}, {src.num_features})"
