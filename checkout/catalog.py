"""Shows and their catalog: create and list shows, add products and variants, set stock,
start and end a show. Plain async functions over an AsyncSession; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from checkout import webhook_events
from checkout.errors import Conflict, NotFound
from checkout.models import Product, Show, User, Variant
from checkout.show_state import ShowStatus, transition
from core.db import utcnow


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    price_minor: int
    currency: str
    stock: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductSpec:
    name: str
    variants: list[VariantSpec]
    description: str = ""
    image_url: str | None = None
    facts: dict[str, str] = field(default_factory=dict)


async def create_show(
    session: AsyncSession, title: str, scheduled_at: datetime | None = None
) -> Show:
    show = Show(title=title, scheduled_at=scheduled_at, status=ShowStatus.SCHEDULED)
    session.add(show)
    await session.flush()
    return show


async def list_shows(
    session: AsyncSession,
    status: ShowStatus | None = None,
    *,
    ended_since: datetime | None = None,
    limit: int | None = None,
) -> list[Show]:
    """Newest first. ``ended_since``: shows that ended before it are left out (the public
    list); ``limit``: at most that many, in SQL (the public list never reads every show)."""
    query = select(Show).order_by(Show.created_at.desc(), Show.id)
    if status is not None:
        query = query.where(Show.status == status)
    if ended_since is not None:
        query = query.where(or_(Show.status != ShowStatus.ENDED, Show.ended_at >= ended_since))
    if limit is not None:
        query = query.limit(limit)
    return list((await session.scalars(query)).all())


async def host_names(session: AsyncSession, shows: list[Show]) -> dict[str, str]:
    """host id -> display name, for the shows' hosts."""
    ids = {s.host_id for s in shows if s.host_id}
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {row.id: row.display_name for row in rows}


async def get_show(session: AsyncSession, show_id: str, *, for_update: bool = False) -> Show:
    query = select(Show).where(Show.id == show_id)
    if for_update:
        query = query.with_for_update()
    show = await session.scalar(query)
    if show is None:
        raise NotFound("show_not_found", f"no show {show_id!r}", fields={"show_id": "unknown"})
    return show


async def show_catalog(session: AsyncSession, show_id: str) -> list[Product]:
    """The show's products with their variants, in display order."""
    await get_show(session, show_id)
    query = (
        select(Product)
        .where(Product.show_id == show_id)
        .options(selectinload(Product.variants))
        .order_by(Product.position, Product.created_at)
    )
    return list((await session.scalars(query)).all())


async def change_status(session: AsyncSession, show_id: str, target: ShowStatus) -> Show:
    show = await get_show(session, show_id, for_update=True)
    show.status = transition(show.status, target)  # IllegalTransition: 409
    if target is ShowStatus.LIVE:
        show.started_at = utcnow()
    elif target is ShowStatus.ENDED:
        show.ended_at = utcnow()
    await session.flush()
    await webhook_events.show_changed(session, show)
    return show


UNSET: Any = object()
"""``update_show``'s default: leave the field as it is (None clears a schedule)."""


async def update_show(
    session: AsyncSession,
    show_id: str,
    *,
    title: str | None = None,
    scheduled_at: datetime | None = UNSET,
) -> Show:
    """The host's edits of a show: its title and when it is meant to start (a show that has
    ended keeps both: ``show_ended``)."""
    show = await get_show(session, show_id, for_update=True)
    if show.status is ShowStatus.ENDED:
        raise Conflict("show_ended", "the show has ended")
    if title is not None:
        show.title = title
    if scheduled_at is not UNSET:
        show.scheduled_at = scheduled_at
    await session.flush()
    return show


async def add_product(session: AsyncSession, show_id: str, spec: ProductSpec) -> Product:
    show = await get_show(session, show_id)
    if show.status is ShowStatus.ENDED:
        raise Conflict("show_ended", "the show has ended")
    position = len(
        (await session.scalars(select(Product.id).where(Product.show_id == show_id))).all()
    )
    product = Product(
        show_id=show_id,
        name=spec.name,
        description=spec.description,
        image_url=spec.image_url,
        facts=dict(spec.facts),
        position=position,
    )
    session.add(product)
    await session.flush()
    for index, variant_spec in enumerate(spec.variants):
        await _insert_variant(session, product, variant_spec, index)
    await session.refresh(product, ["variants"])
    return product


async def set_facts(session: AsyncSession, product_id: str, facts: dict[str, str]) -> Product:
    """Replace a product's facts (what automatic answers are made from)."""
    product = await get_product(session, product_id)
    product.facts = dict(facts)
    await session.flush()
    await session.refresh(product, ["variants"])
    return product


async def set_policies(session: AsyncSession, show_id: str, policies: dict[str, str]) -> Show:
    """Replace a show's policies (shipping, returns, payment, ...)."""
    show = await get_show(session, show_id, for_update=True)
    show.policies = dict(policies)
    await session.flush()
    return show


async def add_variant(session: AsyncSession, product_id: str, spec: VariantSpec) -> Variant:
    product = await get_product(session, product_id)
    count = len(
        (await session.scalars(select(Variant.id).where(Variant.product_id == product_id))).all()
    )
    return await _insert_variant(session, product, spec, count)


async def _insert_variant(
    session: AsyncSession, product: Product, spec: VariantSpec, position: int
) -> Variant:
    variant = Variant(
        product_id=product.id,
        sku=spec.sku,
        price_minor=spec.price_minor,
        currency=spec.currency.upper(),
        stock=spec.stock,
        attributes=dict(spec.attributes),
        position=position,
    )
    try:
        async with session.begin_nested():
            session.add(variant)
            await session.flush()
    except IntegrityError:
        raise Conflict(
            "duplicate_sku", f"SKU {spec.sku!r} already exists", fields={"sku": "taken"}
        ) from None
    return variant


async def get_product(session: AsyncSession, product_id: str) -> Product:
    product = await session.get(Product, product_id)
    if product is None:
        raise NotFound(
            "product_not_found", f"no product {product_id!r}", fields={"product_id": "unknown"}
        )
    return product


async def get_variant(
    session: AsyncSession, variant_id: str, *, for_update: bool = False
) -> Variant:
    query = select(Variant).where(Variant.id == variant_id)
    if for_update:
        query = query.with_for_update()
    variant = await session.scalar(query)
    if variant is None:
        raise NotFound(
            "variant_not_found", f"no variant {variant_id!r}", fields={"variant_id": "unknown"}
        )
    return variant


async def variant_show_id(session: AsyncSession, variant_id: str) -> str:
    """The show a variant is sold in (for scoping a host's token)."""
    show_id = await session.scalar(
        select(Product.show_id)
        .join(Variant, Variant.product_id == Product.id)
        .where(Variant.id == variant_id)
    )
    if show_id is None:
        raise NotFound(
            "variant_not_found", f"no variant {variant_id!r}", fields={"variant_id": "unknown"}
        )
    return show_id


async def set_stock(session: AsyncSession, variant_id: str, stock: int) -> Variant:
    """Set the SQL stock (units not yet sold) of a variant. Stock is never negative."""
    if stock < 0:
        raise Conflict("invalid_stock", "stock cannot be negative", fields={"stock": ">= 0"})
    variant = await get_variant(session, variant_id, for_update=True)
    variant.stock = stock
    await session.flush()
    return variant
