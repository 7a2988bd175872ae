"""Stage ``mlp_scores``: the specialist stem classifier, trained on the reference songs' stems.

    python -m stages.mlp_scores --reference data/embeddings/logmel/reference \
        --heldout data/embeddings/logmel/test --train data/embeddings/logmel/mixed23 \
        --out data/scores/mixed23/mlp_logmel --metrics metrics/mlp/mixed23_logmel.json
"""

from __future__ import annotations

import logging

import torch

from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from .lib.embedstore import load_store
from .lib.io import remove_stale, sidecar, write_json
from .lib.mlp import MLPParams, frame_accuracy, labelled, mlp_score_table, train_classifier
from .lib.params import load_runtime, load_section
from .lib.scores import write_score_folder

log = logging.getLogger("stages.mlp_scores")


def run(argv: list[str] | None = None) -> None:
    """Train the classifier, score every training song's stems, report held-out accuracy."""
    parser = stage_parser("mlp_scores", __doc__ or "", cost=True)
    parser.add_input("--reference", required=True)
    parser.add_input("--heldout", required=True)
    parser.add_input("--train", required=True)
    parser.add_output("--out", folder=True, required=True)
    parser.add_output("--metrics", required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    params = load_section(resolve_params(args), "mlp_scores", MLPParams)
    remove_stale(args.out, args.metrics)
    torch.set_num_threads(load_runtime(args.params).threads)
    with timed(args.cost, "mlp_scores"):
        model = train_classifier(*labelled(load_store(args.reference)), params)
        accuracy = frame_accuracy(model, *labelled(load_store(args.heldout)))
        table = mlp_score_table(model, load_store(args.train))
        write_score_folder(args.out, table, sidecar(params, songs=len(table.songs)))
        write_json(args.metrics, {"heldout_frame_accuracy": accuracy})
    log.info("held-out frame accuracy %.3f", accuracy)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("mlp_scores", run, argv)


if __name__ == "__main__":
    main()
