"""Stage ``render``: music21 pieces (default: Bach chorales) -> four-stem songs in MUSDB18-HQ
layout, plus a manifest.

    python -m stages.render --out data/rendered --cost metrics/cost/render.json

``render.real_reference`` / ``render.real_test`` replace a split by the first tracks of a real
dataset (the paper profile: MUSDB18-HQ test as the clean reference set, a held-out folder as the
test set), written in the same layout so every later stage reads them like rendered songs.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from tqdm import tqdm

from .lib.audio import peak, write_track
from .lib.cli import check_paths, exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from .lib.io import atomic_path, dumps_json, library_versions
from .lib.params import as_plain, load_base, load_section
from .lib.render import NEUTRAL, RenderParams, assign_pieces, default_soundfont, plan_song, render_song
from .lib.sources import real_tracks

log = logging.getLogger("stages.render")
REAL_SPLITS = ("reference", "test")  # splits render.real_<split> may read from a real dataset


def run(argv: list[str] | None = None) -> None:
    """Render the train / reference / test splits into ``--out``."""
    parser = stage_parser("render", __doc__ or "", cost=True, progress=True)
    parser.add_output("--out", folder=True, required=True, help="output dataset folder")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    base = load_base(resolve_params(args))
    params = load_section(args.params, "render", RenderParams)
    soundfont = Path(params.soundfont) if params.soundfont else default_soundfont()
    if not soundfont.is_file():
        raise FileNotFoundError(f"render.soundfont: {soundfont} not found")
    check_paths(args, parser, {f"render.real_{split}": Path(spec.root) for split in REAL_SPLITS
                               if (spec := getattr(params, f"real_{split}")) is not None})

    with timed(args.cost, "render") as cost, atomic_path(args.out) as tmp:
        splits = assign_pieces(params)
        rows = []
        real = {split: spec for split in REAL_SPLITS
                if (spec := getattr(params, f"real_{split}")) is not None}
        for split, spec in real.items():
            count = getattr(params, f"n_{split}")
            for track in tqdm(real_tracks(spec, base.sample_rate, count, f"render.real_{split}"),
                              desc=f"read {split}", total=count, unit="song", disable=args.quiet):
                write_track(tmp / split / track.name, track)
                rows.append({"split": split, "name": track.name, "source": f"{spec.kind}:{spec.root}"})
        jobs = [(split, score) for split, scores in splits.items() if split not in real
                for score in scores]
        for split, score in tqdm(jobs, desc="render", unit="song", disable=args.quiet):
            plan = plan_song(score, split, params)
            track = render_song(score, plan, params, base.sample_rate, soundfont)
            top = max(map(peak, [track.mixture, *track.stems.values()]))
            if params.subtype != "FLOAT" and top >= 1:
                raise ValueError(f"render.subtype: {params.subtype} would clip {track.name} "
                                 f"(peak {top:.2f}); lower render.mixture_peak")
            write_track(tmp / split / track.name, track, params.subtype)
            rows.append(dataclasses.asdict(plan))
        # keys at their neutral values are left out: the default's manifest stays as it was
        # before they existed (every training depends on data/rendered, so its bytes are a key)
        plain = {k: v for k, v in as_plain(params).items() if k not in NEUTRAL or v != NEUTRAL[k]}
        manifest = {"params": plain, "sample_rate": base.sample_rate,
                    "soundfont": soundfont.name, "versions": library_versions(("music21",
                    "pyfluidsynth", "pretty_midi", "numpy", "soundfile")), "tracks": rows}
        (tmp / "manifest.json").write_text(dumps_json(manifest))
        cost.update(songs=len(rows), audio_s=round(len(jobs) * params.excerpt_seconds, 1))
    log.info("rendered %s", {k: len(v) for k, v in splits.items() if k not in real})


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("render", run, argv)


if __name__ == "__main__":
    main()
