"""Stage ``sanity``: plant two known songs in Mixed23 and check where attribution ranks them.

    python -m stages.sanity plant --songs data/lists/mixed23/contaminated.json \
        --reference data/rendered/reference --out data/sanity
    (train + attribute on data/sanity/songs.json with the ordinary stages)
    python -m stages.sanity check --scores data/sanity/scores --truth data/truth/mixed23.json \
        --metrics metrics/sanity.json

``plant`` adds an exact copy of the first reference song (``copy_<name>``) and a song whose four
stems are white noise at that song's stem levels (``noise``) to the contaminated training list.
After training on that list and attributing, ``check`` writes their ranks (1 = highest score =
kept first): a copy of a clean reference song should rank high, and first in its own reference
column of ΔL; pure noise should rank below every clean song.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from .lib.attribution import sanity_ranks
from .lib.audio import read_wav, stem_sum, write_wav
from .lib.cli import check_paths, exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.data import SongList, song_lists
from .lib.io import atomic_path, dumps_json, read_json, write_json
from .lib.params import TARGETS, load_base
from .lib.readers import audio_files, list_track_folders
from .lib.truth import read_truth

log = logging.getLogger("stages.sanity")

NOISE = "noise"


def plant(songs: Path, reference: Path, out: Path, sample_rate: int, seed: int = 0) -> None:
    """Write ``out/songs/{copy_<ref0>,noise}`` and ``out/songs.json`` (the list plus both)."""
    ref0 = list_track_folders(reference)[0]
    base = SongList.read(songs)
    with atomic_path(out) as tmp:
        (tmp / "songs").mkdir(parents=True)
        copy = tmp / "songs" / f"copy_{ref0.name}"
        shutil.copytree(ref0, copy)
        rng = np.random.default_rng(seed)
        stems = {}
        for target in TARGETS:
            audio = read_wav(audio_files(ref0)[target], sample_rate)
            level = float(np.sqrt(np.mean(audio**2)))
            stems[target] = (rng.standard_normal(audio.shape) * level).astype(np.float32)
        noise = tmp / "songs" / NOISE
        noise.mkdir()
        for target, audio in stems.items():
            write_wav(noise / f"{target}.wav", audio, sample_rate)
        write_wav(noise / "mixture.wav", stem_sum(stems), sample_rate)
        final = [str(out / "songs" / p.name) for p in (copy, noise)]
        (tmp / "songs.json").write_text(dumps_json(song_lists(
            {t: [*base.songs[t], *final] for t in TARGETS}, out / "songs.json")))
    log.info("planted %s and %s", f"copy_{ref0.name}", NOISE)


# the keys that depend on how ΔL is aggregated (the column ranks do not)
AGGREGATE_DEPENDENT = ("copy_rank", "copy_above_clean_median", "noise_rank", "noise_below_all_clean")


def check(scores: Path, truth: Path, metrics: Path) -> dict[str, float]:
    """Ranks of the planted songs in the unified score (under both aggregations of ΔL: the
    paper's mean, keys without suffix, and per-reference z-scores, ``_zscore``) and in the
    copy's own reference column."""
    delta = read_json(scores / "delta.json")
    names, refs = delta["train_names"], delta["reference_names"]
    copy = next(n for n in names if n.startswith("copy_"))
    own = refs.index(copy.removeprefix("copy_"))
    matrices = {t: np.asarray(m, dtype=np.float64) for t, m in delta["delta"].items()}
    clean = {name for name, kind in read_truth(truth).items() if kind == "clean"}
    result = sanity_ranks(matrices, names, copy, own, NOISE, clean)
    zscored = sanity_ranks(matrices, names, copy, own, NOISE, clean, "zscore")
    result |= {f"{key}_zscore": zscored[key] for key in AGGREGATE_DEPENDENT}
    write_json(metrics, result)
    for suffix, label in (("", "mean"), ("_zscore", "zscore")):
        log.info("%s: copy rank %d/%d (own column %d), noise rank %d/%d, below every clean "
                 "song: %s", label, result[f"copy_rank{suffix}"], result["n_songs"],
                 result["copy_rank_own_reference"], result[f"noise_rank{suffix}"],
                 result["n_songs"], bool(result[f"noise_below_all_clean{suffix}"]))
    return result


def run(argv: list[str] | None = None) -> None:
    """``plant`` or ``check``."""
    parser = stage_parser("sanity", __doc__ or "")
    parser.add_argument("action", choices=("plant", "check"))
    parser.add_input("--songs", help="plant: the contaminated song list")
    parser.add_input("--reference", help="plant: clean reference folder")
    parser.add_output("--out", folder=True, help="plant: output folder")
    parser.add_input("--scores", help="check: the attribute stage's output folder")
    parser.add_input("--truth", help="check: Mixed23 ground truth (clean songs)")
    parser.add_output("--metrics", help="check: ranks JSON")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    sample_rate = load_base(resolve_params(args)).sample_rate
    needed = {"plant": ("songs", "reference", "out"), "check": ("scores", "truth", "metrics")}
    missing = [f"--{k}" for k in needed[args.action] if getattr(args, k) is None]
    if missing:
        raise ValueError(f"{args.action} needs {' '.join(missing)}")
    if args.action == "plant":
        check_paths(args, parser, {f"--songs[{i}]": Path(f)
                                   for i, f in enumerate(SongList.read(args.songs).all_folders())})
        plant(args.songs, args.reference, args.out, sample_rate)
    else:
        check(args.scores, args.truth, args.metrics)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("sanity", run, argv)


if __name__ == "__main__":
    main()
