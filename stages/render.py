"""Stage ``render``: Bach chorales -> four-stem songs in MUSDB18-HQ layout, plus a manifest.

    python -m stages.render --out data/rendered --cost metrics/cost/render.json
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from tqdm import tqdm

from .lib.audio import write_track
from .lib.cli import setup_logging, stage_parser, timed
from .lib.io import atomic_path, dumps_json, library_versions
from .lib.params import as_plain, load_base, load_section
from .lib.render import RenderParams, assign_pieces, default_soundfont, plan_song, render_song

log = logging.getLogger("stages.render")


def main(argv: list[str] | None = None) -> None:
    """Render the train / reference / test splits into ``--out``."""
    parser = stage_parser(__doc__ or "", cost=True, progress=True)
    parser.add_argument("--out", type=Path, required=True, help="output dataset folder")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    base = load_base(args.params)
    params = load_section(args.params, "render", RenderParams)
    soundfont = Path(params.soundfont) if params.soundfont else default_soundfont()
    if not soundfont.is_file():
        raise SystemExit(f"render.soundfont: {soundfont} not found")

    with timed(args.cost, "render") as cost, atomic_path(args.out) as tmp:
        splits = assign_pieces(params)
        rows = []
        jobs = [(split, score) for split, scores in splits.items() for score in scores]
        for split, score in tqdm(jobs, desc="render", unit="song", disable=args.quiet):
            plan = plan_song(score, split, params)
            track = render_song(score, plan, params, base.sample_rate, soundfont)
            write_track(tmp / split / track.name, track)
            rows.append(dataclasses.asdict(plan))
        manifest = {"params": as_plain(params), "sample_rate": base.sample_rate,
                    "soundfont": soundfont.name, "versions": library_versions(("music21",
                    "pyfluidsynth", "pretty_midi", "numpy", "soundfile")), "tracks": rows}
        (tmp / "manifest.json").write_text(dumps_json(manifest))
        cost.update(songs=len(rows), audio_s=round(len(rows) * params.excerpt_seconds, 1))
    log.info("rendered %s", {k: len(v) for k, v in splits.items()})


if __name__ == "__main__":
    main()
