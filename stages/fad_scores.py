"""Stage ``fad_scores``: per-song, per-stem FAD against all reference frames of that stem.

    python -m stages.fad_scores --train data/embeddings/logmel/mixed23 \
        --reference data/embeddings/logmel/reference --out data/scores/mixed23/fad_logmel

Score = −FAD (higher = closer to the clean reference = keep). The unified score is the mean over
targets of the per-target scores, after a z-score per target when ``normalize: zscore`` (FAD
scales differ between stems, and a raw mean lets one stem dominate).
"""

from __future__ import annotations

import logging

from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from .lib.embedstore import load_store
from .lib.fad import FADParams, fad_score_table
from .lib.io import remove_stale, sidecar
from .lib.params import load_section
from .lib.scores import write_score_folder

log = logging.getLogger("stages.fad_scores")


def run(argv: list[str] | None = None) -> None:
    """Write ``scores.csv`` and ``sidecar.json`` under ``--out``."""
    parser = stage_parser("fad_scores", __doc__ or "", cost=True)
    parser.add_input("--train", required=True, help="embeddings of the training set")
    parser.add_input("--reference", required=True, help="embeddings of the reference")
    parser.add_output("--out", folder=True, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    params = load_section(resolve_params(args), "fad_scores", FADParams)
    remove_stale(args.out)
    train, ref = load_store(args.train), load_store(args.reference)
    with timed(args.cost, "fad_scores", songs=len(train)):
        table = fad_score_table(train, ref, params)
        songs = table.songs
        write_score_folder(args.out, table, sidecar(params, songs=len(songs)))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("fad_scores", run, argv)


if __name__ == "__main__":
    main()
