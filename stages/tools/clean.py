"""Clean your own dataset: rank a folder of multitrack songs against a small trusted clean set.

    python -m stages.tools.clean --songs /data/my_multitracks --reference /data/trusted_clean \
        --method fad --ratio auto --out cleaned/

Writes into --out (a new or empty folder, or one this command wrote before):
  ranking.csv   song, a score per target, unified score, rank (1 = most like the clean set)
  kept.json     the kept songs as a song list `python -m stages.train --songs` reads
                (folders relative to kept.json, so it works from any directory)
  sidecar.json  method, ratio, params and library versions
  baseline/     unlearn only: the trained baseline, reused by a later run on the same songs

Methods: fad (no training: per-song FAD of each stem's embeddings against the clean set's), mlp
(a stem classifier trained on the clean set), unlearn (trains the Open-Unmix baseline, `train`
params, then unlearning attribution, `attribute` params; track folders only). --kind reads
MUSDB18 (musdb) or MoisesDB (moisesdb) layouts for fad / mlp. Every other knob comes from the
params file (default: ./params.yaml, else the project's own).
"""

from __future__ import annotations

import logging

from ..lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from ..lib.filtering import chosen_ratio, parse_ratio
from ..lib.io import output_folder
from ..lib.params import load_base, load_runtime, load_section
from ..lib.readers import list_track_folders

log = logging.getLogger("stages.tools.clean")


def run(argv: list[str] | None = None) -> None:
    """Check the arguments, score, choose the ratio, write ranking and kept list, summarise."""
    parser = stage_parser("tools.clean", __doc__ or "", progress=True)
    parser.add_input("--songs", required=True, help="the dataset to clean")
    parser.add_argument("--kind", choices=("folder", "musdb", "moisesdb"), default="folder")
    parser.add_input("--reference", required=True, help="a small trusted clean set (track folders)")
    parser.add_argument("--method", choices=("fad", "mlp", "unlearn"), default="fad")
    parser.add_argument("--ratio", default="auto", help="proportion kept in (0, 1], or auto")
    parser.add_argument("--seed", type=int, default=0, help="unlearn: baseline training seed")
    parser.add_output("--out", folder=True, required=True)
    args = parser.parse_args(argv)  # paths are checked here, before any work
    setup_logging(args.verbose)
    ratio = parse_ratio(args.ratio)
    if args.method == "unlearn" and args.kind != "folder":
        raise ValueError("--method unlearn trains on track folders: use --kind folder")
    params = resolve_params(args)
    base, runtime = load_base(params), load_runtime(params)
    n_ref = len(list_track_folders(args.reference))
    if args.kind == "folder":
        log.info("clean: %d songs in %s, %d reference songs in %s", len(list_track_folders(
            args.songs)), args.songs, n_ref, args.reference)
    from ..lib import blind_clean as bc  # the heavy imports (torch, openunmix, transformers)
    from ..lib.cleaning import CleaningParams

    output_folder(args.out)  # marked now: a failed run leaves a folder the next run may reuse
    run_on = bc.Runtime(runtime, args.quiet)
    with timed(None, f"clean --method {args.method}") as cost:
        if args.method == "unlearn":
            train = load_section(params, "train", bc.TrainParams)
            attr = load_section(params, "attribute", bc.AttributeParams)
            bc.check_reference_lengths(list_track_folders(args.reference), attr.excerpt_seconds,
                                       "attribute.excerpt_seconds")
            table = bc.unlearn_table(args.songs, args.reference, args.out / "baseline", train,
                                     attr, args.seed, base.sample_rate, run_on)
        else:
            table = bc.embedding_table(
                args.method, args.kind, args.songs, args.reference,
                load_section(params, "embed", bc.EmbedParams),
                load_section(params, "fad_scores", bc.FADParams),
                load_section(params, "mlp_scores", bc.MLPParams), base.sample_rate, run_on)
    chosen = chosen_ratio(ratio, table.unified,
                          load_section(params, "cleaning", CleaningParams).auto_min_ratio)
    rule = "auto" if ratio == "auto" else "fixed"
    kept = bc.write_results(args.out, table, chosen, rule, args.kind, args.songs, {
        "method": args.method, "kind": args.kind, "ratio": args.ratio, "seed": args.seed,
        "params": str(params), "wall_s": cost["wall_s"]}, base.sample_rate, args.quiet)
    lowest = [table.songs[i] for i in table.unified.argsort(kind="stable")[:5]]
    log.info("%s: %d songs scored in %.0f s; kept %d (r = %.2f, %s)", args.method,
             len(table.songs), cost["wall_s"], len(kept), chosen, rule)
    log.info("lowest-scoring songs: %s", ", ".join(lowest))
    log.info("wrote %s and %s", args.out / "ranking.csv", args.out / "kept.json")


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("clean", run, argv)


if __name__ == "__main__":
    main()
