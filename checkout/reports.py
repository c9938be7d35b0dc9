"""What checkout answers straight from SQL: a show's status and catalog, a buyer's orders
and the show's sales figures (no cache, no Redis)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import catalog, orders
from checkout.results import BuyerOrder, CatalogProduct, CatalogVariant, OrderSummary
from checkout.show_state import ShowStatus


class Reports:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def orders_of(self, show_id: str, buyer_id: str) -> list[OrderSummary]:
        async with self.sessions() as session:
            return await orders.orders_of(session, show_id, buyer_id)

    async def buyer_orders(
        self, buyer_id: str, limit: int, before: tuple[datetime, str] | None
    ) -> list[BuyerOrder]:
        async with self.sessions() as session:
            return await orders.buyer_orders(session, buyer_id, limit, before)

    async def show_status(self, show_id: str) -> ShowStatus:
        """The show's status as SQL has it now (NotFound: ``show_not_found``)."""
        async with self.sessions() as session:
            return (await catalog.get_show(session, show_id)).status

    async def products(self, show_id: str) -> list[CatalogProduct]:
        """The show's catalog: its products with their variants (SQL stock)."""
        async with self.sessions() as session:
            rows = await catalog.show_catalog(session, show_id)
        return [
            CatalogProduct(
                p.id,
                p.name,
                p.image_url,
                tuple(
                    CatalogVariant(
                        v.id, v.sku, dict(v.attributes or {}), v.price_minor, v.currency, v.stock
                    )
                    for v in p.variants
                ),
                p.description or "",
                dict(p.facts or {}),
            )
            for p in rows
        ]

    async def policies(self, show_id: str) -> dict[str, str]:
        """The show's policies (shipping, returns, payment, ...), key -> text."""
        async with self.sessions() as session:
            return dict((await catalog.get_show(session, show_id)).policies or {})

    async def stats(self, show_id: str) -> dict[str, int]:
        async with self.sessions() as session:
            await catalog.get_show(session, show_id)
            return await orders.show_stats(session, show_id)
