"""DiffAct (kit.temporal.models.diffact) against an independent reading of upstream's code.

The reference below is written from Finspire13/DiffAct@a223e0c ``model.py`` with plain torch ops
and explicit loops (it shares no code with the kit's module): upstream's parameter names and shapes
for a tiny config, its encoder, its decoder and the DDIM update.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kit.temporal.models.diffact import DiffAct, upstream_name
from kit.temporal.models.diffact_loss import boundary_targets, gaussian_smooth

pytest_plugins = ["fixtures_run"]  # trained_run: its output folder holds the demo's tiny-backbone features

D, K, ENC_LAYERS, C, KS, DEC_LAYERS, CD, DKS, E, STEPS = 6, 4, 3, 8, 3, 2, 6, 5, 8, 1000
FEATURE_LAYERS = (0, 2, -1)  # two encoder layers and the input features: X = 2 * C + D
X = 2 * C + D
TINY = dict(feature_layers=FEATURE_LAYERS, sampling_timesteps=2, scale=0.5, seed=3)


def upstream_state(seed: int = 0, d: int = D) -> dict:
    """``ASDiffusionModel(...).state_dict()`` names and shapes (model.py:88-113, 385-505, 626-651), random values."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    X = 2 * C + d  # noqa: N806  (the decoder's cross width for d-wide input)

    def put(name, *shape):
        sd[name + ".weight"] = torch.randn(*shape, generator=g) * 0.4
        sd[name + ".bias"] = torch.randn(shape[0], generator=g) * 0.1

    put("encoder.conv_in", C, d, 1)
    for i in range(ENC_LAYERS):
        p = f"encoder.encoder.layers.{i}."
        put(p + "conv_block.0", C, C, KS)
        for n in ("att_linear_q", "att_linear_k", "att_linear_v", "ffn_block.0", "ffn_block.2"):
            put(p + n, C, C, 1)
    put("encoder.conv_out", K, C, 1)
    put("decoder.time_in.0", E, E)
    put("decoder.time_in.1", E, E)
    put("decoder.conv_in", CD, K, 1)
    put("decoder.module.time_proj", CD, E)
    for i in range(DEC_LAYERS):
        p = f"decoder.module.layers.{i}."
        put(p + "conv_block.0", CD, CD, DKS)
        put(p + "att_linear_q", CD, CD + X, 1)
        put(p + "att_linear_k", CD, CD + X, 1)
        for n in ("att_linear_v", "ffn_block.0", "ffn_block.2"):
            put(p + n, CD, CD, 1)
    put("decoder.conv_out", K, CD, 1)
    # the cosine schedule's buffers, float64 (model.py:46-56, 76-113)
    x = torch.linspace(0, STEPS, STEPS + 1, dtype=torch.float64)
    f = torch.cos(((x / STEPS) + 0.008) / 1.008 * math.pi * 0.5) ** 2
    f = f / f[0]
    betas = torch.clip(1 - f[1:] / f[:-1], 0, 0.999)
    ac = torch.cumprod(1 - betas, 0)
    prev = F.pad(ac[:-1], (1, 0), value=1.0)
    post = betas * (1 - prev) / (1 - ac)
    sd.update(betas=betas, alphas_cumprod=ac, alphas_cumprod_prev=prev, sqrt_alphas_cumprod=ac.sqrt(),
              sqrt_one_minus_alphas_cumprod=(1 - ac).sqrt(), log_one_minus_alphas_cumprod=(1 - ac).log(),
              sqrt_recip_alphas_cumprod=(1 / ac).sqrt(), sqrt_recipm1_alphas_cumprod=(1 / ac - 1).sqrt(),
              posterior_variance=post, posterior_log_variance_clipped=post.clamp(min=1e-20).log(),
              posterior_mean_coef1=betas * prev.sqrt() / (1 - ac),
              posterior_mean_coef2=(1 - prev) * (1 - betas).sqrt() / (1 - ac))
    return sd


# --- the reference: upstream's computation, one video (1, channels, T), explicit loops ------------------
def conv(sd, name, x, dilation=1):
    w = sd[name + ".weight"]
    return F.conv1d(x, w, sd[name + ".bias"], padding=(w.shape[-1] // 2) * dilation, dilation=dilation)


def ref_attention(q, k, v, kernel, dilation):
    """model.py:683-721 for one video: scores over the kernel's frames, out-of-video keys 0 + log(1e-6)."""
    _, Cq, T = q.shape
    pad = (kernel // 2) * dilation
    out = torch.zeros_like(v)
    for t in range(T):
        idx = list(range(t - pad, t + pad + 1, dilation))
        inside = torch.tensor([0 <= j < T for j in idx], dtype=torch.float32)
        keys = torch.stack([k[0, :, j] if 0 <= j < T else torch.zeros(Cq) for j in idx], 1)  # (C, W)
        vals = torch.stack([v[0, :, j] if 0 <= j < T else torch.zeros(Cq) for j in idx], 1)
        s = (q[0, :, t:t + 1] * keys).sum(0) / np.sqrt(Cq) + torch.log(inside + 1e-6)
        out[0, :, t] = (vals * (F.softmax(s, 0) * inside)).sum(1)
    return out


def ref_layer(sd, p, x, kernel, dilation, cross=None):
    qk = x if cross is None else torch.cat([x, cross], 1)
    a = ref_attention(conv(sd, p + "att_linear_q", qk), conv(sd, p + "att_linear_k", qk),
                      conv(sd, p + "att_linear_v", x), kernel, dilation)
    h = F.instance_norm(conv(sd, p + "conv_block.0", x, dilation) + a, eps=1e-5)
    return x + conv(sd, p + "ffn_block.2", F.relu(conv(sd, p + "ffn_block.0", h)))


def ref_encoder(sd, x):
    h = conv(sd, "encoder.conv_in", x)
    feats = []
    for i in range(ENC_LAYERS):
        h = ref_layer(sd, f"encoder.encoder.layers.{i}.", h, KS, 2 ** i)
        if i in FEATURE_LAYERS:
            feats.append(h)
    return conv(sd, "encoder.conv_out", h), torch.cat([x] + feats, 1)  # the input (-1) first (model.py:406-412)


def ref_decoder(sd, cross, t, event):
    half = E // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000) / (half - 1)))
    emb = torch.cat([torch.sin(t * freq), torch.cos(t * freq)])[None]  # (1, E)
    lin = lambda n, z: z @ sd[n + ".weight"].T + sd[n + ".bias"]  # noqa: E731
    emb = lin("decoder.time_in.1", F.silu(lin("decoder.time_in.0", emb)))
    h = conv(sd, "decoder.conv_in", event) + lin("decoder.module.time_proj", F.silu(emb))[:, :, None]
    for i in range(DEC_LAYERS):
        h = ref_layer(sd, f"decoder.module.layers.{i}.", h, DKS, 2 ** i, cross)
    return conv(sd, "decoder.conv_out", h)


def ref_sample(sd, x, seed, scale=0.5):
    """ddim_sample with sampling_timesteps=2: steps 999 -> 499 -> done (model.py:315-376)."""
    _, cross = ref_encoder(sd, x)
    ac = sd["alphas_cumprod"]
    g = torch.Generator().manual_seed(seed)
    xt = torch.randn((1, K, x.shape[2]), generator=g)

    def x0_of(xt, step):
        xm = (torch.clamp(xt, -scale, scale) / scale + 1) / 2
        p = F.softmax(ref_decoder(sd, cross, torch.tensor(float(step)), xm.float()), 1)
        x0 = torch.clamp((p * 2 - 1) * scale, -scale, scale)
        eps = ((1 / ac[step]).sqrt() * xt - x0) / (1 / ac[step] - 1).sqrt()  # float64, as upstream's extract()
        return x0, eps

    x0, eps = x0_of(xt, 999)
    a, an = ac[999], ac[499]
    sigma = 1.0 * ((1 - a / an) * (1 - an) / (1 - a)).sqrt()
    noise = torch.randn((1, K, x.shape[2]), generator=g, dtype=xt.dtype)
    xt = x0 * an.sqrt() + (1 - an - sigma ** 2).sqrt() * eps + sigma * noise
    x0, _ = x0_of(xt, 499)
    return (x0 / scale + 1) / 2


def test_upstream_names_map_onto_the_module():
    sd = upstream_state()
    model = DiffAct.from_upstream_state(sd, **TINY)
    mine = set(model.state_dict())
    assert {upstream_name(k) for k in sd if "." in k} == mine
    assert not model.training
    assert upstream_name("encoder.encoder.layers.2.ffn_block.2.bias") == "encoder.layers.2.ffn_out.bias"


def test_encoder_and_sampling_equal_the_reference():
    sd = upstream_state()
    model = DiffAct.from_upstream_state(sd, num_classes={"action": K}, **{**TINY, "feature_layers": (-1, 0, 2)})
    x = torch.randn(1, D, 13, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        enc_ref, _ = ref_encoder(sd, x)
        probs_ref = ref_sample(sd, x, seed=3)
        stages = model(x.transpose(1, 2))
    assert len(stages) == 2
    torch.testing.assert_close(stages[0]["action"].transpose(1, 2), enc_ref, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(stages[1]["action"].softmax(-1).transpose(1, 2), probs_ref.float(), atol=2e-5, rtol=1e-5)
    assert not torch.allclose(probs_ref, torch.full_like(probs_ref, 1 / K), atol=1e-3)  # the test is not vacuous


def test_wrong_feature_layers_and_shapes_are_refused():
    sd = upstream_state()
    with pytest.raises(ValueError, match="feature_layers"):
        DiffAct.from_upstream_state(sd, feature_layers=(5, 7, 9))
    with pytest.raises(ValueError, match="sums to"):
        DiffAct.from_upstream_state(sd, num_classes={"action": K + 1}, **TINY)
    model = DiffAct.from_upstream_state(sd, **TINY)
    with pytest.raises(ValueError, match=r"expected \(B, T, 6\)"):
        model(torch.zeros(1, 5, D + 1))


def tiny(**kw) -> DiffAct:
    torch.manual_seed(0)
    hyper = dict(layers=3, channels=8, encoder_kernel=3, feature_layers=(1, 2, -2),
                 decoder_layers=2, decoder_channels=6, decoder_kernel=5, time_dim=8, sampling_timesteps=4)
    return DiffAct(D, kw.pop("num_classes", {"action": K, "hand": 3}), **{**hyper, **kw})


def test_padding_and_batch_change_no_real_frame():
    model = tiny(multilabel=["hand"]).eval()
    a, b = torch.randn(1, 20, D), torch.randn(1, 9, D)
    with torch.no_grad():
        alone_a, alone_b = model(a), model(b)
        batch = torch.cat([torch.cat([a, torch.full((1, 7, D), float("nan"))], 1),  # padding holds garbage
                           torch.cat([b, torch.randn(1, 18, D) * 100], 1)])
        mask = torch.zeros(2, 27, dtype=torch.bool)
        mask[0, :20], mask[1, :9] = True, True
        both = model(batch, mask)
    for s in range(2):
        for task in ("action", "hand"):
            torch.testing.assert_close(both[s][task][0, :20], alone_a[s][task][0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(both[s][task][1, :9], alone_b[s][task][0], atol=1e-5, rtol=1e-5)
            assert both[s][task].shape == (2, 27, {"action": K, "hand": 3}[task])
            assert torch.isfinite(both[s][task]).all()


def test_sampling_is_seeded():
    model = tiny().eval()
    x = torch.randn(2, 15, D)
    with torch.no_grad():
        one, two = model(x)[-1]["action"], model(x)[-1]["action"]
        model.seed = 4
        other = model(x)[-1]["action"]
    assert torch.equal(one, two)
    assert not torch.allclose(one, other)


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    labels = torch.tensor([0] * 10 + [1] * 12 + [2] * 8 + [3] * 10)[None].repeat(2, 1)  # (2, 40)
    labels[1, 30:] = -100  # unlabelled
    x = F.one_hot(labels.clamp_min(0), D).float() + 0.3 * torch.randn(2, 40, D)
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 35:] = False
    model = tiny(num_classes={"action": K}, soft_label=0.0, boundary_sigma=1.0,
                 cond_types=("full", "zero", "boundary05-", "segment=1", "segment=2"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss_at_seed():
        torch.manual_seed(123)  # the same diffusion steps, noise, masks and dropout each time
        return model.training_loss(x, mask, {"action": labels})

    model.train()
    before, parts = loss_at_seed()
    assert set(parts) == {"loss", "encoder_ce/action", "encoder_smooth/action", "decoder_ce/action",
                          "decoder_smooth/action", "decoder_boundary/action"}
    for _ in range(20):
        loss, _ = model.training_loss(x, mask, {"action": labels}, class_weights={"action": torch.ones(K)})
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, _ = loss_at_seed()
    assert after.item() < 0.7 * before.item(), (before.item(), after.item())


def test_encoder_loss_terms_equal_upstreams_formula():
    model = tiny(num_classes={"action": K}, dropout=0.0, channel_dropout=0.0, temporal_dropout=0.0)
    x, labels = torch.randn(1, 30, D), torch.randint(0, K, (1, 30))
    _, parts = model.train().training_loss(x, None, {"action": labels}, smooth_tau=4.0)
    with torch.no_grad():
        logits = model.eval()(x)[0]["action"][0].T[None]  # (1, K, T)
    ce = F.cross_entropy(logits.transpose(2, 1).reshape(-1, K), labels.reshape(-1))  # model.py:245-248
    mse = torch.clamp(F.mse_loss(F.log_softmax(logits[:, :, 1:], 1), F.log_softmax(logits[:, :, :-1], 1),
                                 reduction="none"), 0, 16).mean()  # model.py:258-261
    assert parts["encoder_ce/action"] == pytest.approx(ce.item(), rel=1e-5)
    assert parts["encoder_smooth/action"] == pytest.approx(mse.item(), rel=1e-5)


def test_gaussian_and_boundary_targets_match_scipy():
    from scipy.ndimage import gaussian_filter1d

    x = torch.rand(3, 11, dtype=torch.float64)
    for sigma in (0.6, 1.4, 4.0):  # radius beyond the length exercises the mirrored edges
        np.testing.assert_allclose(gaussian_smooth(x, sigma).numpy(), gaussian_filter1d(x.numpy(), sigma), atol=1e-12)
    labels = torch.tensor([0] * 7 + [2] * 5 + [1] * 9)
    b = np.zeros(21)  # dataset.py:86-107
    b[[7, 12, 6, 11]] = 1
    b = gaussian_filter1d(b, 2.0)
    lone = np.zeros(21)
    lone[10] = lone[9] = 1
    b = np.minimum(b, gaussian_filter1d(lone, 2.0).max())
    np.testing.assert_allclose(boundary_targets(labels, 2.0).numpy(), b / b.max(), atol=1e-6)


def test_a_long_video_runs_in_bounded_memory():
    model = tiny(num_classes={"action": K}, sampling_timesteps=2).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 20_000, D))
    assert out[-1]["action"].shape == (1, 20_000, K)
    # local windows: each frame attends to kernel_size frames, never to all T, and the gradient is as small:
    # at dilation 512 a window spans 2,049 frames, of which the attention uses 5
    from kit.bench.common import PeakMemory
    from kit.temporal.models.diffact_layers import _windows, local_attention

    v = torch.randn(1, 2, 50)
    assert _windows(v, 4, 4).shape == (1, 2, 50, 3)
    assert torch.equal(_windows(v, 4, 4)[0, :, 10], v[0, :, [6, 10, 14]])
    q = torch.randn(1, 4, 3000, requires_grad=True)
    local_attention(q, q, q, torch.ones(1, 1, 3000), 5, 512).sum().backward()  # warm-up
    with PeakMemory(torch.device("cpu")) as mem:
        local_attention(q, q, q, torch.ones(1, 1, 3000), 5, 512).sum().backward()
    assert mem.mb < 10  # (1, 4, 3000, 2049) floats would be 94 MiB


def test_registry_from_upstream_and_the_recipe():
    from kit.config import RunConfig, field_names
    from kit.temporal.model import build_model
    from kit.temporal.models import TEMPORAL_MODELS, from_upstream, upstream_hyper
    from kit.temporal.recipes import RECIPES, apply_recipe

    assert TEMPORAL_MODELS["diffact"] is DiffAct
    sd = upstream_state()
    assert upstream_hyper("diffact", sd) == dict(channels=C, layers=ENC_LAYERS, stages=2, encoder_kernel=KS,
                                                 decoder_channels=CD, decoder_layers=DEC_LAYERS, decoder_kernel=DKS,
                                                 time_dim=E, num_timesteps=STEPS)
    model = from_upstream("diffact", sd, feature_dim=D, num_classes=K, **TINY)
    assert isinstance(model, DiffAct) and not model.training
    with pytest.raises(ValueError, match="feature_dim=7"):
        from_upstream("diffact", sd, feature_dim=7, num_classes=K, **TINY)
    r = RECIPES["diffact"]
    assert set(r.values) == set(r.sources) and set(r.values) <= set(field_names())
    assert all(r.sources[k].split()[0].rstrip(",").count(":") == 1 for k in r.values)  # file:line first
    cfg = apply_recipe(RunConfig(recipe="diffact"))
    assert (cfg.temporal_model, cfg.lr, cfg.grad_accum, cfg.epochs, cfg.smooth_weight) == ("diffact", 5e-4, 4, 5001, 0.1)
    head = build_model(cfg, 2048, {"action": [str(i) for i in range(19)]})
    assert head.tcn.sampling_timesteps == 25 and head.tcn.decoder.layers[0].kernel_size == 7
    # upstream's 50Salads model (2048-d I3D, 19 classes), counted by hand from its modules (and printed by its
    # main.py:35 for the same config): encoder 131,136 + 10 x (20,544 + 5 x 4,160) + 1,235; decoder 2 x 262,656
    # + 480 + 12,312 + 8 x (4,056 + 2 x 5,208 + 3 x 600) + 475
    assert sum(p.numel() for p in head.parameters()) == 1_214_566


def test_multitask_model_trains_and_reloads_diffact():
    from kit.config import RunConfig
    from kit.temporal.model import build_model

    torch.manual_seed(0)
    cfg = RunConfig(temporal_model="diffact", tcn_channels=8, tcn_layers=3, pose_dim=8, diffact_sampling_steps=2,
                    temporal_hyper={"decoder_channels": 6, "decoder_layers": 2, "time_dim": 8})
    vocab = {"action": ["a", "b", "c"], "stance": ["x", "y"]}
    model = build_model(cfg, 6, vocab, num_joints=5)
    x, pose, mask = torch.randn(2, 20, 6), torch.randn(2, 20, 5, 3), torch.ones(2, 20, dtype=torch.bool)
    mask[1, 15:] = False
    labels = {"action": torch.randint(0, 3, (2, 20)), "stance": torch.randint(0, 2, (2, 20))}
    loss, parts = model(x, pose, mask, loss_kw={"labels": labels, "smooth_weight": 0.15, "smooth_tau": 4.0,
                                                "class_weights": None, "task_weights": {"stance": 0.5}})
    assert {"decoder_boundary/action", "decoder_ce/stance"} <= set(parts) and torch.isfinite(loss)
    loss.backward()
    assert model.tcn.decoder.conv_out.weight.grad.abs().sum() > 0 and model.tcn.encoder.conv_in.weight.grad.abs().sum() > 0
    twin = build_model(cfg, 6, vocab, num_joints=5)
    twin.load_checkpoint_state(model.checkpoint_state())
    model.eval(), twin.eval()
    with torch.no_grad():
        a, b = model(x, pose, mask), twin(x, pose, mask)
    assert len(a) == 2 and torch.equal(a[-1]["stance"], b[-1]["stance"])


def test_cli_trains_evaluates_and_predicts_with_diffact(demo_root, trained_run, tmp_path):
    """`train --temporal_model diffact`, `evaluate`, `predict` on the demo data; the features of the demo's
    tiny backbone are the ones `trained_run` stored (copied, same backbone): not extracted again."""
    import json

    import shutil

    from kit.__main__ import main

    out = tmp_path / "outputs"  # its own folder (the shared run's must keep its newest run), with that run's features
    shutil.copytree(trained_run.parent / "features", out / "features")
    hyper = json.dumps({"decoder_channels": 8, "decoder_layers": 2, "time_dim": 16})
    assert main(["train", "--data_root", str(demo_root), "--backbone", "tiny", "--img_size", "64", "--epochs", "2",
                 "--temporal_model", "diffact", "--tcn_layers", "3", "--tcn_channels", "16", "--temporal_hyper", hyper,
                 "--diffact_sampling_steps", "3", "--output_dir", str(out), "--run_name", "diffact"]) == 0
    run = out / "diffact"
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "train_loss" in history[0]
    assert main(["evaluate", "--run", str(run), "--split", "test"]) == 0
    result = json.loads((run / "eval_test.json").read_text())
    assert 0 <= result["action"]["acc"] <= 100
    video = sorted((demo_root / "Videos").glob("*.mp4"))[0]
    assert main(["predict", "--run", str(run), str(video), "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "summary.csv").is_file() and list((tmp_path / "p").glob(f"{video.stem}*.csv"))


def test_import_model_of_an_upstream_diffact_checkpoint_evaluates(tmp_path):
    """`import-model --temporal_model diffact` -> `evaluate` on an MS-TCN layout: every predicted frame is the
    argmax of the model that from_upstream builds (itself checked against the reference above)."""
    import json

    import pandas as pd
    from test_mstcn import CLASSES, make_layout
    from test_mstcn import D as LAYOUT_D

    from kit.__main__ import main
    from kit.results.evaluate import evaluate
    from kit.temporal.models import from_upstream

    root = make_layout(tmp_path / "gtea")
    sd = upstream_state(seed=2, d=LAYOUT_D)
    torch.save(sd, tmp_path / "release.model")
    out = tmp_path / "outputs" / "imported"
    hyper = {"feature_layers": [0, 2, -1], "sampling_timesteps": 2, "scale": 0.5}
    assert main(["import-model", "--temporal_model", "diffact", "--checkpoint", str(tmp_path / "release.model"),
                 "--mapping", str(root / "mapping.txt"), "--features_dim", str(LAYOUT_D), "--out", str(out),
                 "--data_root", str(root), "--temporal_hyper", json.dumps(hyper)]) == 0
    res = evaluate(out, split="test", output_dir=tmp_path / "outputs")
    assert res["videos"] == 2
    model = from_upstream("diffact", sd, feature_dim=LAYOUT_D, num_classes=len(CLASSES), **hyper)
    for stem in ("vid3", "vid4"):
        x = torch.from_numpy(np.load(root / "features" / f"{stem}.npy")).float().T[None]  # (1, T, D)
        with torch.no_grad():
            want = [CLASSES[k] for k in model(x)[-1]["action"][0].argmax(-1).tolist()]
        assert pd.read_csv(out / "predictions" / f"{stem}.csv")["action_pred"].tolist() == want
