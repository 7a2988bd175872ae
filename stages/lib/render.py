"""Render polyphonic pieces of music21's corpus (default: Bach chorales) into four-stem songs.

The top voice -> ``vocals`` (a voice-like General MIDI patch), the lowest voice -> ``bass`` (a bass
patch), the inner voices -> ``other`` (melodic patches), and a generated drum part that follows the
piece's meter and tempo -> ``drums`` (the soundfont's percussion kit). ``render.voices: satb``
takes only pieces of exactly four voices named Soprano, Alto, Tenor, Bass (the chorales);
``outer`` any piece of four or more voices (e.g. Palestrina's masses, ``render.corpus:
palestrina``). Each stem is rendered by its own
synthesizer (one instrument at a time), dry (FluidSynth reverb and chorus off), so stems are
exactly separable and ``mixture = sum of stems`` (to the last bit when stored as float; PCM
storage quantises each file on its own). Everything drawn per song (tempo,
transposition, programs, velocities, pan, excerpt start, drum variations) comes from one
``numpy`` generator seeded by ``(seed, piece)``: re-rendering is bit-identical.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import Track
from .params import TARGETS, check
from .rng import keyed_rng
from .sources import SourceSpec

log = logging.getLogger(__name__)

# General MIDI programs (0-based), grouped by the stem they may play.
VOICE_PROGRAMS = (52, 53, 54, 85)  # choir aahs, voice oohs, synth voice, lead 6 (voice)
BASS_PROGRAMS = (32, 33, 34, 35, 38)  # acoustic, finger, pick, fretless, synth bass 1
OTHER_PROGRAMS = (0, 4, 19, 24, 40, 48, 68, 71, 11)  # piano, e-piano, organ, guitar, violin,
# strings, oboe, clarinet, vibraphone
SATB = ("Soprano", "Alto", "Tenor", "Bass")
DRUM_CHANNEL = 9
VOICE_RULES = ("satb", "outer")
SUBTYPES = ("FLOAT", "PCM_24", "PCM_16")  # how rendered stems are stored (PCM: quantised)
# params at these values are left out of the manifest, so the default's bytes (a cache key of
# every later stage) are those written before the keys existed
NEUTRAL = {"corpus": "bach", "voices": "satb", "stem_level_db": 0.0, "subtype": "FLOAT",
           "real_reference": None, "real_test": None}
GM_DRUMS = {"kick": 36, "snare": 38, "side": 37, "hat": 42, "open_hat": 46, "ride": 51,
            "crash": 49}


@dataclass(frozen=True)
class RenderParams:
    """``render`` section: how many songs per split and the ranges drawn per song."""

    seed: int
    n_train: int
    n_reference: int
    n_test: int
    excerpt_seconds: float
    tempo_bpm: tuple[float, float]
    transpose_semitones: tuple[int, int]
    velocity: tuple[int, int]
    pan_width: float
    bass_octave_shift: int
    mixture_peak: float
    vocals_programs: tuple[int, ...]
    bass_programs: tuple[int, ...]
    other_programs: tuple[int, ...]
    soundfont: str | None
    synth_gain: float
    corpus: str
    voices: str
    stem_level_db: float
    subtype: str
    real_reference: SourceSpec | None
    real_test: SourceSpec | None

    def __post_init__(self) -> None:
        for key in ("n_train", "n_reference", "n_test"):
            check(getattr(self, key) >= 1, f"render.{key}", "must be >= 1")
        total = self.n_train + self.n_reference + self.n_test
        check(total <= 1000, "render.n_train", f"{total} songs requested; at most 1000")
        check(bool(self.corpus.strip()), "render.corpus", "must name a composer of music21's corpus")
        check(self.voices in VOICE_RULES, "render.voices", f"must be one of {sorted(VOICE_RULES)}")
        check(0.0 <= self.stem_level_db <= 24.0, "render.stem_level_db", "must be in [0, 24] dB")
        check(self.subtype in SUBTYPES, "render.subtype", f"must be one of {list(SUBTYPES)}")
        check(1.0 <= self.excerpt_seconds <= 600.0, "render.excerpt_seconds", "must be in [1, 600]")
        check(20 <= self.tempo_bpm[0] <= self.tempo_bpm[1] <= 300, "render.tempo_bpm",
              "must be an increasing range within [20, 300]")
        check(self.transpose_semitones[0] <= self.transpose_semitones[1],
              "render.transpose_semitones", "must be an increasing range")
        check(1 <= self.velocity[0] <= self.velocity[1] <= 127, "render.velocity",
              "must be an increasing range within [1, 127]")
        check(0.0 <= self.pan_width <= 1.0, "render.pan_width", "must be in [0, 1]")
        check(0.0 < self.mixture_peak <= 1.0, "render.mixture_peak", "must be in (0, 1]")
        check(0.0 < self.synth_gain <= 2.0, "render.synth_gain", "must be in (0, 2]")
        for key in ("vocals_programs", "bass_programs", "other_programs"):
            progs = getattr(self, key)
            check(len(progs) > 0 and all(0 <= p <= 127 for p in progs), f"render.{key}",
                  "needs at least one General MIDI program in [0, 127]")


@dataclass(frozen=True)
class Note:
    """A note event: onset and duration in quarter notes, MIDI pitch and velocity."""

    onset_ql: float
    duration_ql: float
    pitch: int
    velocity: int


@dataclass
class Score:
    """The voices of one piece, top to bottom, as ``(stem, notes)`` plus its bar grid
    (quarter-note units)."""

    piece: str
    parts: list[tuple[str, list[tuple[float, float, int]]]]
    bars: list[tuple[float, float, float]]  # (bar start, first sounding offset, bar length)
    length_ql: float
    meter: str = "4/4"


@dataclass
class SongPlan:
    """Everything drawn for one song; stored in the manifest as its provenance."""

    name: str
    split: str
    piece: str
    seed: int
    tempo_bpm: float
    transpose: int
    programs: dict[str, list[int]]
    velocity: dict[str, int]
    pan: dict[str, float]
    excerpt_start_s: float
    meter: str
    gain: float = 1.0
    extra: dict[str, object] = field(default_factory=dict)


def default_soundfont() -> Path:
    """The General MIDI soundfont shipped with pretty_midi (``TimGM6mb.sf2``)."""
    import pretty_midi

    return Path(os.path.dirname(pretty_midi.__file__)) / "TimGM6mb.sf2"


def corpus_paths(composer: str = "bach") -> list[Path]:
    """All pieces of ``composer`` in music21's corpus, sorted by file name."""
    from music21 import corpus

    paths = sorted((Path(p) for p in corpus.getComposer(composer)), key=lambda p: p.name)
    if not paths:
        raise ValueError(f"render.corpus: music21's corpus has no pieces by {composer!r}")
    return paths


def load_score(path: Path, voices: str = "satb") -> Score | None:
    """Parse a piece into its voices' note lists, top to bottom, each with the stem it plays;
    ``None`` unless it fits the ``voices`` rule (``satb``: exactly Soprano, Alto, Tenor, Bass;
    ``outer``: four or more voices) and every voice has notes."""
    from music21 import corpus, stream

    parsed = corpus.parse(str(path))
    if voices == "satb":
        by_name = {(p.partName or "").strip(): p for p in parsed.parts}
        if len(parsed.parts) != 4 or any(v not in by_name for v in SATB):
            return None
        ordered = [by_name[v] for v in SATB]
    else:
        ordered = list(parsed.parts)
        if len(ordered) < 4:
            return None
    stems = ["vocals", *["other"] * (len(ordered) - 2), "bass"]
    parts: list[tuple[str, list[tuple[float, float, int]]]] = []
    for stem, part in zip(stems, ordered, strict=True):
        notes = []
        for element in part.stripTies().flatten().notes:
            for pitch in element.pitches:
                notes.append((float(element.offset), float(element.quarterLength), int(pitch.midi)))
        if not notes:
            return None
        parts.append((stem, notes))
    bars = []
    measures = list(ordered[0].getElementsByClass(stream.Measure))
    meter = "4/4"
    for measure in measures:
        bar_len = float(measure.barDuration.quarterLength)
        pad = float(measure.paddingLeft or 0.0)
        offset = float(measure.offset)
        bars.append((offset - pad, offset, bar_len))
    ts = parsed.recurse().getElementsByClass("TimeSignature").first()
    if ts is not None:
        meter = ts.ratioString
    length = float(parsed.highestTime)
    if length <= 0 or not bars:
        return None
    return Score(path.stem, parts, bars, length, meter)


def plan_song(score: Score, split: str, params: RenderParams) -> SongPlan:
    """Draw tempo, transposition, programs, velocities, pan and excerpt start for one song."""
    rng = keyed_rng(params.seed, score.piece)
    tempo = float(rng.uniform(*params.tempo_bpm))
    lo, hi = params.transpose_semitones
    transpose = int(rng.integers(lo, hi + 1))
    programs = {
        "vocals": [int(rng.choice(params.vocals_programs))],
        "bass": [int(rng.choice(params.bass_programs))],
        "other": [int(p) for p in rng.choice(params.other_programs, size=2)],
        "drums": [0],
    }
    velocity = {t: int(rng.integers(params.velocity[0], params.velocity[1] + 1)) for t in TARGETS}
    pan = {t: float(rng.uniform(-params.pan_width, params.pan_width)) for t in TARGETS}
    pan["bass"] *= 0.3  # bass and kick sit near the centre, as in most mixes
    pan["drums"] *= 0.3
    piece_s = score.length_ql * 60.0 / tempo
    start = float(rng.uniform(0.0, max(0.0, piece_s - params.excerpt_seconds)))
    extra: dict[str, object] = {"drum_seed": int(rng.integers(2**31))}
    if params.stem_level_db > 0:  # its own stream: the draws above do not depend on it
        levels = keyed_rng(params.seed, score.piece, "stem_level").uniform(
            -params.stem_level_db, params.stem_level_db, size=len(TARGETS))
        extra["stem_level_db"] = {t: round(float(v), 3) for t, v in zip(TARGETS, levels, strict=True)}
    return SongPlan(f"{score.piece}", split, score.piece, params.seed, round(tempo, 3), transpose,
                    programs, velocity, pan, round(start, 4), score.meter, extra=extra)


def drum_events(score: Score, rng: np.random.Generator, base_velocity: int) -> list[Note]:
    """A drum part on the piece's bar grid: kick/snare backbeat, hats on eighths, fills, crashes."""
    events: list[Note] = []
    use_ride = bool(rng.random() < 0.3)
    for bar_index, (bar_start, first, bar_len) in enumerate(score.bars):
        beats = max(1, int(round(bar_len)))
        for eighth in range(beats * 2):
            t = bar_start + eighth * 0.5
            if t < first - 1e-9:
                continue  # the missing part of a pick-up bar
            beat, offbeat = divmod(eighth, 2)
            if not offbeat:
                if beat == 0 or (beats == 4 and beat == 2) or rng.random() < 0.08:
                    events.append(Note(t, 0.5, GM_DRUMS["kick"], base_velocity))
                if (beats >= 3 and beat % 2 == 1) or (beats == 3 and beat == 2):
                    events.append(Note(t, 0.5, GM_DRUMS["snare"], base_velocity))
            elif rng.random() < 0.1:
                events.append(Note(t, 0.5, GM_DRUMS["kick"], base_velocity - 15))
            cymbal = "ride" if use_ride else ("open_hat" if eighth == beats * 2 - 1
                                              and rng.random() < 0.25 else "hat")
            accent = 0 if offbeat else 10
            events.append(Note(t, 0.5, GM_DRUMS[cymbal], base_velocity - 20 + accent))
        if bar_index % 4 == 0 and bar_start >= first - 1e-9:
            events.append(Note(bar_start, 2.0, GM_DRUMS["crash"], base_velocity))
    return events


def pitched_events(notes: list[tuple[float, float, int]], shift: int, velocity: int,
                   rng: np.random.Generator) -> list[Note]:
    """Transpose a part and give each note a slightly humanised velocity."""
    jitter = rng.integers(-8, 9, size=len(notes))
    return [Note(on, dur, int(np.clip(p + shift, 0, 127)), int(np.clip(velocity + j, 1, 127)))
            for (on, dur, p), j in zip(notes, jitter, strict=True)]


def loop_events(events: list[Note], length_ql: float, needed_ql: float) -> list[Note]:
    """Repeat a part back to back until it covers ``needed_ql`` quarter notes."""
    out = list(events)
    shift = length_ql
    while shift < needed_ql:
        out += [Note(e.onset_ql + shift, e.duration_ql, e.pitch, e.velocity) for e in events]
        shift += length_ql
    return out


def synthesize(channels: list[tuple[int, list[Note]]], tempo: float, seconds: float,
               sample_rate: int, soundfont: Path, gain: float, pan: float) -> np.ndarray:
    """Render ``[(program, notes)]`` on one dry FluidSynth instance -> float32 ``[2, samples]``.

    Program ``-1`` selects the percussion kit on MIDI channel 10.
    """
    import fluidsynth

    synth = fluidsynth.Synth(gain=gain, samplerate=float(sample_rate))
    try:
        synth.setting("synth.reverb.active", 0)
        synth.setting("synth.chorus.active", 0)
        sfid = synth.sfload(str(soundfont))
        if sfid < 0:
            raise FileNotFoundError(f"{soundfont}: FluidSynth could not load the soundfont")
        timeline: list[tuple[int, int, int, int, int]] = []  # (sample, order, channel, pitch, vel)
        for index, (program, notes) in enumerate(channels):
            channel = DRUM_CHANNEL if program < 0 else index
            synth.program_select(channel, sfid, 128 if program < 0 else 0, max(program, 0))
            synth.cc(channel, 10, int(round(64 + 63 * pan)))
            for note in notes:
                on = int(round(note.onset_ql * 60.0 / tempo * sample_rate))
                off = int(round((note.onset_ql + note.duration_ql) * 60.0 / tempo * sample_rate))
                timeline.append((on, 1, channel, note.pitch, note.velocity))
                timeline.append((max(off - 1, on + 1), 0, channel, note.pitch, 0))
        total = int(round(seconds * sample_rate))
        timeline.sort()
        chunks, cursor = [], 0
        for sample, is_on, channel, pitch, velocity in timeline:
            if sample >= total:
                break
            if sample > cursor:
                chunks.append(synth.get_samples(sample - cursor))
                cursor = sample
            if is_on:
                synth.noteon(channel, pitch, velocity)
            else:
                synth.noteoff(channel, pitch)
        if total > cursor:
            chunks.append(synth.get_samples(total - cursor))
    finally:
        synth.delete()
    interleaved = np.concatenate(chunks).astype(np.float32) / 32768.0
    return np.ascontiguousarray(interleaved.reshape(-1, 2).T)


def render_song(score: Score, plan: SongPlan, params: RenderParams, sample_rate: int,
                soundfont: Path) -> Track:
    """Render the planned excerpt of ``score`` into a four-stem :class:`Track`."""
    rng = keyed_rng(plan.extra["drum_seed"], score.piece)  # type: ignore[arg-type]
    seconds_per_ql = 60.0 / plan.tempo_bpm
    end_s = plan.excerpt_start_s + params.excerpt_seconds
    needed_ql = end_s / seconds_per_ql + 1.0
    layout: dict[str, list[tuple[int, list[Note]]]] = {t: [] for t in TARGETS}
    for stem, notes in score.parts:  # in score order: the velocity jitter's draws follow it
        shift = plan.transpose + (12 * params.bass_octave_shift if stem == "bass" else 0)
        events = loop_events(pitched_events(notes, shift, plan.velocity[stem], rng),
                             score.length_ql, needed_ql)
        programs = plan.programs[stem]  # inner voices alternate between the two `other` patches
        layout[stem].append((programs[len(layout[stem]) % len(programs)], events))
    drums = loop_events(drum_events(score, rng, plan.velocity["drums"]), score.length_ql, needed_ql)
    layout["drums"] = [(-1, drums)]
    start = int(round(plan.excerpt_start_s * sample_rate))
    length = int(round(params.excerpt_seconds * sample_rate))
    stems = {}
    for target in TARGETS:
        audio = synthesize(layout[target], plan.tempo_bpm, end_s, sample_rate, soundfont,
                           params.synth_gain, plan.pan[target])
        stems[target] = audio[:, start:start + length]
    for target, level_db in plan.extra.get("stem_level_db", {}).items():  # type: ignore[union-attr]
        stems[target] = stems[target] * np.float32(10.0 ** (level_db / 20.0))
    mix_peak = float(np.max(np.abs(sum(stems.values()))))
    plan.gain = params.mixture_peak / mix_peak if mix_peak > 0 else 1.0
    for target in TARGETS:
        stems[target] = (stems[target] * np.float32(plan.gain)).astype(np.float32)
    return Track(plan.name, stems, sample_rate, None, {"split": plan.split})


def assign_pieces(params: RenderParams) -> dict[str, list[Score]]:
    """Pick disjoint pieces for ``train``, ``reference`` and ``test`` (shuffled by the seed;
    names are unique: they become song folders)."""
    paths = corpus_paths(params.corpus)
    order = np.random.default_rng(params.seed).permutation(len(paths))
    wanted = {"train": params.n_train, "reference": params.n_reference, "test": params.n_test}
    splits: dict[str, list[Score]] = {k: [] for k in wanted}
    names = iter(wanted)
    current = next(names)
    taken: set[str] = set()
    for index in order:
        if paths[index].stem in taken:
            continue  # a piece's name is its song folder: a second file of that name is skipped
        score = load_score(paths[index], params.voices)
        if score is None:
            continue
        taken.add(score.piece)
        splits[current].append(score)
        if len(splits[current]) == wanted[current]:
            current = next(names, "")
            if not current:
                return splits
    raise ValueError(f"render.n_train: only {sum(map(len, splits.values()))} pieces of "
                     f"{params.corpus!r} fit render.voices: {params.voices}, "
                     f"{sum(wanted.values())} requested (render.n_train/n_reference/n_test)")
