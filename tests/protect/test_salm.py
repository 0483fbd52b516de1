import numpy as np
import pytest
import torch

from medshield.bounds import pixel_change
from medshield.data import load
from medshield.errors import InputError
from medshield.protect import create_protection, list_protections
from medshield.protect.salm import MASKS, SCOPES

TINY = dict(steps=3, width=4, batch_size=32, pgd_steps=2)


def test_registry_lists_and_builds_salm_with_paper_defaults():
    assert "salm" in list_protections()
    salm = create_protection("salm")
    assert salm.eps == pytest.approx(8 / 255)
    assert salm.step_size == pytest.approx(1.6 / 255)
    assert (salm.pgd_steps, salm.k, salm.lr, salm.momentum, salm.weight_decay) == (10, 0.10, 0.1, 0.9, 5e-4)
    assert salm.random_start and salm.arch == "resnet18" and salm.width == 64
    assert not salm.sparse and salm.mask == "step" and salm.max_l0 == 1.0  # Algorithm 1 as written
    assert create_protection("salm", sparse=True).mask == "fixed" and create_protection("salm", sparse=True).max_l0 == 0.10
    assert "k=0.1" in repr(salm)


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("scope", SCOPES)
def test_every_sparse_variant_respects_both_bounds_on_uint8(tiny_npz, mask, scope):
    data = load(str(tiny_npz))
    result = create_protection("salm", sparse=True, mask=mask, mask_scope=scope, **TINY).protect(data, seed=1, progress=False)
    assert result.images.dtype == np.uint8 and result.images.shape == data.images("train").shape
    change = pixel_change(data.images("train"), result.images)
    assert change["linf"] <= 8
    assert change["changed_positions_max"] <= int(0.10 * 28 * 28)
    assert change["l0_mean"] > 0.03  # the noise is really there


def test_k_and_eps_are_honoured(tiny_npz):
    data = load(str(tiny_npz))
    result = create_protection("salm", sparse=True, k=0.02, eps=4 / 255, **TINY).protect(data, seed=0, progress=False)
    change = pixel_change(data.images("train"), result.images)
    assert change["linf"] <= 4 and change["changed_positions_max"] <= int(0.02 * 784)


def test_same_seed_same_output_other_seed_differs(tiny_npz):
    data = load(str(tiny_npz))
    salm = create_protection("salm", **TINY)
    a = salm.protect(data, seed=3, progress=False).images
    b = salm.protect(data, seed=3, progress=False).images
    c = salm.protect(data, seed=4, progress=False).images
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"eps": 8}, "did you|fraction"),
        ({"k": 10}, "k must be"),
        ({"mask": "sometimes"}, "mask must be one of"),
        ({"mask": "fixed"}, "add --sparse"),
        ({"mask_scope": "pixel"}, "mask_scope"),
        ({"transform": "rotate"}, "salm: transform .rotate.: unknown member .rotate."),
        ({"arch": "alexnet"}, "unknown source architecture"),
    ],
)
def test_bad_parameters_raise_clear_errors(params, message):
    with pytest.raises(InputError, match=message):
        create_protection("salm", **params)


def test_unknown_method_lists_available():
    with pytest.raises(InputError, match="available: .*salm"):
        create_protection("magic")


def test_class_scope_puts_every_image_of_a_class_on_the_same_positions(tiny_npz):
    data = load(str(tiny_npz))
    params = dict(TINY, sparse=True, mask="fixed", mask_scope="class", random_start=False)
    result = create_protection("salm", **params).protect(data, seed=0, progress=False)
    changed = (result.images != data.images("train")).reshape(len(result.images), -1)  # gray: one value per position
    labels = data.arrays["train_labels"].reshape(-1)
    per_image = int(0.10 * 28 * 28)
    for label in np.unique(labels):
        support = changed[labels == label].any(axis=0)
        # the union over the class stays within one K-sized set of positions (the final pass freezes it)
        assert 0 < support.sum() <= per_image, (label, support.sum())
    image_scope = create_protection("salm", **dict(params, mask_scope="image")).protect(data, seed=0, progress=False)
    spread = (image_scope.images != data.images("train")).reshape(len(labels), -1)
    assert max(spread[labels == label].any(axis=0).sum() for label in np.unique(labels)) > per_image


def test_algorithm_1_starts_dense_and_each_update_moves_at_most_k_of_positions(tiny_npz, monkeypatch):
    """Algorithm 1 read literally: a dense random start, then each PGD update limited to the top-K %."""
    from medshield.models import pgd

    updates, real_step = [], pgd.signed_step

    def recording_step(d, grad, *args, **kwargs):
        out = real_step(d, grad, *args, **kwargs)
        # positions moved, per image (beyond the float rounding of the range projection's x + d - x)
        updates.append(((out - d).abs() > 1e-6).any(dim=1).flatten(1).sum(dim=1))
        return out

    monkeypatch.setattr(pgd, "signed_step", recording_step)
    data = load(str(tiny_npz))
    salm = create_protection("salm", k=0.05, **TINY)
    start = salm._random_start(torch.full((4, 1, 28, 28), 0.5), torch.Generator().manual_seed(0))
    assert ((start != 0).flatten(1).float().mean(dim=1) > 0.9).all()  # far more than K % of positions
    result = salm.protect(data, seed=2, progress=False)
    assert updates and max(int(u.max()) for u in updates) <= round(0.05 * 784)
    assert pixel_change(data.images("train"), result.images)["l0_mean"] > 0.5  # the release is dense
    assert result.max_l0 == 1.0


def test_sparse_release_keeps_the_l0_bound_where_algorithm_1_does_not(tiny_npz):
    data = load(str(tiny_npz))
    dense = create_protection("salm", **TINY).protect(data, seed=0, progress=False)
    sparse = create_protection("salm", sparse=True, **TINY).protect(data, seed=0, progress=False)
    assert pixel_change(data.images("train"), dense.images)["changed_positions_max"] > int(0.10 * 784)
    assert pixel_change(data.images("train"), sparse.images)["changed_positions_max"] <= int(0.10 * 784)
