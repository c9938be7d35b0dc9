"""Request bodies of the admin and host API (strict: wrong types are refused, not coerced)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from checkout.validation import MAX_PRICE_MINOR, MAX_UNITS
from core.currency import is_currency
from core.roles import Role

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _known_currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError("an active ISO 4217 currency code (EUR, JPY, KWD...)")
    return code


# An ISO 4217 code: its minor unit (core/currency.py) says what an amount's digits mean.
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_known_currency)]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
# An https URL on a named host (no user info), or a path of this app ("/static/..."): never
# "//host" or "/\host" (both are another host to a browser), nor http (mixed content).
ImageUrl = Annotated[
    str,
    StringConstraints(
        max_length=1000,
        pattern=r"^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s\\]*)?|/[^/\s\\][^\s\\]*)$",
    ),
]


def _storable_time(value: datetime) -> datetime:
    """A time every database column here holds: years 2000-9998 once in UTC (a later one
    with a negative offset would not even convert)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("a time between the years 2000 and 9998") from None
    if not 2000 <= utc.year <= 9998:
        raise ValueError("a time between the years 2000 and 9998")
    return utc


ScheduledAt = Annotated[AwareDatetime, AfterValidator(_storable_time)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class ShowIn(Strict):
    title: Text
    scheduled_at: ScheduledAt | None = Field(default=None, strict=False)


class ShowPatch(Strict):
    """The host's edits (``PATCH /api/shows/{show}``): what is given changes; a
    ``scheduled_at`` of null clears the schedule."""

    title: Text | None = None
    scheduled_at: ScheduledAt | None = Field(default=None, strict=False)


class PriceIn(Strict):
    amount: int = Field(ge=0, le=MAX_PRICE_MINOR)
    currency: Currency


class VariantIn(Strict):
    sku: Sku
    price: PriceIn
    stock: int = Field(ge=0, le=MAX_UNITS)
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=20)


FactKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
FactText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
PolicyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Facts = Annotated[dict[FactKey, FactText], Field(max_length=30)]


class ProductIn(Strict):
    name: Text
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    image_url: ImageUrl | None = None
    variants: list[VariantIn] = Field(min_length=1, max_length=50)
    facts: Facts = Field(default_factory=dict)


class FactsIn(Strict):
    """A product's facts (``PUT /api/products/{product}/facts``): key -> text, replaced."""

    facts: Facts


class PoliciesIn(Strict):
    """A show's policies (``PUT /api/shows/{show}/policies``): key -> text, replaced."""

    policies: Annotated[dict[FactKey, PolicyText], Field(max_length=20)]


class StockIn(Strict):
    stock: int = Field(ge=0, le=MAX_UNITS)


NAME_MAX_CHARS = 80
"""A token's display name: users.display_name and questions.viewer_name hold 80."""


class TokenIn(Strict):
    role: Role = Field(strict=False)
    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_CHARS)
    ]
    show_id: str | None = Field(default=None, max_length=40)
    user_id: str | None = Field(default=None, max_length=40)
    ttl_s: int | None = Field(default=None, ge=60, le=30 * 24 * 3600)


class ViewerIn(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


def dump_time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
