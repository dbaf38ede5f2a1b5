"""Custom classifiers, scoped to an owner: another user's classifier does not exist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genfoundry.db.tables import Classifier
from genfoundry.errors import NotFound


def create_classifier(*, session: Session, **fields: Any) -> Classifier:
    classifier = Classifier(**fields)
    session.add(classifier)
    session.flush()
    return classifier


def get_classifier(*, session: Session, owner_id: str, classifier_id: str) -> Classifier | None:
    classifier = session.scalar(select(Classifier).where(Classifier.id == classifier_id))
    if classifier is None or classifier.owner_id != owner_id:
        return None
    return classifier


def require_classifier(*, session: Session, owner_id: str, classifier_id: str, param: str = "model") -> Classifier:
    classifier = get_classifier(session=session, owner_id=owner_id, classifier_id=classifier_id)
    if classifier is None:
        raise NotFound(f"The model '{classifier_id}' does not exist", param=param)
    return classifier


def find_by_job(*, session: Session, job_id: str) -> Classifier | None:
    return session.scalar(select(Classifier).where(Classifier.job_id == job_id))


def list_classifiers(*, session: Session, owner_id: str) -> list[Classifier]:
    query = select(Classifier).where(Classifier.owner_id == owner_id).order_by(Classifier.seq)
    return list(session.scalars(query))


def list_all_classifiers(*, session: Session) -> list[Classifier]:
    """Every user's classifiers (the local operator's view, `genfoundry models list`)."""
    return list(session.scalars(select(Classifier).order_by(Classifier.seq)))


def delete_classifier(*, session: Session, classifier: Classifier) -> None:
    session.delete(classifier)
