"""Upstream DiffAct checkpoints: the names, sizes and checks that load them into :class:`.diffact.DiffAct`.

Upstream is github.com/Finspire13/DiffAct at commit ``a223e0c``; ``model.py:N`` names a line of its
``model.py``, whose ``ASDiffusionModel.state_dict()`` is what its training saves (``epoch-N.model``,
``trained_models/*/release.model``).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import torch

from kit.temporal.models.diffact_layers import cosine_alphas_cumprod

# upstream parameter name -> this module's (model.py:134-135, 397-399, 433-440, 462-505, 639-651)
_UPSTREAM_NAMES = [
    (r"^encoder\.encoder\.layers\.(\d+)\.", r"encoder.layers.\1."),
    (r"^decoder\.module\.layers\.(\d+)\.", r"decoder.layers.\1."),
    (r"^decoder\.module\.time_proj\.", "decoder.time_proj."),
    (r"^decoder\.time_in\.", "decoder.time_embed."),
    (r"\.conv_block\.0\.", ".conv."),
    (r"\.att_linear_q\.", ".query."),
    (r"\.att_linear_k\.", ".key."),
    (r"\.att_linear_v\.", ".value."),
    (r"\.ffn_block\.0\.", ".ffn_in."),
    (r"\.ffn_block\.2\.", ".ffn_out."),
]
# upstream's registered buffers (model.py:88-113): the noise schedule, rebuilt here from num_timesteps
UPSTREAM_BUFFERS = {"betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                     "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                     "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                     "posterior_mean_coef1", "posterior_mean_coef2"}


def upstream_name(name: str) -> str:
    """This module's name of an upstream ``ASDiffusionModel`` parameter.

    Example:
        >>> upstream_name("decoder.module.layers.3.att_linear_q.weight")
        'decoder.layers.3.query.weight'
    """
    for pattern, repl in _UPSTREAM_NAMES:
        name = re.sub(pattern, repl, name)
    return name


def upstream_sizes(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """The sizes an upstream ``ASDiffusionModel`` state_dict was built with, read off names and shapes.

    Returns ``channels``, ``layers``, ``encoder_kernel``, ``decoder_channels``, ``decoder_layers``,
    ``decoder_kernel``, ``time_dim`` and (when the schedule buffers are there) ``num_timesteps``.

    Raises:
        ValueError: it is not an upstream DiffAct state_dict.
    """
    sd = state_dict
    need = ["encoder.conv_in.weight", "encoder.conv_out.weight", "decoder.conv_in.weight",
            "decoder.time_in.0.weight", "decoder.module.layers.0.att_linear_q.weight",
            "encoder.encoder.layers.0.conv_block.0.weight", "decoder.module.layers.0.conv_block.0.weight"]
    absent = [k for k in need if k not in sd]
    if absent:
        raise ValueError(f"not an upstream DiffAct state_dict (model.py ASDiffusionModel): missing {absent}")
    dims = dict(
        channels=int(sd["encoder.conv_in.weight"].shape[0]),
        layers=1 + max(int(k.split(".")[3]) for k in sd if k.startswith("encoder.encoder.layers.")),
        encoder_kernel=int(sd["encoder.encoder.layers.0.conv_block.0.weight"].shape[-1]),
        decoder_channels=int(sd["decoder.module.layers.0.att_linear_q.weight"].shape[0]),
        decoder_layers=1 + max(int(k.split(".")[3]) for k in sd if k.startswith("decoder.module.layers.")),
        decoder_kernel=int(sd["decoder.module.layers.0.conv_block.0.weight"].shape[-1]),
        time_dim=int(sd["decoder.time_in.0.weight"].shape[0]))
    if "betas" in sd:
        dims["num_timesteps"] = int(sd["betas"].shape[0])
    return dims


def model_from_upstream(cls, state_dict: Mapping[str, torch.Tensor], num_classes=None, *,
                        multilabel: Sequence[str] = (), **hyper):
    """``cls`` (:class:`.diffact.DiffAct`) built and loaded from an upstream state_dict, in eval mode.

    See :meth:`.diffact.DiffAct.from_upstream_state`.
    """
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    dims = upstream_sizes(sd)
    enc_w, dec_q = sd["encoder.conv_in.weight"], sd["decoder.module.layers.0.att_linear_q.weight"]
    K = int(sd["encoder.conv_out.weight"].shape[0])
    clash = {k: (hyper[k], v) for k, v in dims.items() if k in hyper and hyper[k] != v}
    if clash:
        raise ValueError(f"hyper-parameters contradict the checkpoint's shapes (given, checkpoint): {clash}")
    if num_classes is None:
        num_classes = {"action": K}
    elif isinstance(num_classes, int):
        num_classes = {"action": num_classes}
    if sum(num_classes.values()) != K:
        raise ValueError(f"num_classes {dict(num_classes)} sums to {sum(num_classes.values())}, "
                         f"the checkpoint has {K} classes (encoder.conv_out)")
    model = cls(int(enc_w.shape[1]), num_classes, multilabel=multilabel, **{**hyper, **dims})
    cross = int(dec_q.shape[1]) - dims["decoder_channels"]
    if model.decoder.layers[0].cross_dim != cross:
        raise ValueError(f"the checkpoint's decoder sees {cross} encoder channels, feature_layers "
                         f"{list(model.encoder.feature_layers)} give {model.decoder.layers[0].cross_dim}: "
                         "pass the feature_layers of its config (default_configs.py feature_layer_indices)")
    check_schedule(sd, model.num_timesteps)
    mine = {upstream_name(k): v for k, v in sd.items() if k not in UPSTREAM_BUFFERS}
    missing, unexpected = model.load_state_dict(mine, strict=False)
    if missing or unexpected:
        raise ValueError(f"upstream state_dict does not fit: missing {missing}, unexpected {unexpected}")
    return model.eval()


def check_schedule(state_dict: Mapping[str, torch.Tensor], num_timesteps: int) -> None:
    """ValueError unless the state_dict's ``alphas_cumprod`` (when present) is the cosine schedule (model.py:46-56, 76-78)."""
    ac = state_dict.get("alphas_cumprod")
    if ac is not None and (ac.shape != (num_timesteps,) or not torch.allclose(
            ac.double().cpu(), cosine_alphas_cumprod(num_timesteps), rtol=0, atol=1e-12)):
        raise ValueError("the checkpoint's alphas_cumprod is not the cosine schedule of "
                         f"{num_timesteps} steps (model.py:46-56, 76-78)")
