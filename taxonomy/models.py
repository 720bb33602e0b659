"""The catalogue in the database: each import is a new revision; the newest one is in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class CatalogueRevision(SQLModel, table=True):
    __tablename__ = "catalogue_revision"

    id: int | None = Field(default=None, primary_key=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ClassifierModel(SQLModel, table=True):
    """A trained classifier (`gridgov classifier train`): the newest one answers in every
    process; its id is the `model_version` answers name."""

    __tablename__ = "classifier_model"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # What it learned from (examples by source, the training set's digest) and how it did on
    # the corpus's held-out third.
    meta: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ClassifierExample(SQLModel, table=True):
    """A district's past case (`gridgov classifier import-history`), learned from by the next
    training together with the shipped corpus and the command centre's corrections."""

    __tablename__ = "classifier_example"

    id: int | None = Field(default=None, primary_key=True)
    subcategory_code: str = Field(max_length=8, index=True)
    text: str = Field(max_length=4000)
    source: str = Field(default="history", max_length=16)
    imported_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ClassifierTraining(SQLModel, table=True):
    """One row: the lease of the process training in the background (the others skip)."""

    __tablename__ = "classifier_training"

    id: int = Field(default=1, primary_key=True)
    lease_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
