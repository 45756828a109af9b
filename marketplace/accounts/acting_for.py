"""Whom a user may act for: themselves, and the patients they are an active carer of (the grants
are made and ended in `caregivers`). Every patient-side rule asks here."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import CarerGrant, CarerStatus, Role, User
from marketplace.errors import NotFound


def patients_acted_for(session: Session, user: User) -> frozenset[uuid.UUID]:
    """The user and the patients they are an active carer of."""
    return frozenset([user.id, *cared_for_ids(session, user.id)])


def cared_for_ids(session: Session, carer_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(CarerGrant.patient_id).where(
                CarerGrant.carer_id == carer_id, CarerGrant.status == CarerStatus.ACTIVE
            )
        )
    )


def acts_for(session: Session, user: User, patient_id: uuid.UUID) -> bool:
    """Whether `user` is the patient, or an active carer of theirs."""
    if user.id == patient_id:
        return True
    if user.role is not Role.PATIENT:
        return False
    return patient_id in cared_for_ids(session, user.id)


def patient_for(session: Session, actor: User, patient_id: uuid.UUID | None) -> User:
    """Whom a patient-side action is for: the actor, or (`patient_id`) a patient they are an
    active carer of. Anyone else's id is a 404, as if there were no such patient."""
    if patient_id is None or patient_id == actor.id:
        return actor
    if not acts_for(session, actor, patient_id):
        raise NotFound("No such patient of yours.", code="not_your_patient")
    patient = session.get(User, patient_id)
    if patient is None or not patient.is_active:
        raise NotFound("No such patient of yours.", code="not_your_patient")
    return patient


def carers_of(
    session: Session, patient_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The active carers of each patient (patients without any are left out)."""
    found: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    ids = set(patient_ids)
    if not ids:
        return found
    rows = session.execute(
        select(CarerGrant.patient_id, CarerGrant.carer_id).where(
            CarerGrant.patient_id.in_(ids), CarerGrant.status == CarerStatus.ACTIVE
        )
    )
    for patient_id, carer_id in rows:
        if carer_id is not None:
            found[patient_id].append(carer_id)
    return found
