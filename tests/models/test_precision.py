"""Precision: bf16 autocast for the networks only, resolved per device, recorded, and refused where slow."""
import json

import numpy as np
import pytest
import torch

from medshield import pipeline
from medshield.bounds import pixel_change
from medshield.cli import main
from medshield.data import load
from medshield.errors import InputError
from medshield.models import create_model, precision as precision_module, resolve_precision, supports_bf16
from medshield.protect import create_protection

CPU = torch.device("cpu")
HAS_BF16 = supports_bf16(CPU)
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="this CPU has no avx512_bf16/AMX")


@pytest.fixture
def no_bf16(monkeypatch):
    """A CPU without fast bf16, whatever this one has."""
    monkeypatch.setattr(precision_module, "supports_bf16", lambda device: False)


def test_auto_picks_bf16_only_where_the_device_has_it(no_bf16):
    assert resolve_precision("auto", CPU) == "fp32" and resolve_precision("auto", CPU, "victim") == "fp32"
    assert resolve_precision("fp32", CPU) == "fp32"
    with pytest.raises(InputError, match="no fast bf16.*--precision fp32 or auto"):
        resolve_precision("bf16", CPU)
    with pytest.raises(InputError, match="precision must be one of auto, fp32, bf16"):
        resolve_precision("fp16", CPU)


@needs_bf16
def test_auto_follows_the_measured_choice_on_bf16_hardware():
    assert resolve_precision("auto", CPU) == precision_module.AUTO_ON_BF16_HARDWARE["protect"] == "bf16"
    assert resolve_precision("auto", CPU, "victim") == precision_module.AUTO_ON_BF16_HARDWARE["victim"] == "fp32"


def test_fp32_leaves_the_model_as_built():
    model = create_model("resnet18", num_classes=3, in_channels=1, width=8, device=CPU, precision="fp32")
    assert type(model).__name__ == "CifarResNet"


def test_bf16_runs_convolutions_in_bf16_and_returns_fp32_logits():
    model = create_model("resnet18", num_classes=3, in_channels=1, width=8, device=CPU, precision="bf16").eval()
    seen = []
    model.model.stem[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    x = torch.rand(4, 1, 28, 28, requires_grad=True)
    logits = model(x)
    assert seen == [torch.bfloat16] and logits.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights and their updates stay fp32
    grad = torch.autograd.grad(logits.sum(), x)[0]
    assert grad.dtype == torch.float32 and grad.abs().sum() > 0  # PGD's input gradient reaches the fp32 noise


@needs_bf16
@pytest.mark.parametrize("method, params", [("salm", dict(steps=3, width=8, batch_size=32, pgd_steps=2, sparse=True)),
                                            ("tap", dict(source_epochs=1, pgd_steps=2, restarts=1, width=8))])
def test_bf16_releases_keep_every_bound_on_the_written_bytes(tmp_path, tiny_npz, method, params):
    release = pipeline.protect(str(tiny_npz), tmp_path / "out", method=method, params=params, precision="bf16", progress=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["precision"] == "bf16"
    change = pixel_change(load(str(tiny_npz)).images("train"), release.data.images("train"))
    assert change["linf"] <= 8 and change["l0_mean"] > 0
    if method == "salm":
        assert change["changed_positions_max"] <= int(0.10 * 28 * 28)


@needs_bf16
def test_bf16_is_repeatable_and_differs_from_fp32(tiny_npz):
    data = load(str(tiny_npz))
    salm = create_protection("salm", steps=3, width=8, batch_size=32, pgd_steps=2)
    a = salm.protect(data, seed=2, progress=False, precision="bf16")
    b = salm.protect(data, seed=2, progress=False, precision="bf16")
    c = salm.protect(data, seed=2, progress=False, precision="fp32")
    assert a.precision == "bf16" and c.precision == "fp32"
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_evaluation_records_the_victims_precision(tiny_npz):
    report = pipeline.evaluate(str(tiny_npz), recipe={"width": 4, "iterations": 2}, precision="fp32", progress=False)
    assert report["precision"] == "fp32"


def test_cli_refuses_bf16_where_the_device_lacks_it(capsys, tmp_path, tiny_npz, no_bf16):
    for argv in (["protect", str(tiny_npz), "--out", str(tmp_path / "x")], ["evaluate", str(tiny_npz)],
                 ["grid", str(tmp_path), "--out", str(tmp_path / "g")]):
        code = main([*argv, "--precision", "bf16", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "no fast bf16" in err, (argv, err)
    assert not (tmp_path / "x").exists() and not (tmp_path / "g").exists()
