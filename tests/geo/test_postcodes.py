from __future__ import annotations

import pytest

from marketplace.errors import ValidationFailed
from marketplace.geo.postcodes import is_outward_code, normalise_postcode, outward_code


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("M1 1AE", "M1 1AE"),  # A9
        ("B33 8TH", "B33 8TH"),  # A99
        ("CR2 6XH", "CR2 6XH"),  # AA9
        ("DN55 1PT", "DN55 1PT"),  # AA99
        ("W1A 0AX", "W1A 0AX"),  # A9A
        ("EC1A 1BB", "EC1A 1BB"),  # AA9A
        ("sw1a1aa", "SW1A 1AA"),  # lowercase, no space
        ("  n1   9gu ", "N1 9GU"),
        ("gir0aa", "GIR 0AA"),
    ],
)
def test_valid_forms_are_normalised(written: str, normalised: str) -> None:
    assert normalise_postcode(written) == normalised


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("", "Enter a postcode"),
        ("SW1A-1AA", "only letters and digits"),
        ("SW1A1AAA1", "5 to 7"),
        ("Q1 1AA", "not a valid UK outward code"),  # Q never starts a postcode
        ("SW1A 1AC", "not C, I, K, M, O"),  # C never in the inward letters
        ("12 345", "digit and two letters"),
    ],
)
def test_invalid_postcodes_say_what_is_wrong(written: str, says: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        normalise_postcode(written)
    assert says in failure.value.details["fields"]["postcode"][0]


def test_outward_code() -> None:
    assert outward_code("SW1A 1AA") == "SW1A"
    assert is_outward_code("w1m")
    assert not is_outward_code("SW1A 1AA")
