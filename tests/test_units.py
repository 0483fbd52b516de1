"""One radius unit and one way to read typed parameters, for methods and defenses alike."""
import pytest

from medshield import list_protections
from medshield.cli import build_parser
from medshield.options import method_options
from medshield.errors import InputError
from medshield.evaluate.defenses import parse_defense
from medshield.protect.params import method_parameters
from medshield.units import parse_assignments, parse_value, radius


def test_radii_are_pixel_values_when_typed_and_fractions_inside():
    assert radius("8") == radius("8/255") == 8 / 255 and radius(1.6) == pytest.approx(1.6 / 255)
    assert parse_defense("adversarial:eps=8").params["eps"] == radius("8")
    with pytest.raises(InputError, match="pixel values"):
        radius("eight")


def test_typed_values_follow_the_defaults():
    defaults = method_parameters("salm")
    params = parse_assignments(["k=0.2", "sparse=true", "lr-milestones=0.5,0.9", "mask=fixed", "stop_accuracy=0.99",
                                "step_size=1.6"], defaults, "--param")
    assert params == {"k": 0.2, "sparse": True, "lr_milestones": (0.5, 0.9), "mask": "fixed", "stop_accuracy": 0.99,
                      "step_size": pytest.approx(1.6 / 255)}
    assert parse_value("patch_size", "7", None) == 7 and isinstance(parse_value("steps", "20", 5000), int)
    with pytest.raises(InputError, match="no parameter 'depth'.*it takes: eps"):
        parse_assignments(["depth=3"], defaults, "--param")
    with pytest.raises(InputError, match="sparse: expected true or false"):
        parse_assignments(["sparse=maybe"], defaults, "--param")
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_assignments(["k"], defaults, "--param")


def test_every_method_parameter_has_a_flag_with_its_documented_defaults():
    options = {dest: kwargs for _, dest, kwargs in method_options()}
    for method in list_protections():
        assert set(method_parameters(method)) <= set(options)
    assert "em, salm: PGD step (default 1.6); tap:" in options["step_size"]["help"]
    assert "(default 0.8)" in options["step_size"]["help"] and "(default 0.5,0.75)" in options["lr_milestones"]["help"]
    args = build_parser().parse_args(["protect", "x", "--out", "y", "--eps", "4", "--no-final-pass", "--lr-milestones", "0.5,0.9"])
    assert (args.eps, args.final_pass, args.lr_milestones) == (4 / 255, False, (0.5, 0.9))


@pytest.mark.parametrize("flag, value", [("--eps", "-1"), ("--eps", "0"), ("--eps", "300"), ("--step-size", "-2")])
def test_a_radius_out_of_range_is_answered_in_the_pixel_values_typed(capsys, tiny_npz, tmp_path, flag, value):
    """``--eps -1`` was told "(a fraction of the range: 8/255, not 8)": wrong advice where ``--eps 8`` is right."""
    from medshield.cli import main

    code = main(["protect", str(tiny_npz), "--out", str(tmp_path / "out"), "--method", "em", flag, value, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pixel values" in err and "8 = 8/255" in err, err
    assert "not 8" not in err and value in err
