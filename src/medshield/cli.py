"""``medshield <verb>``: a thin command line over :mod:`medshield.pipeline`.

Exit codes: 0 success; 2 bad input or arguments, or a write the machine refused (disk full, quota, I/O error,
read-only): one line on stderr; 1 a failed check (verify), a partial restore (--force), an unexpected failure.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from ._runtime import write_json
from .data.bounded import set_input_limit
from .errors import REFUSED_WRITES, InputError
from .evaluate.defenses import list_defenses
from .models import PRECISIONS
from .options import PROTECT_OPTIONS, VICTIM_OPTIONS, add_options, given, shown
from .presets import PRESETS
from .protect import DEFAULT_METHOD, list_protections
from .protect.params import method_parameters, parameter_docs
from .release import check_writable, default_key_path, verify_release
from .units import RADIUS_PARAMS, parse_assignments


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, as for every other bad input
        raise InputError(f"{self.prog}: {message} (see --help)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS), help="named settings (default: paper)")
    p.add_argument("--root", help="folder holding MedMNIST .npz files (default: $MEDSHIELD_DATA_ROOT or ~/.medmnist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="networks in fp32 or under bf16 autocast (about 1.6x faster where the device has it: CPU with "
                        "avx512_bf16/AMX, CUDA with bf16); auto: bf16 there for generating noise, fp32 for victims "
                        "and on other devices (README, Precision)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's, one per core); results move "
                                                "with it, so it is recorded, and the same seed and threads repeat a run's bytes")
    p.add_argument("--quiet", action="store_true", help="no progress bars or tables")
    _limits(p)


def _limits(p: argparse.ArgumentParser) -> None:  # every verb that reads data
    p.add_argument("--max-input-bytes", type=int, help="refuse an array or image declaring more bytes once decoded "
                                                        "(default: a fifth of this machine's memory)")


def _owner(p: argparse.ArgumentParser) -> None:  # how a recipient pins the owner (given by the owner out of band)
    p.add_argument("--public-key", help="the owner's public key (owner.pub of a trusted release): refuse other signers")
    p.add_argument("--fingerprint", help="the owner's key fingerprint (64 hex digits), instead of --public-key")


def _originals(p: argparse.ArgumentParser) -> None:
    """Where the owner's tools find the originals of a release."""
    p.add_argument("--key", help="the release's key file (default: RELEASE.key beside the release, when it exists)")
    p.add_argument("--original", help="the original dataset or folder instead of the key (checked against the release)")


SEGMENTATION_HELP = ("your TorchScript segmentation network (torch.jit.save): also report how many pixels it labels "
                     "differently on the release; takes (N, C, H, W) floats in [0, 1], returns (N, K, H, W) scores "
                     "or (N, 1, H, W) logits. Load only models you trust")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="medshield", description="Protect medical image datasets from unauthorized training, and prove it.")
    parser.add_argument("--version", action="version", version=f"medshield {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    p = verbs.add_parser("protect", help="write a protected copy of a dataset", description="Protect a dataset's train split.")
    p.add_argument("dataset", help="MedMNIST flag (bloodmnist, bloodmnist_64, ...), a MedMNIST-layout .npz, or a folder of images")
    p.add_argument("--labels", help="for an image folder: CSV with columns path,label[,split] (default: sub-folder names)")
    p.add_argument("--jpeg-as-png", action="store_true", help="write protected JPEG inputs as PNG (JPEG re-encoding weakens the perturbation)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="image folder: protect in gray (1) or colour (3); default: "
                                                                "colour when any image has colour. Files keep their own mode")
    p.add_argument("--size", type=int, help="image folder of mixed sizes: the side the source model works at (default: "
                                            "the median size, at most 224); each image's noise is resized to its size")
    p.add_argument("--convert", action="store_true", help="image folder: convert palette, CMYK and transparent images "
                                                          "with Pillow instead of refusing them (recorded in the manifest)")
    p.add_argument("--out", required=True, help="new folder for the release")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=list_protections(), help="protection method; 'medshield methods' lists each with its parameters")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder (and its key file)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its checkpoint in OUT.work (SALM, "
                                                         "EM, TAP: saved every 5 minutes); same inputs and settings needed")
    p.add_argument("--key-out", help="where the key that restores the originals goes (default: OUT.key beside OUT); "
                                      "keep it private, never inside OUT")
    p.add_argument("--signing-key", help="your signing key file, reused so every release shows one fingerprint (created "
                                         "on first use; default: a fresh key per release, kept in the key file)")
    p.add_argument("--fraction", type=float, default=1.0, help="protect only this seeded random fraction of the train images")
    p.add_argument("--classes", type=lambda t: [int(c) for c in t.split(",")], help="protect only images of these labels, e.g. 0,3")
    p.add_argument("--support", type=lambda t: t.split(","),
                   help="an owner of one class (error-minimizing methods): borrow classes from these MedMNIST flags, .npz files or image "
                        "folders (comma-separated) for the generation only (never released; paper Section 7.1)")
    p.add_argument("--support-classes", type=int, default=5, help="how many support classes to draw with the seed (5)")
    _common(p)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="any parameter of the method, repeatable (radii in pixel values); 'medshield methods' lists them")
    add_options(p, PROTECT_OPTIONS)

    p = verbs.add_parser("evaluate", help="train a victim and report test accuracy", description="Train a victim on a dataset's train split; score on its test split.")
    p.add_argument("dataset", help="release folder, MedMNIST flag, .npz, or image folder")
    p.add_argument("--labels", help="for an image folder: CSV with columns path,label,split (needs test rows)")
    p.add_argument("--compare", action="store_true", help="for a release: also train on the original, same recipe and seed")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--defense", help=f"adversary's defense, NAME[:key=value,...]; one of {', '.join(list_defenses())}")
    _originals(p)
    _common(p)
    add_options(p, VICTIM_OPTIONS)

    p = verbs.add_parser("grid", help="evaluate a release against victims x defenses (resumable)",
                         description="Train every victim under every defense on a release and on its original.")
    p.add_argument("release", help="release folder written by 'medshield protect'")
    p.add_argument("--out", required=True, help="folder for grid.jsonl (journal), grid.json and grid.md")
    p.add_argument("--victims", default="resnet18", help="comma-separated architectures")
    p.add_argument("--defenses", default="none", help="semicolon-separated NAME[:key=value,...] or 'none'")
    _originals(p)
    _common(p)
    add_options(p, [o for o in VICTIM_OPTIONS if o[1] != "arch"])

    p = verbs.add_parser("utility", help="how much a release changed its images (SSIM, PSNR, hashes, NMI, L-inf, L0)",
                         description="Compare a release's train images with the originals it was made from.")
    p.add_argument("release", help="release folder written by 'medshield protect'")
    p.add_argument("--json", help="write the full results (overall and per class) as JSON to this file")
    p.add_argument("--segmentation-model", help=SEGMENTATION_HELP)
    _originals(p)
    p.add_argument("--quiet", action="store_true", help="no table")
    _limits(p)

    p = verbs.add_parser("report", help="one self-contained HTML page for a release, its evaluations and grids",
                         description="Write RUN_DIR-report/index.html (figures embedded) from a release and the "
                                     "evaluations (--json files) and grids found beside it.")
    p.add_argument("release", help="release folder written by 'medshield protect'")
    p.add_argument("--out", help="folder for index.html and figures (default: RELEASE-report beside it)")
    p.add_argument("--segmentation-model", help=SEGMENTATION_HELP)
    _originals(p)
    _limits(p)

    p = verbs.add_parser("compare", help="utility of several releases side by side (paper Table 5 layout)",
                         description="Mean SSIM, hash similarities, NMI, PSNR, segmentation agreement and L0 per release.")
    p.add_argument("releases", nargs="+", help="release folders, e.g. one per method on the same dataset")
    p.add_argument("--json", help="write every release's full utility results as JSON to this file")
    p.add_argument("--segmentation-model", help=SEGMENTATION_HELP)
    p.add_argument("--key", action="append", help="a release's key file, once per release in their order "
                                                 "(default: RELEASE.key beside each release)")
    _limits(p)

    p = verbs.add_parser("restore", help="give an authorized partner the originals back, with the release's key",
                         description="Rebuild the originals of a release with its key, once its signature and every "
                                     "file's SHA-256 hold. Exit 0: all restored; 2: nothing written; 1: --force, part.")
    p.add_argument("release", help="release folder written by 'medshield protect'")
    p.add_argument("--key", help="the release's key file (default: RELEASE.key beside the release)")
    p.add_argument("--out", required=True, help="new folder for the originals")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--force", action="store_true", help="restore what matches the signed release and list the rest")
    _owner(p)
    _limits(p)

    p = verbs.add_parser("verify", help="re-check a release: its files, sealing, nothing private, the bounds on its bytes",
                         description="Re-check a release on its own before publishing or trusting it. Exit 0: every "
                                     "check passed; 1: one failed.")
    p.add_argument("release", help="release folder written by 'medshield protect'")
    p.add_argument("--key", help="the release's key file, to check the bounds against the restored originals "
                                 "(default: RELEASE.key beside the release, when there)")
    p.add_argument("--original", help="the dataset the release was made from, instead of the key")
    p.add_argument("--labels", help="labels CSV of an --original image folder")
    p.add_argument("--json", help="also write the checks as JSON to this file")
    _owner(p)
    _limits(p)

    verbs.add_parser("methods", help="list protection methods and their defaults")
    return parser


def _write_json(path: str | None, results) -> None:
    """The machine-readable results beside the table, when ``--json`` asked for them."""
    if path:
        write_json(path, results)


def _run(args) -> int:
    from . import pipeline
    from .evaluate.utility import release_utility
    from .report import evaluation_table, grid_table, utility_comparison_table, utility_table

    set_input_limit(getattr(args, "max_input_bytes", None))
    if args.verb == "methods":
        from .protect import PROTECTIONS

        for name in list_protections():
            print(f"{name}: {(PROTECTIONS.get(name).__doc__ or '').strip().splitlines()[0]}")
            docs = parameter_docs(name)
            for key, value in method_parameters(name).items():
                text = f"{shown(key, value)}/255" if key in RADIUS_PARAMS and value is not None else repr(value)
                print(f"  {key} = {text}" + (f"  {docs[key]}" if docs.get(key) else ""))
        return 0
    if args.verb == "protect":
        release = pipeline.protect(
            args.dataset, args.out, method=args.method, preset_name=args.preset, params={**given(args, PROTECT_OPTIONS), **parse_assignments(args.param, method_parameters(args.method), f"--param ({args.method})")},
            root=args.root, seed=args.seed, overwrite=args.overwrite, device=args.device, progress=not args.quiet,
            fraction=args.fraction, classes=args.classes, labels=args.labels, jpeg_as_png=args.jpeg_as_png,
            precision=args.precision, key_out=args.key_out, threads=args.threads, support=args.support,
            support_classes=args.support_classes, resume=args.resume, signing_key=args.signing_key, size=args.size,
            channels=args.channels, convert=args.convert,
        )
        m = release.manifest
        key_path = args.key_out or default_key_path(release.path)
        print(f"medshield: the key that restores the originals is {key_path}: keep it private and never publish it "
              f"with the release; recipients check it with: medshield verify DIR --fingerprint {m['owner_fingerprint']}",
              file=sys.stderr)
        if not args.quiet:
            measured = m["measured"]
            print(
                f"wrote {release.path}: {m['method']} on {m['train_images']} images in {m['generation_seconds']:.0f} s ({m['precision']}); "
                f"L-inf {measured['linf']}/255, at most {100 * measured['l0_max']:.1f} % of positions changed "
                f"(mean {100 * measured['l0_mean']:.1f} %); {m['sparsity']}"
            )
        return 0
    if args.verb == "evaluate":
        if args.json:  # before hours of training, not after
            check_writable(Path(args.json).expanduser().resolve(), "--json")
        options = given(args, VICTIM_OPTIONS)
        report = pipeline.evaluate(
            args.dataset, preset_name=args.preset, recipe_name=options.pop("recipe_name", None), recipe=options, root=args.root,
            seed=args.seed, compare=args.compare, device=args.device, progress=not args.quiet, defense=args.defense, labels=args.labels,
            precision=args.precision, key=args.key, original=args.original, threads=args.threads,
        )
        _write_json(args.json, report)
        if not args.quiet:
            print(f"{report['dataset']} ({report['recipe_name']} recipe, victim {report['recipe']['arch']}, seed {report['seed']})")
            print(evaluation_table(report))
        return 0
    if args.verb == "grid":
        options = given(args, [o for o in VICTIM_OPTIONS if o[1] != "arch"])
        cells = pipeline.grid(
            args.release, args.out, victims=args.victims.split(","), defenses=[d for d in args.defenses.split(";") if d],
            preset_name=args.preset, recipe_name=options.pop("recipe_name", None), recipe=options,
            seed=args.seed, device=args.device, progress=not args.quiet, precision=args.precision,
            key=args.key, original=args.original, threads=args.threads,
        )
        if not args.quiet:
            print(grid_table(cells))
        return 0
    if args.verb == "compare":
        keys = args.key or []
        if keys and len(keys) != len(args.releases):
            raise InputError(f"compare: give --key once per release ({len(args.releases)}), or none for RELEASE.key beside each")
        reports = [release_utility(path, args.segmentation_model, key=keys[n] if keys else None)
                   for n, path in enumerate(args.releases)]
        _write_json(args.json, reports)
        print(utility_comparison_table(reports))
        return 0
    if args.verb == "report":
        from .report.html import build_report

        print(f"wrote {build_report(args.release, args.out, args.segmentation_model, key=args.key, original=args.original)}")
        return 0
    if args.verb == "utility":
        report = release_utility(args.release, args.segmentation_model, key=args.key, original=args.original)
        _write_json(args.json, report)
        if not args.quiet:
            print(f"{report['dataset']}: {report['method']} release, {report['images']} train images")
            print(utility_table(report))
        return 0
    if args.verb == "restore":
        target, left_out = pipeline.restore(args.release, args.out, key=args.key, overwrite=args.overwrite, force=args.force,
                                            public_key=args.public_key, fingerprint=args.fingerprint)
        print(f"wrote the originals of {args.release} to {target}")
        if left_out:  # never silently: exit 1 and the list
            print(f"medshield: --force: differ from the signed release, not restored: {', '.join(left_out)}", file=sys.stderr)
        return 1 if left_out else 0
    if args.verb == "verify":
        checks = verify_release(args.release, key=args.key, original=args.original, labels=args.labels,
                                public_key=args.public_key, fingerprint=args.fingerprint)
        _write_json(args.json, checks)
        status = {True: "ok", False: "FAILED", None: "not checked"}
        for check in checks:
            print(f"{'warning' if check.get('warning') else status[check['ok']]:>11}  {check['check']}: {check['detail']}")
        return 1 if any(check["ok"] is False for check in checks) else 0
    raise AssertionError(args.verb)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return _run(build_parser().parse_args(argv))
    except InputError as exc:
        print(f"medshield: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medshield: interrupted; nothing was written", file=sys.stderr)
        return 130
    except OSError as exc:  # the machine, not the input: disk full, permissions, a vanished file
        where = f" ({exc.filename})" if exc.filename else ""
        advice = "; free space (or choose another place) and rerun, --resume for a long protection"
        print(f"medshield: error: {exc.strerror or exc}{where}{advice if exc.errno in REFUSED_WRITES else ''}; no partial "
              "output was left", file=sys.stderr)
        return 2 if exc.errno in REFUSED_WRITES else 1


if __name__ == "__main__":
    sys.exit(main())
