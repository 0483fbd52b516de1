"""The jobs a data owner runs, as library functions (the CLI is a thin layer over these): protect
(planned, generated and published in ``run_plan.py``), evaluate (in ``evaluate/workflow.py``), grid
and restore."""
from __future__ import annotations

from pathlib import Path

from ._distributed import current_world, guarded
from ._runtime import machine, package_versions, pick_device, use_threads
from .errors import InputError
from .evaluate.grid import check_defenses, run_grid
from .evaluate.journal import Journal
from .evaluate.workflow import evaluate
from .models import resolve_precision
from .protect import DEFAULT_METHOD
from .release import Release, open_dataset, original_of
from .release import restore_release as restore
from .report import write_grid
from .run_plan import generate, plan, publish

__all__ = ["evaluate", "grid", "protect", "restore"]


def protect(
    dataset: str,
    out: str | Path,
    *,
    method: str = DEFAULT_METHOD,
    preset_name: str = "paper",
    params: dict | None = None,
    root: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
    device: str = "auto",
    progress: bool = True,
    fraction: float = 1.0,
    classes: list[int] | None = None,
    labels: str | None = None,
    jpeg_as_png: bool = False,
    precision: str = "auto",
    key_out: str | Path | None = None,
    threads: int | None = None,
    support: str | list[str] | None = None,
    support_classes: int = 5,
    resume: bool = False,
    checkpoint_every: float = 300.0,
    signing_key: str | Path | None = None,
    size: int | None = None,
    channels: int | None = None,
    convert: bool = False,
) -> Release:
    """Protect ``dataset``'s train split and write a release folder to ``out``.

    Partial protection (paper Table 6, Appendix D.1): the perturbation is computed on the whole
    train split, then kept only on a seeded random ``fraction`` of the images and/or only on
    images of the given ``classes``; the others are released unchanged. ``precision`` is that of
    the source networks ("auto": the measured choice for the device, see ``models.precision``);
    the manifest records what ran, with the CPU ``threads`` (None: torch's default).

    ``support`` (MedMNIST flags, ``.npz`` files or image folders; one or a list) lends ``support_classes`` classes, drawn
    with the seed, to the generation of error-minimizing noise (paper Section 7.1): for an owner
    holding one class. They are never written; the manifest records what was drawn. With
    ``classes`` too, the generation sees only those classes' images (an institution that holds
    them, Appendix D.2) and the other classes are released unchanged.

    An image folder is read as ``data.folder.load_folder`` says (``size``, ``channels``, ``convert``);
    duplicates within its train split get the same noise.

    ``out`` gets only what is safe to publish; the key that restores the originals and the
    owner's private record (input path and hash, machine, command) go to ``key_out`` (default
    ``out.key`` beside it). The release is signed with ``signing_key`` (the owner's reusable key
    file, created when missing) or, without it, a fresh key kept in the key file.

    SALM, EM and TAP save their state every ``checkpoint_every`` seconds and at stage boundaries into
    ``out.work`` beside the output (removed once the release is written); ``resume`` continues a
    killed run from it, to the same bytes. A checkpoint of other inputs or settings is refused.
    """
    run = plan(dataset, out, method=method, preset_name=preset_name, params=params, root=root, seed=seed,
               overwrite=overwrite, device=device, progress=progress, fraction=fraction, classes=classes, labels=labels,
               jpeg_as_png=jpeg_as_png, precision=precision, key_out=key_out, threads=threads, support=support,
               support_classes=support_classes, resume=resume, checkpoint_every=checkpoint_every,
               signing_key=signing_key, size=size, channels=channels, convert=convert)
    return publish(run, generate(run))


def grid(
    release_dir: str,
    out: str | Path,
    *,
    victims: list[str],
    defenses: list[str],
    preset_name: str = "paper",
    recipe: dict | None = None,
    recipe_name: str | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    precision: str = "auto",
    key: str | Path | None = None,
    original: str | None = None,
    threads: int | None = None,
) -> list[dict] | None:
    """Every victim x defense on a release, each beside the same training on the original.

    Cells are appended to ``out/grid.jsonl`` as they finish; a cell already there (same victim,
    defense, preset, seed, precision and recipe options) is not recomputed, so an interrupted
    grid resumes. With ``threads`` given, the cells are keyed by it too (results move with it).
    ``out/grid.json`` and ``out/grid.md`` hold the cells asked for. Under torchrun the processes
    take whole cells in turn (each on its own GPU); rank 0 writes and returns the cells, the others None.
    """
    chosen_threads = threads
    threads = use_threads(threads)
    world, dev = current_world(), pick_device(device)
    if world is not None:
        dev = world.device(dev)
        world.start(dev)
    precision = resolve_precision(precision, dev, "victim")
    data, release = open_dataset(release_dir)
    if release is None:
        raise InputError(f"{release_dir} is not a release folder; grid evaluates a release written by 'medshield protect'")
    check_defenses(defenses)
    clean = original_of(release, key, original)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with guarded(world):
        cells = run_grid(data, clean, Journal(out / "grid.jsonl"), victims=victims, defenses=defenses,
                         preset_name=preset_name, recipe=recipe, recipe_name=recipe_name, seed=seed, device=str(dev),
                         progress=progress, precision=precision, threads=threads, keyed_threads=chosen_threads,
                         world=world)
    if world is not None and not world.main:
        return None
    context = {"release": str(release_dir), "manifest": {k: release.manifest[k] for k in ("method", "params", "seed")},
               "preset": preset_name, "recipe_name": recipe_name, "precision": precision, "threads": threads,
               **({"processes": world.size} if world is not None else {}), "machine": machine(), "versions": package_versions()}
    title = (f"{data.name}: {release.manifest['method']} release, victims x defenses (preset {preset_name}, "
             f"recipe {recipe_name or 'of the preset'}, seed {seed}, {precision})")
    write_grid(out, title, context, cells)
    return cells
