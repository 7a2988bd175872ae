"""Across studies: which method helps, on which corpus, at which severity, against random removal.

Each run is a folder of results with the layout the pipeline writes to ``metrics/`` (``<set>.json``
from ``aggregate``, ``detection/<set>.json``): the default pipeline itself and the studies of
``metrics/studies/`` (a second corpus, milder corruptions), labelled ``corpus/severity``. Nothing
is recomputed: every number and interval here is one the runs' own metrics hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .cleaning import parse_condition
from .io import read_json, write_json
from .plots import save_figure

log = logging.getLogger(__name__)

SETS = ("mixed23", "effectsdb")
KEY = "museval_sdr_db_avg"
CONTROLS = ("unlearn-naive", "loss")  # scores the pipeline ranks by but does not retrain on
# The plotted axis, strongest first; a run labelled otherwise (another share of corrupted songs,
# other corruption kinds, a control) is tabulated, not plotted
SEVERITIES = ("severe", "moderate", "mild", "minimal")


@dataclass(frozen=True)
class Run:
    """One pipeline run's results: ``folder`` holds ``<set>.json`` and ``detection/<set>.json``;
    ``sets`` are the ones the label describes (a study that changed one set only names it)."""

    corpus: str
    severity: str
    folder: Path
    sets: tuple[str, ...] = SETS

    @property
    def spec(self) -> str:
        """The ``--run`` spec this run was parsed from."""
        only = "" if self.sets == SETS else "#" + ",".join(self.sets)
        return f"{self.corpus}/{self.severity}={self.folder.as_posix()}{only}"

    def inputs(self) -> dict[str, Path]:
        """The files and folders of the run a summary reads, keyed for error messages."""
        label = f"--run {self.corpus}/{self.severity}"
        paths = [self.folder / f"{name}.json" for name in self.sets] + [self.folder / "detection"]
        return {f"{label} ({p.name})": p for p in paths if p.exists()}


def parse_run(spec: str) -> Run:
    """``corpus/setting=folder[#set,...]`` -> :class:`Run`; a malformed spec, an unknown set or
    a folder without results is a ``ValueError`` naming it."""
    label, sep, target = spec.partition("=")
    folder, _, only = target.partition("#")
    corpus, slash, severity = label.partition("/")
    if not (sep and slash and corpus and severity and folder):
        raise ValueError(f"--run {spec!r}: expected corpus/setting=folder[#set,...]")
    sets = tuple(only.split(",")) if only else SETS
    unknown = [name for name in sets if name not in SETS]
    if unknown:
        raise ValueError(f"--run {spec!r}: unknown set(s) {unknown} (known: {list(SETS)})")
    path = Path(folder)
    if not any((path / f"{name}.json").is_file() for name in sets):
        raise ValueError(f"--run {spec!r}: {path} holds no {' or '.join(sets)}.json")
    return Run(corpus, severity, path, sets)


def verdict(margin: dict | None) -> str:
    """``helps`` / ``hurts`` where the 95 % interval excludes 0, else ``within noise``."""
    if not margin or margin.get("ci95_low") is None:
        return "—"
    if margin["ci95_low"] > 0:
        return "helps"
    if margin["ci95_high"] < 0:
        return "hurts"
    return "within noise"


def harm_verdict(margin: dict | None) -> str:
    """What contamination does, from the clean-part-minus-contaminated margin."""
    return {"helps": "hurts", "hurts": "helps", "within noise": "no measurable harm"}.get(
        verdict(margin), "—")


def _margin(margins: dict, name: str) -> dict | None:
    found = margins.get(f"{name}_{KEY}")
    return None if found is None else {k: found.get(k) for k in ("mean", "ci95_low", "ci95_high",
                                                                 "n", "n_other")}


def _auroc(detection: dict, method: str) -> float | None:
    entry = detection.get(method) or detection.get(f"{method}/mean")
    return None if entry is None else entry["unified"]["any"]["auroc"]


def summarise_set(run: Run, dataset: str) -> dict | None:
    """One run's numbers for one set: the harm of contamination, and per method its detection
    AUROC, its SDR gain over the contaminated baseline and its margin over random removal at the
    same ratio (95 % intervals as the run's ``aggregate`` computed them)."""
    path = run.folder / f"{dataset}.json"
    if not path.is_file():
        return None
    data = read_json(path)
    detection_path = run.folder / "detection" / f"{dataset}.json"
    detection = read_json(detection_path) if detection_path.is_file() else {}
    margins = data.get("margins", {})
    methods = []
    for condition in sorted(data.get("conditions", {})):
        parsed = parse_condition(condition)
        if parsed is None or parsed[0] == "random":
            continue
        method, mode, ratio = parsed
        versus_random = _margin(margins, f"{condition}_minus_random_r{ratio}")
        methods.append({
            "method": method if mode == "unified" else f"{method} ({mode})", "ratio": ratio,
            "auroc": _auroc(detection, method),  # the score a mode keeps from is the same
            "sdr": data["conditions"][condition].get(KEY, {}).get("mean"),
            "gain": _margin(margins, f"{condition}_minus_contaminated"),
            "versus_random": versus_random, "verdict": verdict(versus_random)})
    controls = {c: a for c in CONTROLS if (a := _auroc(detection, c)) is not None}
    harm = _margin(margins, "clean_only_minus_contaminated")
    return {"corpus": run.corpus, "severity": run.severity, "set": dataset,
            "contaminated": data["conditions"].get("contaminated", {}).get(KEY, {}).get("mean"),
            "harm": harm, "harm_verdict": harm_verdict(harm), "methods": methods,
            "detection_only": controls}


def summarise(runs: list[Run]) -> list[dict]:
    """Every run's every set, in the order the runs are given."""
    rows = [row for run in runs for dataset in run.sets if (row := summarise_set(run, dataset))]
    if not rows:
        raise ValueError("no run holds any results")
    return rows


def _interval(margin: dict | None) -> str:
    if not margin or margin.get("mean") is None:
        return "—"
    if margin.get("ci95_low") is None or margin.get("ci95_high") is None:
        return f"{margin['mean']:+.2f} [no interval]"  # one seed or one draw
    return f"{margin['mean']:+.2f} [{margin['ci95_low']:+.2f}, {margin['ci95_high']:+.2f}]"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(rows: list[dict], sources: list[Run]) -> str:
    """The summary as markdown: the answer first (which method beats random removal where),
    then one table per set."""
    lines = ["# Which method helps, on which corpus, at which severity, against random removal",
             "", "Generated by `python -m stages.tools.summarise` from the runs' own metrics "
             "(museval avg SDR, dB; 95 % intervals: paired t over seeds against the contaminated "
             "baseline, Welch against random removal, whose draws are not the seeds' pairs). "
             "*helps*: the interval of a margin lies above 0; *within noise*: it holds 0; "
             "*hurts*: it lies below. A method can beat random removal (which may itself hurt) "
             "without beating the contaminated set: both margins are given.", "",
             "Runs: " + "; ".join(f"`{r.corpus}/{r.severity}` = `{r.folder}`"
                                  + ("" if r.sets == SETS else f" ({', '.join(r.sets)} only)")
                                  for r in sources),
             "", "## The answer", ""]
    for row in rows:
        methods = "; ".join(
            f"{m['method']} r={m['ratio']} {_interval(m['gain'])} over contaminated "
            f"({verdict(m['gain'])}), {_interval(m['versus_random'])} over random removal "
            f"({m['verdict']})" for m in row["methods"])
        lines.append(f"- **{row['set']}, {row['corpus']}, {row['severity']}**: clean part − "
                     f"contaminated {_interval(row['harm'])} dB ({row['harm_verdict']}). "
                     + (methods or "No cleaned condition") + ".")
    for dataset in SETS:
        subset = [r for r in rows if r["set"] == dataset]
        if not subset:
            continue
        controls = sorted({c for r in subset for c in r["detection_only"]})
        lines += ["", f"## {dataset}", "",
                  "| corpus | setting | harm (clean − contaminated) | method | AUROC | SDR | "
                  "gain over contaminated | margin over random | verdict |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in subset:
            for m in row["methods"]:
                lines.append(f"| {row['corpus']} | {row['severity']} | {_interval(row['harm'])} "
                             f"| {m['method']} r={m['ratio']} | {_num(m['auroc'])} "
                             f"| {_num(m['sdr'])} | {_interval(m['gain'])} "
                             f"| {_interval(m['versus_random'])} | {m['verdict']} |")
        if controls:
            lines += ["", "Detection AUROC of the scores not retrained on: "
                      + "; ".join(f"{r['corpus']}/{r['severity']}: " + ", ".join(
                          f"{c} {_num(r['detection_only'].get(c))}" for c in controls)
                          for r in subset) + "."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], out: Path) -> bool:
    """AUROC and margin over random removal against severity (the levels of :data:`SEVERITIES`),
    per method and set, for every corpus run at more than one of them; ``False`` when no corpus
    has a severity axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["severity"] in SEVERITIES]
    corpora = [c for c in dict.fromkeys(r["corpus"] for r in rows)
               if len({r["severity"] for r in rows if r["corpus"] == c}) > 1]
    if not corpora:
        return False
    levels = [s for s in SEVERITIES if any(r["severity"] == s for r in rows)]
    fig, axes = plt.subplots(2, len(SETS), figsize=(5.5 * len(SETS), 7), dpi=100, squeeze=False)
    for col, dataset in enumerate(SETS):
        for corpus in corpora:
            subset = sorted((r for r in rows if r["set"] == dataset and r["corpus"] == corpus),
                            key=lambda r: levels.index(r["severity"]))
            x = [levels.index(r["severity"]) for r in subset]
            for name in dict.fromkeys(m["method"] for r in subset for m in r["methods"]):
                per = [next((m for m in r["methods"] if m["method"] == name), None) for r in subset]
                auroc = [m["auroc"] if m and m["auroc"] is not None else float("nan") for m in per]
                axes[0][col].plot(x, auroc, marker="o", label=f"{name} ({corpus})")
                mean, low, high = [], [], []
                for m in per:
                    v = m["versus_random"] if m else None
                    has = bool(v and v.get("mean") is not None)
                    mean.append(v["mean"] if has else float("nan"))  # type: ignore[index]
                    ok = has and v.get("ci95_low") is not None  # type: ignore[union-attr]
                    low.append(v["mean"] - v["ci95_low"] if ok else 0.0)  # type: ignore[index]
                    high.append(v["ci95_high"] - v["mean"] if ok else 0.0)  # type: ignore[index]
                axes[1][col].errorbar(x, mean, yerr=[low, high], marker="o", capsize=3,
                                      label=f"{name} ({corpus})")
            harm = [r["harm"]["mean"] if r["harm"] else float("nan") for r in subset]
            axes[1][col].plot(x, harm, "k--", label=f"harm of contamination ({corpus})")
        axes[0][col].set(title=f"{dataset}: detection", ylabel="AUROC (unified score)",
                         ylim=(0.3, 1.02))
        axes[0][col].axhline(0.5, color="grey", lw=0.8)
        axes[1][col].set(title=f"{dataset}: SDR margin over random removal", xlabel="severity",
                         ylabel="dB (95 % interval)")
        axes[1][col].axhline(0.0, color="grey", lw=0.8)
        for ax in axes[:, col]:
            ax.set_xticks(range(len(levels)), levels)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    save_figure(out, fig)
    return True


def write_summary(out: Path, runs: list[Run]) -> list[dict]:
    """Write ``summary.json``, ``summary.md`` and (with a severity axis) ``severity.png`` into
    the folder ``out`` (created by the caller)."""
    rows = summarise(runs)
    write_json(out / "summary.json", {
        "runs": [r.spec for r in runs], "rows": rows})
    (out / "summary.md").write_text(markdown(rows, runs))
    if plot(rows, out / "severity.png"):
        log.info("wrote %s", out / "severity.png")
    return rows
