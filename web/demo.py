"""The demo show: a few products, seeded once, and the links for each role."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import catalog, users
from checkout.catalog import ProductSpec, VariantSpec
from checkout.show_state import ShowStatus
from core.roles import Role
from web.auth import TokenIssuer

DEMO_TITLE = "liveshop demo: autumn drop"

# What the demo's automatic answers know of the shop (besides its facts, stock and prices).
DEMO_POLICIES = {
    "shipping": "Ships in 2 working days; free shipping in the EU over €50",
    "payment": "Card (Visa, Mastercard), PayPal and Apple Pay",
}

DEMO_PRODUCTS = [
    ProductSpec(
        name="Merino crew sweater",
        description="Soft, warm, machine washable.",
        image_url="/static/img/sweater.svg",
        variants=[
            VariantSpec("DEMO-SWEATER-S", 7900, "EUR", 20, {"size": "S"}),
            VariantSpec("DEMO-SWEATER-M", 7900, "EUR", 30, {"size": "M"}),
            VariantSpec("DEMO-SWEATER-L", 7900, "EUR", 20, {"size": "L"}),
        ],
        facts={
            "material": "100% merino wool",
            "care": "Machine wash cold on the wool cycle; dry flat",
            "origin": "Knitted in Portugal",
        },
    ),
    ProductSpec(
        name="Ceramic pour-over set",
        description="Dripper, carafe and two cups.",
        image_url="/static/img/pourover.svg",
        variants=[VariantSpec("DEMO-POUROVER", 4500, "EUR", 50, {"colour": "sand"})],
        facts={
            "material": "Stoneware with a matte glaze",
            "in the box": "Dripper, carafe and two cups",
            "capacity": "Carafe holds 600 ml",
        },
    ),
    ProductSpec(
        name="Limited sneaker drop",
        description="Only a handful; when they are gone, they are gone.",
        image_url="/static/img/sneaker.svg",
        variants=[
            VariantSpec("DEMO-SNEAKER-42", 12900, "EUR", 3, {"size": "42"}),
            VariantSpec("DEMO-SNEAKER-43", 12900, "EUR", 3, {"size": "43"}),
        ],
        facts={"material": "Suede upper, natural rubber sole"},
    ),
]


def _for_show(spec: ProductSpec, show_id: str) -> ProductSpec:
    """SKUs are unique across shows: suffix the demo's with the show id."""
    suffix = show_id.rsplit("_", 1)[-1][:6].upper()
    variants = [replace(v, sku=f"{v.sku}-{suffix}") for v in spec.variants]
    return replace(spec, variants=variants)


@dataclass(frozen=True)
class DemoShow:
    show_id: str
    host_token: str
    moderator_token: str


async def seed(sessions: async_sessionmaker[AsyncSession], tokens: TokenIssuer) -> DemoShow:
    """The live demo show, created the first time (a later run reuses it)."""
    async with sessions.begin() as session:
        existing = [
            s
            for s in await catalog.list_shows(session)
            if s.title == DEMO_TITLE and s.status is not ShowStatus.ENDED
        ]
        if existing:
            show = existing[0]
        else:
            show = await catalog.create_show(session, DEMO_TITLE)
            show.policies = dict(DEMO_POLICIES)
            for spec in DEMO_PRODUCTS:
                await catalog.add_product(session, show.id, _for_show(spec, show.id))
        if show.host_id is None:
            show.host_id = (await users.ensure_user(session, Role.HOST, "Demo host")).id
        if show.status is ShowStatus.SCHEDULED:
            await catalog.change_status(session, show.id, ShowStatus.LIVE)
        show_id, host_id = show.id, show.host_id
    return DemoShow(
        show_id=show_id,
        host_token=tokens.issue(Role.HOST, name="Demo host", show_id=show_id, user_id=host_id),
        moderator_token=tokens.issue(Role.MODERATOR, name="Demo moderator", show_id=show_id),
    )


def links(base_url: str, demo: DemoShow) -> dict[str, str]:
    """What the demo prints: a page per role (tokens in the URL fragment) and the tokens."""
    return {
        "viewer": f"{base_url}/watch/{demo.show_id}",
        "host studio": f"{base_url}/studio/{demo.show_id}#token={demo.host_token}",
        "moderator": f"{base_url}/moderate/{demo.show_id}#token={demo.moderator_token}",
        "host token": demo.host_token,
        "moderator token": demo.moderator_token,
    }
