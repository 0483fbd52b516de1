"""Noise on disk in whole levels, images read per batch: protection without the dataset in RAM."""
import numpy as np
import pytest
import torch

from medshield.data import load
from medshield.protect import create_protection
from medshield.protect import Storage
from medshield.protect._storage import NoiseStore, TrainImages


@pytest.mark.parametrize("eps_levels, maximum, dtype", [(8, 255, np.int8), (2056, 65535, np.int16), (128, 4095, np.int16)])
def test_noise_store_holds_whole_levels_as_small_integers_on_disk(eps_levels, maximum, dtype):
    store = NoiseStore((5, 2, 3, 3), eps_levels, maximum)
    mapped = store.levels.mapped()
    assert isinstance(mapped, np.memmap) and mapped.dtype == dtype and mapped.nbytes == 5 * 2 * 9 * np.dtype(dtype).itemsize
    delta = torch.empty(2, 2, 3, 3).uniform_(-1.5, 1.5) * eps_levels / maximum
    index = torch.tensor([4, 1])
    store.store(index, delta)
    loaded = store.load(index, torch.device("cpu"))
    expected = torch.round(delta * maximum).clamp(-eps_levels, eps_levels)
    assert torch.equal(torch.round(loaded * maximum), expected)  # rounded to levels, clipped to the radius
    assert not store.load(torch.tensor([0, 2, 3]), torch.device("cpu")).any()


def test_train_images_read_only_the_requested_batch(tiny_npz):
    data = load(str(tiny_npz))
    x = TrainImages(data, torch.device("cpu"))
    assert x.shape == (120, 1, 28, 28) and len(x) == 120 and x.maximum == 255
    batch = x[torch.tensor([3, 0])]
    assert batch.dtype == torch.float32 and batch.shape == (2, 1, 28, 28)
    assert torch.equal(batch[0, 0] * 255, torch.from_numpy(data.images("train")[3]).float())


class RecordingStorage(Storage):
    """The storage seam: a run keeps its arrays where it is told to (here: recorded)."""

    def __init__(self):
        self.stores = []

    def noise(self, shape, eps_levels, maximum):
        self.stores.append(super().noise(shape, eps_levels, maximum))
        return self.stores[-1]


def test_em_keeps_its_noise_in_the_int8_store_it_is_given_and_releases_it(tiny_npz):
    storage = RecordingStorage()
    data = load(str(tiny_npz))
    em = create_protection("em", steps=2, width=4, batch_size=32, pgd_steps=2)
    result = em.protect(data, seed=0, progress=False, storage=storage)
    stores = storage.stores
    (store,) = stores
    assert store.levels.dtype == np.int8 and store.levels.shape == (120, 1, 28, 28)
    released = result.released.mapped().astype(np.int16) - data.images("train")
    noise = store.levels[:][:, 0]
    room = (data.images("train") >= 8) & (data.images("train") <= 247)
    assert np.array_equal(released[room], noise[room])  # the release is the stored noise, clipped to the range
