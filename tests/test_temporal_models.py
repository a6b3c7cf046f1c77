"""kit.temporal.models: MS-TCN, MS-TCN++ and ASFormer behind one interface, and upstream weights in them.

The upstream parameter names and shapes below were written from reading each repository's
``model.py`` (yabufarha/ms-tcn, sj-li/MS-TCN2 f423a9e, ChinaYi/ASFormer e1bbe4f); the reference
forwards are plain ``F.conv1d``/loops over frames written here, independent of the kit's code.
"""
from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from kit.config import TEMPORAL_MODELS as CONFIG_CHOICES
from kit.config import RunConfig
from kit.errors import RunError
from kit.temporal.model import MultiTaskModel, build_model, segmentation_loss
from kit.temporal.models import TEMPORAL_MODELS, build_temporal, from_upstream, upstream_hyper

D, K, C = 6, 4, 8  # input width, classes, channels: tiny


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny ops (tests/conftest.py)


def _rand(shape, g):
    return torch.randn(*shape, generator=g) * 0.5


def _conv(x, sd, name, dilation=1):
    w = sd[name + ".weight"]
    return F.conv1d(x, w, sd[name + ".bias"], padding=dilation * (w.shape[-1] // 2), dilation=dilation)


# --- upstream state_dicts: names and shapes as upstream's modules register them ---------------------------------

def mstcn_upstream(layers=3, stages=2, g=None) -> dict:
    """ms-tcn model.py MultiStageModel: stage1 / stages.{s} of SingleStageModel(conv_1x1, layers.{i}
    (conv_dilated k3, conv_1x1), conv_out)."""
    shapes = {}
    for s, prefix in enumerate(["stage1"] + [f"stages.{i}" for i in range(stages - 1)]):
        shapes[f"{prefix}.conv_1x1"] = (C, D if s == 0 else K, 1)
        for i in range(layers):
            shapes[f"{prefix}.layers.{i}.conv_dilated"] = (C, C, 3)
            shapes[f"{prefix}.layers.{i}.conv_1x1"] = (C, C, 1)
        shapes[f"{prefix}.conv_out"] = (K, C, 1)
    return _params(shapes, g)


def mstcnpp_upstream(layers_pg=4, layers=3, num_r=2, g=None) -> dict:
    """MS-TCN2 model.py:13-82: PG (conv_1x1_in, conv_dilated_1/2.{i} k3, conv_fusion.{i} 2C->C, conv_out),
    Rs.{r} (conv_1x1, layers.{i}.conv_dilated / conv_1x1, conv_out)."""
    shapes = {"PG.conv_1x1_in": (C, D, 1), "PG.conv_out": (K, C, 1)}
    for i in range(layers_pg):
        shapes[f"PG.conv_dilated_1.{i}"] = shapes[f"PG.conv_dilated_2.{i}"] = (C, C, 3)
        shapes[f"PG.conv_fusion.{i}"] = (C, 2 * C, 1)
    for r in range(num_r):
        shapes[f"Rs.{r}.conv_1x1"], shapes[f"Rs.{r}.conv_out"] = (C, K, 1), (K, C, 1)
        for i in range(layers):
            shapes[f"Rs.{r}.layers.{i}.conv_dilated"], shapes[f"Rs.{r}.layers.{i}.conv_1x1"] = (C, C, 3), (C, C, 1)
    return _params(shapes, g)


def asformer_upstream(layers=3, decoders=2, r1=2, r2=2, g=None, d=D) -> dict:
    """ASFormer model.py:214-318: encoder / decoders.{s}: conv_1x1, layers.{i} = AttModule(feed_forward.layer.0
    k3, att_layer.{query,key}_conv C->C/r1, value_conv C->C/r2, att_layer.conv_out C/r2->C, conv_1x1), conv_out.
    InstanceNorm1d (no affine) and Dropout2d hold no parameters."""
    shapes = {}
    for s, prefix in enumerate(["encoder"] + [f"decoders.{i}" for i in range(decoders)]):
        shapes[f"{prefix}.conv_1x1"], shapes[f"{prefix}.conv_out"] = (C, d if s == 0 else K, 1), (K, C, 1)
        for i in range(layers):
            p = f"{prefix}.layers.{i}"
            shapes[f"{p}.feed_forward.layer.0"] = (C, C, 3)
            shapes[f"{p}.att_layer.query_conv"] = shapes[f"{p}.att_layer.key_conv"] = (C // r1, C, 1)
            shapes[f"{p}.att_layer.value_conv"] = (C // r2, C, 1)
            shapes[f"{p}.att_layer.conv_out"] = (C, C // r2, 1)
            shapes[f"{p}.conv_1x1"] = (C, C, 1)
    return _params(shapes, g)


def _params(shapes, g) -> dict:
    sd = {}
    for name, shape in shapes.items():
        sd[name + ".weight"] = _rand(shape, g) / math.sqrt(shape[1] * shape[2])
        sd[name + ".bias"] = _rand(shape[:1], g) * 0.1
    return sd


# --- reference forwards (upstream's arithmetic, one unpadded video, eval mode) ----------------------------------

def ref_mstcn(sd, x, layers, stages):
    outs = []
    for s, prefix in enumerate(["stage1"] + [f"stages.{i}" for i in range(stages - 1)]):
        h = _conv(x if s == 0 else outs[-1].softmax(1), sd, f"{prefix}.conv_1x1")
        for i in range(layers):
            h = h + _conv(F.relu(_conv(h, sd, f"{prefix}.layers.{i}.conv_dilated", 2 ** i)), sd,
                          f"{prefix}.layers.{i}.conv_1x1")
        outs.append(_conv(h, sd, f"{prefix}.conv_out"))
    return outs


def ref_mstcnpp(sd, x, layers_pg, layers, num_r):
    f = _conv(x, sd, "PG.conv_1x1_in")
    for i in range(layers_pg):
        a = _conv(f, sd, f"PG.conv_dilated_1.{i}", 2 ** (layers_pg - 1 - i))
        b = _conv(f, sd, f"PG.conv_dilated_2.{i}", 2 ** i)
        f = F.relu(_conv(torch.cat([a, b], 1), sd, f"PG.conv_fusion.{i}")) + f
    outs = [_conv(f, sd, "PG.conv_out")]
    for r in range(num_r):
        h = _conv(outs[-1].softmax(1), sd, f"Rs.{r}.conv_1x1")
        for i in range(layers):
            h = h + _conv(F.relu(_conv(h, sd, f"Rs.{r}.layers.{i}.conv_dilated", 2 ** i)), sd,
                          f"Rs.{r}.layers.{i}.conv_1x1")
        outs.append(_conv(h, sd, f"Rs.{r}.conv_out"))
    return outs


def ref_sliding_attention(q, k, v, bl, fixed=False):
    """Frame by frame: query t in block b = t // bl, position i = t % bl, has the W = bl + 2 (bl // 2) window
    positions starting at b bl - bl // 2; those beyond the video are zero keys with mask 0, those it does not
    see keep their score but mask 0; softmax(score / sqrt(c) + log(mask + 1e-6)) * mask. It sees window
    positions 0 .. 2 bl - 2 as released (model.py:72 sets [:, :, i:i+bl] for every i), i .. i+bl-1 fixed."""
    c, T = q.shape[1], q.shape[2]
    out = torch.zeros(1, v.shape[1], T)
    half, W = bl // 2, bl + 2 * (bl // 2)
    for t in range(T):
        b, i = divmod(t, bl)
        scores, masks, values = [], [], []
        for w in range(W):
            pos = b * bl - half + w
            inside = 0 <= pos < T
            kk = k[0, :, pos] if inside else torch.zeros(c)
            scores.append(float(q[0, :, t] @ kk) / math.sqrt(c))
            sees = (i <= w < i + bl) if fixed else (w < 2 * bl - 1)
            masks.append(1.0 if inside and sees else 0.0)
            values.append(v[0, :, pos] if inside else torch.zeros(v.shape[1]))
        s = torch.tensor(scores) + torch.log(torch.tensor(masks) + 1e-6)
        a = s.softmax(0) * torch.tensor(masks)
        out[0, :, t] = (torch.stack(values, 1) * a).sum(1)
    return out


def ref_asformer(sd, x, layers, decoders, fixed=False):
    def att_module(p, feat, enc, dilation, alpha):
        out = F.relu(_conv(feat, sd, f"{p}.feed_forward.layer.0", dilation))
        n = F.instance_norm(out, eps=1e-5)
        src = n if enc is None else enc
        a = ref_sliding_attention(_conv(n, sd, f"{p}.att_layer.query_conv"), _conv(n, sd, f"{p}.att_layer.key_conv"),
                                  _conv(src, sd, f"{p}.att_layer.value_conv"), dilation, fixed)
        out = alpha * _conv(F.relu(a), sd, f"{p}.att_layer.conv_out") + out
        return feat + _conv(out, sd, f"{p}.conv_1x1")

    feature = _conv(x, sd, "encoder.conv_1x1")
    for i in range(layers):
        feature = att_module(f"encoder.layers.{i}", feature, None, 2 ** i, 1.0)
    outs = [_conv(feature, sd, "encoder.conv_out")]
    for s in range(decoders):
        enc = feature
        feature = _conv(outs[-1].softmax(1), sd, f"decoders.{s}.conv_1x1")
        for i in range(layers):
            feature = att_module(f"decoders.{s}.layers.{i}", feature, enc, 2 ** i, math.exp(-3 * s))
        outs.append(_conv(feature, sd, f"decoders.{s}.conv_out"))
    return outs


ASF = {"channels": C, "layers": 3, "stages": 3, "r1": 2, "r2": 2}
CASES = {  # id: (model, upstream state_dict, reference forward, the sizes upstream_hyper reads off, extra hyper)
    "mstcn": ("mstcn", lambda g: mstcn_upstream(3, 3, g), lambda sd, x: ref_mstcn(sd, x, 3, 3),
              {"channels": C, "layers": 3, "stages": 3}, {}),
    "mstcn++": ("mstcn++", lambda g: mstcnpp_upstream(4, 3, 2, g), lambda sd, x: ref_mstcnpp(sd, x, 4, 3, 2),
                {"channels": C, "layers_pg": 4, "layers": 3, "stages": 3}, {}),
    "asformer": ("asformer", lambda g: asformer_upstream(3, 2, 2, 2, g), lambda sd, x: ref_asformer(sd, x, 3, 2),
                 ASF, {}),
    "asformer-fixed-window": ("asformer", lambda g: asformer_upstream(3, 2, 2, 2, g),
                              lambda sd, x: ref_asformer(sd, x, 3, 2, fixed=True), ASF, {"fixed_window": True}),
}


def test_registry_matches_the_config_choices():
    assert set(TEMPORAL_MODELS) >= set(CONFIG_CHOICES)
    assert RunConfig().temporal_model == "mstcn"
    with pytest.raises(ValueError, match="unknown temporal model"):
        build_temporal("nope", 4, {"action": 2})


@pytest.mark.parametrize("case", list(CASES))
def test_upstream_weights_give_upstreams_logits(case):
    name, make, ref, hyper, extra = CASES[case]
    g = torch.Generator().manual_seed(0)
    sd = make(g)
    assert upstream_hyper(name, sd) == hyper
    model = from_upstream(name, sd, feature_dim=D, num_classes=K, **extra)
    assert not model.training
    x = torch.randn(1, D, 23, generator=g)  # upstream's input (1, D, T); 23 frames: a partial last block
    if case == "asformer":  # the two windows differ on this input: the test tells them apart
        other = from_upstream(name, sd, feature_dim=D, num_classes=K, fixed_window=True)
        assert not torch.allclose(other(x.transpose(1, 2))[-1]["action"], model(x.transpose(1, 2))[-1]["action"])
    with torch.no_grad():
        got = [o["action"].transpose(1, 2) for o in model(x.transpose(1, 2))]  # (1, K, T) like upstream
        want = ref(sd, x)
    assert len(got) == len(want) == hyper["stages"]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_from_upstream_names_what_does_not_fit():
    sd = mstcnpp_upstream(g=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="does not fit.*feature_dim=7"):
        from_upstream("mstcn++", sd, feature_dim=7, num_classes=K)
    with pytest.raises(ValueError, match="is it an upstream asformer checkpoint"):
        from_upstream("asformer", sd, feature_dim=D, num_classes=K)


@pytest.mark.parametrize("name, extra", [(m, {}) for m in TEMPORAL_MODELS] + [("asformer", {"fixed_window": True})])
def test_padding_never_changes_a_real_frame_and_tasks_get_their_own_blocks(name, extra):
    torch.manual_seed(0)
    model = build_temporal(name, D, {"action": 3, "stance": 2}, channels=C, layers=4, stages=3, **extra).eval()
    a, b = torch.randn(1, 13, D), torch.randn(1, 29, D)
    batch = torch.cat([torch.cat([a, 1e3 * torch.randn(1, 16, D)], 1), b])  # garbage in a's padding
    mask = torch.tensor([[True] * 13 + [False] * 16, [True] * 29])
    with torch.no_grad():
        alone, both = model(a), model(batch, mask)
    for s_alone, s_both in zip(alone, both):
        assert s_both["stance"].shape == (2, 29, 2)
        torch.testing.assert_close(s_both["action"][:1, :13], s_alone["action"], rtol=1e-4, atol=1e-5)
        assert s_both["action"][0, 13:].abs().max() == 0  # padded outputs are 0
    with pytest.raises(ValueError, match=rf"expected \(B, T, {D}\)"):
        model(torch.randn(1, 5, D + 1))


def test_asformer_takes_a_long_video_in_bounded_blocks():
    """20,000 frames through 10 layers (blocks up to 512): attention per block, never a T x T matrix."""
    model = build_temporal("asformer", 4, {"action": 3}, channels=2, layers=10, stages=1).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 20_000, 4))
    assert out[-1]["action"].shape == (1, 20_000, 3) and torch.isfinite(out[-1]["action"]).all()


@pytest.mark.parametrize("name", ["mstcn++", "asformer"])
def test_multitask_model_loss_goes_through_the_model_and_another_models_checkpoint_is_refused(name):
    torch.manual_seed(0)
    cfg = RunConfig(temporal_model=name, tcn_channels=8, tcn_layers=3, tcn_stages=2, pose_dim=8, dropout=0.0)
    vocab = {"action": ["a", "b", "c"], "stance": ["x", "y"]}
    model = build_model(cfg, 6, vocab, num_joints=5)
    assert type(model.tcn).name == name
    x, pose, mask = torch.randn(2, 20, 6), torch.randn(2, 20, 5, 3), torch.ones(2, 20, dtype=torch.bool)
    mask[1, 15:] = False
    labels = {"action": torch.randint(0, 3, (2, 20)), "stance": torch.randint(0, 2, (2, 20))}
    model.eval()  # no dropout: the two losses below see the same logits
    loss, parts = model(x, pose, mask, loss_kw={"labels": labels, "smooth_weight": 0.15})
    want, _ = segmentation_loss(model(x, pose, mask), labels, mask, smooth_weight=0.15)
    torch.testing.assert_close(loss, want)
    assert {"ce/action", "smooth/stance"} <= set(parts)
    loss.backward()
    # ASFormer's first layers have blocks of 1 frame: a softmax over one key is 1 whatever the query and
    # key, so those two convs get no gradient (upstream alike)
    still = [n for n, p in model.tcn.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert all(re.search(r"layers\.0\.att_layer\.(query|key)_conv", n) for n in still), still
    state = model.checkpoint_state()
    assert state["temporal_model"] == name
    other = build_model(cfg.replace(temporal_model="mstcn"), 6, vocab, num_joints=5)
    with pytest.raises(RunError, match=re.escape(f"holds a '{name}' temporal model, not 'mstcn'")):
        other.load_checkpoint_state(state)
    twin = build_model(cfg, 6, vocab, num_joints=5)
    twin.load_checkpoint_state(state)  # the same model loads
    assert isinstance(twin, MultiTaskModel)


def test_mstcn_checkpoints_of_before_keep_loading():
    """A checkpoint written before temporal_model existed has no such key: it is an MS-TCN."""
    cfg = RunConfig(tcn_channels=8, tcn_layers=2, pose_dim=8)
    model = build_model(cfg, 6, {"action": ["a", "b"]})
    state = {"head": model.state_dict(), "backbone": {}}
    build_model(cfg, 6, {"action": ["a", "b"]}).load_checkpoint_state(state)
    assert all(k.startswith(("visual.", "pose.", "tcn.stages.")) for k in state["head"])


@pytest.mark.parametrize("recipe, values", [
    ("mstcn++", {"temporal_model": "mstcn++", "temporal_hyper": {"layers_pg": 11}, "tcn_layers": 10, "tcn_stages": 4,
                 "lr": 5e-4, "epochs": 100, "optimizer": "adam", "dropout": 0.5}),
    ("asformer", {"temporal_model": "asformer", "temporal_hyper": {"r1": 2, "r2": 2, "channel_masking_rate": 0.3},
                  "tcn_layers": 10, "tcn_stages": 4, "lr": 5e-4, "weight_decay": 1e-5, "epochs": 120})])
def test_recipes_carry_the_upstream_values_each_with_its_source(recipe, values):
    from kit.config import field_names
    from kit.temporal.recipes import RECIPES, apply_recipe

    r = RECIPES[recipe]
    assert set(r.values) == set(r.sources) and set(r.values) <= set(field_names())
    assert all(r.sources[k].split()[0].rstrip(",").count(":") == 1 for k in r.values)  # file:line first
    cfg = apply_recipe(RunConfig(recipe=recipe))
    assert {k: getattr(cfg, k) for k in values} == values
    model = build_model(cfg, 2048, {"action": [str(i) for i in range(19)]})
    # upstream's size for 50Salads (D 2048, 19 classes), counted by hand from its modules: MS-TCN++ PG
    # 131,136 + 11 x 32,960 + 1,235, each of 3 R 1,280 + 10 x 16,512 + 1,235; ASFormer encoder 131,136 +
    # 10 x 24,864 + 1,235, each of 3 decoders 1,280 + 10 x 24,864 + 1,235 (the ASFormer paper: 1.13 M)
    n = sum(p.numel() for p in model.parameters())
    assert n == {"mstcn++": 997_836, "asformer": 1_134_476}[recipe], n


def test_import_model_makes_a_run_that_evaluates_with_upstreams_predictions(tmp_path):
    """An upstream ASFormer checkpoint + mapping.txt -> `python -m kit import-model` -> `evaluate` on an MS-TCN
    layout: every predicted frame is the argmax of the reference forward; a second import into it is refused."""
    import numpy as np
    import pandas as pd
    from test_mstcn import CLASSES, make_layout
    from test_mstcn import D as LAYOUT_D

    from kit.__main__ import main
    from kit.results.evaluate import evaluate

    root = make_layout(tmp_path / "gtea")
    sd = asformer_upstream(g=torch.Generator().manual_seed(1), d=LAYOUT_D)
    torch.save(sd, tmp_path / "epoch-120.model")
    out = tmp_path / "outputs" / "imported"
    argv = ["import-model", "--temporal_model", "asformer", "--checkpoint", str(tmp_path / "epoch-120.model"),
            "--mapping", str(root / "mapping.txt"), "--features_dim", str(LAYOUT_D), "--out", str(out),
            "--data_root", str(root)]
    assert main(argv) == 0
    cfg = RunConfig.load(out / "config.json")
    assert (cfg.temporal_model, cfg.tcn_layers, cfg.tcn_stages, cfg.feature_proj, cfg.use_pose) == \
        ("asformer", 3, 3, False, False)
    res = evaluate(out, split="test", output_dir=tmp_path / "outputs")
    assert res["videos"] == 2
    for stem in ("vid3", "vid4"):
        x = torch.from_numpy(np.load(root / "features" / f"{stem}.npy"))[None].float()  # (1, D, T)
        with torch.no_grad():
            want = [CLASSES[k] for k in ref_asformer(sd, x, 3, 2)[-1][0].argmax(0).tolist()]
        got = pd.read_csv(out / "predictions" / f"{stem}.csv")["action_pred"].tolist()
        assert got == want
    assert main(argv) == 1  # the folder exists now: refused, nothing replaced


def test_compare_trains_each_temporal_model_on_the_same_features_seeds_and_splits(monkeypatch, demo_root, tmp_path):
    """`compare --temporal_models mstcn asformer`: one extraction, each model x seed trained, ranked on val."""
    from types import SimpleNamespace

    import kit.compare as kc
    import kit.features.extract as ke
    import kit.results.evaluate as ev
    import kit.temporal.train as tr

    extracted, trained = [], []

    def ensure_features(cfg, records, output_dir=None, **kw):
        extracted.append(cfg.backbone)
        return SimpleNamespace(root=tmp_path), SimpleNamespace(feature_dim=8, fingerprint="f"), []

    def fit(cfg):
        trained.append((cfg.temporal_model, cfg.seed, cfg.split_seed, cfg.visual_mode))
        return SimpleNamespace(run_dir=tmp_path / cfg.temporal_model, best_epoch=1, cfg=cfg)

    def evaluate(run_dir, split, checkpoint):  # asformer better on val by far, mstcn on test
        best = (run_dir.name == "asformer") == (split == "val")
        return {"action": {k: 80.0 + len(trained) % 2 if best else 20.0 for k in kc.COLUMNS}}

    monkeypatch.setattr(ke, "ensure_features", ensure_features)
    monkeypatch.setattr(tr, "fit", fit)
    monkeypatch.setattr(ev, "evaluate", evaluate)
    base = RunConfig(data_root=str(demo_root), epochs=1, img_size=32, output_dir=str(tmp_path))
    out = kc.compare(base, ("tiny",), ("tokens",), (False,), (0, 1), temporal_models=("mstcn", "asformer"))
    assert extracted == ["tiny"]  # features once, whatever the models
    assert sorted(trained) == [("asformer", 0, 0, "tokens"), ("asformer", 1, 0, "tokens"),
                               ("mstcn", 0, 0, "tokens"), ("mstcn", 1, 0, "tokens")]
    assert [r["temporal_model"] for r in out["rows"]] == ["asformer", "mstcn"]  # ranked on val, not test
    assert out["decisions"]["temporal_model"]["winner"] == "asformer"
    md = kc.to_markdown(out)
    assert "| temporal model |" in md and "| `asformer` |" in md and "- temporal_model: **asformer**" in md
    with pytest.raises(ValueError, match="not among"):
        kc.compare(base, ("tiny",), ("tokens",), (False,), (0,), temporal_models=("lstm",))


def test_latest_comparison_is_the_newest_table(tmp_path):
    from kit.compare import latest_comparison

    assert latest_comparison(tmp_path) is None
    (tmp_path / "compare").mkdir()
    (tmp_path / "compare" / "20260101-000000.md").write_text("old")
    (tmp_path / "compare" / "20260102-000000.md").write_text("| rank | new |")
    assert latest_comparison(tmp_path) == "| rank | new |"


def test_fit_resume_and_evaluate_with_mstcnpp_on_the_mstcn_layout(tmp_path):
    """Training, the run folder, resume and evaluate go through the registry: config.json and the checkpoints
    record the model; a resumed run continues it; evaluate rebuilds it from the run folder."""
    from test_mstcn import make_layout

    from kit.files import load_checkpoint
    from kit.results.evaluate import evaluate
    from kit.temporal.train import fit

    root = make_layout(tmp_path / "gtea")
    cfg = RunConfig(data_root=str(root), temporal_model="mstcn++", temporal_hyper={"layers_pg": 3}, tcn_layers=2,
                    tcn_channels=8, tcn_stages=2, epochs=1, output_dir=str(tmp_path / "out"), run_name="pp",
                    feature_proj=False, use_pose=False, warmup_steps=0)
    fit(cfg)
    run = tmp_path / "out" / "pp"
    assert RunConfig.load(run / "config.json").temporal_model == "mstcn++"
    state = load_checkpoint(run / "last.pt")
    assert state["model"]["temporal_model"] == "mstcn++" and len({k for k in state["model"]["head"]
                                                                   if k.startswith("tcn.PG.conv_fusion.")}) == 6
    fit(cfg.replace(epochs=2, resume=True))
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    res = evaluate(run, split="test", output_dir=tmp_path / "out")
    assert res["videos"] == 2 and 0 <= res["action"]["acc"] <= 100


def test_temporal_model_field_is_checked():
    from kit.errors import ConfigError

    with pytest.raises(ConfigError, match="temporal_model='lstm' is not one of"):
        RunConfig(temporal_model="lstm")
    with pytest.raises(TypeError, match="temporal_hyper must be dict"):
        RunConfig(temporal_hyper=[])
