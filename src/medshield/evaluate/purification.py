"""Purification with a small rate-constrained VAE trained on the release itself (the ``vae`` defense).

Yu et al. (ICML 2024, "Purify unlearnable examples via rate-constrained variational
autoencoders", the first stage of D-VAE) observed that a VAE whose KL term (its rate, the
information the latent code may carry per image) is held under a bound reconstructs the images
and drops most of the perturbation: small, high-frequency, per-image noise is what a tight code
spends no bits on. A trainer needs nothing but the release: train the VAE on it, then train the
victim on its reconstructions. The network here is small enough for a CPU at 28 px (two strided
convolutions to a 4-channel code at a quarter of the side, and back).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._runtime import pick_device
from ..data.tensors import full_range, to_float, to_stored, to_tensor
from ..errors import InputError
from .defenses import DEFENSES, Defense


class SmallVAE(nn.Module):
    """Convolutional VAE: (C, H, W) -> a (latent, H/4, W/4) Gaussian code -> (C, H, W) in [0, 1]."""

    def __init__(self, channels: int, latent: int = 4, width: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * latent, 1))
        self.decoder = nn.Sequential(
            nn.Conv2d(latent, 2 * width, 1), nn.ReLU(), nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Reconstruction and the KL divergence of each image's code (nats); sampled with a generator, else the mean."""
        height, width = x.shape[-2:]
        padded = F.pad(x, (0, -width % 4, 0, -height % 4), mode="replicate")
        mean, log_var = self.encoder(padded).chunk(2, dim=1)
        code = mean
        if generator is not None:
            code = mean + (0.5 * log_var).exp() * torch.randn(mean.shape, generator=generator).to(x.device)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).flatten(1).sum(1)
        return self.decoder(code)[..., :height, :width], kl


def train_vae(x: torch.Tensor, *, rate: float, epochs: int, batch_size: int, lr: float, seed: int) -> SmallVAE:
    """A ``SmallVAE`` fitted to the float images ``x``: squared error per image plus a hinge on its
    KL above ``rate`` nats (the rate constraint), Adam."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    vae = SmallVAE(x.shape[1]).to(x.device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    for _ in range(epochs):
        for index in torch.randperm(len(x), generator=generator).split(batch_size):
            batch = x[index.to(x.device)]
            reconstruction, kl = vae(batch, generator)
            error = (reconstruction - batch).pow(2).flatten(1).sum(1)
            loss = (error + F.relu(kl - rate)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return vae.eval()


def purify(images: np.ndarray, *, rate: float = 30.0, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
           seed: int = 0, device: str = "auto") -> np.ndarray:
    """The stored images (N, H, W[, C], 8 or 16 bit) replaced by their reconstructions through a
    rate-constrained VAE trained on them; same shape and dtype."""
    dev = pick_device(device)
    maximum = full_range(images.dtype)
    x = to_float(to_tensor(images), maximum).to(dev)
    vae = train_vae(x, rate=rate, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    with torch.no_grad():
        out = torch.cat([vae(chunk)[0] for chunk in x.split(512)])
    return to_stored((out * maximum).round().clamp(0, maximum).long(), images)


class _Purification(Defense):
    def apply(self, images: np.ndarray) -> np.ndarray:
        return purify(images, **self.params)


@DEFENSES.register("vae")
def vae_purification(rate: float = 30.0, epochs: int = 10, seed: int = 0) -> Defense:
    """Purification by a small VAE trained on the release, its KL held under ``rate`` nats per image
    (rate-constrained VAE, the first stage of D-VAE, Yu et al. ICML 2024)."""
    if not rate > 0 or epochs < 1:
        raise InputError(f"defense 'vae': rate (nats per image) must be positive and epochs at least 1, got rate={rate!r}, "
                         f"epochs={epochs!r}")
    return _Purification("vae", kind="data", params={"rate": rate, "epochs": epochs, "seed": seed})
