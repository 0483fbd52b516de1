"""``medshield report RUN_DIR``: one self-contained HTML page for a protect run.

Gathers the release's manifest, computes utility against the original, finds the evaluations
(``evaluate --json`` files) and grids (``grid.json``) made from this release in the release's
parent folder or one level below it, draws the figures, and writes ``index.html`` (figures
embedded, so the single file opens anywhere without a server or internet) plus the PNGs.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from .._runtime import now_iso, write_json
from ..errors import InputError
from ..evaluate.detection import DETECTABLE_POINTS, detectability_gap
from ..evaluate.utility import release_utility
from ..release import open_dataset, original_of
from .choice import advice
from .figures import comparison_grid, learning_curves, perturbation_map
from ..evaluate.grid import BREAK_POINTS, FLOOR_POINTS, cell_verdict
from .tables import utility_rows

STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
.verdict{background:#fdf2e9;border-left:4px solid #c0392b;padding:.6em 1em}code{background:#f5f5f5;padding:0 .2em}"""
# Lets a headless browser (and a careful reader) see whether every figure loaded.
IMAGE_CHECK = """<script>window.addEventListener('load',function(){var i=document.images,b=0;
for(var k=0;k<i.length;k++){if(!i[k].complete||i[k].naturalWidth===0)b++;}
document.body.setAttribute('data-images',i.length+' loaded, '+b+' broken');});</script>"""


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def _same(a, b) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, TypeError):
        return False


def find_results(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """Evaluations and grids of this release, beside it or one folder below its parent."""
    evaluations, grids = [], []
    candidates = list(run_dir.parent.glob("*.json")) + list(run_dir.parent.glob("*/*.json"))
    for path in sorted(set(candidates)):
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(content, dict):
            continue
        if "release_manifest" in content and _same(content.get("source"), run_dir):
            evaluations.append({**content, "_file": str(path)})
        elif "cells" in content and _same(content.get("release"), run_dir):
            grids.append({**content, "_file": str(path)})
    return evaluations, grids


def verdict(evaluation: dict) -> str:
    arch, protected, floor = evaluation["recipe"]["arch"], evaluation["test_accuracy"], evaluation["majority_floor"]
    line = f"A {arch} trained on this release reaches {_pct(protected)} % test accuracy"
    if "clean" in evaluation:
        clean = evaluation["clean"]["test_accuracy"]
        line += f" instead of {_pct(clean)} % when trained on the original"
        drop = clean - protected
        if protected <= floor + 0.02:
            meaning = "no better than always answering the most frequent class"
        elif drop >= 0.20:
            meaning = f"a loss of {100 * drop:.0f} points: the release is much less useful for training"
        else:
            meaning = f"only {100 * drop:.1f} points lower: at these settings the protection is weak"
        line += f" (majority floor {_pct(floor)} %): {meaning}."
    else:
        line += f" (majority floor {_pct(floor)} %)."
    line += f" Its best epoch reached {_pct(evaluation['peak_test_accuracy'])} % (what early stopping could get)."
    return line


def _folder_section(manifest: dict) -> str:
    """An image folder's layout, working form, duplicates and leaks, as the manifest records them."""
    working, duplicates = manifest.get("working") or {}, manifest["duplicates"]
    rows = [["layout", (manifest.get("layout") or {}).get("kind", "-")],
            ["working channels", f"{working.get('channels')} ({working.get('channels_chosen')})"],
            ["working size", f"{working.get('size') or 'own'} ({working.get('size_chosen')}; {working.get('sizes')} sizes)"],
            ["hidden/system files skipped", manifest.get("skipped_files", 0)],
            ["files that are not images", len(manifest.get("other_files") or [])]]
    rows += [[f"duplicate pairs {where}", f"{entry['byte-identical']} byte-identical, {entry['near-identical']} near-identical "
                                         f"(e.g. {entry['examples'][0][0]} and {entry['examples'][0][1]})"]
             for where, entry in duplicates["pairs"].items()]
    leak = duplicates["held_out_images_in_train"]
    warning = (f'<p class="verdict">Warning: {leak} val/test images also sit in train; accuracy measured on them '
               "overstates what a model learned.</p>") if leak else ""
    return "<h2>The folder</h2>" + _table(["", "value"], rows) + warning
def detectability_section(release: np.ndarray, original: np.ndarray, labels: np.ndarray) -> str:
    """How fast a linear model fits the release against its original (a trainer's test for poison)."""
    found = detectability_gap(release, original, labels)
    verdict_text = ("fits the release clearly faster than the original: a trainer running this test would read the "
                    "release as poisoned" if found["gap"] >= DETECTABLE_POINTS / 100 else
                    "fits the release about as fast as the original: this test does not single the release out")
    return (f"<h2>Detectability</h2><p>A {found['model']} model trained {found['epochs']} epochs fits "
            f"{_pct(found['release'])} % of the released train images and {_pct(found['original'])} % of the originals "
            f"({100 * found['gap']:+.1f} points): it {verdict_text} (gap of {DETECTABLE_POINTS:g} points or more).</p>")


def _meaning_section(run_dir: Path, manifest: dict, utility: dict, evaluations: list[dict]) -> list[str]:
    """What the release means, first: the verdict of each evaluation, then what it costs image users."""
    sections = ["<h2>What it means</h2>"]
    if evaluations:
        sections += [f'<p class="verdict">{html.escape(verdict(e))}</p>' for e in evaluations]
    else:
        sections.append('<p class="verdict">No evaluation of this release was found beside it. Run '
                        f"<code>medshield evaluate {html.escape(str(run_dir))} --compare --json {html.escape(str(run_dir.parent))}/evaluation.json</code>.</p>")
    ssim = utility["overall"]["ssim"]
    sections.append(f"<p>For people using the images: mean SSIM {ssim['mean']:.1f} % (worst 5 %: {ssim['worst_5pct']:.1f} %), "
                    f"at most {100 * manifest['measured']['l0_max']:.1f} % of pixel positions and at most "
                    f"{manifest['measured']['linf']}/255 per value changed in any image; on average "
                    f"{100 * manifest['measured']['l0_mean']:.1f} % of positions changed.</p>")
    if manifest.get("sparsity"):
        sections.append(f"<p>Sparsity: {html.escape(manifest['sparsity'])}.</p>")
    return sections


def _settings_section(manifest: dict, utility: dict) -> list[str]:
    """How the release was made, and how much its images changed, measure by measure."""
    sections = ["<h2>How it was protected</h2>"]
    rows = [["method", manifest["method"]], ["preset", manifest["preset"]], ["seed", manifest["seed"]],
            ["train images", manifest["train_images"]], ["generation time (s)", manifest["generation_seconds"]],
            ["precision", manifest.get("precision", "fp32")], ["release id", manifest.get("release_id", "-")]]
    rows += [[f"param: {k}", v] for k, v in manifest["params"].items()]
    sections.append(_table(["setting", "value"], rows))
    if manifest.get("duplicates"):
        sections.append(_folder_section(manifest))
    sections.append("<h2>Utility: how much the images changed</h2>")
    rows = []
    for key, label in utility_rows(utility):
        s = utility["overall"][key]
        scale = 100.0 if key == "l0" else 1.0
        rows.append([label, f"{scale * s['mean']:.2f}", f"{scale * s['worst_5pct']:.2f}"])
    sections.append(_table(["measure", "mean", "worst 5 %"], rows))
    return sections


def _perturbation_section(data, original, figures: Path) -> list[str]:
    """The perturbation drawn (examples and where it falls), and whether a linear model singles it out."""
    labels = data.labels("train")
    grid_png = comparison_grid(original.images("train"), data.images("train"), labels, figures / "comparison.png",
                               label_names=data.label_names)
    map_png, share = perturbation_map(original.images("train"), data.images("train"), figures / "perturbation_map.png")
    return ["<h2>What the perturbation looks like</h2>" + _image(grid_png, "original, perturbation, protected"),
            f"<p>{100 * share['changed_in_foreground']:.1f} % of the changed positions lie in the foreground, "
            f"which covers {100 * share['foreground_area']:.1f} % of the image area.</p>" + _image(map_png, "where the perturbation is"),
            detectability_section(data.images("train"), original.images("train"), labels)]


def _grid_section(grid: dict) -> list[str]:
    """One grid's victims x defenses, and the cells that break the protection or train nothing."""
    rows = [[c["arch"], c["defense"], _pct(c["clean_test_accuracy"]), _pct(c["protected_test_accuracy"]),
             f"{100 * (c['clean_test_accuracy'] - c['protected_test_accuracy']):.1f}", _pct(c["protected_peak_test_accuracy"]),
             cell_verdict(c)] for c in grid["cells"]]
    sections = [f"<h3>Victims x defenses ({html.escape(Path(grid['_file']).parent.name)})</h3>",
                _table(["victim", "defense", "clean-trained %", "protected-trained %", "drop", "protected peak %", "protection"], rows)]
    for kind, meaning in (("breaks", f"protected-trained accuracy within {BREAK_POINTS:g} points of clean-trained"),
                          ("trains nothing", f"even the clean-trained victim ends within {FLOOR_POINTS:g} points of "
                                             "the majority floor, so these cells say nothing about the protection")):
        named = [f"{c['arch']} + {c['defense']}" for c in grid["cells"] if cell_verdict(c) == kind]
        if named:
            label = "Broken by" if kind == "breaks" else "Trains nothing"
            sections.append(f'<p class="verdict">{label}: {html.escape(", ".join(named))} ({meaning}).</p>')
    return sections


def _efficacy_section(evaluations: list[dict], grids: list[dict], figures: Path) -> list[str]:
    """The victims trained on the release: each evaluation with its learning curves, then each grid."""
    sections = ["<h2>Efficacy: victims trained on the release</h2>"]
    if evaluations:
        rows = [[e["recipe"]["arch"], (e.get("defense") or {}).get("name", "none"), _pct(e.get("clean", {}).get("test_accuracy")),
                 _pct(e["test_accuracy"]), _pct(e["peak_test_accuracy"]), _pct(e["majority_floor"]), Path(e["_file"]).name]
                for e in evaluations]
        sections.append(_table(["victim", "defense", "clean-trained %", "protected-trained %", "protected peak %", "floor %", "file"], rows))
        for n, e in enumerate(evaluations):
            sections.append(_image(learning_curves(e, figures / f"learning_curves_{n}.png"), "learning curves"))
    for g in grids:
        sections += _grid_section(g)
    return sections


def build_report(run_dir: str | Path, out: str | Path | None = None, segmentation_model: str | None = None, *,
                 key: str | Path | None = None, original: str | None = None) -> Path:
    run_dir = Path(run_dir).expanduser().resolve()
    data, release = open_dataset(str(run_dir))
    if release is None:
        raise InputError(f"{run_dir} is not a release folder; report needs a folder written by 'medshield protect'")
    original = original_of(release, key, original)  # before anything is written: it may need a key
    out = Path(out) if out else run_dir.parent / f"{run_dir.name}-report"
    out.mkdir(parents=True, exist_ok=True)
    manifest = release.manifest
    utility = release_utility(str(run_dir), segmentation_model, original_data=original)
    evaluations, grids = find_results(run_dir)

    sections = [f"<h1>{html.escape(data.name)}: {html.escape(manifest['method'].upper())} release</h1>",
                f"<p>Report made {now_iso()} from <code>{html.escape(str(run_dir))}</code>.</p>"]
    sections += _meaning_section(run_dir, manifest, utility, evaluations)
    choice = advice(data.name, manifest["method"], manifest["params"])
    if choice:
        sections.append("<h2>Which method, and why</h2>" + "".join(f"<p>{html.escape(line)}</p>" for line in choice))
    sections += _settings_section(manifest, utility)
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    sections += _perturbation_section(data, original, figures)
    sections += _efficacy_section(evaluations, grids, figures)

    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>medshield report: {html.escape(data.name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}{IMAGE_CHECK}</body></html>")
    (out / "index.html").write_text(page)
    write_json(out / "utility.json", utility)
    return out / "index.html"
