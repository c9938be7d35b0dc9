"""``tap`` counts only the show's own products, without a catalog read per tap."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from checkout import catalog
from checkout.results import CatalogProduct
from core.roles import Role
from web.parts import parts

from .conftest import Client, LiveServer, seed_show


async def test_a_tap_names_a_product_of_this_show(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = await seed_show(live.app, products=2)
    other = await seed_show(live.app, products=1)
    checkout = parts(live.app).checkout
    reads: list[str] = []
    products = checkout.products

    async def counted(show_id: str) -> Sequence[CatalogProduct]:
        reads.append(show_id)
        return await products(show_id)

    monkeypatch.setattr(checkout, "products", counted)
    vera = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    host = await Client.open(live.url, seeded.show_id, live.token(Role.HOST, "H", seeded.show_id))
    try:
        await vera.expect("hello")
        reads.clear()  # (the snapshot read the catalog)
        for junk in ("junk", other.product_ids[0], "x" * 64, seeded.product_ids[0] + " "):
            reply = await vera.request("tap", product_id=junk)
            assert (reply["type"], reply["code"]) == ("error", "product_not_found"), junk
        assert (await vera.request("tap", product_id=seeded.product_ids[1]))["taps"] == 1
        assert (await vera.request("tap", product_id=seeded.product_ids[1]))["taps"] == 2
        assert len(reads) <= 1  # one read for the storm, not one a tap
        stats = await host.request("stats")
        assert stats["taps"] == {seeded.product_ids[1]: 2}
        # a product added now is tappable at once (the API's catalog change drops the cache)
        async with parts(live.app).resources.sessions.begin() as session:
            spec = catalog.ProductSpec(
                name="New", variants=[catalog.VariantSpec(f"NEW-{seeded.show_id}", 500, "EUR", 1)]
            )
            added = await catalog.add_product(session, seeded.show_id, spec)
        await parts(live.app).bus.catalog_changed(seeded.show_id)
        assert (await vera.request("tap", product_id=added.id))["taps"] == 1
    finally:
        await vera.close()
        await host.close()
