"""The show's knowledge for automatic answers (``live.answers``), read when a question
comes: the catalog with its facts, the live units and deal prices (checkout's port), the
show's policies, what people answered before, and the product pinned now."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from core.errors import CodedError
from live.answers import Answer, Answerer, Draft, Knowledge, PastAnswer, ProductFacts, VariantFacts
from live.ports import CheckoutPort
from live.questions import Questions

log = logging.getLogger(__name__)

AUTO_ANSWERER = "auto"  # ``answered_by`` of an automatic answer


@dataclass(frozen=True)
class Considered:
    """What the show knows of a question: an answer (or None), drafts for the moderators
    when there is none, and the product the question is about."""

    answer: Answer | None
    drafts: list[Draft]
    product_name: str | None


class AutoAnswers:
    def __init__(
        self,
        redis: aioredis.Redis,
        show_id: str,
        checkout: CheckoutPort,
        questions: Questions,
        pins_key: str,
        *,
        enabled: bool = True,
    ) -> None:
        self.redis = redis
        self.show_id = show_id
        self.checkout = checkout
        self.questions = questions
        self.pins_key = pins_key
        self.enabled = enabled

    async def knowledge(self) -> tuple[Knowledge, str | None]:
        """The show's knowledge now, and the name of the product pinned last (or None)."""
        products = list(await self.checkout.products(self.show_id))
        ids = [v.id for p in products for v in p.variants]
        available = {v.id: v.stock for p in products for v in p.variants}
        deal_prices: dict[str, int] = {}
        try:
            available.update(await self.checkout.availability(ids))
            for view in await self.checkout.deals(self.show_id):
                data = view.to_json()
                deal_prices[str(data["variant_id"])] = int(data["price"]["amount"])
        except CodedError:
            pass  # checkout cannot tell the live units now: the catalog's are used
        policies = await self.checkout.policies(self.show_id)
        past = await self.questions.past_answers([p.name for p in products])
        pinned_id = await self.redis.lindex(self.pins_key, -1)
        pinned = next((p.name for p in products if p.id == pinned_id), None)
        currency = next((v.currency for p in products for v in p.variants), "EUR")
        knowledge = Knowledge(
            currency=currency,
            products=tuple(
                ProductFacts(
                    name=p.name,
                    description=p.description,
                    facts=dict(p.facts),
                    variants=tuple(
                        VariantFacts(
                            sku=v.sku,
                            attributes={k: str(value) for k, value in v.attributes.items()},
                            price_minor=v.price_minor,
                            stock=available.get(v.id, v.stock),
                            deal_price_minor=deal_prices.get(v.id),
                        )
                        for v in p.variants
                    ),
                )
                for p in products
            ),
            policies=policies,
            answered=tuple(PastAnswer(q, a, product) for q, a, product in past),
        )
        return knowledge, pinned

    async def drafts_for(self, questions: list[dict[str, Any]]) -> dict[str, list[Draft]]:
        """Drafted replies of open questions (the staff's queue after a reload), by id."""
        if not questions:
            return {}
        knowledge, pinned = await self.knowledge()
        answerer = Answerer(knowledge)
        return {
            q["id"]: answerer.drafts(q["text"], q.get("product_name") or pinned) for q in questions
        }

    async def consider(self, text: str) -> Considered:
        """An automatic answer to ``text`` if the show's data settles it, else drafts. When
        the knowledge cannot be read (the database or Redis failing), nothing: the
        question still goes to the queue, for a person."""
        try:
            return await self._consider(text)
        except (CodedError, OSError, SQLAlchemyError, RedisError):
            log.warning("automatic answer skipped: the show's knowledge could not be read")
            return Considered(None, [], None)

    async def _consider(self, text: str) -> Considered:
        knowledge, pinned = await self.knowledge()
        answerer = Answerer(knowledge)
        product = answerer.product_of(answerer.read(text), pinned)
        name = product.name if product is not None else pinned
        if not self.enabled:
            return Considered(None, answerer.drafts(text, pinned), name)
        found = answerer.answer(text, pinned)
        drafts = [] if found is not None else answerer.drafts(text, pinned)
        return Considered(found, drafts, name)
