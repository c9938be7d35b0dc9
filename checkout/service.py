"""CheckoutService: carts, one-tap buy, deals and notifications over the Redis gate and SQL.

The hot path of a tap is one Lua call (``Inventory.reserve``); a refusal never touches SQL.
A tap that got units pays, then writes the order and the conditional stock decrement in one
SQL transaction (shared with the orders written at the same moment: ``orders.OrderWriter``),
answers, and then tells Redis the units are sold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import catalog, orders
from checkout.error_codes import IDEMPOTENCY_KEY_REUSED
from checkout.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OutOfStock,
    PaymentFailed,
    Unavailable,
)
from checkout.events import (
    BackInStock,
    DealEnded,
    DealStarted,
    Event,
    EventSink,
    OrderUpdate,
    StockChanged,
)
from checkout.holds import HoldState
from checkout.inventory import IDEM_TTL_MS, Inventory, Released, Replay, Reserved, idem_key, prefix
from checkout.models import Product, Show, Variant
from checkout.orders import LineSpec
from checkout.payments import Charge, PaymentProvider
from checkout.results import (
    CartLine,
    CartView,
    CatalogProduct,
    CatalogVariant,
    DealView,
    OrderResult,
    OrderSummary,
    from_ms,
)
from checkout.show_state import ShowStatus
from checkout.validation import (
    MAX_PRICE_MINOR,
    MAX_QUANTITY,
    MAX_UNITS,
    check_key,
    check_method,
    check_quantity,
    failure,
)
from core.aio import SingleFlight, cancel_requested, stop_tasks

log = logging.getLogger("liveshop.checkout")

SWEEP_INTERVAL_S = 0.25
STOCK_EVENT_INTERVAL_S = 0.25
"""StockChanged is coalesced: at most one per variant per interval from each process."""
SHOW_CACHE_S = 1.0
REPLAY_MARGIN_S = 5.0
CLAIM_TTL_S = 24 * 3600

Poll = Callable[[], Awaitable[tuple[str, str]]]


@dataclass(frozen=True)
class VariantInfo:
    variant_id: str
    show_id: str
    price_minor: int
    currency: str
    published: bool


@dataclass(frozen=True)
class HeldLine:
    """A hold in payment that will become one order line."""

    line: LineSpec
    hold_id: str
    epoch: str
    idem: str = ""


class CheckoutService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        events: EventSink,
        payments: PaymentProvider,
        *,
        cart_hold_s: int,
        payment_hold_s: int,
    ) -> None:
        if payment_hold_s <= payments.timeout_s:
            raise ValueError("the payment hold must outlast the payment provider's timeout")
        self.sessions = sessions
        self.redis = redis
        self.events = events
        self.payments = payments
        self.cart_hold_s = cart_hold_s
        self.payment_hold_s = payment_hold_s
        self.inventory = Inventory(redis, self._sql_stock)
        self.writer = orders.OrderWriter(sessions)
        self._variants: dict[str, VariantInfo] = {}
        self._shows: dict[str, tuple[ShowStatus, float]] = {}
        self._reads = SingleFlight()  # variant and show reads, one per key at a time
        self._dirty: dict[str, tuple[str, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._seen_epoch: str | None = None

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.inventory.register()
        await self.writer.start()
        await self.rebuild()
        self._tasks = [
            asyncio.create_task(self._sweeper(), name="checkout-sweeper"),
            asyncio.create_task(self._stock_publisher(), name="checkout-stock-events"),
        ]

    async def close(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks = []
        await self.writer.close()  # (its last orders may start after-order work)
        await self.settled(timeout_s=2.0)  # orders already answered finish first (bounded)
        await self.inventory.batcher.close()

    async def rebuild(self) -> None:
        """Load every variant Redis lacks from SQL stock (after a data loss: all of them).

        When the epoch changed (Redis lost its data), the one-tap idempotency keys of the
        last day's orders are written back too, so a retry still finds its order.
        """
        before = self._seen_epoch
        self._seen_epoch = await self.inventory.current_epoch()
        async with self.sessions() as session:
            ids = list((await session.scalars(select(Variant.id))).all())
        loaded = 0
        for variant_id in ids:
            loaded += await self.inventory.load(variant_id)
        if loaded or before != self._seen_epoch:
            await self._restore_idempotency()
            log.info("inventory rebuilt from SQL", extra={"variants": loaded})

    async def _restore_idempotency(self) -> None:
        since = datetime.now(UTC) - timedelta(seconds=IDEM_TTL_MS // 1000)
        async with self.sessions() as session:
            recent = await orders.recent_orders(session, since)
        for order in recent:
            if len(order.lines) != 1:
                continue  # cart orders are found in SQL before anything is held
            line = order.lines[0]
            fp = f"{order.show_id}|{line.variant_id}|{line.quantity}"
            ikey = idem_key(line.variant_id, order.buyer_id, order.idempotency_key)
            if await self.redis.hsetnx(ikey, "fp", fp):
                await self.redis.hset(ikey, mapping={"state": "done", "order": order.id})
                await self.redis.pexpire(ikey, IDEM_TTL_MS)

    async def prepare_show(self, show_id: str) -> None:
        """Load a show's variants into Redis as it goes live, before its first tap.

        Best effort: the show is live whatever happens here, and a variant this misses is
        loaded by its first tap."""
        try:
            async with self.sessions() as session:
                ids = (
                    await session.scalars(
                        select(Variant.id)
                        .join(Product, Product.id == Variant.product_id)
                        .where(Product.show_id == show_id)
                    )
                ).all()
            for variant_id in ids:
                await self.inventory.load(variant_id)
        except Exception as exc:
            log.warning("could not load the show's stock into redis: %r", exc)

    def invalidate_show(self, show_id: str) -> None:
        """Forget the cached status of a show (called when it starts or ends)."""
        self._shows.pop(show_id, None)
        self._reads.forget(f"show:{show_id}")  # a read under way may predate the change

    # -- lookups -------------------------------------------------------------------------

    async def _sql_stock(self, variant_id: str) -> int:
        async with self.sessions() as session:
            return await orders.sql_stock(session, variant_id)

    async def _info(self, variant_id: str) -> VariantInfo:
        info = self._variants.get(variant_id)
        if info is not None:
            return info
        if not isinstance(variant_id, str) or not variant_id:
            raise NotFound("variant_not_found", "no such variant", fields={"variant_id": "unknown"})
        info = await self._reads.run(f"variant:{variant_id}", lambda: self._read_info(variant_id))
        if info is None:
            raise NotFound(
                "variant_not_found",
                f"no variant {variant_id!r}",
                fields={"variant_id": "unknown"},
            )
        return info

    async def _read_info(self, variant_id: str) -> VariantInfo | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(
                        Variant.price_minor, Variant.currency, Product.show_id, Product.published
                    )
                    .join(Product, Product.id == Variant.product_id)
                    .where(Variant.id == variant_id)
                )
            ).one_or_none()
        if row is None:
            return None
        info = VariantInfo(variant_id, row.show_id, row.price_minor, row.currency, row.published)
        self._variants[variant_id] = info
        return info

    async def _show_status(self, show_id: str) -> ShowStatus:
        cached = self._shows.get(show_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        status = await self._reads.run(f"show:{show_id}", lambda: self._read_show_status(show_id))
        if status is None:
            raise NotFound("show_not_found", f"no show {show_id!r}", fields={"show_id": "unknown"})
        return status

    async def _read_show_status(self, show_id: str) -> ShowStatus | None:
        me = asyncio.current_task()
        async with self.sessions() as session:
            status = await session.scalar(select(Show.status).where(Show.id == show_id))
        if status is not None and self._reads.current(f"show:{show_id}") is me:
            # (not cached when the show changed while this read was under way)
            self._shows[show_id] = (status, time.monotonic() + SHOW_CACHE_S)
        return status

    async def _require_live(self, show_id: str) -> None:
        if await self._show_status(show_id) is not ShowStatus.LIVE:
            raise Conflict("show_not_live", "the show is not live", fields={"show_id": "not live"})

    async def _variant(self, show_id: str, variant_id: str, *, live: bool = True) -> VariantInfo:
        """The variant if it is sold in this show and published (and the show is live)."""
        if live:
            await self._require_live(show_id)
        else:
            await self._show_status(show_id)
        info = await self._info(variant_id)
        if info.show_id != show_id:
            raise NotFound(
                "variant_not_found",
                "this variant is not sold in this show",
                fields={"variant_id": "not in this show"},
            )
        if not info.published:
            raise NotFound(
                "product_unpublished",
                "this product is not published",
                fields={"variant_id": "not published"},
            )
        return info

    # -- events --------------------------------------------------------------------------

    async def _publish(self, event: Event) -> None:
        try:
            await self.events.publish(event)
        except Exception:  # a sink that fails must never undo a sale
            log.exception("event sink failed", extra={"kind": event.kind})

    def _stock_moved(self, show_id: str, variant_id: str, available: int) -> None:
        self._dirty[variant_id] = (show_id, available)

    async def _stock_publisher(self) -> None:
        while not cancel_requested():
            await asyncio.sleep(STOCK_EVENT_INTERVAL_S)
            dirty, self._dirty = self._dirty, {}
            for variant_id, (show_id, available) in dirty.items():
                await self._publish(StockChanged(show_id, variant_id, available, available == 0))

    async def _back_in_stock(self, show_id: str, variant_id: str, available: int) -> None:
        viewers = await self.inventory.pop_subscribers(variant_id)
        if viewers:
            await self._publish(BackInStock(show_id, variant_id, available, viewers))

    async def _after_reserve(self, info: VariantInfo, res: Reserved) -> None:
        self._stock_moved(info.show_id, info.variant_id, res.available)
        await self._on_released(res.released)
        if res.back_in_stock:
            await self._back_in_stock(info.show_id, info.variant_id, res.available)
        if res.deal_units_gone:
            await self._publish(DealEnded(info.show_id, info.variant_id, "sold_out"))

    async def _on_released(self, released: list[Released]) -> None:
        for hold in released:
            if hold.hold_id.startswith("c:"):
                await self._publish(
                    OrderUpdate(hold.show_id, hold.buyer_id, "cart_expired", reason="hold_expired")
                )

    # -- the sweeper ---------------------------------------------------------------------

    async def _sweeper(self) -> None:
        while not cancel_requested():
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await self.sweep_once()
            except (Unavailable, RedisError) as exc:
                log.warning("sweep skipped: %s", exc)
            except Exception:
                log.exception("sweep failed")

    async def sweep_once(self) -> None:
        """Release holds whose time is up, end expired deals; rebuild if Redis lost its data."""
        epoch = await self.redis.get("inv:epoch")
        if epoch is None or epoch != self._seen_epoch:
            log.warning("redis lost its data (epoch changed): rebuilding from SQL")
            await self.rebuild()
        for variant_id in await self.inventory.known_variants():
            swept = await self.inventory.sweep(variant_id)
            if swept is None:
                continue
            await self._on_released(swept.released)
            show_id = swept.deal_expired_show
            if show_id:
                await self.redis.srem(f"deals:{show_id}", variant_id)
                await self._publish(DealEnded(show_id, variant_id, "expired"))
            if swept.released:
                info = await self._info(variant_id)
                self._stock_moved(info.show_id, variant_id, swept.available)
                if swept.back_in_stock:
                    await self._back_in_stock(info.show_id, variant_id, swept.available)

    # -- one-tap buy ---------------------------------------------------------------------

    async def buy_now(
        self,
        show_id: str,
        buyer_id: str,
        variant_id: str,
        quantity: int,
        idempotency_key: str,
        payment_method: str,
    ) -> OrderResult:
        check_key(idempotency_key)
        check_quantity(quantity)
        check_method(payment_method)
        info = await self._variant(show_id, variant_id)
        hold_id = f"b:{buyer_id}:{idempotency_key}"
        fingerprint = f"{show_id}|{variant_id}|{quantity}"
        ikey = idem_key(variant_id, buyer_id, idempotency_key)
        res = await self.inventory.reserve(
            variant_id,
            hold_id,
            buyer_id=buyer_id,
            show_id=show_id,
            quantity=quantity,
            ttl_ms=self.payment_hold_s * 1000,
            state=HoldState.PAYING,
            idempotency=(idempotency_key, fingerprint),
        )
        if isinstance(res, Replay):
            return await self._replay(res, buyer_id, idempotency_key, self._idem_poll(ikey))
        await self._after_reserve(info, res)
        price = res.deal_price_minor if res.deal_price_minor is not None else info.price_minor
        held = HeldLine(LineSpec(variant_id, quantity, price), hold_id, res.epoch, ikey)
        return await self._pay_and_order(
            show_id, buyer_id, idempotency_key, payment_method, [held], info.currency
        )

    async def _replay(self, res: Replay, buyer_id: str, key: str, poll: Poll) -> OrderResult:
        """Answer a repeated key: wait for the first request, then give its outcome."""
        deadline = time.monotonic() + self.payments.timeout_s + REPLAY_MARGIN_S
        state, reason = res.state, res.reason
        while state == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            state, reason = await poll()
        if state == "failed":
            raise failure(reason)
        async with self.sessions() as session:
            order = await orders.find_order(session, buyer_id, key)
        if order is not None:
            return orders.order_result(order, replayed=True)
        raise Conflict(
            "request_in_progress",
            "a request with this key is still in progress, try again",
            extra={"retry": True},
        )

    async def _charge(self, total: int, currency: str, method: str, key: str) -> Charge:
        try:
            return await asyncio.wait_for(
                self.payments.charge(
                    amount_minor=total,
                    currency=currency,
                    payment_method=method,
                    idempotency_key=key,
                ),
                timeout=self.payments.timeout_s,
            )
        except TimeoutError:
            return Charge(ok=False, reason="payment_timeout")

    async def _pay_and_order(
        self,
        show_id: str,
        buyer_id: str,
        key: str,
        method: str,
        held: list[HeldLine],
        currency: str,
    ) -> OrderResult:
        lines = [h.line for h in held]
        total = sum(line.quantity * line.unit_price_minor for line in lines)
        charge = await self._charge(total, currency, method, f"{buyer_id}:{key}")
        if not charge.ok:
            reason = charge.reason or "payment_declined"
            await self._release_all(show_id, held, reason)
            await self._publish(
                OrderUpdate(show_id, buyer_id, "failed", idempotency_key=key, reason=reason)
            )
            raise failure(reason)
        draft = orders.OrderDraft(show_id, buyer_id, key, currency, tuple(lines), charge.ref)
        try:
            result = await self.writer.write(draft)
        except orders.DuplicateOrder:
            return await self._existing(show_id, buyer_id, key, held, charge)
        except (OutOfStock, Unavailable) as exc:
            # OutOfStock: Redis promised units SQL does not have: SQL wins, Redis follows it.
            await self._refund(charge)
            await self._release_all(show_id, held, exc.code)
            if isinstance(exc, OutOfStock):
                for variant_id in exc.fields:
                    await self.inventory.resync(variant_id)
            await self._publish(
                OrderUpdate(show_id, buyer_id, "failed", idempotency_key=key, reason=exc.code)
            )
            raise
        # The order stands in SQL: the buyer is answered now. Telling Redis the units are
        # sold and the live channel's copy of the news follow without holding the answer
        # up (a drop's winners waited ~40 ms on them). Were they lost, the hold would run
        # out and Redis would show a unit SQL no longer has; SQL refuses it and Redis
        # follows SQL again (resync): never an oversell.
        update = OrderUpdate(
            show_id,
            buyer_id,
            "confirmed",
            order_id=result.order_id,
            idempotency_key=key,
            total_minor=result.total_minor,
            currency=result.currency,
        )
        self._in_background(self._after_order(held, result.order_id, update))
        return result

    async def _after_order(self, held: list[HeldLine], order_id: str, update: Event) -> None:
        for h in held:
            await self._commit(h, order_id)
        await self._publish(update)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="checkout-after-order")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settled(self, timeout_s: float = 5.0) -> None:
        """Wait for the work answered orders left behind (Redis commits, their events)."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout_s)

    async def _commit(self, h: HeldLine, order_id: str) -> None:
        """Tell Redis the units are sold; the order already stands in SQL whatever happens."""
        try:
            outcome = await self.inventory.commit(
                h.line.variant_id,
                h.hold_id,
                quantity=h.line.quantity,
                epoch=h.epoch,
                order_id=order_id,
                idem=h.idem,
            )
            if outcome == "resync":
                await self.inventory.resync(h.line.variant_id)
        except (Unavailable, RedisError):
            log.warning("commit not recorded in redis; the next rebuild follows SQL")

    async def _refund(self, charge: Charge) -> None:
        if charge.ref:
            await self.payments.refund(charge.ref)

    async def _existing(
        self, show_id: str, buyer_id: str, key: str, held: list[HeldLine], charge: Charge
    ) -> OrderResult:
        """The key already made an order (Redis forgot it): answer that order, once."""
        await self._refund(charge)
        async with self.sessions() as session:
            order = await orders.find_order(session, buyer_id, key)
        if order is None:
            await self._release_all(show_id, held, "")
            raise Unavailable("inventory_unavailable", "the order could not be written, try again")
        if order.show_id != show_id or not orders.same_lines(order, [h.line for h in held]):
            await self._release_all(show_id, held, IDEMPOTENCY_KEY_REUSED)
            raise failure(IDEMPOTENCY_KEY_REUSED)
        await self._release_all(show_id, held, "")
        for h in held:
            if h.idem:
                await self.redis.hset(h.idem, mapping={"state": "done", "order": order.id})
        return orders.order_result(order, replayed=True)

    async def _release_all(self, show_id: str, held: list[HeldLine], reason: str) -> None:
        for h in held:
            try:
                avail, back, _ = await self.inventory.release(
                    h.line.variant_id, h.hold_id, idem=h.idem, reason=reason
                )
            except Unavailable:
                continue
            self._stock_moved(show_id, h.line.variant_id, avail)
            if back:
                await self._back_in_stock(show_id, h.line.variant_id, avail)

    # -- cart ----------------------------------------------------------------------------

    @staticmethod
    def _cart_key(show_id: str, buyer_id: str) -> str:
        return f"cart:{show_id}:{buyer_id}"

    @staticmethod
    def _cart_hold(show_id: str, buyer_id: str) -> str:
        return f"c:{show_id}:{buyer_id}"

    async def add_to_cart(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> CartView:
        check_quantity(quantity)
        await self._variant(show_id, variant_id)
        current = await self.redis.hget(self._cart_key(show_id, buyer_id), variant_id)
        held = await self._cart_line_alive(show_id, buyer_id, variant_id) if current else False
        base = int(current) if held and current else 0
        return await self._set_line(show_id, buyer_id, variant_id, check_quantity(base + quantity))

    async def set_cart_quantity(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> CartView:
        check_quantity(quantity, allow_zero=True)
        if quantity == 0:
            return await self.remove_from_cart(show_id, buyer_id, variant_id)
        await self._variant(show_id, variant_id)
        return await self._set_line(show_id, buyer_id, variant_id, quantity)

    async def remove_from_cart(self, show_id: str, buyer_id: str, variant_id: str) -> CartView:
        info = await self._variant(show_id, variant_id, live=False)
        key = self._cart_key(show_id, buyer_id)
        if await self.redis.hget(key, variant_id) is None:
            raise NotFound(
                "not_in_cart",
                "this variant is not in the cart",
                fields={"variant_id": "not in the cart"},
            )
        avail, back, _ = await self.inventory.release(
            variant_id, self._cart_hold(show_id, buyer_id)
        )
        await self.redis.hdel(key, variant_id)
        self._stock_moved(show_id, variant_id, avail)
        if back:
            await self._back_in_stock(info.show_id, variant_id, avail)
        return await self.view_cart(show_id, buyer_id)

    async def _cart_line_alive(self, show_id: str, buyer_id: str, variant_id: str) -> bool:
        hk = prefix(variant_id) + "h:" + self._cart_hold(show_id, buyer_id)
        return bool(await self.redis.exists(hk))

    async def _set_line(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> CartView:
        info = await self._info(variant_id)
        res = await self.inventory.reserve(
            variant_id,
            self._cart_hold(show_id, buyer_id),
            buyer_id=buyer_id,
            show_id=show_id,
            quantity=quantity,
            ttl_ms=self.cart_hold_s * 1000,
            state=HoldState.HELD,
        )
        assert isinstance(res, Reserved)
        await self._after_reserve(info, res)
        await self.redis.hset(self._cart_key(show_id, buyer_id), variant_id, quantity)
        return await self.view_cart(show_id, buyer_id)

    async def view_cart(self, show_id: str, buyer_id: str) -> CartView:
        await self._show_status(show_id)
        key = self._cart_key(show_id, buyer_id)
        entries = {str(k): str(v) for k, v in (await self.redis.hgetall(key)).items()}
        hold_id = self._cart_hold(show_id, buyer_id)
        now_ms = await self._server_ms()
        lines: list[CartLine] = []
        expired: list[str] = []
        for variant_id in sorted(entries):
            hk = prefix(variant_id) + "h:" + hold_id
            raw = await self.redis.hmget(hk, ["qty", "exp", "deal", "price"])
            qty, exp, deal, price = (int(v) if v is not None else None for v in raw)
            if qty is None or exp is None or exp <= now_ms:
                expired.append(variant_id)
                continue
            info = await self._info(variant_id)
            unit = info.price_minor
            if deal and price is not None and await self._deal_running(variant_id, now_ms):
                unit = price
            lines.append(CartLine(variant_id, qty, unit, info.currency, from_ms(exp)))
        if expired:
            await self.redis.hdel(key, *expired)
        return CartView(show_id, buyer_id, tuple(lines), tuple(expired))

    async def _server_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def _deal_running(self, variant_id: str, now_ms: int) -> bool:
        ends = await self.redis.hget(prefix(variant_id) + "deal", "ends")
        return ends is not None and int(ends) > now_ms

    async def checkout_cart(
        self, show_id: str, buyer_id: str, idempotency_key: str, payment_method: str
    ) -> OrderResult:
        check_key(idempotency_key)
        check_method(payment_method)
        await self._require_live(show_id)
        async with self.sessions() as session:
            existing = await orders.find_order(session, buyer_id, idempotency_key)
        if existing is not None:
            if existing.show_id != show_id:
                raise failure(IDEMPOTENCY_KEY_REUSED)
            return orders.order_result(existing, replayed=True)
        claim = f"chk:{buyer_id}:{idempotency_key}"
        if not await self.redis.set(claim, f"{show_id}|pending|", nx=True, ex=CLAIM_TTL_S):
            value = str(await self.redis.get(claim) or "")
            if value.split("|")[0] != show_id:
                raise failure(IDEMPOTENCY_KEY_REUSED)
            return await self._replay(
                Replay("pending", "", ""), buyer_id, idempotency_key, self._claim_poll(claim)
            )
        try:
            result = await self._checkout_cart(show_id, buyer_id, idempotency_key, payment_method)
        except PaymentFailed as exc:
            await self.redis.set(claim, f"{show_id}|failed|{exc.code}", ex=CLAIM_TTL_S)
            raise
        except BaseException:
            await self.redis.delete(claim)
            raise
        await self.redis.set(claim, f"{show_id}|done|{result.order_id}", ex=CLAIM_TTL_S)
        return result

    def _claim_poll(self, claim: str) -> Poll:
        async def poll() -> tuple[str, str]:
            value = await self.redis.get(claim)
            if value is None:
                return "gone", ""
            _, state, reason = str(value).split("|", 2)
            return state, reason

        return poll

    def _idem_poll(self, ikey: str) -> Poll:
        async def poll() -> tuple[str, str]:
            values = await self.redis.hmget(ikey, ["state", "reason"])
            return str(values[0] or "gone"), str(values[1] or "")

        return poll

    async def _checkout_cart(
        self, show_id: str, buyer_id: str, key: str, method: str
    ) -> OrderResult:
        cart_key = self._cart_key(show_id, buyer_id)
        entries = {str(k): str(v) for k, v in (await self.redis.hgetall(cart_key)).items()}
        if not entries:
            raise Conflict("cart_empty", "the cart is empty")
        hold_id = self._cart_hold(show_id, buyer_id)
        held: list[HeldLine] = []
        expired: list[str] = []
        currency: str | None = None
        ttl = self.payment_hold_s * 1000
        for variant_id in sorted(entries):
            moved = await self.inventory.move(
                variant_id, hold_id, HoldState.HELD, HoldState.PAYING, ttl
            )
            if moved is None:
                expired.append(variant_id)
                continue
            info = await self._info(variant_id)
            currency = currency or info.currency
            price = (
                moved.deal_price_minor if moved.deal_price_minor is not None else info.price_minor
            )
            held.append(HeldLine(LineSpec(variant_id, moved.quantity, price), hold_id, moved.epoch))
        mixed = bool(held) and any(
            self._variants[h.line.variant_id].currency != (currency or "") for h in held
        )
        if expired or mixed:  # give the moved holds back to the cart before refusing
            for h in held:
                await self.inventory.move(
                    h.line.variant_id,
                    hold_id,
                    HoldState.PAYING,
                    HoldState.HELD,
                    self.cart_hold_s * 1000,
                )
            if mixed and not expired:
                raise Conflict("mixed_currency", "the cart mixes currencies")
            await self.redis.hdel(cart_key, *expired)
            raise Conflict(
                "cart_expired",
                "the holds of some cart lines ran out",
                fields={variant_id: "hold expired" for variant_id in expired},
            )
        assert currency is not None
        try:
            result = await self._pay_and_order(show_id, buyer_id, key, method, held, currency)
        finally:
            await self.redis.delete(cart_key)
        return result

    # -- deals ---------------------------------------------------------------------------

    async def start_deal(
        self,
        show_id: str,
        variant_id: str,
        *,
        price_minor: int,
        units: int,
        ends_at: datetime,
        per_buyer_limit: int,
    ) -> DealView:
        fields: dict[str, str] = {}
        for name, value, low, high in (
            ("price_minor", price_minor, 0, MAX_PRICE_MINOR),
            ("units", units, 1, MAX_UNITS),
            ("per_buyer_limit", per_buyer_limit, 1, MAX_QUANTITY),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                fields[name] = f"an integer from {low} to {high}"
        if not isinstance(ends_at, datetime) or ends_at.tzinfo is None:
            fields["ends_at"] = "a timezone-aware time"
        if fields:
            raise InvalidInput("invalid_deal", "the deal is not valid", fields=fields)
        info = await self._variant(show_id, variant_id)
        ends_ms = int(ends_at.timestamp() * 1000)
        await self.inventory.start_deal(
            variant_id,
            show_id=show_id,
            price_minor=price_minor,
            units=units,
            ends_ms=ends_ms,
            per_buyer_limit=per_buyer_limit,
        )
        await self.redis.sadd(f"deals:{show_id}", variant_id)
        ends = from_ms(ends_ms)
        await self._publish(
            DealStarted(
                show_id, variant_id, price_minor, info.currency, units, per_buyer_limit, ends
            )
        )
        return DealView(
            show_id,
            variant_id,
            price_minor,
            info.price_minor,
            info.currency,
            units,
            units,
            per_buyer_limit,
            ends,
        )

    async def stop_deal(self, show_id: str, variant_id: str) -> None:
        await self._variant(show_id, variant_id, live=False)
        if not await self.inventory.stop_deal(variant_id):
            raise NotFound("deal_not_found", "no deal runs on this variant")
        await self.redis.srem(f"deals:{show_id}", variant_id)
        await self._publish(DealEnded(show_id, variant_id, "stopped"))

    async def deals(self, show_id: str) -> list[DealView]:
        await self._show_status(show_id)
        now_ms = await self._server_ms()
        out: list[DealView] = []
        members = await self.redis.smembers(f"deals:{show_id}")
        for variant_id in sorted(str(m) for m in members):
            raw = await self.inventory.deal(variant_id)
            if raw is None or int(raw["ends"]) <= now_ms:
                continue
            info = await self._info(variant_id)
            out.append(
                DealView(
                    show_id,
                    variant_id,
                    int(raw["price"]),
                    info.price_minor,
                    info.currency,
                    int(raw["units"]),
                    int(raw["left"]),
                    int(raw["limit"]),
                    from_ms(int(raw["ends"])),
                )
            )
        return out

    # -- notifications, availability, reports --------------------------------------------

    async def notify_me(self, show_id: str, viewer_id: str, variant_id: str) -> None:
        await self._variant(show_id, variant_id, live=False)
        available = (await self.inventory.available([variant_id]))[variant_id]
        if available > 0:
            raise Conflict(
                "not_sold_out",
                f"{available} units are available now",
                fields={"variant_id": "not sold out"},
            )
        await self.inventory.subscribe(variant_id, viewer_id)

    async def availability(self, variant_ids: list[str]) -> dict[str, int]:
        for variant_id in variant_ids:
            await self._info(variant_id)
        return await self.inventory.available(variant_ids)

    async def orders_of(self, show_id: str, buyer_id: str) -> list[OrderSummary]:
        async with self.sessions() as session:
            return await orders.orders_of(session, show_id, buyer_id)

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
            )
            for p in rows
        ]

    async def stats(self, show_id: str) -> dict[str, int]:
        async with self.sessions() as session:
            await catalog.get_show(session, show_id)
            return await orders.show_stats(session, show_id)

    async def set_stock(self, variant_id: str, stock: int) -> dict[str, Any]:
        """Set SQL stock (units not sold) and make Redis follow it in the same step."""
        if not isinstance(stock, int) or isinstance(stock, bool) or stock < 0:
            raise InvalidInput(
                "invalid_stock", "stock must be an integer >= 0", fields={"stock": ">= 0"}
            )
        async with self.sessions.begin() as session:
            variant = await catalog.set_stock(session, variant_id, stock)
            available, back = await self.inventory.restock(variant_id, stock)
            payload: dict[str, Any] = {
                "id": variant.id,
                "sku": variant.sku,
                "stock": variant.stock,
                "available": available,
            }
        info = await self._info(variant_id)
        self._stock_moved(info.show_id, variant_id, available)
        if back:
            await self._back_in_stock(info.show_id, variant_id, available)
        return payload


def utc_now() -> datetime:
    return datetime.now(UTC)
