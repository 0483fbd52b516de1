"""EM, TAP, SP, class-conv and the Random control: bounds, structure, determinism, registry."""
import numpy as np
import pytest
import torch

from medshield.bounds import pixel_change
from medshield.data import load
from medshield.errors import InputError
from medshield.protect import create_protection, list_protections
from medshield.protect._source import SourceModel
from medshield.protect.tap import TAP

from conftest import synthetic_npz

TINY = {
    "salm": dict(steps=3, width=4, batch_size=32, pgd_steps=2),
    "em": dict(steps=3, width=4, batch_size=32, pgd_steps=2),
    "rem": dict(steps=3, width=4, batch_size=32, pgd_steps=2, adv_steps=2, samples=1),
    "tap": dict(source_epochs=1, pgd_steps=3, restarts=2, width=4, batch_size=32),
    "sp": {},
    "random": {},
    "class-conv": {},
}


def test_registry_lists_every_method_and_builds_each_with_defaults():
    assert list_protections() == sorted(TINY)  # a new method gets its cheap settings here
    for name in list_protections():
        method = create_protection(name)
        # a method whose change a radius bounds defaults to the paper's 8/255; class-conv's strength bounds it
        assert method.name == name and method.eps == pytest.approx(8 / 255 if method.visible_eps < 1 else 1.0)
    assert create_protection("tap").pgd_steps == 250 and create_protection("tap").restarts == 8
    assert create_protection("em").mode == "sample" and create_protection("em").max_l0 == 1.0


@pytest.mark.parametrize("name", list_protections())
def test_released_bytes_respect_the_radius(tiny_npz, name):
    data = load(str(tiny_npz))
    result = create_protection(name, **TINY[name]).protect(data, seed=0, progress=False)
    change = pixel_change(data.images("train"), result.images)
    assert result.images.dtype == np.uint8 and result.images.shape == data.images("train").shape
    assert 0 < change["linf"] <= create_protection(name).eps_levels(255)
    assert change["l0_mean"] > (0.03 if name == "salm" else 0.5)  # dense methods change most positions


def test_eps_is_honoured_by_every_method(tiny_npz):
    data = load(str(tiny_npz))
    for name in list_protections():
        result = create_protection(name, eps=3 / 255, **TINY[name]).protect(data, seed=0, progress=False)
        assert pixel_change(data.images("train"), result.images)["linf"] <= 3, name


def test_class_wise_em_gives_every_image_of_a_class_the_same_noise(tiny_npz):
    data = load(str(tiny_npz))
    result = create_protection("em", mode="class", **TINY["em"]).protect(data, seed=0, progress=False)
    original = data.images("train").astype(np.int16)
    diff = result.images.astype(np.int16) - original
    labels = data.labels("train")
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        # Where clipping to [0, 255] did not interfere, the released change is the class noise.
        room = (original[members] >= 8) & (original[members] <= 247)
        reference = diff[members[0]]
        for i, m in enumerate(members):
            assert np.array_equal(diff[m][room[i] & room[0]], reference[room[i] & room[0]])
    assert not np.array_equal(diff[labels == 0][0], diff[labels == 1][0])


def test_sample_wise_em_differs_within_a_class(tiny_npz):
    data = load(str(tiny_npz))
    result = create_protection("em", **TINY["em"]).protect(data, seed=0, progress=False)
    diff = result.images.astype(np.int16) - data.images("train")
    members = np.flatnonzero(data.labels("train") == 0)
    assert not np.array_equal(diff[members[0]], diff[members[1]])


def test_em_stop_rule_ends_source_training_early(tiny_npz):
    data = load(str(tiny_npz))
    # The synthetic classes are trivially separable: accuracy 0 is reached at the first check.
    em = create_protection("em", stop_accuracy=0.0, **{**TINY["em"], "steps": 50})
    result = em.protect(data, seed=0, progress=False)
    stops = [entry for entry in result.log if entry.get("stopped")]
    assert len(stops) == 1 and stops[0]["step"] < 49


def test_tap_pushes_images_towards_the_next_class(tmp_path):
    # Classes differ by a faint band (110 on a 60-100 background), a margin 8/255 can cross.
    data = load(str(synthetic_npz(tmp_path / "faint.npz", background=(60, 100), blob=110)))
    x = torch.from_numpy(data.images("train")).float().div(255).unsqueeze(1)
    y = torch.from_numpy(data.labels("train")).long()
    torch.manual_seed(0)
    tap = create_protection("tap", step_size=1 / 255, source_epochs=10, pgd_steps=30, restarts=1, width=8, batch_size=32)
    log, generator = [], torch.Generator().manual_seed(0)
    model = tap.train_source_model(x, y, SourceModel.of(tap).build(x, 2, "fp32"), log, generator=generator, progress=False)
    assert log[-1]["source_train_accuracy"] > 0.95  # the source model learned the task
    delta = torch.zeros_like(x)
    for index, batch in tap.craft(model, x, y, num_classes=2, generator=generator):
        delta[index] = batch
    assert delta.abs().max() <= 8 / 255 + 1e-6
    target = TAP.targets(y, 2)
    with torch.no_grad():
        clean = model(x).softmax(1).gather(1, target[:, None]).mean().item()
        poisoned = model(x + delta).softmax(1).gather(1, target[:, None]).mean().item()
        clean_hits = (model(x).argmax(1) == target).float().mean().item()
        poisoned_hits = (model(x + delta).argmax(1) == target).float().mean().item()
    assert poisoned > max(0.15, 5 * clean)  # the poisons point the source model to the next class
    assert poisoned_hits > clean_hits


def test_sp_is_deterministic_for_a_seed_and_class_structured(tiny_npz):
    data = load(str(tiny_npz))
    sp = create_protection("sp")
    a = sp.protect(data, seed=5, progress=False).images
    b = sp.protect(data, seed=5, progress=False).images
    c = sp.protect(data, seed=6, progress=False).images
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # Patches: the noise is constant inside each 7x7 patch (before clipping).
    diff = a.astype(np.int16) - data.images("train")
    patch = diff[0, :7, :7]
    room = (data.images("train")[0, :7, :7] >= 8) & (data.images("train")[0, :7, :7] <= 247)
    assert len(np.unique(patch[room])) == 1


def test_bad_baseline_parameters_are_one_line_errors():
    with pytest.raises(InputError, match="mode"):
        create_protection("em", mode="pixel")
    with pytest.raises(InputError, match="restarts"):
        create_protection("tap", restarts=0)
    with pytest.raises(InputError, match="patch_size"):
        create_protection("sp", patch_size=0)


def test_a_run_estimated_at_hours_says_so_early(tiny_npz, caplog, monkeypatch):
    """The paper preset on a CPU takes hours: the estimate from a few timed steps is logged at once."""
    from medshield.protect import _source

    clock = iter(range(0, 10**12, 10**4))  # every reading 10,000 s after the last
    monkeypatch.setattr(_source.time, "perf_counter", lambda: next(clock))
    create_protection("em", steps=50, width=4, batch_size=32, pgd_steps=1).protect(load(str(tiny_npz)), progress=False)
    assert "h to go" in caplog.text and "--preset cpu" in caplog.text
    caplog.clear()
    monkeypatch.setattr(_source.time, "perf_counter", lambda: 0.0)
    create_protection("em", steps=50, width=4, batch_size=32, pgd_steps=1).protect(load(str(tiny_npz)), progress=False)
    assert "h to go" not in caplog.text


def test_source_settings_are_one_object_with_each_methods_defaults():
    from medshield.protect.params import method_parameters
    from medshield.protect._source import SourceModel

    assert method_parameters("tap")["lr_milestones"] == (0.5, 0.75)  # TAP's reference schedule
    assert method_parameters("em")["lr_milestones"] == SourceModel().lr_milestones == (0.4, 0.8)
    tap = create_protection("tap", width=8)
    assert SourceModel.of(tap) == SourceModel(width=8, lr_milestones=(0.5, 0.75))
    with pytest.raises(InputError, match="has no parameter .depth."):
        create_protection("salm", depth=3)
    with pytest.raises(InputError, match="tap: unknown source architecture"):
        create_protection("tap", arch="resnet9000")
