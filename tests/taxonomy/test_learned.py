"""The learned classifier in isolation (taxonomy.learned): its own answering agrees with
scikit-learn's, it survives storage, it never raises, the held-out split is stable."""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from taxonomy import learned
from taxonomy.catalogue import load_default_catalogue

CATALOGUE = load_default_catalogue()
KNOWN = {sub.code for _, sub in CATALOGUE.iter_subcategories()}


@pytest.fixture(scope="module")
def small() -> learned.Model:
    """A model of the catalogue's names and keywords alone (seconds to train)."""
    return learned.train(learned.catalogue_examples(CATALOGUE))


def test_its_answering_is_scikit_learns_predict_proba(small: learned.Model) -> None:
    """The service answers with numpy only; the same features fed to scikit-learn's own
    pipeline give the same probabilities (float16 storage aside)."""
    examples = sorted(
        learned.catalogue_examples(CATALOGUE), key=lambda e: (e.subcategory_code, e.text, e.source)
    )
    vectorizer = TfidfVectorizer(
        analyzer=lambda t: learned.grams(learned.normalize(t)),
        sublinear_tf=True,
        min_df=2,
        dtype=np.float32,
    )
    x = vectorizer.fit_transform([e.text for e in examples])
    reference = LogisticRegression(C=20.0, max_iter=300, tol=1e-4).fit(
        x,
        [e.subcategory_code for e in examples],
        sample_weight=[learned._SOURCE_WEIGHT[e.source] for e in examples],
    )
    assert list(reference.classes_) == small.classes
    for text in ("路灯坏咗成个礼拜", "楼上装修好嘈，夜晚十点仲喺度钻墙", "xq门口垃圾冇人收😡"):
        ours = learned._softmax(small.logits(text))  # before temperature scaling
        theirs = reference.predict_proba(vectorizer.transform([text]))[0]
        assert np.allclose(ours, theirs, atol=1e-4)


def test_a_stored_model_answers_as_before(small: learned.Model) -> None:
    again = learned.Model.from_bytes(small.to_bytes())
    assert again.classes == small.classes
    assert again.meta == small.meta
    for text in ("井盖唔见咗", "拖欠工资三个月", "有人喺天台烧嘢"):
        assert np.allclose(again.probabilities(text), small.probabilities(text), atol=2e-3)
        first = again.answer(text).subcategories[0]
        assert first.subcategory_code == small.answer(text).subcategories[0].subcategory_code
    buffer = io.BytesIO()
    np.savez_compressed(buffer, header=np.frombuffer(b'{"format": "x"}', dtype=np.uint8))
    with pytest.raises(ValueError, match="not a gridgov-classifier-v1 model"):
        learned.Model.from_bytes(buffer.getvalue())


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😡😡😡", "!!!???", "1380013800", "a" * 20_000, "\x00\ud7ff", "路灯" * 5000],
)
def test_it_always_answers_and_says_when_it_is_unsure(small: learned.Model, text: str) -> None:
    suggester = learned.LearnedClassifier(small, CATALOGUE, version="t")
    candidates, uncertain = suggester.answer(text, limit=3)
    assert 1 <= len(candidates) <= 3
    assert all(c.subcategory_code in KNOWN for c in candidates)
    if not learned.normalize(text).replace("0", "").strip():
        assert uncertain  # nothing to read: the fallback, flagged


def test_scores_are_probabilities_and_categories_rank_by_their_subcategories(
    small: learned.Model,
) -> None:
    text = "路灯坏咗成个礼拜，夜晚好黑"
    answer = small.answer(text, limit=200)
    assert abs(sum(s.score for s in answer.subcategories) - 1.0) < 1e-3
    assert abs(sum(score for _, score in answer.categories) - 1.0) < 1e-3
    # Categories are ranked by the sums of their subcategories' (untempered) probabilities.
    raw = learned._softmax(small.logits(text))
    sums: dict[str, float] = {}
    for code, p in zip(small.classes, raw, strict=True):
        sums[code[:2]] = sums.get(code[:2], 0.0) + float(p)
    assert [code for code, _ in answer.categories] == sorted(sums, key=lambda c: -sums[c])
    assert answer.subcategories[0].subcategory_code == "0802"


def test_calibration_makes_the_scores_honest() -> None:
    """Temperatures fitted on a fifth the first fit did not see: on the corpus's held-out
    third, texts whose best category scores about p are right about p of the time."""
    model = learned.packaged_model()
    assert model is not None
    assert model.temperature != 1.0
    test = [e for e in learned.shipped_corpus(KNOWN) if learned.held_out(e)]
    confident = [
        a.categories[0][0] == e.subcategory_code[:2]
        for e in test
        for a in (model.answer(e.text, limit=1),)
        if a.categories[0][1] >= 0.9
    ]
    unsure = [
        a.categories[0][0] == e.subcategory_code[:2]
        for e in test
        for a in (model.answer(e.text, limit=1),)
        if a.uncertain
    ]
    assert len(confident) > len(test) / 2
    assert sum(confident) / len(confident) > 0.93
    assert 0.2 < sum(unsure) / len(unsure) < 0.8  # a coin toss: worth a look


def test_digits_and_punctuation_are_folded() -> None:
    assert learned.normalize("ＡＢＣ １３８００１３８０００，路灯！！") == "abc 0 路灯"
    assert learned.grams("路灯坏 x") == ["路", "灯", "坏", "路灯", "灯坏", "x"]


def test_the_held_out_third_is_stable_and_about_a_third() -> None:
    texts = [f"第{i}号测试文本" for i in range(3000)]
    flags = [learned.held_out(learned.Example("0101", t)) for t in texts]
    assert 0.28 < sum(flags) / len(flags) < 0.38
    assert flags == [learned.held_out(learned.Example("0802", t, "x")) for t in texts]


def test_the_shipped_corpus_reads_and_covers_every_subcategory() -> None:
    corpus = learned.shipped_corpus(KNOWN)
    assert len(corpus) >= 2500
    assert {e.subcategory_code for e in corpus} == KNOWN
    assert len({e.text for e in corpus}) == len(corpus)  # no text twice


def test_a_corpus_line_with_an_unknown_code_is_named() -> None:
    with pytest.raises(ValueError, match="line 2: unknown subcategory code '9999'"):
        learned.read_tsv(["0802\t路灯唔着", "9999\t乜嘢"], source="corpus", known=KNOWN)
    with pytest.raises(ValueError, match="line 1: expected CODE<TAB>TEXT"):
        learned.read_tsv(["0802 路灯唔着"], source="corpus", known=KNOWN)


def test_the_packaged_model_is_the_one_the_shipped_corpus_makes() -> None:
    """taxonomy/data/model.npz is rebuilt by `gridgov classifier train --package` whenever the
    corpus or the catalogue's keywords change: its recorded digest says from what it was made."""
    model = learned.packaged_model()
    assert model is not None, "run: gridgov classifier train --package taxonomy/data/model.npz"
    train, _ = learned.corpus_split(CATALOGUE)
    assert model.meta["digest"] == learned.digest_of(train)
    assert set(model.classes) == KNOWN
