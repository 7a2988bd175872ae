"""Stage ``train``: one Open-Unmix model per target on a song list, best-validation weights kept.

    python -m stages.train --songs data/lists/mixed23/contaminated.json \
        --valid data/rendered/reference --seed 0 --out data/models/mixed23/contaminated/seed0 \
        --checkpoints data/checkpoints/mixed23/contaminated/seed0
"""

from __future__ import annotations

import logging
from pathlib import Path

from .lib import workers
from .lib.cli import check_paths, exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from .lib.io import output_folder, remove_stale, sidecar
from .lib.livelog import write_training_logs
from .lib.params import load_base, load_runtime, load_section
from .lib.readers import list_track_folders
from .lib.songs import SongList

log = logging.getLogger("stages.train")


def run(argv: list[str] | None = None) -> None:
    """Train the four target models and write ``--out/{target}.pth`` + ``model.json``."""
    parser = stage_parser("train", __doc__ or "", cost=True, progress=True)
    parser.add_input("--songs", required=True, help="song-list JSON")
    parser.add_input("--valid", required=True, help="clean reference folder")
    parser.add_input("--reuse", action="append", default=[], help="model folder that may hold "
                     "this very training (same songs by content, params, seed, code): copied "
                     "instead of trained again (repeatable)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_output("--out", folder=True, required=True, help="model folder")
    parser.add_output("--checkpoints", folder=True, help="resume folder (deleted on success)")
    parser.add_output("--live", folder=True, help="dvclive log folder")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    runtime = load_runtime(resolve_params(args))
    if runtime.workers > 1:
        workers.start_server()  # the workers' imports (torch: 2 s) overlap this process's
    from .lib import unmix  # torch: here, after the fork server starts (the two load at once)

    base = load_base(args.params)
    params = load_section(args.params, "train", unmix.TrainParams)
    songs = SongList.read(args.songs)
    check_paths(args, parser, {f"--songs[{i}]": Path(f) for i, f in enumerate(songs.all_folders())})
    valid = tuple(str(p) for p in list_track_folders(args.valid))
    log.info("train: %s training songs per target, %d validation songs, seed %d",
             {t: len(v) for t, v in songs.songs.items()}, len(valid), args.seed)
    remove_stale(args.out, *([args.live] if args.live else []))  # logs come after training
    key = unmix.training_key(songs.songs, valid, params, args.seed, base.sample_rate,
                             runtime.device, runtime.worker_threads)
    same = unmix.find_training(args.reuse, key)
    if same is not None:
        with timed(args.cost, "train", seed=args.seed) as cost:
            log.info("train: %s holds this very training (key %s): copied, not trained again",
                     same, key)
            unmix.copy_training(same, args.out, sidecar(
                params, seed=args.seed, reused=str(same), sample_rate=base.sample_rate,
                songs=_names(songs)))
            cost["epochs"], cost["reused"] = 0, str(same)
        if args.live is not None:
            output_folder(args.live)
        if args.checkpoints is not None:
            remove_stale(args.checkpoints)  # no training here: an earlier one's checkpoints go
        return
    if args.checkpoints is not None:
        output_folder(args.checkpoints)

    with timed(args.cost, "train", seed=args.seed) as cost:
        jobs = unmix.target_jobs(songs.songs, valid, params, args.seed, base.sample_rate, runtime,
                                 key, args.checkpoints, args.quiet)
        results = unmix.train_targets(jobs, runtime.workers)
        unmix.save_training(args.out, results, params, base.sample_rate, key,
                            {t: len(v) for t, v in songs.songs.items()},
                            sidecar(params, seed=args.seed, sample_rate=base.sample_rate,
                                    songs=_names(songs)))
        cost["epochs"] = params.epochs
    if args.live is not None:
        write_training_logs(output_folder(args.live), {t: r.history for t, r in results.items()})
    if args.checkpoints is not None:
        remove_stale(args.checkpoints)


def _names(songs: SongList) -> dict[str, list[str]]:
    return {t: [Path(f).name for f in v] for t, v in songs.songs.items()}


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad inputs end with one clear error line."""
    exit_on_user_error("train", run, argv)


if __name__ == "__main__":
    main()
