"""``medshield <verb>``: a thin command line over :mod:`medshield.pipeline`: the parser here, what each
verb does in ``verbs.py``.

Exit codes: 0 success; 2 bad input or arguments, or a write the machine refused (disk full, quota, I/O error,
read-only): one line on stderr; 1 a failed check (verify), a partial restore (--force), an unexpected failure.
"""
from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .data.bounded import set_input_limit
from .errors import REFUSED_WRITES, InputError
from .evaluate.defenses import list_defenses
from .models import PRECISIONS
from .options import PROTECT_OPTIONS, VICTIM_OPTIONS, add_options
from .presets import PRESETS
from .protect import DEFAULT_METHOD, list_protections


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
    _add_protect(verbs)
    _add_evaluate(verbs)
    _add_grid(verbs)
    _add_utility(verbs)
    _add_report(verbs)
    _add_compare(verbs)
    _add_restore(verbs)
    _add_verify(verbs)
    verbs.add_parser("methods", help="list protection methods and their defaults")
    return parser


def _add_protect(verbs) -> None:
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


def _add_evaluate(verbs) -> None:
    p = verbs.add_parser("evaluate", help="train a victim and report test accuracy", description="Train a victim on a dataset's train split; score on its test split.")
    p.add_argument("dataset", help="release folder, MedMNIST flag, .npz, or image folder")
    p.add_argument("--labels", help="for an image folder: CSV with columns path,label,split (needs test rows)")
    p.add_argument("--compare", action="store_true", help="for a release: also train on the original, same recipe and seed")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--defense", help=f"adversary's defense, NAME[:key=value,...]; one of {', '.join(list_defenses())}")
    _originals(p)
    _common(p)
    add_options(p, VICTIM_OPTIONS)


def _add_grid(verbs) -> None:
    p = verbs.add_parser("grid", help="evaluate a release against victims x defenses (resumable)",
                         description="Train every victim under every defense on a release and on its original.")
    p.add_argument("release", help="release folder written by 'medshield protect'")
    p.add_argument("--out", required=True, help="folder for grid.jsonl (journal), grid.json and grid.md")
    p.add_argument("--victims", default="resnet18", help="comma-separated architectures")
    p.add_argument("--defenses", default="none", help="semicolon-separated NAME[:key=value,...] or 'none'")
    _originals(p)
    _common(p)
    add_options(p, [o for o in VICTIM_OPTIONS if o[1] != "arch"])


def _add_utility(verbs) -> None:
    p = verbs.add_parser("utility", help="how much a release changed its images (SSIM, PSNR, hashes, NMI, L-inf, L0)",
                         description="Compare a release's train images with the originals it was made from.")
    p.add_argument("release", help="release folder written by 'medshield protect'")
    p.add_argument("--json", help="write the full results (overall and per class) as JSON to this file")
    p.add_argument("--segmentation-model", help=SEGMENTATION_HELP)
    _originals(p)
    p.add_argument("--quiet", action="store_true", help="no table")
    _limits(p)


def _add_report(verbs) -> None:
    p = verbs.add_parser("report", help="one self-contained HTML page for a release, its evaluations and grids",
                         description="Write RUN_DIR-report/index.html (figures embedded) from a release and the "
                                     "evaluations (--json files) and grids found beside it.")
    p.add_argument("release", help="release folder written by 'medshield protect'")
    p.add_argument("--out", help="folder for index.html and figures (default: RELEASE-report beside it)")
    p.add_argument("--segmentation-model", help=SEGMENTATION_HELP)
    _originals(p)
    _limits(p)


def _add_compare(verbs) -> None:
    p = verbs.add_parser("compare", help="utility of several releases side by side (paper Table 5 layout)",
                         description="Mean SSIM, hash similarities, NMI, PSNR, segmentation agreement and L0 per release.")
    p.add_argument("releases", nargs="+", help="release folders, e.g. one per method on the same dataset")
    p.add_argument("--json", help="write every release's full utility results as JSON to this file")
    p.add_argument("--segmentation-model", help=SEGMENTATION_HELP)
    p.add_argument("--key", action="append", help="a release's key file, once per release in their order "
                                                 "(default: RELEASE.key beside each release)")
    _limits(p)


def _add_restore(verbs) -> None:
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


def _add_verify(verbs) -> None:
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


def _run(args) -> int:
    from .verbs import VERBS  # the library loads after the arguments parse

    set_input_limit(getattr(args, "max_input_bytes", None))
    return VERBS[args.verb](args)


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
