"""The numeric precision networks run in: fp32, or bf16 autocast where the hardware has it.

Only the networks change. A bf16 model runs its forward pass under ``torch.autocast`` (convolutions
and matrix products in bf16, what autocast keeps in fp32 in fp32) and hands back fp32 logits, so
losses, input gradients, the noise, its projection, the mask ranking and quantization all stay
fp32. ``fp32`` leaves the model untouched: the computation is the one medshield ran before it
had a precision setting.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError

PRECISIONS = ("auto", "fp32", "bf16")

#: what ``auto`` picks on hardware with fast bf16, per use. Generation ("protect"): bf16, 1.63x faster;
#: on 3 seeds each, bf16-generated EM and SALM releases protected within the fp32 seed spread (README,
#: "Precision"). Victims ("victim"): fp32, the adversary's usual training; a bf16 victim would be a
#: different measurement, and it has not been compared with fp32 ones.
AUTO_ON_BF16_HARDWARE = {"protect": "bf16", "victim": "fp32"}


def supports_bf16(device: torch.device) -> bool:
    """Fast bf16 here: CUDA with bf16, or a CPU with avx512_bf16 or AMX tiles (oneDNN's bf16 kernels)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def resolve_precision(name: str, device: torch.device, use: str = "protect") -> str:
    """``auto`` -> the precision this device should run for ``use`` ("protect" or "victim");
    ``bf16`` where it is slow -> one clear error."""
    if name not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "auto":
        return AUTO_ON_BF16_HARDWARE[use] if supports_bf16(device) else "fp32"
    if name == "bf16" and not supports_bf16(device):
        raise InputError(f"--precision bf16: this {device.type.upper()} has no fast bf16 (a CPU needs avx512_bf16 or AMX, "
                         "a GPU compute capability 8.0 or newer); use --precision fp32 or auto")
    return name


class Autocast(nn.Module):
    """``model`` with its forward pass under bf16 autocast; returns fp32 outputs."""

    def __init__(self, model: nn.Module, device_type: str):
        super().__init__()
        self.model = model
        self.device_type = device_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.model(x).float()


def with_precision(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """The model to call for a resolved ``precision`` ("fp32": the model itself)."""
    return Autocast(model, device.type) if precision == "bf16" else model
