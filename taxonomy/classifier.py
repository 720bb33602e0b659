"""Suggest subcategories for a free-text report (Chinese), by keywords and character n-grams.

Two signals, both indexed once in `Classifier.__init__`:

* keywords: every catalogue keyword found in the normalised text adds a weight that grows
  faster than its length (a long keyword is more specific) and shrinks with the number of
  subcategories sharing it; a keyword found only inside a longer matched keyword is ignored
  ("拖欠农民工工资" counts once, not again as "工资");
* n-grams: character bigrams and trigrams shared with the subcategory's name and keywords,
  IDF-weighted, as a weaker signal that catches variants no keyword lists.

The result is a suggestion for the dispatcher, never a decision, so it must always answer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from taxonomy.catalogue import Catalogue, Subcategory

FALLBACK_CATEGORY = "17"  # 民生服务, whose "其他…" subcategory takes what nothing else does
FALLBACK_SCORE = 0.01
_NGRAM_WEIGHT = 0.35  # n-grams only break ties and catch variants; keywords decide
_CATCH_ALL_FACTOR = 0.6  # a "其他…" subcategory loses to a specific one with the same evidence
_SCALE = 6.0  # raw evidence of one 4-character keyword maps to a score of about 0.7
_REPEAT_BONUS = 0.25  # each repeat of a keyword adds a quarter of its weight...
_MAX_REPEATS = 3  # ...up to this many occurrences, so copy-pasted text cannot dominate
_NOT_WORD = re.compile(r"[\W_]+")
UNCERTAIN_BELOW = 0.3  # the best score under which `answer` says it is a guess


@dataclass(frozen=True, slots=True)
class Candidate:
    """One suggestion: a subcategory with a confidence-like score in [0, 1]."""

    category_code: str
    subcategory_code: str
    score: float


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lowercase, and keep only letters and digits."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())


def _ngrams(text: str) -> Iterable[str]:
    """Character bigrams and trigrams of already-normalised text, in order of appearance."""
    for n in (2, 3):
        for i in range(len(text) - n + 1):
            yield text[i : i + n]


def _keyword_weight(keyword: str) -> float:
    """Specific (longer) keywords weigh more than their length: 2 chars ~2.6, 4 chars ~6.9."""
    return math.pow(len(keyword), 1.4)


class Classifier:
    """Keyword + n-gram classifier over a catalogue; indexes are built once, classify is pure."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        subs: list[tuple[str, Subcategory]] = [
            (cat.code, sub) for cat, sub in catalogue.iter_subcategories()
        ]
        self._subs = subs
        self._factor = [_CATCH_ALL_FACTOR if sub.is_catch_all else 1.0 for _, sub in subs]

        # keyword -> [(subcategory index, weight)], weights shared by df
        owners: dict[str, list[int]] = {}
        for idx, (_, sub) in enumerate(subs):
            for kw in dict.fromkeys(normalize(k) for k in sub.keywords):
                if len(kw) >= 1:
                    owners.setdefault(kw, []).append(idx)
        self._keywords: dict[str, tuple[tuple[int, float], ...]] = {
            kw: tuple((i, _keyword_weight(kw) / math.sqrt(len(ids))) for i in ids)
            for kw, ids in owners.items()
        }
        # first character -> keyword lengths starting with it, longest first
        by_first: dict[str, set[int]] = {}
        for kw in self._keywords:
            by_first.setdefault(kw[0], set()).add(len(kw))
        self._lengths = {ch: tuple(sorted(ls, reverse=True)) for ch, ls in by_first.items()}

        # n-gram -> [(subcategory index, idf / sqrt(profile mass))]
        profiles: list[set[str]] = []
        for _, sub in subs:
            grams: set[str] = set()
            for phrase in (sub.name, *sub.keywords):
                grams.update(_ngrams(normalize(phrase)))
            profiles.append(grams)
        df: dict[str, int] = {}
        for grams in profiles:
            for g in grams:
                df[g] = df.get(g, 0) + 1
        total = max(len(subs), 1)

        def idf(g: str) -> float:
            return math.log(1.0 + total / df[g]) * (1.5 if len(g) == 3 else 1.0)

        ngram_index: dict[str, list[tuple[int, float]]] = {}
        for idx, grams in enumerate(profiles):
            mass = math.sqrt(sum(idf(g) for g in grams)) or 1.0
            for g in sorted(grams):
                ngram_index.setdefault(g, []).append((idx, idf(g) / mass))
        self._ngrams = {g: tuple(p) for g, p in ngram_index.items()}

        self._fallback = self._find_fallback()

    def _find_fallback(self) -> Candidate:
        """The catch-all of category 17 (else its last subcategory, else the catalogue's last)."""
        cat = self._catalogue.category(FALLBACK_CATEGORY) or self._catalogue.categories[-1]
        catch_all = [s for s in cat.subcategories if s.is_catch_all]
        sub = catch_all[-1] if catch_all else cat.subcategories[-1]
        return Candidate(cat.code, sub.code, FALLBACK_SCORE)

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue this classifier indexes."""
        return self._catalogue

    @property
    def fallback(self) -> Candidate:
        """What `classify` returns when nothing matches."""
        return self._fallback

    def _keyword_scores(self, text: str, scores: dict[int, float]) -> None:
        """Add maximal keyword matches (not inside a longer match) to scores."""
        n = len(text)
        hits: dict[str, int] = {}
        reach = 0
        lengths = self._lengths
        for i, ch in enumerate(text):
            for length in lengths.get(ch, ()):
                if i + length <= reach:
                    break  # this and anything shorter lies inside an earlier match
                if i + length > n:
                    continue
                kw = text[i : i + length]
                if kw in self._keywords:
                    hits[kw] = hits.get(kw, 0) + 1
                    reach = i + length
                    break
        for kw, count in hits.items():
            bonus = 1.0 + _REPEAT_BONUS * (min(count, _MAX_REPEATS) - 1)
            for idx, weight in self._keywords[kw]:
                scores[idx] = scores.get(idx, 0.0) + weight * bonus

    def _ngram_scores(self, text: str, scores: dict[int, float]) -> None:
        """Add IDF-weighted n-gram overlap with each subcategory profile to scores."""
        for g in dict.fromkeys(_ngrams(text)):
            postings = self._ngrams.get(g)
            if postings is None:
                continue
            for idx, weight in postings:
                scores[idx] = scores.get(idx, 0.0) + weight

    def classify(self, text: str, *, limit: int = 5) -> list[Candidate]:
        """Best candidates first (ties by code); never raises, never empty (fallback: 17's 其他).

        At most `limit` candidates; a limit below 1 is treated as 1.
        """
        try:
            return self._classify(text, max(1, limit))
        except Exception:  # a suggestion must never break intake
            return [self._fallback]

    def _classify(self, text: str, limit: int) -> list[Candidate]:
        """Score every subcategory that shares a keyword or an n-gram with the text."""
        clean = normalize(text) if isinstance(text, str) else ""
        if not clean:
            return [self._fallback]
        kw_scores: dict[int, float] = {}
        self._keyword_scores(clean, kw_scores)
        ng_scores: dict[int, float] = {}
        self._ngram_scores(clean, ng_scores)
        raw: dict[int, float] = {}
        for idx in kw_scores.keys() | ng_scores.keys():
            value = kw_scores.get(idx, 0.0) + _NGRAM_WEIGHT * _SCALE * ng_scores.get(idx, 0.0)
            raw[idx] = value * self._factor[idx]
        ranked = sorted(
            (
                (round(1.0 - math.exp(-value / _SCALE), 6), self._subs[idx][1].code, idx)
                for idx, value in raw.items()
                if value > 0.0
            ),
            key=lambda t: (-t[0], t[1]),
        )
        out = [
            Candidate(self._subs[idx][0], code, min(1.0, max(0.0, score)))
            for score, code, idx in ranked[:limit]
            if score > 0.0
        ]
        return out or [self._fallback]

    def answer(self, text: str, *, limit: int = 5) -> tuple[list[Candidate], bool]:
        """Candidates and whether the best is unclear (its score, not a probability, is low)."""
        candidates = self.classify(text, limit=limit)
        return candidates, candidates[0].score < UNCERTAIN_BELOW

    def category_for(self, text: str) -> str:
        """The top candidate's category code."""
        return self.classify(text, limit=1)[0].category_code
