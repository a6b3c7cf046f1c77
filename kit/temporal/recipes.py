"""Published training recipes as data: ``RECIPES[name]`` and ``apply_recipe(cfg)``.

Each value names its source. ``ms-tcn`` is github.com/yabufarha/ms-tcn at commit
``33ed91c0c7576650a2367efc602553af4c5295b1`` (2021-08-16; the code of Farha & Gall, "MS-TCN:
Multi-Stage Temporal Convolutional Network for Action Segmentation", CVPR 2019); a line number is a
line of that file there. The values are taken from the code, which is what produced the published
numbers; the paper's implementation details were not re-read when this table was written (its text
was not reachable offline), so where the two might differ the code wins here.

What no ``RunConfig`` field expresses (whole videos, the test-time up-sampling, the last epoch
being the one evaluated, ...) is listed in ``Recipe.trainer``: the training loop must do it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kit.config import RunConfig

log = logging.getLogger("kit")


@dataclass(frozen=True)
class Recipe:
    name: str
    cite: str
    values: dict  # RunConfig field -> value
    sources: dict  # RunConfig field -> where the value comes from
    sample_rate: dict  # dataset -> the sample_rate the recipe uses there (set `sample_rate` yourself)
    trainer: tuple[str, ...] = field(default=())  # what the training loop must reproduce


MSTCN = Recipe(
    name="mstcn",
    cite="Farha & Gall, MS-TCN, CVPR 2019; github.com/yabufarha/ms-tcn@33ed91c",
    values=dict(tcn_stages=4, tcn_layers=10, tcn_channels=64, dropout=0.5, optimizer="adam", lr=5e-4,
                weight_decay=0.0, batch_size=1, grad_accum=1, epochs=50, smooth_weight=0.15, smooth_tau=4.0,
                warmup_steps=0, lr_schedule="constant", grad_clip=0.0, class_weights=False,
                mixed_precision="no", use_pose=False, feature_proj=False),
    sources=dict(
        tcn_stages="main.py:25 num_stages = 4",
        tcn_layers="main.py:26 num_layers = 10 (dilation 2**i, model.py:30)",
        tcn_channels="main.py:27 num_f_maps = 64",
        dropout="model.py:46 nn.Dropout() (PyTorch's default p = 0.5), after each layer's 1x1 conv (model.py:51)",
        optimizer="model.py:65 optim.Adam(self.model.parameters(), lr=learning_rate)",
        lr="main.py:30 lr = 0.0005",
        weight_decay="model.py:65 no weight_decay argument: Adam's default 0",
        batch_size="main.py:29 bz = 1",
        grad_accum="model.py:73-83 one optimizer.step() per batch",
        epochs="main.py:31 num_epochs = 50",
        smooth_weight="model.py:79 0.15*torch.mean(...)",
        smooth_tau="model.py:79 torch.clamp(..., min=0, max=16): tau**2 = 16",
        warmup_steps="model.py:62-93 no scheduler: the learning rate is constant",
        lr_schedule="model.py:62-93 no scheduler: the learning rate is constant",
        grad_clip="model.py:82-83 loss.backward(); optimizer.step(): no clipping",
        class_weights="model.py:58 nn.CrossEntropyLoss(ignore_index=-100): no class weights",
        mixed_precision="model.py:62-93 float32 throughout (no autocast)",
        use_pose="model.py:14 stage 1 sees the features only",
        feature_proj="model.py:29,34 stage 1's 1x1 Conv1d takes the raw features: no LayerNorm, projection or dropout",
    ),
    sample_rate={"50salads": 2, "breakfast": 1, "gtea": 1},  # main.py:33-38 (50Salads: 30 fps features at 15 fps)
    trainer=(
        "whole videos, one per step, shuffled every epoch; no windows (batch_gen.py:20,31,33-47)",
        "features and labels cut to the shorter of the two, then [::sample_rate] (batch_gen.py:43-47)",
        "test: predict on features[:, ::sample_rate], repeat each prediction sample_rate times (model.py:106,115), "
        "score against every ground-truth frame (eval.py:121)",
        "the model evaluated is the last epoch's: no validation split, no best-epoch pick (main.py:71, model.py:99)",
        "stage 1 is a 1x1 Conv1d on the raw features (model.py:29,34): no LayerNorm, projection or dropout before it",
        "loss per stage, summed over stages: CE over labelled frames + 0.15 * mean over B*K*(T-1) of the clamped "
        "squared log-prob difference times the mask (model.py:77-79); with batch 1 this is the kit's loss",
        "later stages take softmax(previous) * mask (model.py:21)",
        "seed 1538574472 for random, torch and CUDA; cudnn.deterministic (main.py:12-16)",
        "edit and F1@k drop segments labelled exactly 'background' (eval.py:15,62,68 bg_class=['background']): "
        "segment_metrics(..., background=['background']) to match; frame accuracy counts them (eval.py:121-124)",
    ),
)

# DiffAct: github.com/Finspire13/DiffAct at commit a223e0c27a6f02adfb321a518cb0f7dd0d0896b6 (2023-08-16), the code of
# Liu et al., "Diffusion Action Segmentation", ICCV 2023; its 50Salads configuration (the others: `trainer`).
DIFFACT = Recipe(
    name="diffact",
    cite="Liu et al., DiffAct, ICCV 2023; github.com/Finspire13/DiffAct@a223e0c (50Salads config)",
    values=dict(optimizer="adam", lr=5e-4, weight_decay=0.0, batch_size=1, grad_accum=4, epochs=5001,
                smooth_weight=0.1, smooth_tau=4.0, warmup_steps=0, lr_schedule="constant", grad_clip=0.0,
                class_weights=True, mixed_precision="no", use_pose=False, feature_proj=False,
                diffact_sampling_steps=25,
                diffact_hyper=dict(encoder_layers=10, encoder_channels=64, encoder_kernel=5, dropout=0.5,
                                   channel_dropout=0.5, temporal_dropout=0.5, feature_layers=[5, 7, 9],
                                   decoder_layers=8, decoder_channels=24, decoder_kernel=7, decoder_dropout=0.1,
                                   time_dim=512, num_timesteps=1000, ddim_eta=1.0, scale=1.0,
                                   cond_types=["full", "zero", "boundary05-", "segment=2", "segment=2"],
                                   detach_decoder=False, boundary_sigma=2.5, soft_label=0.0, ce_weight=0.5,
                                   boundary_weight=0.1)),
    sources=dict(
        optimizer="main.py:43 optim.Adam(self.model.parameters(), lr=learning_rate, weight_decay=weight_decay)",
        lr="default_configs.py:118 learning_rate 0.0005",
        weight_decay="default_configs.py:119 weight_decay 0",
        batch_size="main.py:68-69 DataLoader(batch_size=1): one video per forward",
        grad_accum="default_configs.py:117 batch_size 4; main.py:116-123 loss / batch_size, optimizer.step() "
                   "every batch_size videos",
        epochs="default_configs.py:120 num_epochs 5001 (tested every log_freq=100 epochs, main.py:140)",
        smooth_weight="default_configs.py:111,114 encoder_mse_loss and decoder_mse_loss 0.1",
        smooth_tau="model.py:258-261, 291-294 torch.clamp(..., min=0, max=16): tau**2 = 16",
        warmup_steps="main.py:43-125 no scheduler: the learning rate is constant",
        lr_schedule="main.py:43-125 no scheduler: the learning rate is constant",
        grad_clip="main.py:117-123 total_loss.backward(); optimizer.step(): no clipping",
        class_weights="default_configs.py:122 class_weighting True (dataset.py:140-149 weights)",
        mixed_precision="main.py float32 throughout (no autocast)",
        use_pose="model.py:234-242 the encoder sees the features only",
        feature_proj="model.py:397, 410 the encoder's 1x1 conv_in takes the raw features",
        diffact_sampling_steps="default_configs.py:97 sampling_timesteps 25",
        diffact_hyper="default_configs.py:73-116: encoder_params 74-86, decoder_params 88-94, diffusion_params "
                      "95-108, loss_weights 109-116 (ce 0.5, boundary 0.1), soft_label None 125; boundary_smooth "
                      "20 at sample_rate 8 (124, 71) is 2.5 frames of the model's input",
    ),
    sample_rate={"50salads": 8, "breakfast": 1, "gtea": 1},  # default_configs.py:71, 138, 10
    trainer=(
        "temporal_model='diffact' (DiffAct's own loss: DiffAct.training_loss)",
        "whole videos, one per step; training picks one of the sample_rate frame offsets at random "
        "(dataset.py:56-76, 164-168); the kit trains on features[:, ::sample_rate]",
        "test: the prediction is the mean of the DDIM results over all sample_rate offsets ('decoder-agg', "
        "main.py:218-236), median-filtered (50Salads: 30, Breakfast: 15; GTEA: purge segments <= 3 frames, "
        "default_configs.py:60-63, 127-130, 194-197) before up-sampling (dataset.py:110-124): not done here",
        "sampling seed = the video's index in the test list (main.py:198-201); the kit seeds every video with `seed`",
        "class weights: counts.sum() / ((counts + 10) * K) (dataset.py:140-149) in a frame-mean; the kit's "
        "inverse-frequency weights in a weighted mean",
        "GTEA: decoder_kernel 5, scale 0.5, cond boundary03-/segment=1, boundary_sigma 1, soft_label 1.4, "
        "weight_decay 1e-6, epochs 10001 (default_configs.py:5-64)",
        "Breakfast: encoder 12 layers x 256, channel/temporal dropout 0.1, feature_layers 7,8,9, decoder 128 "
        "channels kernel 5, scale 0.5, cond boundary03-/segment=1, smooth 0.025, lr 1e-4, boundary_sigma 3, "
        "soft_label 4, epochs 1001 (default_configs.py:133-198)",
        "the reported model is the one tested at the end of training (no validation split, main.py:76-179)",
    ),
)

RECIPES: dict[str, Recipe] = {"mstcn": MSTCN}
RECIPES["diffact"] = DIFFACT


def apply_recipe(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``cfg.recipe``'s values; one log line says what changed.

    A recipe value replaces a field still at its ``RunConfig`` default; a field you set to
    something else is kept, with a warning naming both values (``--recipe mstcn --epochs 5`` is a
    quick try of the recipe, not a silent 50 epochs). Applying twice changes nothing the second time.
    """
    if not cfg.recipe:
        return cfg
    recipe = RECIPES[cfg.recipe]
    default = RunConfig()
    changes, kept = {}, []
    for name, value in recipe.values.items():
        now = getattr(cfg, name)
        if now == value:
            continue
        if now != getattr(default, name):
            kept.append(f"{name}={now!r} (the recipe has {value!r})")
        else:
            changes[name] = value
    if changes:
        log.info(f"[info] Recipe {recipe.name} ({recipe.cite}): "
                 + ", ".join(f"{k} {getattr(cfg, k)!r} -> {v!r}" for k, v in changes.items()))
    if kept:
        log.warning(f"[warn] Recipe {recipe.name}: kept the values you set: {'; '.join(kept)}")
    name = "".join(c for c in cfg.data_root.lower() if c.isalnum())
    for dataset, rate in recipe.sample_rate.items():
        if dataset in name and cfg.sample_rate != rate:
            log.warning(f"[warn] Recipe {recipe.name} uses sample_rate {rate} on {dataset} "
                        f"({recipe.sources.get('sample_rate', 'main.py:33-38')}); this run has {cfg.sample_rate}")
    return cfg.replace(**changes)
