"""Corruption simulators: label noise, bleeding and pedalboard effects, each with ground truth.

Every simulator takes a clean :class:`Track` and a ``numpy`` generator and returns the corrupted
track plus a JSON-able record of exactly what it did (which stems, which draws), so cleaning
methods can later be scored against the truth. The mixture of a corrupted track is always the
sum of its (corrupted) stems, as in the SDXDB23 releases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt

from .audio import Track
from .params import TARGETS, check

log = logging.getLogger(__name__)

LABEL_NOISE_KINDS = ("swap", "move", "segment")
EFFECTS = ("distortion", "reverb", "lowpass", "mp3")
SEGMENT_SHARE = (0.25, 0.75)  # ``segment`` label noise: share of the song whose content moves


@dataclass(frozen=True)
class LabelNoiseParams:
    """How stems get the wrong content.

    ``swap``: two stems of the song exchange their audio (both carry the wrong instrument).
    ``move``: a stem's content is moved into another stem, which then holds two instruments while
    the source stem falls silent. ``segment``: a move limited to one stretch of the song (a random
    25-75 % of it), the subtler error of a stem that holds another instrument for a while. All
    keep the mixture bit-identical. ``stem_prob`` is the chance
    that each target stem is picked as a victim; at least one is always picked.
    """

    kinds: tuple[str, ...]
    stem_prob: dict[str, float]

    def __post_init__(self) -> None:
        for kind in self.kinds:
            check(kind in LABEL_NOISE_KINDS, "label_noise.kinds",
                  f"unknown corruption {kind!r} (known: {list(LABEL_NOISE_KINDS)})")
        check(len(self.kinds) > 0, "label_noise.kinds", "needs at least one kind")
        check(set(self.stem_prob) == set(TARGETS), "label_noise.stem_prob",
              f"needs exactly the keys {list(TARGETS)}")
        check(all(0.0 <= p <= 1.0 for p in self.stem_prob.values()), "label_noise.stem_prob",
              "probabilities must be in [0, 1]")


@dataclass(frozen=True)
class BleedingParams:
    """How stems pick up the other instruments, as a microphone in the same room would.

    Every stem receives each other stem at a gain drawn from ``gain_db``, delayed by
    ``delay_ms`` and, with probability ``filter_prob``, low-passed at a cutoff in ``lowpass_hz``.
    """

    gain_db: tuple[float, float]
    delay_ms: tuple[float, float]
    filter_prob: float
    lowpass_hz: tuple[float, float]

    def __post_init__(self) -> None:
        check(-60.0 <= self.gain_db[0] <= self.gain_db[1] <= 6.0, "bleeding.gain_db",
              "must be an increasing range within [-60, 6] dB")
        check(0.0 <= self.delay_ms[0] <= self.delay_ms[1] <= 200.0, "bleeding.delay_ms",
              "must be an increasing range within [0, 200] ms")
        check(0.0 <= self.filter_prob <= 1.0, "bleeding.filter_prob", "must be in [0, 1]")
        check(20.0 <= self.lowpass_hz[0] <= self.lowpass_hz[1], "bleeding.lowpass_hz",
              "must be an increasing range above 20 Hz")


@dataclass(frozen=True)
class EffectParams:
    """The paper's EffectsDB effects (pedalboard), applied to every stem of a song."""

    drive_db: float
    room_size: float
    damping: float
    wet_level: float
    dry_level: float
    cutoff_hz: float
    mp3_vbr_quality: float
    normalize_peak: float | None

    def __post_init__(self) -> None:
        check(0.0 <= self.drive_db <= 100.0, "effects.drive_db", "must be in [0, 100] dB")
        for key in ("room_size", "damping", "wet_level", "dry_level"):
            check(0.0 <= getattr(self, key) <= 1.0, f"effects.{key}",
                  "must be in [0, 1] (pedalboard.Reverb's range)")
        check(20.0 <= self.cutoff_hz <= 20000.0, "effects.cutoff_hz", "must be in [20, 20000] Hz")
        check(0.0 <= self.mp3_vbr_quality <= 10.0, "effects.mp3_vbr_quality",
              "must be in [0, 10] (LAME's VBR scale: 0 best, 10 worst)")
        check(self.normalize_peak is None or 0.0 < self.normalize_peak <= 1.0,
              "effects.normalize_peak", "must be null or in (0, 1]")


def _copy(track: Track, stems: dict[str, np.ndarray], **meta: object) -> Track:
    return Track(track.name, stems, track.sample_rate, None, {**track.meta, **meta})


def label_noise(track: Track, rng: np.random.Generator,
                params: LabelNoiseParams) -> tuple[Track, dict]:
    """Give some stems the wrong content (``swap`` or ``move``); the mixture stays identical."""
    probs = np.array([params.stem_prob[t] for t in TARGETS])
    picked = [t for t, hit in zip(TARGETS, rng.random(len(TARGETS)) < probs, strict=True) if hit]
    if not picked:
        weights = probs / probs.sum() if probs.sum() > 0 else None
        picked = [TARGETS[int(rng.choice(len(TARGETS), p=weights))]]
    stems = {t: track.stems[t].copy() for t in TARGETS}
    actions = []
    touched: set[str] = set()
    for victim in picked:
        if victim in touched:
            continue
        kind = str(rng.choice(params.kinds))
        partner = str(rng.choice([t for t in TARGETS if t != victim and t not in touched]
                                 or [t for t in TARGETS if t != victim]))
        action: dict = {"kind": kind, "from": victim, "to": partner}
        if kind == "swap":
            stems[victim], stems[partner] = stems[partner], stems[victim]
        else:  # move: the victim's instrument (or one stretch of it) ends up in the partner stem
            span = slice(None)
            if kind == "segment":
                n = stems[victim].shape[-1]
                length = int(round(rng.uniform(*SEGMENT_SHARE) * n))
                start = int(rng.integers(0, n - length + 1))
                span = slice(start, start + length)
                action["segment_samples"] = [start, start + length]
            moved = stems[victim][:, span].copy()
            stems[partner][:, span] = stems[partner][:, span] + moved
            stems[victim][:, span] = 0.0
        touched.update((victim, partner))
        actions.append(action)
    info = {"stems": sorted(touched), "actions": actions}
    return _copy(track, stems), info


def _delay(audio: np.ndarray, samples: int) -> np.ndarray:
    if samples <= 0:
        return audio
    out = np.zeros_like(audio)
    out[:, samples:] = audio[:, :-samples]
    return out


def lowpass(audio: np.ndarray, cutoff_hz: float, sample_rate: int, order: int = 2) -> np.ndarray:
    """Butterworth low-pass of ``[channels, samples]`` audio (float32 out)."""
    sos = butter(order, min(cutoff_hz, 0.45 * sample_rate), btype="low", fs=sample_rate,
                 output="sos")
    return sosfilt(sos, audio, axis=-1).astype(np.float32)


def bleeding(track: Track, rng: np.random.Generator, params: BleedingParams) -> tuple[Track, dict]:
    """Add attenuated, delayed, optionally filtered copies of the other stems to every stem."""
    stems = {}
    draws: dict[str, dict[str, dict[str, float | None]]] = {}
    for target in TARGETS:
        out = track.stems[target].astype(np.float32).copy()
        draws[target] = {}
        for source in TARGETS:
            if source == target:
                continue
            gain_db = float(rng.uniform(*params.gain_db))
            delay_ms = float(rng.uniform(*params.delay_ms))
            cutoff = float(rng.uniform(*params.lowpass_hz)) if rng.random() < params.filter_prob \
                else None
            leak = track.stems[source]
            if cutoff is not None:
                leak = lowpass(leak, cutoff, track.sample_rate)
            leak = _delay(leak, int(round(delay_ms * track.sample_rate / 1000.0)))
            out += np.float32(10.0 ** (gain_db / 20.0)) * leak
            draws[target][source] = {"gain_db": round(gain_db, 3), "delay_ms": round(delay_ms, 3),
                                     "lowpass_hz": None if cutoff is None else round(cutoff, 1)}
        stems[target] = out.astype(np.float32)
    return _copy(track, stems), {"stems": list(TARGETS), "leaks": draws}


def make_effect(name: str, params: EffectParams):
    """The pedalboard plugin for ``name`` with the configured (paper) parameters."""
    import pedalboard

    if name == "distortion":
        return pedalboard.Distortion(drive_db=params.drive_db)
    if name == "reverb":
        return pedalboard.Reverb(room_size=params.room_size, damping=params.damping,
                                 wet_level=params.wet_level, dry_level=params.dry_level)
    if name == "lowpass":
        return pedalboard.LowpassFilter(cutoff_frequency_hz=params.cutoff_hz)
    if name == "mp3":  # a codec's degradation: LAME encode + decode (pedalboard aligns the delay)
        return pedalboard.MP3Compressor(vbr_quality=params.mp3_vbr_quality)
    raise ValueError(f"unknown effect {name!r} (known: {list(EFFECTS)})")


def apply_effect(track: Track, name: str, params: EffectParams) -> tuple[Track, dict]:
    """Process every stem with one pedalboard effect; the mixture is rebuilt from the stems."""
    import pedalboard

    board = pedalboard.Pedalboard([make_effect(name, params)])
    stems = {}
    peaks_in, peaks_out = {}, {}
    for target in TARGETS:
        audio = track.stems[target]
        board.reset()
        out = board(audio, track.sample_rate, reset=True)[:, : audio.shape[-1]]
        stems[target] = np.ascontiguousarray(out, dtype=np.float32)
        peaks_in[target] = round(float(np.max(np.abs(audio))), 5)
        peaks_out[target] = round(float(np.max(np.abs(out))), 5)
    gain = 1.0
    if params.normalize_peak is not None:
        mix_peak = float(np.max(np.abs(sum(stems.values()))))
        gain = params.normalize_peak / mix_peak if mix_peak > 0 else 1.0
        stems = {t: (a * np.float32(gain)).astype(np.float32) for t, a in stems.items()}
    info = {"stems": list(TARGETS), "effect": name, "plugin": repr(board[0]).split(" at ")[0] + ">",
            "peak_in": peaks_in, "peak_out": peaks_out, "normalize_gain": round(gain, 6)}
    if max(peaks_out.values()) > 1.0:
        log.warning("%s: %s pushes a stem peak to %.2f (float wav, no clipping applied)",
                    track.name, name, max(peaks_out.values()))
    return _copy(track, stems), info
