"""Stage ``embed``: frame embeddings of every song's stems (and mixture), computed once.

    python -m stages.embed --dataset data/mixed23 --out data/embeddings/logmel/mixed23
"""

from __future__ import annotations

import logging

import torch
from tqdm import tqdm

from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from .lib.embeddings import EmbedParams, embed_track, make_embedder
from .lib.embedstore import save_song
from .lib.io import atomic_path, dumps_json, remove_stale, sidecar
from .lib.params import load_base, load_runtime, load_section, select_device
from .lib.readers import iter_folder_dataset, list_track_folders

log = logging.getLogger("stages.embed")


def run(argv: list[str] | None = None) -> None:
    """Embed ``--dataset`` into ``--out/<song>/<stem>.npy``."""
    parser = stage_parser("embed", __doc__ or "", cost=True, progress=True)
    parser.add_input("--dataset", required=True)
    parser.add_output("--out", folder=True, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    base = load_base(resolve_params(args))
    params = load_section(args.params, "embed", EmbedParams)
    runtime = load_runtime(args.params)
    remove_stale(args.out)
    torch.set_num_threads(runtime.threads)
    n = len(list_track_folders(args.dataset))
    log.info("embed: %d songs of %s (%s)", n, args.dataset, params.backend)
    with timed(args.cost, "embed", backend=params.backend, songs=n), atomic_path(args.out) as tmp:
        embedder = make_embedder(params, select_device(runtime.device))
        frames = 0
        for track in tqdm(iter_folder_dataset(args.dataset, base.sample_rate), total=n,
                          desc=f"embed {params.backend}", unit="song", disable=args.quiet):
            stems = embed_track(embedder, track)
            save_song(tmp / track.name, stems)
            frames += sum(len(v) for v in stems.values())
        (tmp / "sidecar.json").write_text(dumps_json(sidecar(
            params, dim=embedder.dim, frames=frames, songs=n)))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("embed", run, argv)


if __name__ == "__main__":
    main()
