"""What each ``medshield`` verb does once its arguments are parsed (``cli.py`` holds the parser):
one function per verb, each a call into :mod:`medshield.pipeline` or a library function and the
lines it prints. Each returns the process's exit code (``cli.py`` says what they mean)."""
from __future__ import annotations

import sys
from pathlib import Path

from . import pipeline
from ._runtime import write_json
from .release import check_writable, default_key_path
from .errors import InputError
from .evaluate.utility import release_utility
from .options import PROTECT_OPTIONS, VICTIM_OPTIONS, given, shown
from .protect import PROTECTIONS, list_protections
from .protect.params import method_parameters, parameter_docs
from .report import evaluation_table, grid_table, utility_comparison_table, utility_table
from .units import RADIUS_PARAMS, parse_assignments


def _write_json(path: str | None, results) -> None:
    """The machine-readable results beside the table, when ``--json`` asked for them."""
    if path:
        write_json(path, results)


def methods(args) -> int:
    for name in list_protections():
        print(f"{name}: {(PROTECTIONS.get(name).__doc__ or '').strip().splitlines()[0]}")
        docs = parameter_docs(name)
        for key, value in method_parameters(name).items():
            text = f"{shown(key, value)}/255" if key in RADIUS_PARAMS and value is not None else repr(value)
            print(f"  {key} = {text}" + (f"  {docs[key]}" if docs.get(key) else ""))
    return 0


def protect(args) -> int:
    params = {**given(args, PROTECT_OPTIONS),
              **parse_assignments(args.param, method_parameters(args.method), f"--param ({args.method})")}
    release = pipeline.protect(
        args.dataset, args.out, method=args.method, preset_name=args.preset, params=params,
        root=args.root, seed=args.seed, overwrite=args.overwrite, device=args.device, progress=not args.quiet,
        fraction=args.fraction, classes=args.classes, labels=args.labels, jpeg_as_png=args.jpeg_as_png,
        precision=args.precision, key_out=args.key_out, threads=args.threads, support=args.support,
        support_classes=args.support_classes, resume=args.resume, signing_key=args.signing_key, size=args.size,
        channels=args.channels, convert=args.convert,
    )
    if release is None:  # a torchrun process other than rank 0: rank 0 publishes
        return 0
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


def evaluate(args) -> int:
    if args.json:  # before hours of training, not after
        check_writable(Path(args.json).expanduser().resolve(), "--json")
    options = given(args, VICTIM_OPTIONS)
    report = pipeline.evaluate(
        args.dataset, preset_name=args.preset, recipe_name=options.pop("recipe_name", None), recipe=options, root=args.root,
        seed=args.seed, compare=args.compare, device=args.device, progress=not args.quiet, defense=args.defense, labels=args.labels,
        precision=args.precision, key=args.key, original=args.original, threads=args.threads,
    )
    if report is None:  # a torchrun process other than rank 0: rank 0 reports
        return 0
    _write_json(args.json, report)
    if not args.quiet:
        print(f"{report['dataset']} ({report['recipe_name']} recipe, victim {report['recipe']['arch']}, seed {report['seed']})")
        print(evaluation_table(report))
    return 0


def grid(args) -> int:
    options = given(args, [o for o in VICTIM_OPTIONS if o[1] != "arch"])
    cells = pipeline.grid(
        args.release, args.out, victims=args.victims.split(","), defenses=[d for d in args.defenses.split(";") if d],
        preset_name=args.preset, recipe_name=options.pop("recipe_name", None), recipe=options,
        seed=args.seed, device=args.device, progress=not args.quiet, precision=args.precision,
        key=args.key, original=args.original, threads=args.threads,
    )
    if cells is not None and not args.quiet:  # None: a torchrun process other than rank 0
        print(grid_table(cells))
    return 0


def compare(args) -> int:
    keys = args.key or []
    if keys and len(keys) != len(args.releases):
        raise InputError(f"compare: give --key once per release ({len(args.releases)}), or none for RELEASE.key beside each")
    reports = [release_utility(path, args.segmentation_model, key=keys[n] if keys else None)
               for n, path in enumerate(args.releases)]
    _write_json(args.json, reports)
    print(utility_comparison_table(reports))
    return 0


def report(args) -> int:
    from .report.html import build_report

    print(f"wrote {build_report(args.release, args.out, args.segmentation_model, key=args.key, original=args.original)}")
    return 0


def utility(args) -> int:
    result = release_utility(args.release, args.segmentation_model, key=args.key, original=args.original)
    _write_json(args.json, result)
    if not args.quiet:
        print(f"{result['dataset']}: {result['method']} release, {result['images']} train images")
        print(utility_table(result))
    return 0


def restore(args) -> int:
    target, left_out = pipeline.restore(args.release, args.out, key=args.key, overwrite=args.overwrite, force=args.force,
                                        public_key=args.public_key, fingerprint=args.fingerprint)
    print(f"wrote the originals of {args.release} to {target}")
    if left_out:  # never silently: exit 1 and the list
        print(f"medshield: --force: differ from the signed release, not restored: {', '.join(left_out)}", file=sys.stderr)
    return 1 if left_out else 0


def verify(args) -> int:
    from .release import verify_release

    checks = verify_release(args.release, key=args.key, original=args.original, labels=args.labels,
                            public_key=args.public_key, fingerprint=args.fingerprint)
    _write_json(args.json, checks)
    status = {True: "ok", False: "FAILED", None: "not checked"}
    for check in checks:
        print(f"{'warning' if check.get('warning') else status[check['ok']]:>11}  {check['check']}: {check['detail']}")
    return 1 if any(check["ok"] is False for check in checks) else 0


#: verb -> its function, for ``cli._run``
VERBS = {"methods": methods, "protect": protect, "evaluate": evaluate, "grid": grid, "compare": compare, "report": report,
         "utility": utility, "restore": restore, "verify": verify}
