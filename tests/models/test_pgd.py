"""The one PGD loop: ascends or descends the loss, inside the radius and the range, only where masked."""
import torch
import torch.nn.functional as F

from medshield.models import create_model
from medshield.models.pgd import pgd
from medshield.models.training import make_optimizer, make_schedule, train_step


def setup():
    torch.manual_seed(0)
    model = create_model("small-cnn", num_classes=3, in_channels=1, width=4).eval()
    x = torch.rand(8, 1, 28, 28)
    x[:, :, :4] = 1.0  # saturated rows: the range projection must hold there
    return model, x, torch.randint(0, 3, (8,))


def test_pgd_moves_the_loss_its_way_within_the_bounds():
    model, x, y = setup()
    eps = 8 / 255
    for descend in (True, False):
        delta = pgd(model, x, torch.zeros_like(x), y, steps=5, step_size=2 / 255, eps=eps, descend=descend)
        assert delta.abs().max() <= eps + 1e-7 and (x + delta).min() >= 0 and (x + delta).max() <= 1
        before, after = F.cross_entropy(model(x), y).item(), F.cross_entropy(model(x + delta), y).item()
        assert (after < before) if descend else (after > before)


def test_pgd_moves_only_where_the_mask_allows_and_applies_the_constraint():
    model, x, y = setup()
    allowed = torch.zeros(8, 1, 28, 28, dtype=torch.bool)
    allowed[:, :, 10:14, 10:14] = True
    seen = []
    delta = pgd(model, x, torch.zeros_like(x), y, steps=3, step_size=1 / 255, eps=8 / 255, descend=True,
                mask=lambda grad, d, step: seen.append(step) or allowed, constrain=lambda d: d * 0.5)
    assert seen == [0, 1, 2] and delta[~allowed].abs().max() == 0 and delta[allowed].abs().max() > 0
    assert delta.abs().max() <= 0.5 * 8 / 255 + 1e-7  # the constraint ran after every projection


def test_train_step_lowers_the_loss_of_the_batch_it_trains_on():
    model, x, y = setup()
    optimizer = make_optimizer(model, "sgd", lr=0.05, momentum=0.9, weight_decay=0.0)
    schedule = make_schedule(optimizer, "constant", total=20)
    first, _ = train_step(model, optimizer, schedule, x, y)
    for _ in range(19):
        last, logits = train_step(model, optimizer, schedule, x, y)
    assert model.training and last.item() < first.item() and logits.shape == (8, 3)
