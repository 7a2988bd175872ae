"""The README's headline numbers are the committed metrics, to the digit (they cannot drift)."""

from __future__ import annotations

import json
from pathlib import Path

from stages.lib.studies import verdict

ROOT = Path(__file__).resolve().parents[1]
KEY = "museval_sdr_db_avg"
NAMES = {"mixed23": "Mixed23", "effectsdb": "EffectsDB"}


def _sdr(data: dict, condition: str) -> str:
    cell = data["conditions"][condition][KEY]
    return f"{cell['mean']:.2f} ± {cell['std']:.2f}"


def _auroc(sets: list[dict], method: str) -> str:
    return " / ".join(f"{d[method]['unified']['any']['auroc']:.2f}" for d in sets)


def headline() -> list[str]:
    """The lines of the README's "What it finds" that quote numbers, from ``metrics/``."""
    mixed = json.loads((ROOT / "metrics" / "mixed23.json").read_text())
    edb = json.loads((ROOT / "metrics" / "effectsdb.json").read_text())
    sanity = json.loads((ROOT / "metrics" / "sanity.json").read_text())
    detection = [json.loads((ROOT / "metrics" / "detection" / f"{name}.json").read_text())
                 for name in ("mixed23", "effectsdb")]
    return [
        f"- Mixed23: contaminated **{_sdr(mixed, 'contaminated')}**, clean part only "
        f"**{_sdr(mixed, 'clean_only')}**; cleaning at r = 0.5 —",
        f"  unlearning **{_sdr(mixed, 'unlearn_r0.5')}**, FAD **{_sdr(mixed, 'fad_r0.5')}**, "
        f"MLP **{_sdr(mixed, 'mlp_r0.5')}**; random removal **{_sdr(mixed, 'random_r0.5')}**.",
        f"- EffectsDB: contaminated **{_sdr(edb, 'contaminated')}**; unlearning "
        f"**{_sdr(edb, 'unlearn_r0.5')}**, FAD **{_sdr(edb, 'fad_r0.5')}**, MLP "
        f"**{_sdr(edb, 'mlp_r0.5')}**; random removal **{_sdr(edb, 'random_r0.5')}**.",
        f"- Detection AUROC of the unified scores, Mixed23 / EffectsDB: unlearning "
        f"{_auroc(detection, 'unlearn/mean')}, without the Fisher {_auroc(detection, 'unlearn-naive/mean')}, "
        f"small loss {_auroc(detection, 'loss/mean')}, FAD {_auroc(detection, 'fad')}, MLP "
        f"{_auroc(detection, 'mlp')}.",
        f"  column but {int(sanity['copy_rank'])}/{int(sanity['n_songs'])} in the unified score "
        "(`metrics/sanity.json`).",
    ]


def _study_cells(pair: list[dict]) -> dict[str, str]:
    """The quoted numbers of one corpus and setting, "Mixed23 / EffectsDB" each (or the one set
    a run is limited to)."""
    def joined(values: list[str]) -> str:
        return " / ".join(values)

    def auroc(row: dict, method: str) -> str:
        return f"{next(m for m in row['methods'] if m['method'] == method)['auroc']:.2f}"

    def wins(row: dict, key: str) -> str:
        helped = [m for m in row["methods"] if verdict(m[key]) == "helps"]
        return f"{len(helped)}/{len(row['methods'])}"

    return {"harm": joined([f"{r['harm']['mean']:+.2f}" for r in pair]),
            "harm_verdict": joined([r["harm_verdict"] for r in pair]),
            **{m: joined([auroc(r, m) for r in pair]) for m in ("unlearn", "fad", "mlp")},
            "random": joined([wins(r, "versus_random") for r in pair]),
            "contaminated": joined([wins(r, "gain") for r in pair])}


def studies() -> list[str]:
    """The README's lines on the other corpora and severities, from the committed summary."""
    rows = json.loads((ROOT / "metrics/studies/summary/summary.json").read_text())["rows"]
    lines = []
    for corpus, severity in dict.fromkeys((r["corpus"], r["severity"]) for r in rows):
        if (corpus, severity) == ("bach", "severe"):
            continue  # the default, above
        pair = [r for r in rows if (r["corpus"], r["severity"]) == (corpus, severity)]
        only = "" if len(pair) == 2 else f" ({NAMES[pair[0]['set']]} only)"
        c = _study_cells(pair)
        lines.append(
            f"  - {corpus}, {severity}{only}: clean part − contaminated {c['harm']} dB "
            f"({c['harm_verdict']}); AUROC unlearning {c['unlearn']}, FAD {c['fad']}, MLP "
            f"{c['mlp']}; methods beating random removal {c['random']}, beating the "
            f"contaminated set {c['contaminated']}.")
    return lines


def test_readme_headline_numbers_are_the_committed_metrics() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in headline() + studies():
        assert line in readme, f"README out of date; expected the line\n{line}"


if __name__ == "__main__":  # print the lines to paste after a new default run
    print("\n".join(headline() + studies()))
