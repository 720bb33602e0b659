"""HTTP glue for the catalogue and the classifier."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.deps import ActorDep, RuntimeDep
from core.text import CleanText

router = APIRouter(prefix="/v1/taxonomy", tags=["taxonomy"])


class ClassifyIn(BaseModel):
    text: CleanText = Field(max_length=20_000)
    limit: int = Field(default=5, ge=1, le=50)


class CandidateOut(BaseModel):
    category_code: str
    subcategory_code: str
    score: float
    category_name: str
    subcategory_name: str


class ClassifyOut(BaseModel):
    candidates: list[CandidateOut]
    # The best candidate is not clear (low probability, or a close second): look first.
    uncertain: bool
    # Which model answered: a trained model's number, `packaged-…` (the one built from the
    # shipped corpus) or `keywords` (no model at all).
    model_version: str


@router.get("")
def get_catalogue(runtime: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    """The catalogue in force: 17 categories with their subcategories, units and limits."""
    taxonomy = runtime.taxonomy.get()
    body: dict[str, Any] = taxonomy.catalogue.model_dump(mode="json")
    body["revision"] = taxonomy.revision
    return body


@router.post("/classify", response_model=ClassifyOut)
def classify(body: ClassifyIn, runtime: RuntimeDep, actor: ActorDep) -> ClassifyOut:
    """Candidate categories for a text, best first (never empty), whether the best is unclear,
    and the model that answered."""
    taxonomy = runtime.taxonomy.get()
    candidates, uncertain = taxonomy.answer(body.text, limit=body.limit)
    out = []
    for c in candidates:
        cat = taxonomy.catalogue.category(c.category_code)
        sub = taxonomy.catalogue.subcategory(c.subcategory_code)
        out.append(
            CandidateOut(
                category_code=c.category_code,
                subcategory_code=c.subcategory_code,
                score=c.score,
                category_name=cat.name if cat else "",
                subcategory_name=sub.name if sub else "",
            )
        )
    return ClassifyOut(candidates=out, uncertain=uncertain, model_version=taxonomy.model_version)
