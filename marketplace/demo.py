"""A small believable data set for trying the service; later domains extend it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from marketplace.accounts import service as accounts
from marketplace.accounts.models import Role

DEMO_PASSWORD = "demo-visit-2026"  # noqa: S105 (printed for demo users)

DEMO_ACCOUNTS: list[tuple[str, str, Role, str | None]] = [
    ("admin@demo.example", "Ada Okafor", Role.ADMIN, None),
    ("patient@demo.example", "Peter Lewis", Role.PATIENT, "020 7946 0123"),
    ("priya.shah@demo.example", "Priya Shah", Role.PRACTITIONER, "020 7946 0201"),
    ("tom.ellis@demo.example", "Tom Ellis", Role.PRACTITIONER, "020 7946 0202"),
    ("grace.mensah@demo.example", "Grace Mensah", Role.PRACTITIONER, "020 7946 0203"),
]


def load_demo_data(session: Session) -> list[tuple[str, str]]:
    """Create the demo accounts that do not exist yet; returns (email, role) of all of them."""
    for email, full_name, role, phone in DEMO_ACCOUNTS:
        if accounts.find_user_by_email(session, email) is None:
            accounts.create_user(
                session,
                email=email,
                password=DEMO_PASSWORD,
                full_name=full_name,
                role=role,
                phone=phone,
            )
    return [(email, role.value) for email, _, role, _ in DEMO_ACCOUNTS]
