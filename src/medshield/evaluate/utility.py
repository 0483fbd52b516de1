"""Is the protected image still the same image? Similarity between originals and releases.

Definitions (so numbers compare with the SALM paper's Table 5):

- SSIM: ``skimage.metrics.structural_similarity``, 7x7 uniform window, data range = the stored
  format's full range (255, or 65535 for 16-bit), channels averaged for colour; 100 % = identical.
- PSNR: ``skimage.metrics.peak_signal_noise_ratio``, same data range, in dB; inf = identical.
- aHash / pHash / dHash: ImageHash with hash size 8 (64 bits) on the 8-bit image (colour
  converted to gray by PIL; 16-bit reduced to its top byte); similarity = 100 % x (1 - Hamming
  distance / 64).
- NMI: ``skimage.metrics.normalized_mutual_information`` with 256 bins (one per gray level),
  which is (H(A) + H(B)) / H(A, B) in [1, 2]; reported as 100 % x (NMI - 1) = I(A; B) / H(A, B),
  so identical images score 100 % and independent ones 0 %. A constant image (no entropy) that is
  unchanged scores 100 %.
- Colour difference (``delta_e``): the mean over pixels of CIEDE2000 (``skimage.color.deltaE_ciede2000``
  on CIELAB from ``rgb2lab``, values scaled by the format's full range; a gray image is read as
  gray RGB, so its difference is one of lightness alone). About 1 is the smallest difference a
  viewer notices side by side; SSIM weighs a uniform tint lightly, this does not.
- L-inf: largest change of any value, in pixel units; L0: fraction of pixel *positions* changed
  (a position counts once however many of its channels changed).
- Segmentation agreement: both images segmented the same way (Otsu threshold, then a binary
  opening and small-object removal); the fraction of pixels whose label is the same.
- Model segmentation agreement (optional): the same with the owner's own TorchScript network
  (see :class:`ModelSegmenter`).

Per-image values are aggregated per dataset and per class as the mean and the worst 5 % (the
5th percentile for similarities, the 95th for changes).
"""
from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import torch
from PIL import Image
from skimage import filters, morphology
from skimage.color import deltaE_ciede2000, gray2rgb, rgb2lab
from skimage.metrics import normalized_mutual_information, peak_signal_noise_ratio, structural_similarity

from .._runtime import now_iso
from ..data.tensors import full_range, to_float, to_tensor, value_range
from ..errors import InputError
from ..release import open_dataset, original_of

HASHES = {"ahash": imagehash.average_hash, "phash": imagehash.phash, "dhash": imagehash.dhash}
HASH_SIZE = 8
#: metric -> True when higher means more similar (decides which tail is the "worst 5 %")
HIGHER_IS_SIMILAR = {"ssim": True, "psnr": True, "ahash": True, "phash": True, "dhash": True, "nmi": True,
                     "segmentation_agreement": True, "delta_e": False, "linf": False, "l0": False}


def _hash_similarity(a: np.ndarray, b: np.ndarray, function) -> float:
    if a.dtype == np.uint16:  # hashes work on 8-bit images: keep the top byte
        a, b = (a >> 8).astype(np.uint8), (b >> 8).astype(np.uint8)
    ha, hb = function(Image.fromarray(a), hash_size=HASH_SIZE), function(Image.fromarray(b), hash_size=HASH_SIZE)
    return 100.0 * (1.0 - (ha - hb) / ha.hash.size)


def _nmi(a: np.ndarray, b: np.ndarray) -> float:
    if np.array_equal(a, b):
        return 100.0
    value = normalized_mutual_information(a, b, bins=256)  # 256 bins also for 16-bit data
    return 100.0 * (value - 1.0) if np.isfinite(value) else 0.0


def colour_difference(a: np.ndarray, b: np.ndarray, maximum: int) -> float:
    """Mean CIEDE2000 between two stored images, (H, W) or (H, W, 3), of the format's full range ``maximum``."""
    lab = [rgb2lab((image if image.ndim == 3 else gray2rgb(image)) / maximum) for image in (a, b)]
    return float(deltaE_ciede2000(*lab).mean())


def segment(image: np.ndarray) -> np.ndarray:
    """Classical foreground mask: Otsu threshold on the gray image, opening, small objects out."""
    gray = image if image.ndim == 2 else image.mean(axis=-1)
    if gray.min() == gray.max():
        return np.zeros(gray.shape, dtype=bool)
    mask = gray > filters.threshold_otsu(gray)
    mask = morphology.opening(mask, morphology.disk(1))
    return morphology.remove_small_objects(mask, max_size=max(1, gray.size // 500))


class ModelSegmenter:
    """The owner's segmentation network, saved with ``torch.jit.save`` (TorchScript).

    Input: float images in [0, 1] (value / full range of the stored format), shape (N, C, H, W)
    with the dataset's channel count. Output: (N, K, H, W) class scores, argmax taken; or
    (N, 1, H, W) / (N, H, W) logits, foreground where > 0. TorchScript runs code from the file:
    load only models you trust.
    """

    def __init__(self, path: str | Path, batch_size: int = 64):
        path = Path(path)
        if not path.is_file():
            raise InputError(f"segmentation model {path} not found; give a TorchScript file (torch.jit.save)")
        try:
            self.model = torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"{path} is not a TorchScript model ({str(exc).splitlines()[0]}); save it with torch.jit.save") from None
        self.path, self.batch_size = path, batch_size

    def __call__(self, images: np.ndarray, maximum: int | None = None) -> np.ndarray:
        """Label map (N, H, W) for stored images (N, H, W[, C]); ``maximum``: the format's range."""
        maximum = maximum or full_range(images.dtype)
        maps = []
        with torch.no_grad():
            for chunk in to_tensor(images).split(self.batch_size):
                try:
                    scores = self.model(to_float(chunk, maximum))
                except RuntimeError as exc:
                    raise InputError(f"segmentation model {self.path} failed on input {tuple(chunk.shape)}: "
                                     f"{str(exc).splitlines()[0]}") from None
                if scores.dim() == 4 and scores.shape[1] > 1:
                    maps.append(scores.argmax(1))
                else:
                    maps.append(scores.reshape(len(chunk), *scores.shape[-2:]) > 0)
        labels = torch.cat(maps).numpy()
        if labels.shape[-2:] != images.shape[1:3]:
            raise InputError(f"segmentation model {self.path} returned maps of size {labels.shape[-2:]} "
                             f"for images of {images.shape[1:3]}; it must keep the image size")
        return labels


def model_agreement(segmenter: ModelSegmenter, original: np.ndarray, released: np.ndarray,
                    maximum: int | None = None) -> np.ndarray:
    """Per image, % of pixels the owner's model labels the same on the original and the release."""
    same = segmenter(original, maximum) == segmenter(released, maximum)
    return 100.0 * same.reshape(len(original), -1).mean(axis=1)


def image_metrics(original: np.ndarray, released: np.ndarray, names=None) -> dict[str, float]:
    """Similarity measures for one stored image pair, (H, W) or (H, W, C), uint8 or uint16.

    ``names`` picks some of them (default: all of ``HIGHER_IS_SIMILAR``); benchmarks that sweep many
    releases need only SSIM, PSNR and L0, and the hashes and segmentation are the slow ones."""
    names = tuple(names or HIGHER_IS_SIMILAR)
    colour = original.ndim == 3
    maximum = int(np.iinfo(original.dtype).max)
    diff = np.abs(released.astype(np.int32) - original.astype(np.int32))
    changed = diff.any(axis=-1) if colour else diff > 0
    identical = not changed.any()
    measures = {
        "ssim": lambda: 100.0 * structural_similarity(original, released, data_range=maximum,
                                                      channel_axis=-1 if colour else None),
        "psnr": lambda: float("inf") if identical else float(peak_signal_noise_ratio(original, released, data_range=maximum)),
        "nmi": lambda: _nmi(original, released),
        "delta_e": lambda: 0.0 if identical else colour_difference(original, released, maximum),
        "linf": lambda: float(diff.max()),
        "l0": lambda: float(changed.mean()),
        "segmentation_agreement": lambda: 100.0 * float((segment(original) == segment(released)).mean()),
        **{name: (lambda f=function: _hash_similarity(original, released, f)) for name, function in HASHES.items()},
    }
    return {name: float(measures[name]()) for name in names}


def _summary(values: np.ndarray, higher_is_similar: bool) -> dict[str, float]:
    """Mean and worst 5 % (no interpolation, so an infinite PSNR never turns into NaN).

    The mean skips infinite values (identical pairs have no finite PSNR); ``identical`` counts them.
    """
    finite = values[np.isfinite(values)]
    worst = np.percentile(values, 5, method="lower") if higher_is_similar else np.percentile(values, 95, method="higher")
    return {
        "mean": float(finite.mean()) if len(finite) else float("inf"),
        "worst_5pct": float(worst),
        "identical": int(len(values) - len(finite)),
    }


def utility_report(original: np.ndarray, released: np.ndarray, labels: np.ndarray | None = None,
                   segmenter: ModelSegmenter | None = None, maximum: int | None = None, names=None) -> dict:
    """Per-metric mean and worst 5 % over the dataset and per class (``names``: a subset of metrics).

    With ``segmenter`` also ``model_segmentation_agreement`` (the owner's network).
    """
    if original.shape != released.shape:
        raise ValueError(f"shape mismatch: original {original.shape} vs released {released.shape}")
    rows = [image_metrics(a, b, names) for a, b in zip(original, released)]
    table = {name: np.array([row[name] for row in rows]) for name in rows[0]} if rows else {}
    if segmenter is not None:
        table["model_segmentation_agreement"] = model_agreement(segmenter, original, released, maximum)
    report = {"images": len(rows), "overall": {n: _summary(v, HIGHER_IS_SIMILAR.get(n, True)) for n, v in table.items()}}
    if segmenter is not None:
        report["segmentation_model"] = str(segmenter.path)
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        report["per_class"] = {
            int(c): {n: _summary(v[labels == c], HIGHER_IS_SIMILAR.get(n, True)) for n, v in table.items()}
            for c in np.unique(labels)
        }
    return report


def utility_sample(original, released, sample: int = 1000, seed: int = 0) -> dict:
    """Mean similarity of a seeded sample of at most ``sample`` image pairs: what a release's public
    manifest states about its utility (``medshield utility`` measures every image).

    ``original`` and ``released`` are arrays or on-disk arrays indexed like them."""
    n = len(original)
    rows = np.sort(np.random.default_rng(seed).permutation(n)[:sample])
    report = utility_report(np.asarray(original[rows]), np.asarray(released[rows]))
    means = {name: round(report["overall"][name]["mean"], 3) for name in ("ssim", "psnr", "phash", "nmi", "delta_e")}
    return {"images": len(rows), "of": n, "seed": seed, **means}


def release_utility(spec: str, segmentation_model: str | None = None, *, key: str | Path | None = None,
            original: str | None = None, original_data=None) -> dict:
    """Similarity of a release's train images to the originals (``medshield utility``).

    ``segmentation_model``: the owner's TorchScript network, for a second segmentation agreement.
    The originals come from ``original_data`` (already opened), else as :func:`original_of` finds them.
    """
    segmenter = ModelSegmenter(segmentation_model) if segmentation_model else None
    data, release = open_dataset(spec)
    if release is None:
        raise InputError(f"{spec} is not a release folder; utility compares a release with its original")
    if original_data is None:
        original_data = original_of(release, key, original)
    report = utility_report(original_data.images("train"), data.images("train"), data.labels("train"),
                            segmenter=segmenter, maximum=value_range(original_data))
    return {"dataset": data.name, "source": str(spec), "method": release.manifest["method"],
            "params": release.manifest["params"], "created": now_iso(), **report}
