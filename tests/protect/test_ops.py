import torch

from medshield.models.pgd import project_linf
from medshield.protect._ops import positions_to_keep, project_l0, quantize, topk_mask


def test_topk_keeps_exactly_k_percent_per_image_with_ties():
    scores = torch.ones(4, 28, 28)  # every position tied
    scores[1, :3, :3] = 5.0  # a few clear winners in one image
    mask = topk_mask(scores, 0.10, "image")
    k = positions_to_keep(0.10, 28, 28)
    assert k == 78  # floor(78.4): "at most 10 %"
    assert mask.shape == (4, 1, 28, 28)
    assert mask.reshape(4, -1).sum(1).tolist() == [k] * 4
    assert mask[1, 0, :3, :3].all()  # the highest scores are always kept


def test_topk_keeps_the_largest_scores():
    scores = torch.rand(3, 10, 10)
    mask = topk_mask(scores, 0.2, "image")
    for image, kept in zip(scores, mask[:, 0]):
        assert image[kept].min() >= image[~kept].max()


def test_batch_scope_ranks_the_batch_together():
    scores = torch.zeros(2, 10, 10)
    scores[0] = 1.0 + torch.rand(10, 10)  # image 0 dominates the batch
    mask = topk_mask(scores, 0.1, "batch")
    assert mask.sum() == 20
    assert mask[0].sum() == 20 and mask[1].sum() == 0


def test_linf_projection_stays_in_radius_and_range():
    x = torch.rand(16, 3, 8, 8)
    x[0] = 0.0
    x[1] = 1.0
    delta = torch.randn(16, 3, 8, 8)
    eps = 8 / 255
    projected = project_linf(delta, x, eps)
    assert projected.abs().max() <= eps + 1e-7
    assert (x + projected).min() >= 0 and (x + projected).max() <= 1


def test_l0_projection_pools_channels_by_position():
    delta = torch.randn(5, 3, 12, 12)
    kept = project_l0(delta, 0.05)
    positions = (kept != 0).any(dim=1).reshape(5, -1).sum(1)
    assert (positions <= positions_to_keep(0.05, 12, 12)).all()
    # the kept positions are the ones with the largest |delta| summed over channels
    scores = delta.abs().sum(1).reshape(5, -1)
    chosen = (kept != 0).any(dim=1).reshape(5, -1)
    for s, c in zip(scores, chosen):
        assert s[c].min() >= s[~c].max()


def test_quantize_rounds_clips_and_respects_radius():
    images = torch.tensor([[[[0, 5, 250, 128]]]], dtype=torch.uint8)
    delta = torch.tensor([[[[-8 / 255, -3.4 / 255, 9 / 255, 0.4 / 255]]]])
    out = quantize(images, delta, 8)
    assert out.tolist() == [[[[0, 2, 255, 128]]]]  # clipped at 0, rounded, clipped at 255, rounded away


def test_quantize_in_16_bit_levels():
    images = torch.tensor([[[[0, 1000, 65000, 30000]]]], dtype=torch.int32)
    delta = torch.tensor([[[[-8 / 255, 8 / 255, 8 / 255, 0.001 / 65535]]]])
    out = quantize(images, delta, 8 * 257, 65535)
    assert out.tolist() == [[[[0, 1000 + 2056, 65535, 30000]]]]
