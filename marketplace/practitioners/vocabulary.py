"""The controlled vocabulary of specialties. The slugs are part of the public contract."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SpecialtyKind(enum.StrEnum):
    CONDITION = "condition"
    TECHNIQUE = "technique"


@dataclass(frozen=True)
class Specialty:
    slug: str
    label: str
    kind: SpecialtyKind


SPECIALTIES: tuple[Specialty, ...] = (
    Specialty("stroke", "Stroke", SpecialtyKind.CONDITION),
    Specialty("parkinsons", "Parkinson's disease", SpecialtyKind.CONDITION),
    Specialty("multiple_sclerosis", "Multiple sclerosis", SpecialtyKind.CONDITION),
    Specialty("brain_injury", "Brain injury", SpecialtyKind.CONDITION),
    Specialty("spinal_cord_injury", "Spinal cord injury", SpecialtyKind.CONDITION),
    Specialty("cerebral_palsy", "Cerebral palsy", SpecialtyKind.CONDITION),
    Specialty("peripheral_nerve_injury", "Peripheral nerve injury", SpecialtyKind.CONDITION),
    Specialty("balance_disorders", "Balance and coordination disorders", SpecialtyKind.CONDITION),
    Specialty("chronic_pain", "Chronic pain", SpecialtyKind.CONDITION),
    Specialty("sports_injury", "Sports injury", SpecialtyKind.CONDITION),
    Specialty("trigger_point", "Trigger point therapy", SpecialtyKind.TECHNIQUE),
    Specialty("compression", "Compression", SpecialtyKind.TECHNIQUE),
    Specialty("stretching", "Stretching", SpecialtyKind.TECHNIQUE),
    Specialty("cross_fibre_friction", "Cross-fibre friction", SpecialtyKind.TECHNIQUE),
    Specialty("positional_release", "Positional release", SpecialtyKind.TECHNIQUE),
    Specialty("post_isometric_relaxation", "Post-isometric relaxation", SpecialtyKind.TECHNIQUE),
    Specialty("pnf", "Proprioceptive neuromuscular facilitation (PNF)", SpecialtyKind.TECHNIQUE),
    Specialty(
        "musculoskeletal_reeducation", "Musculoskeletal re-education", SpecialtyKind.TECHNIQUE
    ),
    Specialty("myofascial_release", "Myofascial release", SpecialtyKind.TECHNIQUE),
)

SPECIALTY_BY_SLUG = {specialty.slug: specialty for specialty in SPECIALTIES}
SPECIALTY_SLUGS = tuple(SPECIALTY_BY_SLUG)
