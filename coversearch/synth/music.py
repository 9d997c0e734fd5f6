"""The note-level musical model: works, and performances of a work.

A ``Work`` is what every version shares: a key and mode, a tempo and metre,
an idiom (pop, rock, blues, jazz, folk), sections (intro, verse, chorus,
bridge, outro) each with a chord progression and a melody (scale-aware, with
repeated motifs), and a form (the order of sections, with repeats).

A ``Performance`` is one version: ``perform`` applies, with random strengths
drawn from a ``VariationConfig``, a transposition to any key, a tempo change
with drift, structural edits (dropped/repeated/reordered sections, a new
intro/outro, an excerpt), reharmonisation (ordinary: 10-40% of chords; hard
"melody kept": most chords replaced by others that still fit the melody), a
changed melody (ornaments, displaced notes, octave), and a new arrangement:
instruments, voicings, register, accompaniment pattern, bass line, drums.
The result is a list of timed notes plus the performed chord timeline; the
rendering to audio and features lives in ``render``.

Pitch classes are absolute with C = 0 (MIDI % 12); chord roots inside a work
are relative to its tonic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coversearch.synth.config import VariationConfig

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10), "dim": (0, 3, 6), "m7b5": (0, 3, 6, 10), "sus4": (0, 5, 7),
    "sus2": (0, 2, 7), "6": (0, 4, 7, 9), "m6": (0, 3, 7, 9), "9": (0, 4, 7, 10, 14),
    "add9": (0, 4, 7, 14), "aug": (0, 4, 8), "dim7": (0, 3, 6, 9), "m9": (0, 3, 7, 10, 14),
}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# diatonic triads/sevenths (root, quality) used by reharmonisation
DIATONIC = {
    "major": [(0, "maj"), (2, "min"), (4, "min"), (5, "maj"), (7, "maj"), (9, "min"), (11, "dim"),
              (0, "maj7"), (2, "m7"), (4, "m7"), (5, "maj7"), (7, "7"), (9, "m7")],
    "minor": [(0, "min"), (2, "dim"), (3, "maj"), (5, "min"), (7, "min"), (8, "maj"), (10, "maj"),
              (7, "7"), (0, "m7"), (5, "m7"), (3, "maj7"), (8, "maj7"), (2, "m7b5")],
}
BORROWED = {"major": [(5, "min"), (8, "maj"), (10, "maj"), (3, "maj"), (0, "min"), (7, "min")],
            "minor": [(5, "maj"), (0, "maj"), (7, "maj"), (1, "maj"), (9, "dim")]}

P = lambda s: [(int(r), q) for r, q in (c.split(":") for c in s.split())]  # noqa: E731
PROGRESSIONS: dict[str, dict[str, list[list[tuple[int, str]]]]] = {
    "pop": {"major": [P("0:maj 7:maj 9:min 5:maj"), P("9:min 5:maj 0:maj 7:maj"),
                      P("0:maj 9:min 5:maj 7:maj"), P("5:maj 0:maj 7:maj 9:min"),
                      P("0:maj 5:maj 9:min 7:maj"), P("0:maj 4:min 5:maj 7:maj"),
                      P("2:min 5:maj 0:maj 7:maj"), P("0:maj 7:maj 5:maj 5:maj")],
            "minor": [P("0:min 8:maj 3:maj 10:maj"), P("0:min 5:min 8:maj 7:maj"),
                      P("0:min 10:maj 8:maj 10:maj"), P("8:maj 10:maj 0:min 0:min")]},
    "rock": {"major": [P("0:maj 10:maj 5:maj 0:maj"), P("0:maj 5:maj 7:maj 5:maj"),
                       P("0:maj 3:maj 5:maj 0:maj"), P("8:maj 10:maj 0:maj 0:maj"),
                       P("0:maj 7:maj 5:maj 5:maj"), P("9:min 7:maj 5:maj 7:maj")],
             "minor": [P("0:min 10:maj 8:maj 10:maj"), P("0:min 3:maj 10:maj 5:maj"),
                       P("0:min 0:min 8:maj 10:maj"), P("0:min 5:min 10:maj 3:maj")]},
    "blues": {"major": [P("0:7 0:7 0:7 0:7 5:7 5:7 0:7 0:7 7:7 5:7 0:7 7:7"),
                        P("0:7 5:7 0:7 0:7 5:7 5:7 0:7 0:7 7:7 5:7 0:7 0:7")],
              "minor": [P("0:m7 0:m7 0:m7 0:m7 5:m7 5:m7 0:m7 0:m7 8:7 7:7 0:m7 7:7")]},
    "jazz": {"major": [P("2:m7 7:7 0:maj7 0:maj7"), P("0:maj7 9:m7 2:m7 7:7"),
                       P("4:m7 9:7 2:m7 7:7"), P("0:maj7 5:maj7 4:m7 9:7"),
                       P("5:maj7 10:7 0:maj7 9:7")],
             "minor": [P("2:m7b5 7:7 0:m7 0:m7"), P("0:m7 5:m7 10:7 3:maj7"),
                       P("8:maj7 2:m7b5 7:7 0:m7")]},
    "folk": {"major": [P("0:maj 5:maj 0:maj 7:maj"), P("0:maj 7:maj 5:maj 0:maj"),
                       P("0:maj 0:maj 5:maj 0:maj"), P("9:min 5:maj 0:maj 7:maj"),
                       P("0:maj 2:min 5:maj 0:maj")],
             "minor": [P("0:min 10:maj 0:min 7:min"), P("0:min 3:maj 10:maj 0:min"),
                       P("0:min 5:min 0:min 10:maj")]},
}
IDIOMS = tuple(PROGRESSIONS)

# one-bar melody rhythms in 4/4: (onset beat, duration beats)
RHYTHMS4 = [
    [(0, 1), (1, 1), (2, 1), (3, 1)], [(0, 1.5), (1.5, 0.5), (2, 2)],
    [(0, .5), (.5, .5), (1, 1), (2, .5), (2.5, 1.5)], [(.5, .5), (1, .5), (1.5, 1), (2.5, .5), (3, 1)],
    [(0, 2), (2, 1), (3, 1)], [(0, .75), (.75, .75), (1.5, .5), (2, 2)],
    [(0, 1), (1, .5), (1.5, .5), (2, 1.5)], [(1, 1), (2, 1), (3, .5), (3.5, .5)],
    [(0, .5), (.5, .5), (1, .5), (1.5, .5), (2, 1), (3, 1)], [(0, 3), (3, 1)],
    [(.5, 1), (1.5, 1), (2.5, 1.5)], [(0, 1), (1.5, .5), (2, .5), (2.5, .5), (3, 1)],
]
RHYTHMS3 = [[(0, 1), (1, 1), (2, 1)], [(0, 2), (2, 1)], [(0, 1.5), (1.5, .5), (2, 1)],
            [(0, .5), (.5, .5), (1, 1), (2, 1)], [(0, 3)]]

_SYL = ("la", "mo", "ri", "ven", "ta", "sol", "mar", "do", "ke", "lu", "na", "bel", "or", "sun",
        "fi", "ra", "to", "mi", "zen", "ca", "po", "lin", "dre", "sha", "vo", "gor", "al", "ek")
_WORDS = ("Love", "Night", "River", "Heart", "Blue", "Road", "Summer", "Rain", "Fire", "Dream",
          "Moon", "Home", "Dance", "Gold", "Shadow", "Train", "Wind", "Angel", "Morning", "Lonely",
          "Sweet", "City", "Ocean", "Little", "Wild", "Time", "Stars", "Song", "Baby", "Street")


@dataclass
class Section:
    """One section of a work.

    Attributes:
        kind: intro, verse, chorus, bridge, solo or outro.
        chords: ``[(root rel. tonic, quality, beats), ...]``.
        melody: ``[(onset beat, duration beats, pitch rel. tonic in semitones), ...]``;
            empty for intros/outros. Pitch 0 is the tonic near middle C.
    """

    kind: str
    chords: list[tuple[int, str, float]]
    melody: list[tuple[float, float, int]]

    @property
    def beats(self) -> float:
        return float(sum(c[2] for c in self.chords))


@dataclass
class Work:
    """What every version of a work shares."""

    work_id: str
    key: int
    mode: str
    tempo: float
    meter: int
    idiom: str
    swing: bool
    sections: dict[str, Section]
    form: list[str]
    title: str
    artist: str
    year: int


@dataclass
class Performance:
    """One rendered-to-be version: timed notes, drums and the chord timeline.

    Attributes:
        onset, dur: (N,) float64 seconds.
        pitch: (N,) float64 MIDI pitch.
        vel: (N,) float64 linear amplitude.
        inst: (N,) int64 index into ``instruments``.
        instruments: timbre names per instrument slot (role order: melody, comp, comp2, bass).
        drums: ``[(time s, kind, velocity), ...]`` with kind in kick/snare/hat.
        chords: ``[(t0, t1, pitch classes), ...]`` performed harmony, absolute pcs.
        duration: seconds of music (without lead/tail silence).
        key: (tonic name, scale, strength) as essentia's key extractor reports it.
        kind: faithful, melody_reharm or restructured (for analysis only).
        instrumental: whether the melody is played (not sung).
    """

    onset: np.ndarray
    dur: np.ndarray
    pitch: np.ndarray
    vel: np.ndarray
    inst: np.ndarray
    instruments: list[str]
    drums: list[tuple[float, str, float]]
    chords: list[tuple[float, float, tuple[int, ...]]]
    duration: float
    key: tuple[str, str, float]
    kind: str
    instrumental: bool
    meta: dict = field(default_factory=dict)


# --------------------------------------------------------------------- works
def _name(rng: np.random.Generator) -> str:
    n = int(rng.integers(2, 4))
    w = "".join(_SYL[int(i)] for i in rng.integers(0, len(_SYL), n))
    return w.capitalize()


def random_title(rng: np.random.Generator) -> str:
    """A plausible song title from a small word generator."""
    k = int(rng.integers(1, 4))
    words = [_WORDS[int(i)] for i in rng.choice(len(_WORDS), k, replace=False)]
    if rng.random() < 0.3:
        words.insert(0, rng.choice(["The", "My", "Your", "Oh", "Little", "Sweet"]))
    return " ".join(words)


def random_artist(rng: np.random.Generator) -> str:
    """A plausible artist name."""
    r = rng.random()
    if r < 0.5:
        return f"{_name(rng)} {_name(rng)}"
    if r < 0.8:
        return f"The {_name(rng)}s"
    return _name(rng)


def _melody(rng, chords, mode, meter, register, motif_bank=None):
    """A melody over ``chords``: phrases of repeated rhythmic/pitch motifs."""
    scale = SCALES[mode]
    scale_pcs = [s for o in (-12, 0, 12, 24) for s in (x + o for x in scale)]
    bank = RHYTHMS4 if meter == 4 else RHYTHMS3
    bars = int(round(sum(c[2] for c in chords) / meter))
    # chord at beat
    bounds = np.cumsum([0] + [c[2] for c in chords])

    def chord_at(b):
        i = int(np.searchsorted(bounds, b, side="right") - 1)
        i = min(max(i, 0), len(chords) - 1)
        r, q, _ = chords[i]
        return [(r + iv) % 12 for iv in QUALITIES[q]]

    motif = [bank[int(rng.integers(len(bank)))] for _ in range(2)]
    alt = bank[int(rng.integers(len(bank)))]
    phrase_len = 4 if bars >= 4 else bars
    first_phrase: list[tuple[float, float, int]] = []
    notes: list[tuple[float, float, int]] = []
    prev = register + int(rng.choice([0, 2, 4, 7]))
    for bar in range(bars):
        pos_in_phrase = bar % phrase_len
        phrase_idx = bar // phrase_len
        if phrase_idx > 0 and first_phrase and pos_in_phrase < phrase_len - 1 and rng.random() < 0.8:
            # repeat the first phrase's notes (the hook), adjusted to this bar's chord
            for on, du, p in first_phrase:
                if int(on // meter) == pos_in_phrase:
                    b = bar * meter + on % meter
                    ct = chord_at(b)
                    if on % meter in (0, 2) and p % 12 not in ct and rng.random() < 0.5:
                        p = min((p + d for d in (-2, -1, 1, 2) if (p + d) % 12 in ct),
                                key=lambda x: abs(x - p), default=p)
                    notes.append((b, du, p))
            continue
        rh = motif[pos_in_phrase % 2] if pos_in_phrase < phrase_len - 1 else alt
        if pos_in_phrase == phrase_len - 1 and rng.random() < 0.5:
            rh = [(0, 1), (1, meter - 1)] if meter == 4 else [(0, 3)]
        for on, du in rh:
            b = bar * meter + on
            ct = chord_at(b)
            strong = on in (0, 2) or du >= 1.5
            if strong:
                cands = [p for p in range(prev - 7, prev + 8) if p % 12 in ct]
            else:
                cands = [p for p in scale_pcs if abs(p - prev) <= 4 and p != prev] or [prev]
            cands = [p for p in cands if register - 5 <= p <= register + 14] or [prev]
            w = np.array([1.0 / (1.0 + abs(p - prev)) for p in cands])
            p = int(cands[int(rng.choice(len(cands), p=w / w.sum()))])
            if bar == bars - 1 and on == rh[-1][0]:
                p = min((x for x in range(prev - 7, prev + 8) if x % 12 == 0), key=lambda x: abs(x - prev))
            notes.append((b, du, p))
            if phrase_idx == 0:
                first_phrase.append((b, du, p))
            prev = p
    return notes


# functional harmony for progressions drawn chord by chord: tonic (T),
# subdominant (S) and dominant (D) chords per mode, and where each function goes
_FUNCS = {
    "major": {"T": [(0, "maj"), (9, "min"), (4, "min")], "S": [(5, "maj"), (2, "min")],
              "D": [(7, "maj"), (7, "7"), (11, "dim")]},
    "minor": {"T": [(0, "min"), (3, "maj"), (8, "maj")], "S": [(5, "min"), (2, "m7b5"), (10, "maj")],
              "D": [(7, "7"), (7, "min"), (10, "maj")]},
}
_NEXT = {"T": ("S", "D", "T"), "S": ("D", "T", "S"), "D": ("T", "T", "S")}
_NEXT_P = {"T": (0.5, 0.3, 0.2), "S": (0.5, 0.35, 0.15), "D": (0.7, 0.1, 0.2)}


def random_progression(rng: np.random.Generator, mode: str, idiom: str, n: int) -> list[tuple[int, str]]:
    """``n`` chords (root rel. tonic, quality) from a functional Markov chain,
    with occasional work-specific colour chords (borrowed, secondary dominants).

    Gives works harmonic identities beyond the idioms' stock progressions.
    """
    func = "T" if rng.random() < 0.7 else str(rng.choice(["S", "T"]))
    out = []
    for i in range(n):
        opts = _FUNCS[mode][func]
        r, q = opts[int(rng.choice(len(opts), p=np.linspace(2, 1, len(opts)) / np.linspace(2, 1, len(opts)).sum()))]
        u = rng.random()
        if u < 0.12:
            r, q = BORROWED[mode][int(rng.integers(len(BORROWED[mode])))]
        elif u < 0.2 and i < n - 1:
            r, q = (int(rng.choice([2, 4, 9])) + 7) % 12, "7"  # V7 of ii, iii or vi
        if idiom == "jazz":
            q = {"maj": "maj7", "min": "m7", "dim": "m7b5"}.get(q, q)
        out.append((r, q))
        func = str(rng.choice(_NEXT[func], p=_NEXT_P[func]))
    return out


def compose_work(rng: np.random.Generator, work_id: str) -> Work:
    """Draw a work: key, mode, tempo, idiom, sections with chords and melody, form.

    Args:
        rng: the work's own generator (derived from (seed, work id)).
        work_id: ``W_<int>``.
    """
    idiom = IDIOMS[int(rng.choice(len(IDIOMS), p=[0.32, 0.24, 0.12, 0.12, 0.20]))]
    mode = "minor" if rng.random() < (0.3 if idiom != "blues" else 0.15) else "major"
    meter = 3 if (idiom in ("folk", "jazz") and rng.random() < 0.2) else 4
    tempo = float(rng.uniform(70, 150) if idiom != "jazz" else rng.uniform(80, 180))
    if idiom == "blues":
        tempo = float(rng.uniform(60, 130))
    key = int(rng.integers(12))
    progs = PROGRESSIONS[idiom][mode]

    own = rng.random() < 0.6  # this work draws its own progressions, not the idiom's stock ones

    def progression(n_bars):
        pr = progs[int(rng.integers(len(progs)))]
        if own and idiom != "blues":
            pr = random_progression(rng, mode, idiom, int(rng.choice([2, 3, 4, 4, 4, 6, 8])))
        per = 1 if len(pr) >= 8 else int(rng.choice([1, 2], p=[0.7, 0.3]))
        chords = []
        while sum(c[2] for c in chords) < n_bars * meter:
            for r, q in pr:
                if idiom == "jazz" and rng.random() < 0.15:
                    chords += [(r, q, meter / 2), ((r + 5) % 12, "7", meter / 2)]
                else:
                    chords.append((r, q, float(per * meter)))
        out, tot = [], 0.0
        for c in chords:
            if tot >= n_bars * meter:
                break
            out.append(c)
            tot += c[2]
        return out

    register = int(rng.integers(-2, 5))
    sections = {}
    # section lengths chosen so that versions last 2-4 min at typical tempi
    for kind, bars in (("verse", int(rng.choice([8, 16, 16, 16]))), ("chorus", int(rng.choice([8, 16, 16]))),
                       ("bridge", int(rng.choice([4, 8])))):
        if idiom == "blues" and kind != "bridge":
            bars = 12
        ch = progression(bars)
        mel = _melody(rng, ch, mode, meter, register + (3 if kind == "chorus" else 0))
        sections[kind] = Section(kind, ch, mel)
    n_intro = int(rng.choice([2, 4]))
    sections["intro"] = Section("intro", progression(n_intro), [])
    sections["outro"] = Section("outro", sections["chorus"].chords[: max(1, len(sections["chorus"].chords) // 2)], [])
    forms = [
        ["intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"],
        ["intro", "verse", "verse", "chorus", "verse", "chorus", "chorus", "outro"],
        ["verse", "chorus", "verse", "chorus", "bridge", "chorus", "chorus"],
        ["intro", "verse", "chorus", "verse", "chorus", "outro"],
        ["intro", "verse", "verse", "bridge", "verse", "outro"],
    ]
    form = list(forms[int(rng.integers(len(forms)))])
    if idiom == "blues":
        form = ["intro"] + ["verse", "chorus"] * 3 + ["outro"]
    return Work(work_id, key, mode, tempo, meter, idiom, idiom in ("jazz", "blues") and rng.random() < 0.6,
                sections, form, random_title(rng), random_artist(rng), int(rng.integers(1950, 2015)))


# --------------------------------------------------------------- reharmonise
def _main_note(melody, t0, t1):
    best, bd = None, 0.0
    for on, du, p in melody:
        ov = min(on + du, t1) - max(on, t0)
        if ov > bd:
            best, bd = p, ov
    return best


def _reharm_one(rng, root, qual, mode, kinds, nxt):
    kind = kinds[int(rng.integers(len(kinds)))]
    third = QUALITIES[qual][1] if len(QUALITIES[qual]) > 1 else 4
    is_major = third == 4
    if kind == "relative":
        return [((root + 9) % 12, "min")] if is_major else [((root + 3) % 12, "maj")]
    if kind == "quality":
        opts = ["maj7", "6", "sus4", "add9", "sus2"] if is_major else ["m7", "m6", "m9", "sus4"]
        return [(root, opts[int(rng.integers(len(opts)))])]
    if kind == "substitute":
        return [((root + int(rng.choice([4, 9, -3]))) % 12, "min" if is_major else "maj")]
    if kind == "secondary":
        return [((nxt + 7) % 12, "7")]
    if kind == "tritone":
        return [((root + 6) % 12, "7")] if qual in ("7", "9") else [((nxt + 1) % 12, "7")]
    if kind == "borrowed":
        b = BORROWED[mode][int(rng.integers(len(BORROWED[mode])))]
        return [b]
    if kind == "passing":
        return [(root, qual), ((nxt + 11) % 12, "dim7")]
    if kind == "mediant":
        return [((root + int(rng.choice([3, 4, 8, 9]))) % 12, "maj")]
    if kind == "modal":
        return [((root + int(rng.choice([1, 10, 2]))) % 12, str(rng.choice(["maj", "maj7", "min"])))]
    if kind == "pedal":
        return [(0, str(rng.choice(["sus4", "maj", "sus2"])))]
    return [(root, qual)]


def _melodic_reharm(rng, root, qual, mode, note):
    """A different chord that still contains the melody note (rel. tonic)."""
    pool = DIATONIC[mode] + BORROWED[mode] + [((r + 7) % 12, "7") for r in (0, 2, 4, 5, 9)]
    cands = [(r, q) for r, q in pool if (r, q) != (root, qual) and r != root
             and (note is None or (note - r) % 12 in [iv % 12 for iv in QUALITIES[q]])]
    if not cands:
        cands = [(r, q) for r, q in pool if r != root]
    return [cands[int(rng.integers(len(cands)))]]


# ------------------------------------------------------------------- perform
def _arrangement(rng, cfg: VariationConfig, instrumental: bool):
    timbres = list(cfg.timbres)
    voices = [t for t in timbres if t.startswith("voice") or t == "choir"]
    insts = [t for t in timbres if t not in voices]
    lead_pool = [t for t in insts if t in ("flute", "sax", "brass", "synthlead", "guitar", "piano",
                                           "epiano", "strings", "organ", "clarinet", "distorted", "bell")]
    melody = str(rng.choice(lead_pool if instrumental else voices))
    comp_pool = [t for t in insts if t in ("piano", "epiano", "organ", "guitar", "nylon", "strings", "pad",
                                           "harpsichord", "distorted", "bell", "brass")]
    comp = str(rng.choice(comp_pool))
    comp2 = str(rng.choice(comp_pool)) if rng.random() < 0.45 else None
    bass = str(rng.choice(["bass_finger", "bass_synth", "bass_upright"]))
    return melody, comp, comp2, bass


def _voicing(rng, pcs, root_pc, style, center):
    """MIDI notes for a chord: close/open/drop-2/shell voicings near ``center``."""
    pcs = list(pcs)
    if style == "shell" and len(pcs) >= 4:
        pcs = [pcs[0], pcs[1], pcs[3]]
    inv = int(rng.integers(len(pcs)))
    order = pcs[inv:] + pcs[:inv]
    notes, cur = [], center - 6
    for pc in order:
        n = cur + ((pc - cur) % 12)
        notes.append(n)
        cur = n + 1
    if style == "open" and len(notes) >= 3:
        notes[1] += 12
    elif style == "drop2" and len(notes) >= 3:
        notes[-2] -= 12
    elif style == "doubled":
        notes.append(notes[0] + 12)
    return sorted(notes)


def perform(work: Work, rng: np.random.Generator, cfg: VariationConfig, *, original: bool = False,
            max_seconds: float | None = None, min_seconds: float = 0.0,
            instrumental: bool | None = None) -> Performance:
    """Draw one version of ``work``.

    Args:
        work: the work.
        rng: this performance's own generator.
        cfg: variation knobs.
        original: the first (reference) version: original key, tempo and
            form, light variation; still a random arrangement.
        max_seconds: crop longer versions to an excerpt of at most this length.
        min_seconds: do not crop an excerpt below this length.
        instrumental: force the melody to be played (True) or sung (False).

    Returns:
        The performance (notes in seconds, performed chords, key).
    """
    if instrumental is None:
        instrumental = bool(rng.random() < 0.3)
    u = rng.random()
    kind = "faithful"
    if not original and u < cfg.hard_melody_share:
        kind = "melody_reharm"
    elif not original and u < cfg.hard_melody_share + cfg.hard_structure_share:
        kind = "restructured"
    transpose = 0 if (original or rng.random() < cfg.keep_key_prob) else int(rng.integers(1, 12))
    lo, hi = cfg.tempo_range
    tfac = 1.0 if original else float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    tempo = work.tempo * tfac
    meter = work.meter
    key = (work.key + transpose) % 12
    mode = work.mode

    # ---- structure
    form = list(work.form)
    if not original:
        heavy = kind == "restructured"
        sc = 2.5 if heavy else 1.0
        form = [s for s in form if not (s in ("verse", "chorus", "bridge", "intro", "outro")
                                          and rng.random() < cfg.drop_prob * sc)] or ["verse", "chorus"]
        out = []
        for s in form:
            out.append(s)
            if rng.random() < cfg.repeat_prob * sc and s in ("chorus", "verse"):
                out.append(s)
        form = out
        for _ in range(3 if heavy else 1):
            if rng.random() < cfg.swap_prob * sc and len(form) > 2:
                i, j = rng.choice(len(form), 2, replace=False)
                form[i], form[j] = form[j], form[i]
        if heavy and rng.random() < 0.5:
            form = form[int(rng.integers(0, max(1, len(form) // 2))):] + ["chorus"]
    sections = {k: Section(v.kind, list(v.chords), list(v.melody)) for k, v in work.sections.items()}
    if not original and rng.random() < cfg.new_intro_prob:
        bars = int(rng.choice([1, 2, 4]))
        src = sections[str(rng.choice(["verse", "chorus", "bridge"]))].chords
        pr = [(r, q, float(meter)) for r, q, _ in src[:bars]] if rng.random() < 0.5 else \
            [(int(rng.choice([0, 5, 7])), "maj" if mode == "major" else "min", float(meter)) for _ in range(bars)]
        sections["intro"] = Section("intro", pr, [])
        if "intro" not in form:
            form.insert(0, "intro")
    if not original and rng.random() < cfg.new_outro_prob:
        tail = sections["chorus"].chords[-2:] + [(0, "maj" if mode == "major" else "min", float(meter * 2))]
        sections["outro"] = Section("outro", tail, [])
        if "outro" not in form:
            form.append("outro")

    # ---- reharmonisation + melody variation, per section instance
    if kind == "melody_reharm":
        share = rng.uniform(*cfg.hard_reharm_range)
    elif original:
        share = 0.0
    else:
        share = rng.uniform(*cfg.reharm_range)
    kinds = list(cfg.reharm_kinds)
    octave = 0 if original or rng.random() > 0.25 else int(rng.choice([-12, 12]))
    reharm_cache: dict[tuple[str, int], list] = {}
    seq = []  # (chords, melody, section kind)
    for si, s in enumerate(form):
        sec = sections[s]
        chords = []
        t = 0.0
        for ci, (r, q, b) in enumerate(sec.chords):
            nxt = sec.chords[(ci + 1) % len(sec.chords)][0]
            ck = (s, ci)
            if ck not in reharm_cache:
                # a version reharmonises a section the same way each time it recurs
                if rng.random() < share:
                    if kind == "melody_reharm" or (sec.melody and rng.random() < 0.4):
                        new = _melodic_reharm(rng, r, q, mode, _main_note(sec.melody, t, t + b))
                    else:
                        new = _reharm_one(rng, r, q, mode, kinds, nxt)
                else:
                    new = [(r, q)]
                reharm_cache[ck] = new
            new = reharm_cache[ck]
            part = b / len(new)
            for nr, nq in new:
                chords.append((nr, nq, part))
            t += b
        mel = []
        if sec.melody and not (not original and rng.random() < cfg.melody_rest_prob):
            scale = SCALES[mode]
            for on, du, p in sec.melody:
                if not original and rng.random() < cfg.melody_change_prob:
                    p = p + int(rng.choice([-2, -1, 1, 2, 12, -12])) if rng.random() < 0.3 else \
                        min((x for x in range(p - 3, p + 4) if x % 12 in scale and x != p), key=lambda x: abs(x - p) + rng.random())
                if not original and cfg.melody_rhythm_jitter > 0:
                    on = max(0.0, on + float(rng.normal(0, cfg.melody_rhythm_jitter)))
                mel.append((on, du, p + octave))
                if not original and rng.random() < 0.04:
                    # ornament: a short grace note from above
                    mel.append((max(0.0, on - 0.12), 0.12, p + octave + 2))
        seq.append((chords, mel, s))

    # ---- tempo curve: beats -> seconds, slow random walk per bar
    total_beats = sum(sum(c[2] for c in ch) for ch, _, _ in seq)
    n_bars = int(np.ceil(total_beats / meter)) + 2
    walk = np.cumsum(rng.normal(0, 0 if original else cfg.tempo_drift, n_bars))
    walk = np.clip(walk - walk.mean(), -0.12, 0.12)
    bar_dur = meter * 60.0 / tempo * np.exp(walk)
    bar_t = np.concatenate([[0.0], np.cumsum(bar_dur)])
    bar_b = np.arange(n_bars + 1) * meter

    def beat2t(b):
        return np.interp(b, bar_b, bar_t)

    swing = work.swing and rng.random() < 0.8

    def sw(b):
        if swing:
            f = b % 1.0
            return b - f + np.where(np.isclose(f, 0.5), 2 / 3, f)
        return b

    # ---- arrangement
    mel_t, comp_t, comp2_t, bass_t = _arrangement(rng, cfg, instrumental)
    instruments = [mel_t, comp_t] + ([comp2_t] if comp2_t else []) + [bass_t]
    i_comp2 = 2 if comp2_t else None
    i_bass = len(instruments) - 1
    # fills / riffs / solos: pitched lines that belong to the arrangement, not the
    # work (real arrangements are full of them; they make HPCP frames busier)
    i_fill = None
    fill_density = 0.0
    if rng.random() < cfg.fills_prob:
        pool = [t for t in cfg.timbres if not t.startswith("voice") and t not in ("pad", "choir")]
        instruments.append(str(rng.choice(pool)))
        i_fill = len(instruments) - 1
        fill_density = float(rng.uniform(*cfg.fill_density))
    scale_abs = [(key + d) % 12 for d in SCALES[mode]]
    fill_center = int(rng.integers(60, 80))
    patterns = list(cfg.patterns)
    pattern = str(rng.choice(patterns))
    pattern_b = str(rng.choice(patterns)) if rng.random() < 0.5 else pattern  # chorus pattern
    vstyle = str(rng.choice(["close", "open", "drop2", "shell", "doubled"]))
    center = int(rng.integers(52, 70))
    bass_style = str(rng.choice(["root", "rootfifth", "octave", "walking", "pedalish", "arp"]))
    if work.idiom == "jazz" and rng.random() < 0.5:
        bass_style = "walking"
    mel_base = 60 + key if key < 6 else 48 + key
    mel_gain = 10 ** (rng.uniform(*cfg.melody_gain_db) / 20)
    drums = rng.random() < (0.0 if original and rng.random() < 0.2 else cfg.drums_prob)
    drum_style = str(rng.choice(["rock", "halftime", "four", "shuffle", "brush"]))

    on_l, du_l, p_l, v_l, i_l = [], [], [], [], []
    dr: list[tuple[float, str, float]] = []
    chord_tl: list[tuple[float, float, tuple[int, ...]]] = []

    def add(b_on, b_du, pitch, vel, inst):
        t0 = float(beat2t(sw(b_on)))
        t1 = float(beat2t(sw(b_on) + b_du))
        on_l.append(t0)
        du_l.append(max(0.05, t1 - t0))
        p_l.append(pitch)
        v_l.append(vel)
        i_l.append(inst)

    b0 = 0.0
    for chords, mel, skind in seq:
        pat = pattern_b if skind == "chorus" else pattern
        for on, du, p in mel:
            add(b0 + on, du * float(rng.uniform(0.8, 1.0)), mel_base + p, mel_gain * float(rng.uniform(0.7, 1.0)), 0)
        cb = b0
        for ci, (r, q, b) in enumerate(chords):
            root_pc = (key + r) % 12
            pcs = tuple(sorted({(root_pc + iv) % 12 for iv in QUALITIES[q]}))
            chord_tl.append((float(beat2t(cb)), float(beat2t(cb + b)), pcs))
            ordered = [(root_pc + iv) % 12 for iv in QUALITIES[q]]
            vn = _voicing(rng, ordered, root_pc, vstyle, center)
            _comp(add, pat, cb, b, vn, meter, 1, rng)
            if i_comp2 is not None:
                _comp(add, "sustain", cb, b, _voicing(rng, ordered, root_pc, "close", center + 7), meter, i_comp2, rng, vel=0.35)
            nxt_root = (key + chords[(ci + 1) % len(chords)][0]) % 12
            _bass(add, bass_style, cb, b, root_pc, nxt_root, ordered, meter, i_bass, rng)
            solo = not mel and skind in ("verse", "chorus", "bridge")
            if i_fill is not None and rng.random() < (0.9 if solo else fill_density):
                _fill(add, cb, b, scale_abs, pcs, fill_center, i_fill, rng, full=solo)
            cb += b
        if drums:
            _drums(dr, drum_style, b0, cb, meter, beat2t, sw, rng)
        b0 = cb
    duration = float(beat2t(b0)) + 1.0

    onset = np.array(on_l)
    dur = np.array(du_l)
    pitch = np.array(p_l, dtype=np.float64)
    vel = np.array(v_l)
    inst = np.array(i_l, dtype=np.int64)

    # ---- excerpt / length cap
    start, end = 0.0, duration
    if not original and rng.random() < cfg.excerpt_prob:
        frac = rng.uniform(*cfg.excerpt_range)
        length = max(frac * duration, min(min_seconds, duration))
        start = float(rng.uniform(0, duration - length))
        end = start + length
    if max_seconds is not None and end - start > max_seconds:
        length = float(rng.uniform(max(min_seconds, 0.6 * max_seconds), max_seconds))
        length = min(length, end - start)
        start = float(rng.uniform(start, end - length))
        end = start + length
    if start > 0 or end < duration:
        keep = (onset < end) & (onset + dur > start)
        onset, dur, pitch, vel, inst = onset[keep], dur[keep], pitch[keep], vel[keep], inst[keep]
        new_on = np.maximum(onset, start)
        dur = np.minimum(onset + dur, end) - new_on
        onset = new_on - start
        dr = [(t - start, k, v) for t, k, v in dr if start <= t < end]
        chord_tl = [(max(a, start) - start, min(b, end) - start, pcs) for a, b, pcs in chord_tl if b > start and a < end]
        duration = end - start

    key_name = NOTE_NAMES[key]
    strength = float(np.clip(rng.normal(0.75, 0.12), 0.3, 0.98))
    return Performance(onset, dur, pitch, vel, inst, instruments, dr, chord_tl, float(duration),
                       (key_name, mode, strength), kind, instrumental,
                       {"transpose": transpose, "tempo_factor": tfac, "pattern": pattern, "form": form,
                        "reharm_share": float(share)})


def _comp(add, pat, b0, b, notes, meter, inst, rng, vel=0.5):
    """Accompaniment notes for one chord of ``b`` beats starting at beat ``b0``."""
    n = len(notes)
    if pat == "sustain":
        for x in notes:
            add(b0, b, x, vel * 0.8, inst)
    elif pat == "block":
        step = meter if b >= meter else b
        t = 0.0
        while t < b - 1e-6:
            for x in notes:
                add(b0 + t, min(step, b - t) * 0.95, x, vel, inst)
            t += step
    elif pat in ("arpeggio", "alberti", "broken"):
        t, k = 0.0, 0
        seq = {"arpeggio": list(range(n)) + list(range(n - 2, 0, -1)),
               "alberti": [0, n - 1, 1 if n > 2 else 0, n - 1],
               "broken": [0] + list(range(1, n))}[pat] or [0]
        step = 0.5 if pat != "broken" else 1.0
        while t < b - 1e-6:
            x = notes[seq[k % len(seq)] % n]
            add(b0 + t, step * 1.6, x, vel * 0.9, inst)
            t += step
            k += 1
    elif pat == "strum":
        rh = [0, 1, 1.5, 2.5, 3] if meter == 4 else [0, 1, 2]
        for bar in range(int(max(1, round(b / meter)))):
            for o in rh:
                if bar * meter + o >= b:
                    break
                for j, x in enumerate(notes):
                    add(b0 + bar * meter + o + j * 0.02, 0.9, x, vel * (1.0 if o == 0 else 0.7), inst)
    elif pat == "offbeat":
        t = 0.5
        while t < b:
            for x in notes:
                add(b0 + t, 0.4, x, vel * 0.8, inst)
            t += 1.0
    elif pat == "tremolo":
        t = 0.0
        while t < b - 1e-6:
            for x in notes:
                add(b0 + t, 0.22, x, vel * 0.6, inst)
            t += 0.25
    elif pat == "skank":
        t = 1.0
        while t < b:
            for x in notes:
                add(b0 + t, 0.25, x, vel, inst)
            t += 2.0
    elif pat == "stabs":
        for o in (0, 1.5, 2.75):
            if o < b:
                for x in notes:
                    add(b0 + o, 0.3, x, vel, inst)
    else:
        for x in notes:
            add(b0, b, x, vel, inst)


def _fill(add, b0, b, scale_pcs, chord_pcs, center, inst, rng, full=False):
    """A scale run (eighths or sixteenths) over a chord: a fill, a riff or a solo."""
    step = float(rng.choice([0.25, 0.5, 0.5, 1 / 3]))
    t = 0.0 if full else float(np.floor(rng.uniform(0, b / 2) / step) * step)
    p = center + int(rng.integers(-5, 6))
    while t < b - 1e-6:
        if rng.random() < 0.85:
            if t % 1.0 == 0 and rng.random() < 0.6:
                cands = [x for x in range(p - 5, p + 6) if x % 12 in chord_pcs]
            else:
                cands = [x for x in range(p - 3, p + 4) if x % 12 in scale_pcs and x != p]
            cands = [x for x in cands if center - 12 <= x <= center + 12] or [center]
            p = int(cands[int(rng.integers(len(cands)))])
            add(b0 + t, step * 0.9, p, float(rng.uniform(0.25, 0.5)), inst)
        t += step


def _bass(add, style, b0, b, root_pc, nxt_pc, pcs, meter, inst, rng):
    root = 36 + root_pc if root_pc >= 4 else 48 + root_pc
    fifth = root + 7 if root + 7 <= 55 else root - 5
    if style == "root" or b < 2:
        add(b0, b * 0.95, root, 0.7, inst)
    elif style == "rootfifth":
        add(b0, b / 2 * 0.9, root, 0.7, inst)
        add(b0 + b / 2, b / 2 * 0.9, fifth, 0.6, inst)
    elif style == "octave":
        t = 0.0
        while t < b - 1e-6:
            add(b0 + t, 0.45, root + (12 if int(t * 2) % 2 else 0), 0.6, inst)
            t += 0.5
    elif style == "walking":
        nxt = 36 + nxt_pc if nxt_pc >= 4 else 48 + nxt_pc
        steps = int(b)
        tones = [root] + [root + ((pc - root_pc) % 12) for pc in pcs[1:]]
        for k in range(steps):
            x = tones[k % len(tones)] if k < steps - 1 else nxt + int(rng.choice([-1, 1]))
            add(b0 + k, 0.9, x, 0.65, inst)
    elif style == "arp":
        t, k = 0.0, 0
        tones = [root, fifth, root + 12, fifth]
        while t < b - 1e-6:
            add(b0 + t, 0.9, tones[k % 4], 0.6, inst)
            t += 1.0
            k += 1
    else:  # pedalish: long root with a pickup
        add(b0, b - 0.5, root, 0.7, inst)
        add(b0 + b - 0.5, 0.45, fifth, 0.5, inst)


def _drums(dr, style, b0, b1, meter, beat2t, sw, rng):
    nb = int(round(b1 - b0))
    for k in range(nb):
        beat = b0 + k
        pos = k % meter
        t = float(beat2t(beat))
        if style == "four":
            dr.append((t, "kick", 0.9))
        elif pos == 0 or (style == "rock" and pos == 2 and meter == 4):
            dr.append((t, "kick", 0.9))
        if (style in ("rock", "four", "shuffle") and pos in (1, 3)) or (style == "halftime" and pos == 2):
            dr.append((t, "snare", 0.8))
        if style == "brush":
            dr.append((t, "hat", 0.3))
        else:
            dr.append((t, "hat", 0.4))
            dr.append((float(beat2t(sw(beat + 0.5))), "hat", 0.3))
        if k == 0 and rng.random() < 0.5:
            dr.append((t, "crash", 0.7))  # section downbeat
        if k >= nb - 2 and rng.random() < 0.35:
            # a tom fill before the next section: pitched hits outside the key
            for o in (0.0, 0.25, 0.5, 0.75):
                dr.append((float(beat2t(beat + o)), "tom", 0.6 - 0.1 * o))
