"""Stage ``attribute``: unlearning-based attribution of every training song, per target model.

    python -m stages.attribute --models data/models/mixed23/contaminated/seed0 \
        --songs data/lists/mixed23/contaminated.json --reference data/rendered/reference \
        --out data/scores/mixed23/unlearn/seed0

Writes ``delta.json`` (the full N × M ΔL matrix per target, with song names), ``scores.csv``
(per-target and unified scores, rank) and ``sidecar.json``. Two controls come from the same
gradients at no extra training cost: ``--naive-out`` (the same step without the Fisher
preconditioner, the paper's naive unlearning; in linear mode TracIn's gradient similarity at the
final checkpoint) and ``--loss-out`` (each song's loss under the baseline, the small-loss
heuristic: ``attribution.loss_scores``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .lib.attribution import loss_scores, scores_from_delta
from .lib.attribution_inputs import AttributeParams, attribute_models, load_song_inputs
from .lib.cli import check_paths, exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from .lib.io import read_json, remove_stale, sidecar
from .lib.params import TARGETS, load_base, load_runtime, load_section
from .lib.readers import list_track_folders
from .lib.scores import ScoreTable, write_score_folder
from .lib.songs import SongList
from .lib.unmix import load_model

log = logging.getLogger("stages.attribute")


def run(argv: list[str] | None = None) -> None:
    """Attribute every song of ``--songs`` with the models of ``--models``."""
    parser = stage_parser("attribute", __doc__ or "", cost=True, progress=True)
    parser.add_input("--models", required=True)
    parser.add_input("--songs", required=True, help="the models' training list")
    parser.add_input("--reference", required=True, help="clean reference folder")
    parser.add_output("--out", folder=True, required=True)
    parser.add_output("--naive-out", folder=True, help="scores of unlearning without the Fisher")
    parser.add_output("--loss-out", folder=True, help="scores = minus the baseline loss")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    base = load_base(resolve_params(args))
    params = load_section(args.params, "attribute", AttributeParams)
    torch.set_num_threads(load_runtime(args.params).threads)
    config = read_json(args.models / "model.json")["config"]
    train_folders = SongList.read(args.songs).all_folders()
    check_paths(args, parser, {f"--songs[{i}]": Path(f) for i, f in enumerate(train_folders)})
    ref_folders = [str(p) for p in list_track_folders(args.reference)]
    remove_stale(*(p for p in (args.out, args.naive_out, args.loss_out) if p is not None))
    log.info("attribute: %d training songs against %d reference songs", len(train_folders),
             len(ref_folders))

    with timed(args.cost, "attribute", n_train=len(train_folders), n_reference=len(ref_folders)):
        def inputs(folders: list[str], desc: str):  # noqa: ANN202
            return [load_song_inputs(f, base.sample_rate, params, config["n_fft"], config["hop"])
                    for f in tqdm(folders, desc=desc, unit="song", disable=args.quiet)]

        train, reference = inputs(train_folders, "excerpts train"), inputs(ref_folders, "excerpts ref")
        models = {t: load_model(args.models / f"{t}.pth", config) for t in TARGETS}
        result = attribute_models(models, train, reference, params, args.quiet,
                                  naive=args.naive_out is not None)
        names, ref_names = [s.name for s in train], [s.name for s in reference]
        info = {"models": args.models.name, "n_train": len(names), "n_reference": len(reference)}

        def table(scores: tuple[np.ndarray, dict[str, np.ndarray]]) -> ScoreTable:
            unified, per_target = scores
            return ScoreTable(names, per_target, unified)

        def delta_json(matrices: dict[str, np.ndarray]) -> dict:
            return {"train_names": names, "reference_names": ref_names,
                    "delta": {t: d.tolist() for t, d in matrices.items()}}

        write_score_folder(args.out, table(scores_from_delta(result.delta, params.reduction)),
                           sidecar(params, **info, summary=result.summary),
                           delta_json(result.delta))
        if args.naive_out is not None:
            write_score_folder(args.naive_out,
                               table(scores_from_delta(result.naive, params.reduction)),
                               sidecar(params, **info, preconditioner="none (naive unlearning)"),
                               delta_json(result.naive))
        if args.loss_out is not None:
            write_score_folder(args.loss_out, table(loss_scores(result.baseline)), sidecar(
                params, **info, score="minus the baseline loss (small-loss heuristic)"))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("attribute", run, argv)


if __name__ == "__main__":
    main()
