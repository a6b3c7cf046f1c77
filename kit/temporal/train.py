"""The training loop: ``fit(cfg) -> FitResult``.

Reads top to bottom: data -> backbone -> model -> optimizer -> (resume) -> epochs of
{train windows, validate on full videos, history row, checkpoints}. Accelerate places tensors,
runs mixed precision and gradient accumulation, and shards batches across processes
(``accelerate launch -m kit train ...``). The learning rate is a pure function of the step.

Legend: ``B`` windows per batch, ``T`` frames per window, ``K`` compact backbone time steps,
``D`` feature width, ``J`` joints.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.config import RunConfig, check_task_weights
from kit.errors import ResourceError, RunError  # [robust hook] user-facing errors
from kit.data import DECODE_STATS, build_vocab, reset_decode_stats, tasks_of
from kit.temporal.metrics import segment_metrics
from kit.temporal.model import build_model, class_weights_from_counts, segmentation_loss
from kit.temporal.pipeline import (CachedWindows, FrameLabeler, backbone_for, cached_embeddings, collate_windows, feature_cache,
                       mixed_precision, predict_videos)
from kit.temporal.runs import (RESUMABLE, best_metrics, new_run_name, open_run, resumed_config,  # noqa: F401
                               rng_state, run_splits, set_rng_state)
from kit.files import append_history, load_checkpoint, read_history, save_checkpoint, write_json
from kit.data.windows import jittered, shuffled, train_windows

log = logging.getLogger("kit")

OOM_HELP = ("CUDA ran out of memory. Try, in order: a smaller batch_size (e.g. --batch_size 1), "
            "shorter windows (--train_T 120 --val_T 120), a frozen backbone (freeze_backbone=True), "
            "or the lighter 2D backbone (--backbone vit2d).")


@dataclass
class FitResult:
    run_dir: Path
    history: pd.DataFrame
    metrics: dict  # validation metrics of the best epoch
    best_epoch: int


def lr_at(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    """Linear warm-up to ``peak`` over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# [robust hook] RESUMABLE and resumed_config moved to kit.temporal.runs (imported above, same behaviour;
# they raise RunMissing / RunError, user-facing errors).


def _trainable_tasks(train_records) -> list[str]:
    """Label columns with at least one label in the training split ("action" first)."""
    tasks = tasks_of(train_records)
    keep = [t for t in tasks if t == "action" or any(v for r in train_records for v in r.labels.get(t, ()))]
    if len(keep) < len(tasks):
        log.warning(f"[warn] No training labels for {sorted(set(tasks) - set(keep))}: those columns get no head")
    return keep


def _accelerator(cfg: RunConfig):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # a second fit() in one kernel may change precision
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    return Accelerator(mixed_precision=mixed_precision(cfg.mixed_precision),
                       gradient_accumulation_steps=cfg.grad_accum,
                       cpu=not torch.cuda.is_available())  # cpu=True lets gloo run several CPU processes


def fit(cfg: RunConfig) -> FitResult:
    """Trains (or with ``cfg.resume`` continues) a run and returns its folder, history and metrics."""
    from accelerate.utils import broadcast_object_list

    acc = _accelerator(cfg)
    # every process must agree on the run's name (a timestamp could differ across a second boundary)
    cfg = cfg.replace(run_name=broadcast_object_list([cfg.run_name or new_run_name(cfg.output_dir)])[0])  # [robust hook]
    # [robust hook] open_run: checks the name, refuses to mix into an existing run (resume /
    # overwrite), locks the folder, logs to train.log, turns Ctrl-C into RunInterrupted
    with open_run(cfg, writer=acc.is_main_process) as run:
        return _fit(acc, run.cfg, run.dir)


def _fit(acc, cfg: RunConfig, out: Path) -> FitResult:
    from accelerate.utils import gather_object, set_seed

    main = acc.is_main_process
    set_seed(cfg.seed)

    # --- data ---------------------------------------------------------------------------------
    with acc.main_process_first():  # the demo data is generated once, by the main process
        records, splits = run_splits(cfg)
    tasks = ["action"] if cfg.model_type == "action_only" else _trainable_tasks(splits["train"])
    vocab = build_vocab(splits["train"], tasks)
    check_task_weights(cfg.task_weights, list(vocab))  # [robust hook] weights name real tasks
    num_joints = next((r.keypoints.shape[1] for r in records if r.keypoints is not None), 17)
    if cfg.resume:
        state = load_checkpoint(out / "last.pt")
        if state["vocab"] != vocab or state.get("num_joints", num_joints) != num_joints:
            raise RunError(f"cannot resume {out}: the data's label vocabulary or joint count changed since the "
                             f"run started (was {state['vocab']}, now {vocab}); start a new run_name")
    if main:
        cfg.save(out / "config.json")
        write_json(out / "labels.json", vocab)
        write_json(out / "splits.json", {k: [r.stem for r in v] for k, v in splits.items()})
        log.info(f"[info] Run folder: {out}")
        log.info(f"[info] Videos: {', '.join(f'{k} {len(v)}' for k, v in splits.items())}; tasks: {vocab}")

    # --- model --------------------------------------------------------------------------------
    backbone = backbone_for(cfg)
    if cfg.resume and state.get("backbone_fingerprint", backbone.fingerprint) != backbone.fingerprint:
        raise RunError(f"cannot resume {out}: it was trained with backbone {state['backbone_fingerprint']}, "
                         f"but {backbone.fingerprint} loaded now (the 'auto' chain found another model?); "
                         "restore that backbone (backbone_path, the HF cache) or start a new run_name")
    head = build_model(cfg, backbone.feature_dim, vocab, num_joints=num_joints)
    labeler = FrameLabeler(backbone, head)
    groups = [{"params": [p for p in head.parameters() if p.requires_grad], "peak_lr": cfg.lr}]
    if not cfg.freeze_backbone:  # pretrained weights move slowly: their own, lower peak
        groups.append({"params": [p for p in backbone.parameters() if p.requires_grad], "peak_lr": cfg.backbone_lr})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    frozen = cfg.freeze_backbone
    cache = feature_cache(backbone, cfg)
    class_weights = _class_weights(splits["train"], vocab) if cfg.class_weights else None

    lengths = [r.num_frames for r in splits["train"]]
    grid = train_windows(lengths, cfg.train_T, cfg.train_stride)
    train_set = CachedWindows(splits["train"], vocab, grid, backbone, cfg.img_size, cache)
    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=False,
                                         collate_fn=collate_windows, num_workers=cfg.num_workers)
    labeler, optimizer, loader = acc.prepare(labeler, optimizer, loader)
    steps_per_epoch = math.ceil(len(loader) / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs

    start_epoch, step, best, best_epoch = 0, 0, -math.inf, 0
    rows, metrics = [], {}  # [robust hook] history and best metrics kept in memory, returned by fit
    if cfg.resume:
        acc.unwrap_model(labeler).load_checkpoint_state(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and acc.scaler is not None:
            acc.scaler.load_state_dict(state["scaler"])
        start_epoch, step = state["epoch"], state["scheduler"]["step"]  # "epoch" = epochs completed
        best, best_epoch = state["best"], state["best_epoch"]
        set_rng_state(state["rng"])
        rows = read_history(out).to_dict("records")[:start_epoch] if (out / "history.csv").is_file() else []
        metrics = state.get("best_metrics") or _read_metrics(out)  # older checkpoints lack best_metrics
        log.info(f"[info] Resumed {out.name} after epoch {state['epoch']} (step {step})")

    # --- epochs -------------------------------------------------------------------------------
    for epoch in range(start_epoch, cfg.epochs):
        order = shuffled(grid, cfg.seed, epoch)
        train_set.set_windows(order if frozen else jittered(order, lengths, cfg.seed, epoch))
        reset_decode_stats()
        hits0, misses0 = (cache.hits, cache.misses) if cache is not None else (0, 0)
        t0 = time.perf_counter()
        train = _train_one_epoch(acc, labeler, optimizer, loader, cache, cfg, vocab, class_weights,
                                 epoch, step, total_steps)
        step = train.pop("step")
        decoded = {"frames_decoded": DECODE_STATS["frames_decoded"], "frames_grabbed": DECODE_STATS["frames_grabbed"]}
        t1 = time.perf_counter()
        val = _validate(acc, labeler, splits["val"], vocab, cfg, cache, gather_object)
        done = epoch + 1  # epochs are numbered from 1 everywhere a person reads them
        row = {"epoch": done, **train, **val, "train_s": t1 - t0, "val_s": time.perf_counter() - t1,
               # decoding (training windows) and cache counters (training + validation) of this
               # process; DataLoader workers (num_workers > 0) keep their own decode counts
               **decoded,
               "cache_hits": cache.hits - hits0 if cache is not None else 0,
               "cache_misses": cache.misses - misses0 if cache is not None else 0}
        score = val.get("val_action_acc", math.nan)
        if not math.isfinite(score):  # no validation video, or none with a known action label
            score = -train["train_loss"]
        improved = score > best
        if improved:
            best, best_epoch = score, done
            metrics = best_metrics(done, val, train)  # [robust hook] metrics only: no val_s timing, NaN -> null
        rows.append(row)
        if main:
            append_history(out / "history.csv", row)
            log.info("[epoch %d/%d] %s", done, cfg.epochs, " ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                      if k != "epoch" and isinstance(v, float)))
            state = {"model": acc.unwrap_model(labeler).checkpoint_state(), "optimizer": optimizer.state_dict(),
                     "scheduler": {"step": step, "total_steps": total_steps},
                     "scaler": acc.scaler.state_dict() if acc.scaler is not None else {},
                     "rng": rng_state(), "epoch": done, "best": best, "best_epoch": best_epoch,
                     "config": cfg.to_dict(), "vocab": vocab, "num_joints": num_joints,
                     "backbone_fingerprint": backbone.fingerprint, "best_metrics": metrics}
            if improved:  # best first: last.pt must never name a best epoch that best.pt lacks
                save_checkpoint(out / "best.pt", state)
                write_json(out / "metrics.json", metrics)
            save_checkpoint(out / "last.pt", state)
        acc.wait_for_everyone()

    acc.end_training()
    return FitResult(out, pd.DataFrame(rows), metrics, best_epoch)  # [robust hook] from memory, not files


def _train_one_epoch(acc, labeler, optimizer, loader, cache, cfg, vocab, class_weights,
                     epoch, step, total_steps) -> dict:
    from tqdm.auto import tqdm

    labeler.train()
    inner = acc.unwrap_model(labeler)
    inner.backbone.train(not cfg.freeze_backbone)
    T = cfg.train_T
    total, n, windows = 0.0, 0, 0
    quiet = not acc.is_local_main_process or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=quiet,
               leave=False, dynamic_ncols=True)
    t0 = time.perf_counter()
    for batch in bar:
        with acc.accumulate(labeler):
            pose = batch["pose"]  # zeros (masked) where a video has none: every rank runs the same graph
            emb, video = None, batch["video"]
            if cfg.freeze_backbone:  # features without a graph, from the cache when there is one
                with torch.no_grad(), acc.autocast():
                    emb = (cached_embeddings(inner.backbone, batch, cache, acc.device) if cache is not None
                           else inner.backbone.embed(video).float())
                video = None
            try:
                with acc.autocast():
                    stages = labeler(emb, video, T, pose, batch["mask"])
                    loss, _ = segmentation_loss(stages, batch["labels"], batch["mask"], cfg.smooth_weight,
                                                cfg.smooth_tau, class_weights, cfg.task_weights or None)
            except torch.cuda.OutOfMemoryError as e:
                raise ResourceError(OOM_HELP) from e  # [robust hook] a RuntimeError, user-facing
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at epoch {epoch + 1} step {step}: stopping. Lower lr (now {cfg.lr}), "
                    "keep grad_clip on, or try mixed_precision='no'; last.pt holds the last good epoch.")
            acc.backward(loss)
            if acc.sync_gradients:
                if cfg.grad_clip > 0:
                    acc.clip_grad_norm_(labeler.parameters(), cfg.grad_clip)
                for g in optimizer.param_groups:
                    g["lr"] = lr_at(step, total_steps, cfg.warmup_steps, g["peak_lr"])
            optimizer.step()
            optimizer.zero_grad()
            if acc.sync_gradients:
                step += 1
        total += loss.item()
        n += 1
        windows += len(batch["feat_key"])
        bar.set_postfix(loss=f"{total / n:.3f}", win_s=f"{windows / (time.perf_counter() - t0):.1f}")
    counts = acc.gather(torch.tensor([total, n, windows], dtype=torch.float64, device=acc.device))
    counts = counts.view(-1, 3).sum(0)
    return {"train_loss": float(counts[0] / max(counts[1], 1)), "global_batches": int(counts[1]),
            "processes": acc.num_processes,
            "windows": int(counts[2]), "lr": lr_at(max(step - 1, 0), total_steps, cfg.warmup_steps, cfg.lr),
            "step": step}


def _validate(acc, labeler, records, vocab, cfg, cache, gather_object) -> dict:
    if not records:
        return {}
    inner = acc.unwrap_model(labeler)
    mine = records[acc.process_index::acc.num_processes]
    preds = predict_videos(inner, mine, vocab, cfg.val_T, cfg.img_size, acc.device, cache,
                           batch_size=cfg.batch_size) if mine else []
    preds = gather_object(preds) if acc.num_processes > 1 else preds
    row = {}
    for task in inner.head.tasks:
        p = [v.pred(task) for v in preds]
        g = [v.labels[task] for v in preds]
        for k, v in segment_metrics(p, g).items():
            row[f"val_{task}_{k}"] = float(v)
    return row


def _class_weights(records, vocab) -> dict[str, torch.Tensor]:
    out = {}
    for task, names in vocab.items():
        idx = {n: i for i, n in enumerate(names)}
        counts = np.zeros(len(names))
        for r in records:
            for lab in r.labels.get(task, []):
                if lab in idx:
                    counts[idx[lab]] += 1
        out[task] = class_weights_from_counts(torch.tensor(counts))
    return out


def _read_metrics(out: Path) -> dict:
    import json

    p = out / "metrics.json"
    return json.loads(p.read_text()) if p.is_file() else {}
