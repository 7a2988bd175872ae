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
from .lib.data import SongList
from .lib.io import atomic_path, dumps_json, output_folder, remove_stale, sidecar
from .lib.params import TARGETS, load_base, load_runtime, load_section
from .lib.readers import list_track_folders

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
    import torch  # here, after the fork server starts: the two load at once

    from .lib import unmix

    base = load_base(args.params)
    params = load_section(args.params, "train", unmix.TrainParams)
    songs = SongList.read(args.songs)
    check_paths(args, parser, {f"--songs[{i}]": Path(f) for i, f in enumerate(songs.all_folders())})
    valid = tuple(str(p) for p in list_track_folders(args.valid))
    log.info("train: %s training songs per target, %d validation songs, seed %d",
             {t: len(v) for t, v in songs.songs.items()}, len(valid), args.seed)
    remove_stale(args.out)
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
            remove_stale(args.live)
            output_folder(args.live)
        if args.checkpoints is not None:
            remove_stale(args.checkpoints)  # no training here: an earlier one's checkpoints go
        return
    if args.checkpoints is not None:
        output_folder(args.checkpoints)

    with timed(args.cost, "train", seed=args.seed) as cost:
        jobs = [unmix.TargetJob(
                    target=t, folders=songs.songs[t], valid_folders=valid,
                    sample_rate=base.sample_rate, params=params, seed=args.seed,
                    device=runtime.device, threads=runtime.worker_threads,
                    loading=unmix.loading(runtime), data_key=key,
                    checkpoint=args.checkpoints / f"{t}.pt" if args.checkpoints else None,
                    live_dir=args.live / t if args.live else None, quiet=args.quiet)
                for t in TARGETS]
        results = unmix.train_targets(jobs, runtime.workers)
        with atomic_path(args.out) as tmp:
            tmp.mkdir()
            for target, result in results.items():
                torch.save(result.state_dict, tmp / f"{target}.pth")
            info = {"config": unmix.model_config(params.model, base.sample_rate),
                    "training_key": key, "targets": {
                t: {"best_epoch": r.best_epoch, "best_valid_loss": r.best_valid_loss,
                    "n_songs": len(songs.songs[t]), "history": r.history}
                for t, r in results.items()}}
            (tmp / "model.json").write_text(dumps_json(info))
            (tmp / "sidecar.json").write_text(dumps_json(sidecar(
                params, seed=args.seed, sample_rate=base.sample_rate,
                songs=_names(songs))))
        cost["epochs"] = params.epochs
    if args.live is not None:
        output_folder(args.live)
    if args.checkpoints is not None:
        remove_stale(args.checkpoints)


def _names(songs: SongList) -> dict[str, list[str]]:
    return {t: [Path(f).name for f in v] for t, v in songs.songs.items()}


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad inputs end with one clear error line."""
    exit_on_user_error("train", run, argv)


if __name__ == "__main__":
    main()
