"""Named victim recipes: what an adversary would pick, overridable option by option."""
import pytest

from medshield.errors import InputError
from medshield.evaluate import Recipe


def test_medmnist_recipe_is_the_official_training():
    recipe = Recipe.named("cpu", None, "medmnist")
    assert (recipe.optimizer, recipe.lr, recipe.weight_decay) == ("adam", 1e-3, 0.0)
    assert recipe.epochs == 100 and recipe.iterations is None and recipe.total_iterations(1000) == 800
    assert recipe.lr_milestones == (0.5, 0.75) and not recipe.augment
    assert recipe.width == 64  # the recipe, not the cpu preset, decides the width


def test_paper_recipe_and_preset_fallback():
    paper = Recipe.named("cpu", None, "paper")
    assert (paper.optimizer, paper.lr, paper.iterations, paper.width) == ("sgd", 0.1, 20_000, 64)
    preset = Recipe.named("cpu", None)
    assert (preset.iterations, preset.width) == (600, 16)


def test_options_override_a_named_recipe():
    recipe = Recipe.named("paper", {"epochs": 3, "width": 8}, "medmnist")
    assert (recipe.epochs, recipe.width, recipe.optimizer) == (3, 8, "adam")
    assert Recipe.named("paper", {"epochs": 3}, "cpu").iterations is None


def test_unknown_recipe_is_one_clear_error():
    with pytest.raises(InputError, match="unknown victim recipe 'fast'; available: paper, medmnist, cpu"):
        Recipe.named("paper", None, "fast")
