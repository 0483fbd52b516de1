"""Duplicates within a split and leaks across splits: byte-identical files (same SHA-256) and
near-identical images (same picture re-encoded, resized or lightly changed).

Near-identical is decided in two steps: a perceptual hash (ImageHash's pHash, 64 bits) within
``NEAR_BITS`` bits finds candidates cheaply, then the 32 x 32 gray thumbnails must differ by at
most ``NEAR_LEVELS`` levels on average, which ruled out the look-alike but distinct images of
MedMNIST (the pHash alone matched some) while keeping JPEG re-encoded, resized and +-8 noised
copies (measured on 1,500 images of four MedMNIST sets). Hashes are compared a block at a time.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

log = logging.getLogger(__name__)
NEAR_BITS = 6
NEAR_LEVELS = 4.0
BLOCK = 1024
EXAMPLES = 3


def duplicate_pairs(sha256: list[str], phash: np.ndarray, thumbnails) -> list[tuple[int, int, str]]:
    """(i, j, "byte-identical" | "near-identical") for every pair i < j of duplicate files."""
    pairs, first = [], {}
    for j, digest in enumerate(sha256):
        if digest in first:
            pairs += [(i, j, "byte-identical") for i in first[digest]]
        first.setdefault(digest, []).append(j)
    exact = {(i, j) for i, j, _ in pairs}
    for start in range(0, len(phash), BLOCK):
        block = phash[start:start + BLOCK]
        bits = np.bitwise_count(block[:, None] ^ phash[None, :])
        for a, j in zip(*np.nonzero(bits <= NEAR_BITS)):
            i = start + int(a)
            if i < j and (i, int(j)) not in exact and _close(thumbnails[i], thumbnails[int(j)]):
                pairs.append((i, int(j), "near-identical"))
    return pairs


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) <= NEAR_LEVELS


def duplicate_report(files: list[str], splits, pairs: list[tuple[int, int, str]]) -> dict:
    """Counts of pairs per split pair ("train", "train/test", ...) and kind, with examples, and the
    number of val/test images that also sit in train (the leak that makes an evaluation meaningless)."""
    groups: dict[str, dict] = {}
    leaked = set()
    for i, j, kind in pairs:
        where = "/".join(sorted({splits[i], splits[j]}, key=["train", "val", "test"].index))
        entry = groups.setdefault(where, {"byte-identical": 0, "near-identical": 0, "examples": []})
        entry[kind] += 1
        if len(entry["examples"]) < EXAMPLES:
            entry["examples"].append([files[i], files[j], kind])
        if (splits[i] == "train") != (splits[j] == "train"):
            leaked.add(j if splits[i] == "train" else i)
    return {"pairs": groups, "held_out_images_in_train": len(leaked),
            "near_identical": f"pHash within {NEAR_BITS} bits and 32x32 thumbnails within {NEAR_LEVELS:g} levels"}


def log_duplicates(where, report: dict) -> None:
    """One warning per kind of finding: duplicates within train, and held-out images in train."""
    within = report["pairs"].get("train")
    if within:
        log.warning("%s: %d byte-identical and %d near-identical pairs of train images (e.g. %s and %s); each pair "
                    "gets the same noise", where, within["byte-identical"], within["near-identical"], *within["examples"][0][:2])
    if report["held_out_images_in_train"]:
        example = next(entry["examples"][0] for name, entry in report["pairs"].items() if name.startswith("train/"))
        log.warning("%s: LEAK: %d val/test images also sit in train, byte- or near-identical (e.g. %s and %s); "
                    "accuracy measured on that split overstates what a model learned: remove them from one split "
                    "before publishing", where, report["held_out_images_in_train"], example[0], example[1])


def train_groups(pairs, train_rows: np.ndarray) -> list[list[int]]:
    """Groups of train positions (0..len(train_rows)-1) that are duplicates of one another."""
    position = {int(row): n for n, row in enumerate(train_rows)}
    edges = np.array([(position[i], position[j]) for i, j, _ in pairs if i in position and j in position], np.int64)
    if not len(edges):
        return []
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(train_rows),) * 2)
    _, component = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for n, c in enumerate(component):
        members.setdefault(int(c), []).append(n)
    return [group for group in members.values() if len(group) > 1]


def share_noise(released, originals, groups: list[list[int]], maximum: int) -> None:
    """Give every member of a group the noise of its first member (clipped to the range), in place."""
    for leader, *members in groups:
        noise = released[leader].astype(np.int32) - originals[leader].astype(np.int32)
        for n in members:
            released[n] = np.clip(originals[n].astype(np.int32) + noise, 0, maximum).astype(released.dtype)
