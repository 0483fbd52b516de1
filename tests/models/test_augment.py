"""The transformation T: flip + crop as one gather equals flipping, padding and cropping in turn."""
import pytest
import torch
import torch.nn.functional as F

from medshield.models.augment import crop_padding, flip_crop


def reference(x, generator):
    """The obvious per-image version, drawing the same random numbers in the same order."""
    n, _, height, width = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    pad = crop_padding(min(height, width))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    crops = []
    for i in range(n):
        image = F.pad(x[i].flip(2) if flip[i] else x[i], (pad, pad, pad, pad))
        crops.append(image[:, dy[i]:dy[i] + height, dx[i]:dx[i] + width])
    return torch.stack(crops)


@pytest.mark.parametrize("shape", [(16, 3, 28, 28), (9, 1, 20, 36), (5, 2, 64, 64)])
def test_flip_crop_equals_the_per_image_reference_in_values_gradients_and_draws(shape):
    x = torch.rand(shape)
    weights = torch.randn(shape)
    results = []
    for function in (flip_crop, reference):
        delta = torch.zeros(shape, requires_grad=True)
        generator = torch.Generator().manual_seed(7)
        out = function(x + delta, generator)
        grad = torch.autograd.grad((out * weights).sum(), delta)[0]
        results.append((out, grad, generator.get_state()))
    (out, grad, state), (ref_out, ref_grad, ref_state) = results
    assert torch.equal(out, ref_out) and torch.equal(grad, ref_grad) and torch.equal(state, ref_state)
    assert not torch.equal(out, x)  # something was flipped or shifted
