"""REM: the inner maximization stays within rho_a, the robust step lowers the loss under attack,
and the robustness is an option (adv_eps) of EM and SALM."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medshield.bounds import pixel_change
from medshield.data import load
from medshield.errors import InputError
from medshield.models.pgd import adversarial, pgd
from medshield.protect import _bilevel, create_protection, list_protections, method_parameters

TINY = dict(steps=3, width=4, batch_size=32, pgd_steps=2, adv_steps=3, samples=2)


def test_rem_has_the_reference_defaults_and_adv_eps_is_checked():
    rem = create_protection("rem")
    assert rem.adv_eps == pytest.approx(4 / 255) and rem.adv_step_size == pytest.approx(0.8 / 255)
    assert rem.adv_steps == 10 and rem.samples == 5 and rem.eps == pytest.approx(8 / 255)
    assert create_protection("rem", eps=4 / 255).adv_eps == pytest.approx(2 / 255)
    assert create_protection("em").adv_eps == 0 and create_protection("salm", adv_eps=2 / 255).adv_eps == pytest.approx(2 / 255)
    with pytest.raises(InputError, match="adv_eps must be in"):
        create_protection("rem", adv_eps=8 / 255)
    assert create_protection("rem", adv_steps=2).adv_step_size == pytest.approx(4 / 255)  # capped at adv_eps
    with pytest.raises(InputError, match="adv_step_size"):
        create_protection("em", adv_eps=2 / 255, adv_step_size=5 / 255)


@pytest.mark.parametrize("name", [name for name in list_protections() if "adv_eps" in method_parameters(name)])
def test_inner_maximization_stays_within_rho_a(tiny_npz, monkeypatch, name):
    """Every adversarial example REM's loop builds (for the noise and for the source model) lies
    within adv_eps of the image it attacks and in [0, 1], and the ascent uses the room it has."""
    calls = []

    def recorded(model, x, labels, **kwargs):
        example = adversarial(model, x, labels, **kwargs)
        calls.append((x.detach().clone(), example.detach().clone(), kwargs["eps"], model.training))
        return example

    monkeypatch.setattr(_bilevel, "adversarial", recorded)
    data = load(str(tiny_npz))
    params = {**TINY, "adv_eps": 3 / 255} if name != "rem" else TINY
    result = create_protection(name, **params).protect(data, seed=0, progress=False)
    rho_a = 3 / 255 if name != "rem" else 4 / 255
    assert calls and all(eps == pytest.approx(rho_a) for *_, eps, _ in calls)
    moved = torch.stack([(example - x).abs().amax() for x, example, *_ in calls])
    assert moved.max() <= rho_a + 1e-6 and moved.min() > rho_a / 2
    assert all(example.min() >= 0 and example.max() <= 1 for _, example, *_ in calls)
    assert {training for *_, training in calls} == {True, False}  # the source model's training and the noise's PGD
    assert 0 < pixel_change(data.images("train"), result.images)["linf"] <= 8


def test_robust_step_lowers_the_loss_under_attack():
    """PGD with REM's inner step lowers the cross-entropy of the adversarial examples within rho_a."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 3)).eval()  # inputs matter: 784 weights
    torch.nn.init.normal_(model[1].weight, std=0.1)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 3, (16,))
    rem = create_protection("rem", adv_eps=2 / 255, adv_steps=5)

    def loss_under_attack(delta):
        example = adversarial(model, x + delta, y, eps=2 / 255, steps=10, step_size=0.5 / 255,
                              generator=torch.Generator().manual_seed(1))
        return F.cross_entropy(model(example), y).item()

    generator = torch.Generator().manual_seed(0)
    delta = pgd(model, x, torch.zeros_like(x), y, steps=10, step_size=1.6 / 255, eps=8 / 255, descend=True,
                inner=lambda batch: rem._adversarial(model, batch, y, generator))
    assert delta.abs().max() <= 8 / 255 + 1e-7
    assert loss_under_attack(delta) < 0.5 * loss_under_attack(torch.zeros_like(x))


def test_rem_is_deterministic_for_a_seed(tiny_npz):
    data = load(str(tiny_npz))
    runs = [create_protection("rem", **TINY).protect(data, seed=s, progress=False).images for s in (0, 0, 1)]
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])
