"""DiffAct: action segmentation as iterative denoising of per-frame class probabilities.

Liu, Li, Dinh, Jiang, Shah & Xu, "Diffusion Action Segmentation", ICCV 2023; the reference code is
github.com/Finspire13/DiffAct at commit ``a223e0c`` (2023-08-16). ``model.py:N``,
``default_configs.py:N`` name lines of those files there. Layers: :mod:`.diffact_layers`; loss
terms: :mod:`.diffact_loss`.

```
x (B, T, D) -> [InstanceNorm] -> Encoder -> logits (B, ΣK, T)                      stage 1
                                   `-> features of layers 5, 7, 9 (B, X, T) -------+
noise (B, ΣK, T) -> 25 DDIM steps: Decoder(features, step, noisy probabilities) ---+-> probabilities -> stage 2
```
Legend: ``B`` batch, ``T`` frames, ``D`` input width, ``X`` the encoder features the decoder sees,
``ΣK`` all tasks' classes side by side (single-label tasks softmax blocks, multi-label ones sigmoid
channels: :func:`kit.temporal.models.common.task_probs`).

Defaults are upstream's 50Salads configuration (default_configs.py:66-131), with the boundary
sigma in the frames the model sees (upstream's 20 at sample rate 8: 2.5).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn

from kit.temporal.models.common import task_probs
from kit.temporal.models.diffact_layers import Decoder, Encoder, cosine_alphas_cumprod, masked_instance_norm
from kit.temporal.models.diffact_loss import (boundary_targets, boundary_term, ce_term, label_targets,
                                              smooth_term)
from kit.temporal.models.diffact_upstream import (UPSTREAM_BUFFERS, check_schedule, model_from_upstream,
                                                  upstream_name, upstream_sizes)

COND_TYPES = ("full", "zero", "boundary05-", "boundary03-", "segment=1", "segment=2")  # model.py:200-230

class DiffAct(nn.Module):
    """DiffAct behind the kit's temporal-model interface (see :mod:`kit.temporal.models`).

    Args:
        in_dim: feature width ``D``.
        num_classes: classes per task, in logit order.
        multilabel: tasks whose classes are independent (sigmoid channels).
        layers, channels, encoder_kernel: encoder depth, width, kernel (model.py:385-399); the kit's
            ``tcn_layers``, ``tcn_channels``.
        stages: not used (the common interface passes ``tcn_stages``): DiffAct's stages are always
            the encoder's and the decoder's.
        dropout, channel_dropout, temporal_dropout: the encoder's per-layer dropout and its input
            dropout of whole channels and whole frames (default_configs.py:79-81).
        feature_layers: encoder layers whose outputs condition the decoder; -1 the input, -2 the
            encoder's probabilities (model.py:124-128). None: ``layers - 5, layers - 3, layers - 1``
            (upstream's 5, 7, 9 of 10 layers).
        instance_norm: InstanceNorm over the input features first (model.py:120-122; off upstream).
        decoder_layers, decoder_channels, decoder_kernel, decoder_dropout, time_dim: the denoiser
            (default_configs.py:88-94).
        num_timesteps, sampling_timesteps, ddim_eta, scale: the cosine-schedule diffusion, DDIM
            inference steps, DDIM's eta and the signal scale ``snr_scale`` (default_configs.py:95-99).
        cond_types: the feature masks training draws from, one per video (model.py:198-230).
        detach_decoder: the decoder's loss does not reach the encoder (model.py:193-194).
        boundary_sigma: Gaussian sigma of the boundary target, in model frames (dataset.py:86-107).
        soft_label: sigma of Gaussian-smoothed label targets; 0 = hard labels (model.py:244-256).
        ce_weight, smooth_weight, boundary_weight: loss weights of the encoder's and decoder's
            cross-entropy and smoothing terms and the decoder's boundary term (default_configs.py:109-116).
        seed: seeds the sampling noise; every video starts from the same seed, so a video's result
            depends neither on its batch nor on padding (upstream seeds by video index, main.py:198-201).
    """

    def __init__(self, in_dim: int, num_classes: Mapping[str, int], *, multilabel: Sequence[str] = (),
                 layers: int = 10, channels: int = 64, stages: int | None = None, encoder_kernel: int = 5,
                 dropout: float = 0.5, channel_dropout: float = 0.5, temporal_dropout: float = 0.5, feature_layers=None,
                 instance_norm: bool = False, decoder_layers: int = 8, decoder_channels: int = 24,
                 decoder_kernel: int = 7, decoder_dropout: float = 0.1, time_dim: int = 512,
                 num_timesteps: int = 1000, sampling_timesteps: int = 25, ddim_eta: float = 1.0, scale: float = 1.0,
                 cond_types=("full", "zero", "boundary05-", "segment=2", "segment=2"), detach_decoder: bool = False,
                 boundary_sigma: float = 2.5, soft_label: float = 0.0, ce_weight: float = 0.5,
                 smooth_weight: float = 0.1, boundary_weight: float = 0.1, seed: int = 0):
        super().__init__()
        if not num_classes or min(num_classes.values()) < 1:
            raise ValueError(f"DiffAct needs >= 1 class per task, got {dict(num_classes)}")
        unknown = [t for t in multilabel if t not in num_classes]
        if unknown:
            raise ValueError(f"multilabel names {unknown}, which are not tasks of {list(num_classes)}")
        bad = [c for c in cond_types if c not in COND_TYPES]
        if bad or not cond_types:
            raise ValueError(f"cond_types {list(cond_types)}: each must be one of {COND_TYPES}")
        if not 1 <= sampling_timesteps <= num_timesteps:
            raise ValueError(f"sampling_timesteps must be in 1..num_timesteps={num_timesteps}, "
                             f"got {sampling_timesteps} (model.py:84)")
        if feature_layers is None:
            feature_layers = sorted({max(0, layers - 5), max(0, layers - 3), layers - 1})
        layers_bad = [i for i in feature_layers if i not in (-1, -2) and not 0 <= i < layers]
        if not feature_layers or layers_bad:
            raise ValueError(f"feature_layers {list(feature_layers)}: each must be -1, -2 or an encoder layer "
                             f"0..{layers - 1}")
        self.in_dim, self.tasks = in_dim, list(num_classes)
        self.sizes = [int(num_classes[t]) for t in self.tasks]
        self.multilabel = [t in set(multilabel) for t in self.tasks]
        total = sum(self.sizes)
        self.instance_norm = instance_norm
        self.num_timesteps, self.sampling_timesteps = num_timesteps, sampling_timesteps
        self.ddim_eta, self.scale, self.seed = ddim_eta, scale, seed
        self.cond_types, self.detach_decoder = tuple(cond_types), detach_decoder
        self.boundary_sigma, self.soft_label = boundary_sigma, soft_label
        self.ce_weight, self.smooth_weight, self.boundary_weight = ce_weight, smooth_weight, boundary_weight
        self.encoder = Encoder(in_dim, total, channels, layers, encoder_kernel, dropout,
                               channel_dropout, temporal_dropout, feature_layers)
        cross = (sum(1 for i in feature_layers if i >= 0) * channels
                 + (in_dim if -1 in feature_layers else 0) + (total if -2 in feature_layers else 0))
        self.decoder = Decoder(total, cross, decoder_channels, decoder_layers, decoder_kernel, decoder_dropout, time_dim)
        # float64 like upstream's buffers (model.py:76-98): the DDIM arithmetic promotes to it as upstream's does
        self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(num_timesteps), persistent=False)

    # --- shapes and probabilities -------------------------------------------------------------
    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        return task_probs(logits, self.sizes, self.multilabel)  # (B, ΣK, T)

    def _inputs(self, x: torch.Tensor, mask: torch.Tensor | None):
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"DiffAct expected (B, T, {self.in_dim}), got {tuple(x.shape)}")
        B, T, _ = x.shape
        if mask is None:
            real = torch.ones(B, T, dtype=torch.bool, device=x.device)
        elif mask.shape != (B, T):
            raise ValueError(f"mask expected (B, T) = ({B}, {T}), got {tuple(mask.shape)}")
        else:
            real = mask.bool()
        m = real[:, None].to(x.dtype)  # (B, 1, T)
        xt = x.transpose(1, 2).masked_fill(~real[:, None], 0.0)  # (B, D, T); fill, not multiply: NaN * 0 = NaN
        if self.instance_norm:
            xt = masked_instance_norm(xt, m)
        return xt, real, m

    def _split(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t: c.transpose(1, 2) for t, c in zip(self.tasks, out.split(self.sizes, 1))}  # (B, T, K)

    def _logits(self, probs: torch.Tensor) -> torch.Tensor:
        """Logits whose per-task softmax (sigmoid) gives back ``probs``. (B, ΣK, T)"""
        out = []
        for p, ml in zip(probs.split(self.sizes, 1), self.multilabel):
            p = p.clamp(1e-12, 1 - 1e-7) if ml else p.clamp_min(1e-12)
            out.append(torch.log(p) - torch.log1p(-p) if ml else torch.log(p))
        return torch.cat(out, 1)

    # --- inference --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """The encoder's logits and, in eval mode, the DDIM-sampled decoder's (the prediction).

        Training mode returns the encoder's stage alone: training goes through :meth:`training_loss`.
        The decoder stage's logits are ``log p`` of the sampled probabilities (a multi-label
        channel's ``logit p``), so softmax (sigmoid) gives ``p`` back.

        Shapes:
            x: (B, T, D); mask: (B, T) bool, True for real frames (None = all real).
            returns: [{task: (B, T, K)}] (train) or [encoder, decoder] (eval); 0 at padded frames.
        """
        xt, real, m = self._inputs(x, mask)
        enc, feats = self.encoder(xt, m, self._probs, features=not self.training)
        stages = [self._split(enc)]
        if not self.training:
            stages.append(self._split(self._logits(self.sample(feats, real)) * m))
        return stages

    def _noise(self, real: torch.Tensor, generators, dtype) -> torch.Tensor:
        """Each video's next noise draw from its own generator, over its real frames only. (B, ΣK, T)"""
        B, T = real.shape
        out = torch.zeros(B, sum(self.sizes), T, dtype=dtype)
        for b, g in enumerate(generators):
            n = int(real[b].sum())
            out[b][:, real[b].cpu()] = torch.randn((1, out.shape[1], n), generator=g, dtype=dtype)[0]
        return out.to(real.device)

    def _predict(self, feats, x, t, m):
        """Upstream's ``model_predictions`` (model.py:152-167): the decoder's clean estimate and its noise.

        ``x`` in [-scale, scale] (clamped); the decoder sees it in [0, 1]; ``x0`` is its per-task
        probabilities mapped back to [-scale, scale]; the noise follows from ``x`` and ``x0``.
        """
        s = self.scale
        x_m = (torch.clamp(x, min=-s, max=s) / s + 1) / 2  # [0, 1]
        x0 = self._probs(self.decoder(feats, t, x_m.float(), m))  # (B, ΣK, T)
        x0 = torch.clamp((x0 * 2 - 1.0) * s, min=-s, max=s)
        ac = self.alphas_cumprod[t].view(-1, 1, 1)  # (B, 1, 1) float64, as upstream's extract()
        return (torch.sqrt(1.0 / ac) * x - x0) / torch.sqrt(1.0 / ac - 1), x0

    @torch.no_grad()
    def sample(self, feats: torch.Tensor, real: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """DDIM sampling of per-frame probabilities given the encoder features (model.py:315-376).

        ``sampling_timesteps`` steps from ``num_timesteps - 1`` down, each ``x_{t'} = sqrt(ᾱ_{t'}) x0
        + sqrt(1 - ᾱ_{t'} - σ²) ε̂ + σ z``, ``σ = eta sqrt((1 - ᾱ_t/ᾱ_{t'})(1 - ᾱ_{t'})/(1 - ᾱ_t))``;
        the last step's clean estimate is the result. Every video draws its noise from its own
        generator seeded with ``seed`` (default ``self.seed``), in upstream's order and dtypes
        (float32 first, then float64 as upstream's arithmetic promotes), so a video alone on the
        CPU gets upstream's numbers for ``ddim_sample(x, seed)``, in any batch and with any padding.

        Shapes:
            feats: (B, X, T); real: (B, T) bool; returns (B, ΣK, T) float32, 0 at padded frames.
        """
        seed = self.seed if seed is None else seed
        B, T = real.shape
        m = real[:, None].to(feats.dtype)
        gens = [torch.Generator().manual_seed(int(seed)) for _ in range(B)]
        times = torch.linspace(-1, self.num_timesteps - 1, steps=self.sampling_timesteps + 1)  # model.py:333-337
        times = list(reversed(times.int().tolist()))
        x = self._noise(real, gens, torch.float32)
        x0 = None
        for time, time_next in zip(times[:-1], times[1:]):
            t = torch.full((B,), time, device=feats.device, dtype=torch.long)
            pred_noise, x0 = self._predict(feats, x, t, m)
            if time_next < 0:
                break
            alpha, alpha_next = self.alphas_cumprod[time], self.alphas_cumprod[time_next]  # 0-dim float64
            sigma = self.ddim_eta * ((1 - alpha / alpha_next) * (1 - alpha_next) / (1 - alpha)).sqrt()
            c = (1 - alpha_next - sigma ** 2).sqrt()
            noise = self._noise(real, gens, x.dtype)
            x = (x0 * alpha_next.sqrt() + c * pred_noise + sigma * noise) * m
        return ((x0 / self.scale) + 1) / 2 * m  # model.py:62-64, 367

    # --- training ---------------------------------------------------------------------------
    def training_loss(self, x: torch.Tensor, mask: torch.Tensor | None, labels: Mapping[str, torch.Tensor], *,
                      class_weights: Mapping[str, torch.Tensor] | None = None,
                      task_weights: Mapping[str, float] | None = None, smooth_weight: float | None = None,
                      smooth_tau: float = 4.0):
        """DiffAct's objective (model.py:234-312) for a batch, summed over tasks.

        Per task: ``ce_weight`` x (encoder CE + decoder CE) + ``smooth_weight`` x (encoder + decoder
        truncated MSE, clamped at ``smooth_tau**2`` = 16 upstream) + ``boundary_weight`` x the
        decoder's boundary BCE (single-label tasks). The decoder denoises the labels' one-hot
        (unlabelled frames: uniform) diffused to a random step per video, seeing the encoder
        features under one of ``cond_types`` masks per video. Padded and unlabelled frames are ignored.

        Args:
            labels: {task: (B, T) long class ids, -100 = unlabelled} (a multi-label task may give (B, T, K) 0/1).
            class_weights: {task: (K,)} cross-entropy class weights (hard labels only).
            task_weights: {task: weight}, missing = 1.
            smooth_weight: overrides the model's ``smooth_weight`` (the kit's ``smooth_weight`` field).
            smooth_tau: truncation of the smoothing terms.

        Shapes:
            x: (B, T, D); mask: (B, T) bool or None.
            returns: (scalar loss, {"loss", "<encoder|decoder>_<ce|smooth|boundary>/<task>": float}),
            the parts unweighted, as upstream's ``loss_dict``.
        """
        xt, real, m = self._inputs(x, mask)
        B, T = real.shape
        missing = [t for t in self.tasks if t not in labels]
        if missing:
            raise ValueError(f"training_loss got no labels for task(s) {missing}")
        enc, feats = self.encoder(xt, m, self._probs, features=True)
        if self.detach_decoder:
            feats = feats.detach()
        lengths = real.sum(1).tolist()
        pairs = real[:, 1:] & real[:, :-1]  # (B, T-1)
        targets = {}
        for task, K, ml in zip(self.tasks, self.sizes, self.multilabel):
            lab = labels[task].to(x.device)
            if lab.shape[:2] != (B, T):
                raise ValueError(f"labels[{task!r}] expected (B, T) = ({B}, {T}), got {tuple(lab.shape)}")
            onehot, known = label_targets(lab, K, ml)
            targets[task] = (lab, onehot, known & real)
        gt = torch.cat([torch.where(targets[t][2][:, None], targets[t][1], 0.5 if ml else 1.0 / K)
                        for t, K, ml in zip(self.tasks, self.sizes, self.multilabel)], 1) * m  # (B, ΣK, T)
        bounds = {}  # single-label task -> (B, T) boundary target, per video over its real frames
        for task, ml in zip(self.tasks, self.multilabel):
            if not ml:
                lab, _, known = targets[task]
                bt = torch.zeros(B, T, device=x.device)
                for b in range(B):
                    bt[b, real[b]] = boundary_targets(lab[b, real[b]].masked_fill(~known[b, real[b]], -100),
                                                      self.boundary_sigma)
                bounds[task] = bt

        # forward diffusion to a random step per video (model.py:170-188)
        t = torch.randint(0, self.num_timesteps, (B,), device=x.device)
        ac = self.alphas_cumprod[t].view(B, 1, 1)  # float64
        s = self.scale
        x_t = ac.sqrt() * ((gt * 2.0 - 1.0) * s) + (1 - ac).sqrt() * torch.randn_like(gt)
        diffused = ((torch.clamp(x_t, min=-s, max=s) / s) + 1) / 2.0
        dec = self.decoder(feats * self._condition_mask(targets, bounds, real), t, diffused.float() * m, m)

        sw = self.smooth_weight if smooth_weight is None else float(smooth_weight)
        total, parts = 0.0, {}
        offset = 0
        for task, K, ml in zip(self.tasks, self.sizes, self.multilabel):
            lab, onehot, known = targets[task]
            w = None if ml or not class_weights or task not in class_weights else \
                class_weights[task].to(x.device, torch.float32)
            e, d = enc[:, offset:offset + K], dec[:, offset:offset + K]  # (B, K, T)
            offset += K
            terms = {}
            for name, z in (("encoder", e), ("decoder", d)):
                terms[f"{name}_ce/{task}"] = ce_term(z, lab, known, onehot, ml, w, self.soft_label, lengths)
                logp = torch.nn.functional.logsigmoid(z.float()) if ml else z.float().log_softmax(1)
                terms[f"{name}_smooth/{task}"] = smooth_term(logp, pairs, smooth_tau)
            loss = self.ce_weight * (terms[f"encoder_ce/{task}"] + terms[f"decoder_ce/{task}"]) + \
                sw * (terms[f"encoder_smooth/{task}"] + terms[f"decoder_smooth/{task}"])
            if not ml:
                both = pairs & known[:, 1:] & known[:, :-1]
                terms[f"decoder_boundary/{task}"] = boundary_term(d, bounds[task], both)
                loss = loss + self.boundary_weight * terms[f"decoder_boundary/{task}"]
            total = total + (1.0 if task_weights is None else float(task_weights.get(task, 1.0))) * loss
            parts.update(terms)
        values = torch.stack([total.detach(), *[v.detach() for v in parts.values()]]).tolist()  # one device sync
        return total, dict(zip(["loss", *parts], values))

    def _condition_mask(self, targets, bounds, real) -> torch.Tensor:
        """Per video, one of ``cond_types``' masks of the encoder features (model.py:198-230).

        ``zero`` hides all of them, ``boundaryXX-`` the frames whose boundary target is >= 0.XX,
        ``segment=n`` the frames of n randomly drawn classes present in the video (draws may repeat).
        Masks read the first single-label task (all features kept where there is none).

        Shapes:
            returns: (B, 1, T) float.
        """
        B, T = real.shape
        keep = torch.ones(B, 1, T, device=real.device)
        first = next((t for t, ml in zip(self.tasks, self.multilabel) if not ml), None)
        choice = torch.randint(len(self.cond_types), (B,)).tolist()
        for b, c in enumerate(choice):
            kind = self.cond_types[c]
            if kind == "zero":
                keep[b] = 0.0
            elif first is None or kind == "full":
                continue
            elif kind.startswith("boundary"):
                keep[b, 0] = (bounds[first][b] < (0.5 if kind == "boundary05-" else 0.3)).float()
            else:
                lab, _, known = targets[first]
                present = torch.unique(lab[b][known[b]])
                if len(present) == 0:
                    continue
                for _ in range(int(kind[-1])):
                    drop = present[torch.randint(len(present), (1,)).item()]
                    keep[b, 0] = keep[b, 0] * ((lab[b] != drop) | ~known[b]).float()
        return keep

    # --- upstream checkpoints ---------------------------------------------------------------
    @classmethod
    def upstream_names(cls, state_dict) -> dict[str, str]:
        """Upstream parameter name -> this module's (:func:`kit.temporal.models.from_upstream`); the schedule
        buffers are left out (rebuilt here, checked by :meth:`upstream_hyper`)."""
        return {k: upstream_name(k) for k in state_dict if k not in UPSTREAM_BUFFERS}

    @classmethod
    def upstream_hyper(cls, state_dict) -> dict:
        """The sizes read off an upstream state_dict (:func:`.diffact_upstream.upstream_sizes`), ``stages`` 2.

        Raises:
            ValueError: not a DiffAct state_dict, or its schedule is not the cosine schedule.
        """
        sizes = upstream_sizes(state_dict)
        check_schedule(state_dict, sizes.get("num_timesteps", 1000))
        return {**sizes, "stages": 2}

    @classmethod
    def from_upstream_state(cls, state_dict: Mapping[str, torch.Tensor], num_classes=None, *,
                            multilabel: Sequence[str] = (), **hyper) -> "DiffAct":
        """The model holding an upstream ``ASDiffusionModel`` state_dict, in eval mode.

        Widths, depths, kernels, the class count and ``num_timesteps`` are read from the tensors'
        shapes; what they cannot tell (``feature_layers``: (5, 7, 9) for 10 layers, give Breakfast's
        (7, 8, 9); ``sampling_timesteps``, ``ddim_eta``, ``scale``, ``instance_norm``, ``seed``) comes
        from ``hyper``. Upstream's schedule buffers are checked against the schedule rebuilt here.

        Args:
            state_dict: as upstream's training saves it (``epoch-N.model``, ``release.model``).
            num_classes: {task: K} summing to the checkpoint's classes, an int, or None ({"action": K}).

        Raises:
            ValueError: a tensor is missing, unexpected, of the wrong shape, or ``feature_layers``
                does not match the decoder's width.
        """
        return model_from_upstream(cls, state_dict, num_classes, multilabel=multilabel, **hyper)
