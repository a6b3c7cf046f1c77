"""Published training recipes as data: ``RECIPES[name]`` and ``apply_recipe(cfg)``.

Each value names its source. ``mstcn++`` is github.com/sj-li/MS-TCN2 at commit f423a9e and
``asformer`` github.com/ChinaYi/ASFormer at commit e1bbe4f (a line number is a line of that
repository's file there). ``ms-tcn`` is github.com/yabufarha/ms-tcn at commit
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

# the rows every recipe of the MS-TCN family shares with MSTCN (same loss, whole videos, no kit extras)
_PLAIN = dict(optimizer="adam", batch_size=1, grad_accum=1, smooth_weight=0.15, smooth_tau=4.0, warmup_steps=0,
              lr_schedule="constant", grad_clip=0.0, class_weights=False, mixed_precision="no", use_pose=False,
              feature_proj=False)

MSTCNPP = Recipe(
    name="mstcn++",
    cite="Li, Farha, Liu, Cheng & Gall, MS-TCN++, TPAMI 2020; github.com/sj-li/MS-TCN2@f423a9e",
    values=dict(_PLAIN, temporal_model="mstcn++", temporal_hyper={"layers_pg": 11}, tcn_layers=10, tcn_stages=4,
                tcn_channels=64, dropout=0.5, lr=5e-4, weight_decay=0.0, epochs=100),
    sources=dict(
        temporal_model="model.py:13-26 MS_TCN2: Prediction_Generation, then Refinement stages",
        temporal_hyper="train.sh:4 --num_layers_PG=11",
        tcn_layers="train.sh:5 --num_layers_R=10",
        tcn_stages="train.sh:6 --num_R=3: the generation stage + 3 refinements",
        tcn_channels="main.py:28 --num_f_maps default 64",
        dropout="model.py:53,119 nn.Dropout() (p = 0.5)",
        optimizer="model.py:141 optim.Adam(self.model.parameters(), lr=learning_rate)",
        lr="main.py:25 --lr default 0.0005",
        weight_decay="model.py:141 no weight_decay argument: Adam's default 0",
        batch_size="main.py:24 --bz default 1",
        grad_accum="model.py:146-159 one optimizer.step() per batch",
        epochs="train.sh:3 --num_epochs=100",
        smooth_weight="model.py:155 0.15*torch.mean(...)",
        smooth_tau="model.py:155 torch.clamp(..., min=0, max=16): tau**2 = 16",
        warmup_steps="model.py:138-164 no scheduler: the learning rate is constant",
        lr_schedule="model.py:138-164 no scheduler: the learning rate is constant",
        grad_clip="model.py:158-159 loss.backward(); optimizer.step(): no clipping",
        class_weights="model.py:131 nn.CrossEntropyLoss(ignore_index=-100): no class weights",
        mixed_precision="model.py:138-164 float32 throughout (no autocast)",
        use_pose="model.py:19-20 the generation stage sees the features only",
        feature_proj="model.py:34,57 conv_1x1_in takes the raw features",
    ),
    sample_rate={"50salads": 2, "breakfast": 1, "gtea": 1},  # main.py:49-53
    trainer=(
        "as the mstcn recipe: whole videos, one per step (batch_gen.py), [::sample_rate] and the test-time "
        "up-sampling (model.py:182,191), the epoch evaluated is the one test_epoch.sh names (main.py:85)",
        "seed 1538574472 (main.py:12-16)",
        "no mask inside the model (model.py:19-26): with batch 1 the kit's masked layers compute the same",
    ),
)

ASFORMER = Recipe(
    name="asformer",
    cite="Yi, Wen & Jiang, ASFormer, BMVC 2021; github.com/ChinaYi/ASFormer@e1bbe4f",
    values=dict(_PLAIN, temporal_model="asformer", temporal_hyper={"r1": 2, "r2": 2, "channel_masking_rate": 0.3},
                tcn_layers=10, tcn_stages=4, tcn_channels=64, dropout=0.5, lr=5e-4, weight_decay=1e-5, epochs=120),
    sources=dict(
        temporal_model="model.py:303-318 MyTransformer: an encoder, then decoders",
        temporal_hyper="main.py:84 Trainer(num_layers, 2, 2, ...): r1 = r2 = 2; main.py:37 channel_mask_rate = 0.3 "
                       "(0.5 on GTEA, main.py:48-49: set it yourself)",
        tcn_layers="main.py:32 num_layers = 10",
        tcn_stages="model.py:323 MyTransformer(3, ...): the encoder + 3 decoders",
        tcn_channels="main.py:33 num_f_maps = 64",
        dropout="model.py:221 nn.Dropout() (p = 0.5) in every AttModule",
        optimizer="model.py:333 optim.Adam(self.model.parameters(), lr=learning_rate, weight_decay=1e-5)",
        lr="main.py:31 lr = 0.0005 (0.0001 on Breakfast, main.py:51-52: set it yourself)",
        weight_decay="model.py:333 weight_decay=1e-5 (coupled L2 of torch.optim.Adam)",
        batch_size="main.py:35 bz = 1",
        grad_accum="model.py:341-359 one optimizer.step() per batch",
        epochs="main.py:29 num_epochs = 120",
        smooth_weight="model.py:352 0.15 * torch.mean(...)",
        smooth_tau="model.py:353-354 torch.clamp(..., min=0, max=16): tau**2 = 16",
        warmup_steps="model.py:337 no warm-up",
        lr_schedule="model.py:337,365 ReduceLROnPlateau(factor=0.5, patience=3) on the epoch loss: NOT reproduced, "
                    "the kit's closest is constant (see trainer)",
        grad_clip="model.py:357-358 loss.backward(); optimizer.step(): no clipping",
        class_weights="model.py:324 nn.CrossEntropyLoss(ignore_index=-100): no class weights",
        mixed_precision="model.py:330-372 float32 throughout (no autocast)",
        use_pose="model.py:263-281 the encoder sees the features only",
        feature_proj="model.py:253,275 the encoder's conv_1x1 takes the raw features",
    ),
    sample_rate={"50salads": 2, "breakfast": 1, "gtea": 1},  # main.py:41-45
    trainer=(
        "ReduceLROnPlateau(mode='min', factor=0.5, patience=3) stepped on each epoch's summed training loss "
        "(model.py:337,365): the kit has no such schedule; the recipe keeps the rate constant",
        "the kit leaves biases and norms out of weight decay (kit.temporal.optim.param_groups); upstream decays all",
        "whole videos, one per step, [::sample_rate]; test on every frame with predictions repeated sample_rate "
        "times (model.py:410,432); the epoch evaluated is the last (main.py:97 predicts epoch num_epochs)",
        "seed 19980125 (main.py:14-18)",
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
                temporal_model="diffact", tcn_layers=10, tcn_channels=64, dropout=0.5, diffact_sampling_steps=25,
                temporal_hyper=dict(encoder_kernel=5, channel_dropout=0.5, temporal_dropout=0.5,
                                    feature_layers=[5, 7, 9], decoder_layers=8, decoder_channels=24,
                                    decoder_kernel=7, decoder_dropout=0.1, time_dim=512, num_timesteps=1000,
                                    ddim_eta=1.0, scale=1.0,
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
        mixed_precision="main.py:76-125 float32 throughout (no autocast)",
        use_pose="model.py:234-242 the encoder sees the features only",
        feature_proj="model.py:397, 410 the encoder's 1x1 conv_in takes the raw features",
        diffact_sampling_steps="default_configs.py:97 sampling_timesteps 25",
        temporal_model="model.py:68-376 ASDiffusionModel",
        tcn_layers="default_configs.py:75 encoder num_layers 10",
        tcn_channels="default_configs.py:76 encoder num_f_maps 64",
        dropout="default_configs.py:79 normal_dropout_rate 0.5 (the encoder's layers)",
        temporal_hyper="default_configs.py:73-116 encoder_params 74-86, decoder_params 88-94, diffusion_params "
                      "95-108, loss_weights 109-116 (ce 0.5, boundary 0.1), soft_label None 125; boundary_smooth "
                      "20 at sample_rate 8 (124, 71) is 2.5 frames of the model's input",
    ),
    sample_rate={"50salads": 8, "breakfast": 1, "gtea": 1},  # default_configs.py:71, 138, 10
    trainer=(
        "DiffAct's own loss (DiffAct.training_loss); tcn_stages does not apply (encoder + decoder)",
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

RECIPES: dict[str, Recipe] = {"mstcn": MSTCN, "mstcn++": MSTCNPP, "asformer": ASFORMER}
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
