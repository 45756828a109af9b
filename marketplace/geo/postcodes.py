"""UK postcodes: validation, normalisation ("sw1a1aa" -> "SW1A 1AA") and the outward code."""

from __future__ import annotations

import re

from marketplace.errors import ValidationFailed

# Outward code: A9, A99, AA9, AA99, A9A or AA9A; inward code: digit and two letters that never
# include C, I, K, M, O or V. GIR 0AA is the one historic exception. (W1M is real: M is allowed
# in A9A outward codes, though the published rules leave it out.)
_OUTWARD = r"(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?|[A-PR-UWYZ][0-9][A-HJKMPSTUW]|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY])"  # noqa: E501
_INWARD = r"[0-9][ABD-HJLNP-UW-Z]{2}"
_POSTCODE = re.compile(rf"^(?:(?P<outward>{_OUTWARD})(?P<inward>{_INWARD})|(?P<gir>GIR0AA))$")
_OUTCODE = re.compile(rf"^{_OUTWARD}$")


def normalise_postcode(raw: str, field: str = "postcode") -> str:
    """The postcode in its standard form, or a 422 that says what is wrong."""
    compact = re.sub(r"\s+", "", raw or "").upper()
    if not compact:
        raise ValidationFailed.for_field(field, "Enter a postcode.")
    if not re.fullmatch(r"[A-Z0-9]+", compact):
        raise ValidationFailed.for_field(field, "A postcode has only letters and digits.")
    if not 5 <= len(compact) <= 7:
        raise ValidationFailed.for_field(
            field, "A UK postcode has 5 to 7 letters and digits, e.g. SW1A 1AA."
        )
    match = _POSTCODE.match(compact)
    if match is None:
        if not re.fullmatch(_INWARD, compact[-3:]):
            message = (
                "The last three characters must be a digit and two letters (not C, I, K, M, O"
                " or V), e.g. 1AA."
            )
        else:
            message = f"{compact[:-3]} is not a valid UK outward code."
        raise ValidationFailed.for_field(field, message)
    if match.group("gir"):
        return "GIR 0AA"
    return f"{match.group('outward')} {match.group('inward')}"


def outward_code(postcode: str) -> str:
    """The district part of a normalised postcode: 'SW1A 1AA' -> 'SW1A'."""
    return postcode.split(" ", 1)[0]


def is_outward_code(text: str) -> bool:
    return bool(_OUTCODE.match(text.strip().upper()))
