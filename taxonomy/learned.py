"""The learned classifier: character n-grams of the normalised text, TF-IDF weighted, into a
multinomial logistic regression over the catalogue's subcategories.

Why characters and not words: residents write colloquial, Cantonese-flavoured, misspelled
Chinese ("路灯坏咗成个礼拜", "xq门口垃圾冇人收"), where a word segmenter trained on news text cuts
wrongly and a typo makes a word unknown; single characters and overlapping pairs keep most of
the evidence of a word with one wrong character. Digits, phone numbers and times are folded to one
symbol (they say nothing about the category). A category's score is the sum of its
subcategories' probabilities, so the two levels never disagree.

Training needs scikit-learn (`gridgov classifier train`); answering needs only numpy: the
model is the vocabulary, the IDF weights and the coefficients, kept in one compressed `.npz`
(a row in `classifier_model`, or the packaged model built from the shipped corpus).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from taxonomy.catalogue import Catalogue
from taxonomy.classifier import FALLBACK_CATEGORY, FALLBACK_SCORE, Candidate

# Measured on the corpus's held-out third: single characters and pairs beat 1-3 (trigrams are
# mostly seen once and overfit: category top-1 89 % against 88 %, subcategory 83 % against 80 %)
# and 2-3 (80 %, 72 %), at half the model's size.
NGRAM_SIZES = (1, 2)
# Folded before the n-grams: runs of digits (phone numbers, house numbers, times, amounts) to
# one "0"; everything that is not a letter or a digit (punctuation, emoji, spaces) to a space.
_DIGITS = re.compile(r"\d+")
_NOT_WORD = re.compile(r"[\W_]+")
# A model answers `uncertain` when its best category (the unit that will get the case) has less
# than this probability, or leads the second by less than the margin: the command centre looks
# first. The scores are calibrated: a best category at 0.6 is right about 6 times in 10.
UNCERTAIN_BELOW = 0.6
UNCERTAIN_MARGIN = 0.1
_FORMAT = "gridgov-classifier-v1"


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lowercase, digits folded, non-word runs to one space."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _DIGITS.sub("0", text)
    return _NOT_WORD.sub(" ", text).strip()


def grams(text: str) -> list[str]:
    """The character n-grams of each space-separated piece of normalised text."""
    out: list[str] = []
    for piece in text.split():
        size = len(piece)
        for n in NGRAM_SIZES:
            out += (piece[i : i + n] for i in range(size - n + 1))
    return out


@dataclass(frozen=True)
class Scored:
    """One subcategory and its probability."""

    category_code: str
    subcategory_code: str
    score: float


@dataclass(frozen=True)
class Answer:
    """Subcategories best first, categories best first, and whether the best is unclear."""

    subcategories: list[Scored]
    categories: list[tuple[str, float]]
    uncertain: bool


@dataclass
class Model:
    """What answers: vocabulary → column, IDF per column, coefficients (classes × columns)."""

    classes: list[str]  # subcategory codes, in coefficient row order
    vocabulary: dict[str, int]
    idf: np.ndarray  # float32, one per column
    coef_t: np.ndarray  # float32, columns × classes (a text's columns are rows here)
    intercept: np.ndarray  # float32, one per class
    meta: dict[str, Any] = field(default_factory=dict)
    # Temperature scaling, fitted at training on texts the fit did not see, so that scores mean
    # what they say: subcategory logits are divided by `temperature`; the categories are ranked
    # by the sums of their subcategories' untempered probabilities (more accurate than the
    # tempered ones' sums), whose logarithms are divided by `category_temperature`.
    temperature: float = 1.0
    category_temperature: float = 1.0
    _category_codes: list[str] = field(init=False, repr=False)
    _category_index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._category_codes = sorted({c[:2] for c in self.classes})
        position = {code: i for i, code in enumerate(self._category_codes)}
        self._category_index = np.array([position[c[:2]] for c in self.classes], dtype=np.intp)

    @property
    def version_tag(self) -> str:
        return str(self.meta.get("digest", ""))[:12]

    def probabilities(self, text: str) -> np.ndarray:
        """P(subcategory | text), in `classes` order."""
        return _softmax(self.logits(text) / self.temperature)

    def logits(self, text: str) -> np.ndarray:
        """The linear model's raw scores, in `classes` order."""
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for gram in grams(normalize(text)):
            column = vocabulary.get(gram)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        logits = self.intercept.astype(np.float64)
        if counts:
            columns = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            weights = (1.0 + np.log(tf)) * self.idf[columns]  # sublinear tf × idf
            weights /= np.sqrt(weights @ weights)  # L2, as in training
            logits = logits + weights @ self.coef_t[columns]
        return np.asarray(logits)

    def answer(self, text: str, *, limit: int = 5) -> Answer:
        logits = self.logits(text)
        probs = _softmax(logits / self.temperature)
        order = np.argsort(-probs, kind="stable")
        subs = [
            Scored(self.classes[i][:2], self.classes[i], round(float(probs[i]), 6))
            for i in order[: max(1, limit)]
        ]
        by_category = self.category_probabilities(logits)
        cat_order = np.argsort(-by_category, kind="stable")
        categories = [(self._category_codes[i], round(float(by_category[i]), 6)) for i in cat_order]
        best = float(by_category[cat_order[0]])
        second = float(by_category[cat_order[1]]) if len(cat_order) > 1 else 0.0
        uncertain = best < UNCERTAIN_BELOW or best - second < UNCERTAIN_MARGIN
        return Answer(subs, categories, uncertain)

    def category_probabilities(self, logits: np.ndarray) -> np.ndarray:
        """P(category | text), in `category_codes` order, from the subcategories' logits."""
        return _softmax(self.category_log_sums(logits) / self.category_temperature)

    def category_log_sums(self, logits: np.ndarray) -> np.ndarray:
        """The log of each category's share of the untempered subcategory probabilities."""
        sums = np.bincount(
            self._category_index, weights=_softmax(logits), minlength=len(self._category_codes)
        )
        return np.asarray(np.log(np.maximum(sums, 1e-12)))

    @property
    def category_codes(self) -> list[str]:
        return self._category_codes

    # --- storage ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """One compressed .npz: arrays, the vocabulary in column order, and the metadata."""
        words = [""] * len(self.vocabulary)
        for word, column in self.vocabulary.items():
            words[column] = word
        header = {
            "format": _FORMAT,
            "classes": self.classes,
            "meta": self.meta,
            "temperature": self.temperature,
            "category_temperature": self.category_temperature,
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            header=np.frombuffer(json.dumps(header, ensure_ascii=False).encode(), dtype=np.uint8),
            words=np.frombuffer("\n".join(words).encode(), dtype=np.uint8),
            idf=self.idf.astype(np.float32),
            coef_t=self.coef_t.astype(np.float16),
            intercept=self.intercept.astype(np.float32),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Model:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            header = json.loads(arrays["header"].tobytes().decode())
            if header.get("format") != _FORMAT:
                raise ValueError(f"not a {_FORMAT} model")
            words = arrays["words"].tobytes().decode().split("\n")
            return cls(
                classes=list(header["classes"]),
                vocabulary={w: i for i, w in enumerate(words)},
                idf=arrays["idf"].astype(np.float32),
                coef_t=arrays["coef_t"].astype(np.float32),
                intercept=arrays["intercept"].astype(np.float32),
                meta=dict(header["meta"]),
                temperature=float(header.get("temperature", 1.0)),
                category_temperature=float(header.get("category_temperature", 1.0)),
            )


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    exp = np.exp(z)
    return np.asarray(exp / exp.sum())


# --- training ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """A labelled text: its subcategory code and where it came from."""

    subcategory_code: str
    text: str
    source: str = "corpus"  # corpus | catalogue | history | correction


def digest_of(examples: Iterable[Example]) -> str:
    """A fingerprint of a training set (order-independent), recorded in the model."""
    lines = sorted(f"{e.subcategory_code}\t{e.source}\t{e.text}" for e in examples)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def train(
    examples: Sequence[Example],
    *,
    c: float = 20.0,
    max_iter: int = 300,
    min_df: int = 2,
    calibrate: bool = True,
    meta: dict[str, Any] | None = None,
) -> Model:
    """Fit the model on these examples (every subcategory that should be answerable needs at
    least one). Deterministic for the same examples. `min_df`: an n-gram seen in fewer texts
    is dropped (most pairs are seen once: the vocabulary shrinks to a third, accuracy stays);
    `c`: the inverse of the L2 penalty (measured on the held-out third: 10 to 100 within a
    point of each other, 20 best). `calibrate`: a first fit on four fifths of the texts (by a
    hash) finds the temperature that makes the last fifth's probabilities honest (the least
    negative log-likelihood); the model of all the texts then answers with it."""
    if len({e.subcategory_code for e in examples}) < 2:
        raise ValueError("training needs examples of at least two subcategories")
    ordered = sorted(examples, key=lambda e: (e.subcategory_code, e.text, e.source))
    model = _fit(ordered, c=c, max_iter=max_iter, min_df=min_df)
    if calibrate:
        fit = [e for e in ordered if not _calibration_fold(e)]
        check = [e for e in ordered if _calibration_fold(e) and e.source != "catalogue"]
        if len({e.subcategory_code for e in fit}) >= 2 and len(check) >= 50:
            first = _fit(fit, c=c, max_iter=max_iter, min_df=min_df)
            model.temperature, model.category_temperature = _temperatures(first, check)
    by_source: dict[str, int] = {}
    for e in ordered:
        by_source[e.source] = by_source.get(e.source, 0) + 1
    model.meta = {
        **(meta or {}),
        "examples": len(ordered),
        "by_source": by_source,
        "digest": digest_of(ordered),
        "c": c,
        "temperature": round(model.temperature, 4),
        "category_temperature": round(model.category_temperature, 4),
    }
    return model


def _fit(ordered: Sequence[Example], *, c: float, max_iter: int, min_df: int) -> Model:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(
        analyzer=lambda text: grams(normalize(text)),
        sublinear_tf=True,
        min_df=min(min_df, len(ordered)),
        dtype=np.float32,
    )
    features = vectorizer.fit_transform([e.text for e in ordered])
    labels = [e.subcategory_code for e in ordered]
    weights = np.array([_SOURCE_WEIGHT.get(e.source, 1.0) for e in ordered], dtype=np.float64)
    regression = LogisticRegression(C=c, max_iter=max_iter, tol=1e-4)
    regression.fit(features, labels, sample_weight=weights)
    return Model(
        classes=[str(code) for code in regression.classes_],
        vocabulary={str(k): int(v) for k, v in vectorizer.vocabulary_.items()},
        idf=np.asarray(vectorizer.idf_, dtype=np.float32),
        coef_t=np.ascontiguousarray(regression.coef_.T, dtype=np.float32),
        intercept=np.asarray(regression.intercept_, dtype=np.float32),
    )


def _calibration_fold(example: Example) -> bool:
    """A fifth of the texts, by another byte of the hash than `held_out`'s."""
    return hashlib.sha256(example.text.encode()).digest()[1] % 5 == 0


def _temperatures(model: Model, examples: Sequence[Example]) -> tuple[float, float]:
    """The temperatures (0.05 to 5, on a log grid) with the least negative log-likelihood of
    these examples' subcategories and categories."""
    index = {code: i for i, code in enumerate(model.classes)}
    rows = [(model.logits(e.text), index.get(e.subcategory_code)) for e in examples]
    kept = [(z, i) for z, i in rows if i is not None]
    logits = np.stack([z for z, _ in kept])
    labels = np.array([i for _, i in kept])
    category_log = np.stack([model.category_log_sums(z) for z in logits])
    category_labels = model._category_index[labels]
    return _best_temperature(logits, labels), _best_temperature(category_log, category_labels)


def _best_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    best, best_nll = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.05), math.log(5.0), 121)):
        z = scores / t
        z = z - z.max(axis=1, keepdims=True)
        log_p = z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(axis=1))
        nll = float(-log_p.mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


# A correction by the command centre says what this district means by a text: it counts more
# than a written example of the corpus.
_SOURCE_WEIGHT = {"corpus": 1.0, "catalogue": 0.3, "history": 1.0, "correction": 3.0}


def accuracy(ranked: Sequence[Sequence[Candidate]], labels: Sequence[str]) -> dict[str, float]:
    """Top-1 and top-3 at both levels of answers (candidates best first, as intake reads them:
    categories in the order their candidates come) against subcategory labels."""
    n = len(labels)
    hits = dict.fromkeys(
        ("category_top1", "category_top3", "subcategory_top1", "subcategory_top3"), 0
    )
    for candidates, label in zip(ranked, labels, strict=True):
        categories = list(dict.fromkeys(c.category_code for c in candidates))
        subcategories = [c.subcategory_code for c in candidates]
        hits["category_top1"] += categories[:1] == [label[:2]]
        hits["category_top3"] += label[:2] in categories[:3]
        hits["subcategory_top1"] += subcategories[:1] == [label]
        hits["subcategory_top3"] += label in subcategories[:3]
    return {k: round(v / n, 4) if n else math.nan for k, v in hits.items()}


def evaluate(model: Model, catalogue: Catalogue, examples: Sequence[Example]) -> dict[str, Any]:
    """Top-1 and top-3 at both levels of the model answering as the service does (what
    `gridgov classifier train` reports on the held-out third)."""
    suggester = LearnedClassifier(model, catalogue, version="evaluated")
    scores = accuracy(
        [suggester.answer(e.text, limit=50)[0] for e in examples],
        [e.subcategory_code for e in examples],
    )
    return {
        "n": len(examples),
        **{
            level: {k: scores[f"{level}_{k}"] for k in ("top1", "top3")}
            for level in ("category", "subcategory")
        },
    }


# --- the shipped corpus ----------------------------------------------------------------------


def read_tsv(lines: Iterable[str], *, source: str, known: set[str]) -> list[Example]:
    """`code<TAB>text` lines (blank lines and `#` comments skipped); an unknown code or a
    line without a tab is an error naming the line."""
    out: list[Example] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        code, tab, text = line.partition("\t")
        if not tab or not text.strip():
            raise ValueError(f"line {number}: expected CODE<TAB>TEXT")
        if code not in known:
            raise ValueError(f"line {number}: unknown subcategory code {code!r}")
        out.append(Example(code, text.strip(), source))
    return out


def held_out(example: Example) -> bool:
    """A third of the corpus is never trained on (by a hash of the text, stable across runs
    and machines), so bench/classifier.py measures texts the model has not seen."""
    return hashlib.sha256(example.text.encode()).digest()[0] % 3 == 0


def corpus_split(catalogue: Catalogue) -> tuple[list[Example], list[Example]]:
    """(what every model learns from before a district's own data: the corpus's two thirds and
    the catalogue's names and keywords; the held-out third it is measured on)."""
    known = {sub.code for _, sub in catalogue.iter_subcategories()}
    corpus = shipped_corpus(known)
    train = [e for e in corpus if not held_out(e)] + catalogue_examples(catalogue)
    return train, [e for e in corpus if held_out(e)]


def catalogue_examples(catalogue: Catalogue) -> list[Example]:
    """Each subcategory's name and keywords as short examples: every code is answerable."""
    out = []
    for _, sub in catalogue.iter_subcategories():
        out.append(Example(sub.code, sub.name, "catalogue"))
        out += (Example(sub.code, kw, "catalogue") for kw in sub.keywords)
    return out


# --- answering inside the service -------------------------------------------------------------


class LearnedClassifier:
    """The catalogue's classifier: a learned model, restricted to the catalogue's codes (an
    imported catalogue may drop or add some); a text it cannot read gets the fallback. Same
    `classify` as the keyword classifier it replaces, plus `answer` (with `uncertain`) and the
    version of the model that spoke."""

    def __init__(self, model: Model, catalogue: Catalogue, *, version: str) -> None:
        self.model = model
        self.version = version
        self._known = {sub.code for _, sub in catalogue.iter_subcategories()}
        fallback = next(
            (
                sub.code
                for cat, sub in catalogue.iter_subcategories()
                if cat.code == FALLBACK_CATEGORY and sub.is_catch_all
            ),
            None,
        ) or next(sub.code for _, sub in catalogue.iter_subcategories())
        self._fallback = Candidate(fallback[:2], fallback, FALLBACK_SCORE)

    def answer(self, text: str, *, limit: int = 5) -> tuple[list[Candidate], bool]:
        """Candidates best first (at most `limit`, never empty) and whether the best is
        unclear. Never raises."""
        limit = max(1, limit)
        try:
            if not isinstance(text, str) or not normalize(text).replace("0", "").strip():
                return [self._fallback], True  # nothing but digits and punctuation
            answer = self.model.answer(text, limit=len(self.model.classes))
        except Exception:  # a suggestion must never break intake
            return [self._fallback], True
        # First the best subcategory of the best category (the category with the most
        # probability in all is right more often than the best single subcategory's: on the
        # held-out third 90 % against 89 %), then the others by probability.
        best_category = answer.categories[0][0]
        first = next(s for s in answer.subcategories if s.category_code == best_category)
        ranked = [first, *(s for s in answer.subcategories if s is not first)]
        out = [
            Candidate(s.category_code, s.subcategory_code, s.score)
            for s in ranked
            if s.subcategory_code in self._known
        ][:limit]
        return (out or [self._fallback]), answer.uncertain

    def classify(self, text: str, *, limit: int = 5) -> list[Candidate]:
        return self.answer(text, limit=limit)[0]

    def category_for(self, text: str) -> str:
        return str(self.classify(text, limit=1)[0].category_code)


PACKAGED_MODEL = "data/model.npz"


@cache
def packaged_model() -> Model | None:
    """The model built from the shipped corpus (`gridgov classifier train --package`), read
    once per process (answering never changes it)."""
    from importlib.resources import files

    resource = files("taxonomy").joinpath(PACKAGED_MODEL)
    if not resource.is_file():
        return None
    return Model.from_bytes(resource.read_bytes())


CORPUS_DIR = "data/corpus"


def shipped_corpus(known: set[str]) -> list[Example]:
    """Every labelled text shipped in `taxonomy/data/corpus/*.tsv` (one file per writer)."""
    from importlib.resources import files

    folder = files("taxonomy").joinpath(CORPUS_DIR)
    out: list[Example] = []
    if not folder.is_dir():
        return out
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if not item.name.endswith(".tsv"):
            continue
        try:
            out += read_tsv(item.read_text("utf-8").splitlines(), source="corpus", known=known)
        except ValueError as exc:
            raise ValueError(f"{item.name}: {exc}") from None
    return out
