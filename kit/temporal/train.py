"""The training loop: ``fit(cfg) -> FitResult``.

Reads top to bottom: data -> features (or backbone) -> model -> optimizer -> (resume) -> epochs of
{train, validate on whole videos, history row, checkpoints}. Two paths share the loop
(``cfg.resolved_pipeline``): ``whole_video`` (frozen backbone: features extracted once per video on
first use, the temporal model trained on full sequences, :class:`kit.temporal.sequences.SequencePath`)
and ``windows`` (fine-tuning, or the original script's windows: :class:`kit.temporal.windowed.WindowPath`). Accelerate places tensors,
runs mixed precision and gradient accumulation, and shards batches across processes
(``accelerate launch -m kit train ...``). The learning rate is a pure function of the step.

Legend: ``B`` videos or windows per batch, ``T`` frames per window, ``D`` feature width, ``J`` joints.
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

from kit.config import RunConfig, check_task_weights, resolve_path
from kit.data import DECODE_STATS, build_vocab, tasks_of
from kit.data.video import codec_frames, converted_frames
from kit.data.labels import encode_multilabel, multilabel_tasks, unseen_labels
from kit.features.extract import backbone_for, ensure_features, mixed_precision
from kit.files import append_history, load_checkpoint, read_history, save_checkpoint, write_json
from kit.temporal import tracking
from kit.temporal.behaviours import METRICS as BEHAVIOUR_METRICS, behaviour_metrics, choose_thresholds
from kit.temporal.metrics import segment_metrics
from kit.temporal.losses import pos_weights_from_counts
from kit.temporal.model import build_model, class_weights_from_counts
from kit.temporal.optim import build_optimizer, lr_at, param_groups
from kit.temporal.recipes import apply_recipe
from kit.data.dataset import data_paths, run_data
from kit.errors import ResourceError, RunError
from kit.temporal.runs import best_metrics, new_run_name, open_run, rng_state, set_rng_state
from kit.temporal.sequences import SequencePath
from kit.temporal.windowed import WindowPath

log = logging.getLogger("kit")

OOM_HELP = ("CUDA ran out of memory. Try, in order: a smaller batch_size (e.g. --batch_size 1); on whole videos, "
            "crops of at most --max_len frames (e.g. 2000); on windows, shorter ones (--train_T 120 --val_T 120); "
            "a frozen backbone (freeze_backbone=True), or the lighter 2D backbone (--backbone vit2d).")


@dataclass
class FitResult:
    run_dir: Path
    history: pd.DataFrame
    metrics: dict  # validation metrics of the best epoch
    best_epoch: int


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


def fit(cfg: RunConfig, monitor=None) -> FitResult:
    """Trains (or with ``cfg.resume`` continues) a run and returns its folder, history and metrics.

    ``monitor`` (optional) watches the run instead of the per-epoch progress bars: ``monitor.step(epoch,
    step, total_steps)`` after every batch and ``monitor.epoch(row, best_epoch)`` after every epoch
    (main process only; :class:`kit.results.training_view.TrainingView` draws them in a notebook).

    The run folder is checked and held first (:func:`kit.temporal.runs.open_run`): an earlier run
    there is never mixed in (``resume`` continues it, ``overwrite`` moves its files aside), a second
    process training into it is refused, and Ctrl-C says which epoch ``last.pt`` holds.
    """
    from accelerate.utils import broadcast_object_list

    acc = _accelerator(cfg)
    # every process must agree on the run's name (a timestamp could differ across a second boundary)
    cfg = cfg.replace(run_name=broadcast_object_list([cfg.run_name or new_run_name(cfg.output_dir)])[0])
    with open_run(cfg, writer=acc.is_main_process) as run:
        return _fit(acc, run.cfg if run.cfg.resume else apply_recipe(run.cfg), run.dir, monitor)


def _fit(acc, cfg: RunConfig, out: Path, monitor=None) -> FitResult:
    from accelerate.utils import gather_object, set_seed

    main = acc.is_main_process
    tracking.start(acc, cfg, out)  # report_to: TensorBoard / trackio through Accelerate's trackers
    set_seed(cfg.seed)

    # --- data ---------------------------------------------------------------------------------
    with acc.main_process_first():  # the demo data is generated once, by the main process
        data = run_data(cfg)
    records, splits = data.records, data.splits
    tasks = ["action"] if cfg.model_type == "action_only" else _trainable_tasks(splits["train"])
    multilabel = [t for t in multilabel_tasks(records) if t in tasks]  # cells like groom|rear: a sigmoid each
    vocab = data.vocab or build_vocab(splits["train"], tasks, multilabel)  # a benchmark's mapping.txt: its order
    check_task_weights(cfg.task_weights, list(vocab))  # weights name real tasks
    num_joints = next((r.keypoints.shape[1] for r in records if r.keypoints is not None), 17)
    skeleton = next((r.skeleton.to_dict() for r in records if r.keypoints is not None and r.skeleton), None)
    if cfg.resume:
        state = load_checkpoint(out / "last.pt")
        if state["vocab"] != vocab or state.get("num_joints", num_joints) != num_joints or \
                state.get("skeleton", skeleton) != skeleton:
            raise RunError(f"cannot resume {out}: the data's label vocabulary or joint count changed since the "
                             f"run started (was {state['vocab']}, now {vocab}); start a new run_name")
    if multilabel and cfg.resolved_pipeline != "whole_video":
        raise RunError(f"multi-label task(s) {multilabel} train on whole videos only: keep freeze_backbone=True "
                       "with pipeline='auto' or 'whole_video' (docs/guides/labels.md)")
    for task, counts in unseen_labels(splits["val"] + splits["test"], vocab, multilabel).items():
        log.warning(f"[warn] {task}: classes in val/test that no training video has: "
                    f"{', '.join(f'{k} ({v} frames)' for k, v in counts.items())}; the model cannot predict them and "
                    "the metrics count those frames as errors")
    if main:
        cfg.save(out / "config.json")
        write_json(out / "labels.json", vocab)
        if skeleton:
            write_json(out / "skeleton.json", skeleton)  # the pose graph's joints, edges and individuals
        write_json(out / "splits.json", {k: [r.stem for r in v] for k, v in splits.items()})
        log.info(f"[info] Run folder: {out.resolve()}")
        where = (resolve_path(cfg.output_dir) / "demo_data" if cfg.uses_demo_data else
                 data_paths(cfg)["data_root"] or data_paths(cfg)["annotations"])
        log.info(f"[info] Data: {where}")
        log.info(f"[info] Videos: {', '.join(f'{k} {len(v)}' for k, v in splits.items())}; tasks: {vocab}; "
                 f"pipeline: {cfg.resolved_pipeline}" + (f"; multi-label: {multilabel}" if multilabel else ""))

    # --- features (or backbone) and model ----------------------------------------------------------
    if cfg.resolved_pipeline == "whole_video":
        features = _features(cfg, records, acc, getattr(monitor, "extract_bar", None) if main else None)
        head = build_model(cfg, features["dim"], vocab, num_joints=num_joints, skeleton=skeleton, multilabel=multilabel)
        path = SequencePath(head, splits["train"], vocab, features["of"], cfg.sample_rate, cfg.max_len, cfg.seed,
                            num_joints, tuple(multilabel))
        fingerprint = features["fingerprint"]
    else:
        backbone = backbone_for(cfg)
        head = build_model(cfg, backbone.feature_dim, vocab, num_joints=num_joints, skeleton=skeleton)
        path = WindowPath(cfg, backbone, head, splits["train"], vocab)
        features, fingerprint = {}, backbone.fingerprint
    if cfg.resume and state.get("backbone_fingerprint", fingerprint) != fingerprint:
        raise RunError(f"cannot resume {out}: it was trained with backbone {state['backbone_fingerprint']}, "
                         f"but {fingerprint} loaded now (the 'auto' chain found another model?); "
                         "restore that backbone (backbone_path, the HF cache) or start a new run_name")
    groups = param_groups(head, cfg)  # no weight decay on biases, norms and embeddings
    if not cfg.freeze_backbone:  # pretrained weights move slowly: their own, lower peak
        groups += param_groups(path.backbone, cfg, peak_lr=cfg.backbone_lr)
    optimizer = build_optimizer(cfg, groups)
    class_weights = _class_weights(splits["train"], vocab, multilabel) if cfg.class_weights else None
    loader = torch.utils.data.DataLoader(path.dataset, batch_size=cfg.batch_size, shuffle=False,
                                         collate_fn=path.collate, num_workers=cfg.num_workers)
    model, optimizer, loader = acc.prepare(path.model, optimizer, loader)
    steps_per_epoch = math.ceil(len(loader) / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs

    start_epoch, step, best, best_epoch = 0, 0, -math.inf, 0
    rows, metrics = [], {}  # history and the best epoch's metrics, kept in memory and returned
    if cfg.resume:
        acc.unwrap_model(model).load_checkpoint_state(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and acc.scaler is not None:
            acc.scaler.load_state_dict(state["scaler"])
        start_epoch, step = state["epoch"], state["scheduler"]["step"]  # "epoch" = epochs completed
        best, best_epoch = state["best"], state["best_epoch"]
        rows = read_history(out).to_dict("records")[:start_epoch] if (out / "history.csv").is_file() else []
        metrics = state.get("best_metrics") or _read_metrics(out)  # checkpoints of kit 0.1 lack best_metrics
        rng = state["rng"]  # one state per process (a list), or rank 0's alone (runs of kit 0.1)
        set_rng_state(rng[min(acc.process_index, len(rng) - 1)] if isinstance(rng, list) else rng)
        log.info(f"[info] Resumed {out.name} after epoch {state['epoch']} (step {step})")

    # --- epochs -------------------------------------------------------------------------------
    for epoch in range(start_epoch, cfg.epochs):
        path.set_epoch(epoch)
        if hasattr(loader, "set_epoch"):  # Accelerate's loader calls dataset.set_epoch(its own count) on each
            loader.set_epoch(epoch)       # pass, a count that restarts at 0 on --resume: give it the epoch
        decode0 = dict(DECODE_STATS)  # deltas, not a reset: a caller may count a whole run's decoding
        hits0, misses0 = path.counters()
        t0 = time.perf_counter()
        train = _train_one_epoch(acc, model, path, optimizer, loader, cfg, class_weights, epoch, step, total_steps,
                                 monitor if main else None)
        step = train.pop("step")
        decoded = {"frames_decoded": converted_frames() - converted_frames(decode0),  # resized for the backbone
                   "frames_grabbed": codec_frames() - codec_frames(decode0)}  # decoded by the codec
        t1 = time.perf_counter()
        val, preds, thresholds = _validate(acc, model, path, splits["val"], vocab, gather_object)
        done = epoch + 1  # epochs are numbered from 1 everywhere a person reads them
        hits, misses = path.counters()
        row = {"epoch": done, **train, **val, "train_s": t1 - t0, "val_s": time.perf_counter() - t1,
               # decoding (training and validation) and window-cache counters of this process; DataLoader
               # workers (num_workers > 0) keep their own decode counts
               **decoded, "cache_hits": hits - hits0, "cache_misses": misses - misses0}
        score = val.get("val_action_f1" if "action" in multilabel else "val_action_acc", math.nan)
        if not math.isfinite(score):  # no validation video, or none with a known action label
            score = -train["train_loss"]
        improved = score > best
        if improved:
            best, best_epoch = score, done
            metrics = best_metrics(done, val, train)  # metrics only: no timings; NaN -> null
        rows.append(row)
        rngs = gather_object([rng_state()]) if acc.num_processes > 1 else [rng_state()]
        if main:
            append_history(out / "history.csv", row)
            if monitor is not None:
                monitor.epoch(row, best_epoch)
            tracking.log_epoch(acc, row, step, preds, vocab)  # [tracking] epoch scalars, confusion, timelines
            log.info("[epoch %d/%d] %s", done, cfg.epochs, " ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                      if k != "epoch" and isinstance(v, float)))
            state = {"model": acc.unwrap_model(model).checkpoint_state(),
                     "optimizer": optimizer.state_dict(), "scheduler": {"step": step, "total_steps": total_steps},
                     "scaler": acc.scaler.state_dict() if acc.scaler is not None else {},
                     "rng": rngs, "epoch": done, "best": best, "best_epoch": best_epoch, "best_metrics": metrics,
                     "config": cfg.to_dict(), "vocab": vocab, "num_joints": num_joints, "skeleton": skeleton,
                     "backbone_fingerprint": fingerprint, "pipeline": cfg.resolved_pipeline,
                     "multilabel": multilabel, "thresholds": thresholds,
                     "feature_dim": features.get("dim", 0), "features": features.get("store", "")}
            if improved:  # best first: last.pt must never name a best epoch that best.pt lacks
                save_checkpoint(out / "best.pt", state)
                write_json(out / "metrics.json", metrics)
                if multilabel:  # per behaviour, chosen on the validation split with the best epoch
                    write_json(out / "thresholds.json", thresholds)
            save_checkpoint(out / "last.pt", state)
        acc.wait_for_everyone()

    acc.end_training()
    return FitResult(out, pd.DataFrame(rows), metrics, best_epoch)


def _features(cfg: RunConfig, records, acc, bar=None) -> dict:
    """Where each video's ``(D, L)`` features are: given by the dataset (the MS-TCN layout), or the
    store of the config's backbone, extracted on first use (each process its share of the videos).
    ``bar``: a monitor's progress factory for the extraction (else tqdm on the local main process)."""
    given = [r.features_path for r in records if r.features_path is not None]
    if len(given) == len(records):
        dim = int(np.load(given[0], mmap_mode="r").shape[0])
        return {"of": lambda r: r.features_path, "dim": dim, "store": str(given[0].parent),
                "fingerprint": f"given:{given[0].parent.resolve()}"}
    store, backbone, _ = ensure_features(cfg, records, device=acc.device, progress=bar or acc.is_local_main_process)
    acc.wait_for_everyone()  # every process's share is written before anyone reads
    out = {"of": lambda r: store.path(r.stem), "dim": backbone.feature_dim, "store": str(store.root),
           "fingerprint": backbone.fingerprint}
    del backbone  # the temporal model never needs it again
    return out


def _train_one_epoch(acc, model, path, optimizer, loader, cfg, class_weights, epoch, step, total_steps,
                     monitor=None) -> dict:
    from tqdm.auto import tqdm

    model.train()
    total, n, items = 0.0, 0, 0
    quiet = (not acc.is_local_main_process or monitor is not None  # a monitor shows the progress instead
             or os.environ.get("TQDM_DISABLE", "") not in ("", "0"))
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=quiet, leave=False, dynamic_ncols=True)
    t0 = time.perf_counter()
    for batch in bar:
        with acc.accumulate(model):
            try:
                with acc.autocast():
                    # the temporal model's own objective (kit.temporal.models), through the wrapped forward
                    focal = dict(loss=cfg.loss, focal_gamma=cfg.focal_gamma) if cfg.loss != "ce" else {}
                    loss, _ = path.forward(model, batch, acc, loss_kw=dict(
                        labels=batch["labels"], smooth_weight=cfg.smooth_weight, smooth_tau=cfg.smooth_tau,
                        class_weights=class_weights, task_weights=cfg.task_weights or None, **focal))
            except torch.cuda.OutOfMemoryError as e:
                raise ResourceError(OOM_HELP) from e
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at epoch {epoch + 1} step {step}: stopping. Lower lr (now {cfg.lr}), "
                    "keep grad_clip on, or try mixed_precision='no'; last.pt holds the last good epoch.")
            acc.backward(loss)
            if acc.sync_gradients:
                if cfg.grad_clip > 0:
                    acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                for g in optimizer.param_groups:
                    g["lr"] = lr_at(step, total_steps, cfg.warmup_steps, g["peak_lr"], cfg.lr_schedule)
            optimizer.step()
            optimizer.zero_grad()
            if acc.sync_gradients:
                step += 1
        value = loss.item()
        tracking.log_step(acc, value, optimizer, step)  # [tracking] train/loss, train/lr per optimizer step
        total += value
        n += 1
        items += len(batch["mask"])
        bar.set_postfix(loss=f"{total / n:.3f}", per_s=f"{items / (time.perf_counter() - t0):.1f}")
        if monitor is not None:
            monitor.step(epoch, step, total_steps)
    counts = acc.gather(torch.tensor([total, n, items], dtype=torch.float64, device=acc.device))
    counts = counts.view(-1, 3).sum(0)
    return {"train_loss": float(counts[0] / max(counts[1], 1)), "global_batches": int(counts[1]),
            "processes": acc.num_processes, path.unit: int(counts[2]),
            "lr": lr_at(max(step - 1, 0), total_steps, cfg.warmup_steps, cfg.lr, cfg.lr_schedule), "step": step}


def _validate(acc, model, path, records, vocab, gather_object) -> tuple[dict, list, dict]:
    """Validation metrics ``val_<task>_<metric>``, the predictions, and per multi-label task the
    thresholds chosen on these videos (``{task: {behaviour: threshold}}``, 0.5 without videos)."""
    inner = acc.unwrap_model(model)
    multilabel = list(getattr(inner, "multilabel", ()))
    thresholds = {t: {b: 0.5 for b in vocab[t]} for t in multilabel}
    if not records:
        return {}, [], thresholds
    mine = records[acc.process_index::acc.num_processes]
    preds = path.predict(inner, mine, vocab, acc.device) if mine else []
    preds = gather_object(preds) if acc.num_processes > 1 else preds
    row = {}
    for task in inner.tasks:
        if task in multilabel:  # mean over behaviours, at thresholds chosen on these videos
            probs, targets = [v.probs[task] for v in preds], [v.labels[task] for v in preds]
            thresholds[task] = choose_thresholds(probs, targets, vocab[task])
            mean = behaviour_metrics(probs, targets, vocab[task], thresholds[task])["mean"]
            row.update({f"val_{task}_{k}": float(mean[k]) for k in BEHAVIOUR_METRICS})
            continue
        p = [v.pred(task) for v in preds]
        g = [v.labels[task] for v in preds]
        for k, v in segment_metrics(p, g).items():
            row[f"val_{task}_{k}"] = float(v)
    return row, preds, thresholds  # [tracking] preds: the figures of the epoch


def _class_weights(records, vocab, multilabel=()) -> dict[str, torch.Tensor]:
    out = {}
    for task, names in vocab.items():
        if task in multilabel:  # BCE's pos_weight per behaviour: negatives / positives
            y = np.concatenate([encode_multilabel(r.labels.get(task), names, r.num_frames) for r in records])
            y = y[(y != -100).all(1)]
            out[task] = pos_weights_from_counts(y.sum(0), np.full(len(names), len(y)))
            continue
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
