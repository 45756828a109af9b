"""The controlled vocabulary of specialties. The slugs are part of the public contract.

Each specialty is core to one profession: neurological conditions to physiotherapists; chronic
pain, sports injury and the techniques to neuromuscular therapists. Matching ranks a practitioner
whose profession the specialty is core to above one who treats it from another profession."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from marketplace.practitioners.models import Profession

PHYSIOTHERAPIST = Profession.PHYSIOTHERAPIST
NMT = Profession.NEUROMUSCULAR_THERAPIST


class SpecialtyKind(enum.StrEnum):
    CONDITION = "condition"
    TECHNIQUE = "technique"


@dataclass(frozen=True)
class Specialty:
    slug: str
    label: str
    kind: SpecialtyKind
    core_to: Profession


SPECIALTIES: tuple[Specialty, ...] = (
    Specialty("stroke", "Stroke", SpecialtyKind.CONDITION, PHYSIOTHERAPIST),
    Specialty("parkinsons", "Parkinson's disease", SpecialtyKind.CONDITION, PHYSIOTHERAPIST),
    Specialty("multiple_sclerosis", "Multiple sclerosis", SpecialtyKind.CONDITION, PHYSIOTHERAPIST),
    Specialty("brain_injury", "Brain injury", SpecialtyKind.CONDITION, PHYSIOTHERAPIST),
    Specialty("spinal_cord_injury", "Spinal cord injury", SpecialtyKind.CONDITION, PHYSIOTHERAPIST),
    Specialty("cerebral_palsy", "Cerebral palsy", SpecialtyKind.CONDITION, PHYSIOTHERAPIST),
    Specialty(
        "peripheral_nerve_injury",
        "Peripheral nerve injury",
        SpecialtyKind.CONDITION,
        PHYSIOTHERAPIST,
    ),
    Specialty(
        "balance_disorders",
        "Balance and coordination disorders",
        SpecialtyKind.CONDITION,
        PHYSIOTHERAPIST,
    ),
    Specialty("chronic_pain", "Chronic pain", SpecialtyKind.CONDITION, NMT),
    Specialty("sports_injury", "Sports injury", SpecialtyKind.CONDITION, NMT),
    Specialty("trigger_point", "Trigger point therapy", SpecialtyKind.TECHNIQUE, NMT),
    Specialty("compression", "Compression", SpecialtyKind.TECHNIQUE, NMT),
    Specialty("stretching", "Stretching", SpecialtyKind.TECHNIQUE, NMT),
    Specialty("cross_fibre_friction", "Cross-fibre friction", SpecialtyKind.TECHNIQUE, NMT),
    Specialty("positional_release", "Positional release", SpecialtyKind.TECHNIQUE, NMT),
    Specialty(
        "post_isometric_relaxation", "Post-isometric relaxation", SpecialtyKind.TECHNIQUE, NMT
    ),
    Specialty(
        "pnf", "Proprioceptive neuromuscular facilitation (PNF)", SpecialtyKind.TECHNIQUE, NMT
    ),
    Specialty(
        "musculoskeletal_reeducation", "Musculoskeletal re-education", SpecialtyKind.TECHNIQUE, NMT
    ),
    Specialty("myofascial_release", "Myofascial release", SpecialtyKind.TECHNIQUE, NMT),
)

SPECIALTY_BY_SLUG = {specialty.slug: specialty for specialty in SPECIALTIES}
SPECIALTY_SLUGS = tuple(SPECIALTY_BY_SLUG)
