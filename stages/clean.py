"""Clean your own dataset: rank a folder of multitrack songs against a small trusted clean set.

    python -m stages.clean --songs /data/my_multitracks --reference /data/trusted_clean \
        --method fad --ratio auto --out cleaned/

Writes ``--out/ranking.csv`` (song, a score per target, unified score, rank; 1 = most like the
clean set), ``--out/kept.json`` (the kept songs in the song-list format ``stages.train`` reads, at
the given ratio or the automatic one) and ``--out/sidecar.json``, then prints a short summary.

Methods: ``fad`` (no training: per-song FAD of each stem's embeddings against the clean set's),
``mlp`` (a stem classifier trained on the clean set), ``unlearn`` (trains the Open-Unmix baseline
on the songs, ``train`` params, then unlearning attribution, ``attribute`` params; track-folder
layout only). ``--kind`` reads MUSDB18 (``musdb``) or MoisesDB (``moisesdb``) layouts for fad/mlp.
Every other knob comes from the params file's sections (``embed``, ``fad_scores``, ...).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .lib.attribution import scores_from_delta
from .lib.attribution_inputs import AttributeParams, attribute_models, load_song_inputs
from .lib.cli import exit_on_user_error, setup_logging, stage_parser, timed
from .lib.embeddings import EmbedParams, embed_track, make_embedder
from .lib.fad import FADParams, fad_score_table
from .lib.filtering import chosen_ratio, kept_songs, parse_ratio
from .lib.io import atomic_path, dumps_json, sidecar
from .lib.mlp import MLPParams, labelled, mlp_score_table, train_classifier
from .lib.params import TARGETS, load_base, load_section
from .lib.readers import iter_source, list_track_folders
from .lib.scores import ScoreTable
from .lib.unmix import TargetJob, TrainParams, build_model, train_targets

log = logging.getLogger("stages.clean")

Store = dict[str, dict[str, np.ndarray]]


def embed_source(kind: str, root: Path, sample_rate: int, params: EmbedParams,
                 quiet: bool) -> Store:
    """Frame embeddings of every song of a source; duplicate song names are an error."""
    embedder = make_embedder(params)
    store: Store = {}
    for track in tqdm(iter_source(kind, root, sample_rate), desc=f"embed {root.name}",
                      unit="song", disable=quiet):
        if track.name in store:
            raise ValueError(f"{root}: two songs are named {track.name!r}")
        store[track.name] = embed_track(embedder, track)
    return store


def unlearn_table(songs: Path, reference: Path, params_path: Path, seed: int,
                  quiet: bool) -> ScoreTable:
    """Train the baseline on ``songs`` and score every song by unlearning attribution."""
    base = load_base(params_path)
    train = load_section(params_path, "train", TrainParams)
    attr = load_section(params_path, "attribute", AttributeParams)
    folders = tuple(str(p) for p in list_track_folders(songs))
    valid = tuple(str(p) for p in list_track_folders(reference))
    jobs = [TargetJob(t, folders, valid, base.sample_rate, train, seed, quiet=quiet)
            for t in TARGETS]
    models = {}
    for target, result in train_targets(jobs, train.workers).items():
        model = build_model(train.model, base.sample_rate)
        model.load_state_dict(result.state_dict)
        models[target] = model.eval()
    torch.set_num_threads(attr.threads)
    hop, n_fft = train.model.hop, train.model.n_fft

    def inputs(paths: tuple[str, ...], desc: str) -> list:
        return [load_song_inputs(p, base.sample_rate, attr, n_fft, hop)
                for p in tqdm(paths, desc=desc, unit="song", disable=quiet)]

    deltas, _ = attribute_models(models, inputs(folders, "excerpts"), inputs(valid, "reference"),
                                 attr.unlearn, quiet)
    unified, per_target = scores_from_delta(deltas, attr.aggregate)
    return ScoreTable([Path(f).name for f in folders], per_target, unified)


def score(args) -> ScoreTable:  # noqa: ANN001
    """The chosen method's score table for ``args.songs``."""
    sample_rate = load_base(args.params).sample_rate
    if args.method == "unlearn":
        if args.kind != "folder":
            raise ValueError("--method unlearn trains on track folders: use --kind folder")
        return unlearn_table(args.songs, args.reference, args.params, args.seed, args.quiet)
    embed = load_section(args.params, "embed", EmbedParams)
    torch.set_num_threads(embed.threads)
    train = embed_source(args.kind, args.songs, sample_rate, embed, args.quiet)
    reference = embed_source("folder", args.reference, sample_rate, embed, args.quiet)
    if args.method == "fad":
        return fad_score_table(train, reference, load_section(args.params, "fad_scores",
                                                              FADParams))
    model = train_classifier(*labelled(reference), load_section(args.params, "mlp_scores",
                                                                 MLPParams))
    return mlp_score_table(model, train)


def run(argv: list[str] | None = None) -> None:
    """Score, choose the ratio, write the ranking and the kept list, print a summary."""
    parser = stage_parser(__doc__ or "", progress=True)
    parser.add_argument("--songs", type=Path, required=True, help="the dataset to clean")
    parser.add_argument("--kind", choices=("folder", "musdb", "moisesdb"), default="folder")
    parser.add_argument("--reference", type=Path, required=True,
                        help="a small trusted clean set (track folders)")
    parser.add_argument("--method", choices=("fad", "mlp", "unlearn"), default="fad")
    parser.add_argument("--ratio", default="auto", help="proportion kept in (0, 1], or auto")
    parser.add_argument("--seed", type=int, default=0, help="unlearn: baseline training seed")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    args.ratio = parse_ratio(args.ratio)
    with timed(None, "clean") as cost:
        table = score(args)
    ratio = chosen_ratio(args.ratio, table.unified, args.params)
    kept = kept_songs(table, ratio, "unified")["vocals"]
    where = {p.name: str(p) for p in list_track_folders(args.songs)} if args.kind == "folder" \
        else {s: s for s in table.songs}
    with atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        table.write(tmp / "ranking.csv")
        (tmp / "kept.json").write_text(dumps_json({
            "songs": {t: [where[s] for s in kept] for t in TARGETS}, "ratio": ratio,
            "rule": "auto" if args.ratio == "auto" else "fixed", "n_total": len(table.songs)}))
        (tmp / "sidecar.json").write_text(dumps_json(sidecar(
            {"method": args.method, "kind": args.kind, "ratio": args.ratio, "seed": args.seed},
            songs=str(args.songs), reference=str(args.reference), wall_s=cost["wall_s"])))
    order = np.argsort(table.unified, kind="stable")
    print(f"{args.method}: {len(table.songs)} songs scored in {cost['wall_s']:.0f} s; "
          f"kept {len(kept)} (r = {ratio:.2f}, {'auto' if args.ratio == 'auto' else 'fixed'})")
    print("lowest-scoring songs: " + ", ".join(table.songs[i] for i in order[:5]))
    print(f"wrote {args.out / 'ranking.csv'} and {args.out / 'kept.json'}")


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("clean", run, argv)


if __name__ == "__main__":
    main()
