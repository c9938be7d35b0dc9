"""``liveshop bench answers FILE``: how many shoppers' questions are answered at once, and
how rightly.

FILE (JSON, see ``benches/answers_set.json``): ``currency``, ``policies``, ``products``
(each with ``facts`` and ``variants``: ``sku``, ``attributes``, ``price``, ``stock``, and a
``deal_price`` for a deal running on it), ``answered`` (questions people answered before,
each about a ``product`` or none) and ``questions`` (``text``, ``pinned``: the product
pinned when it is asked or null, ``expect``: ``{"mentions": [...]}`` or ``"escalate"``).

The bench seeds a live show from FILE in its own database (the product answers as
questions of an earlier show, the general ones of this one), runs the app (uvicorn, an
embedded Valkey unless ``--redis-url``), starts the deals from the host's socket, and asks
every question as a viewer over the live channel, pinning as the question says first. An
answer is *right* when it is automatic and contains every mention (case-insensitive); an
automatic answer to an ``escalate`` question, or one missing a mention, is *wrong*. The
last line is one JSON object: ``questions``, ``answerable``, ``automatic``, ``right``,
``wrong``, ``precision`` (right / automatic), ``coverage`` (right / answerable),
``answer_p95_ms`` (question sent to automatic answer received) and ``wrong_answers``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from benches.fanout import issue_tokens, migrated_env, server_processes
from benches.processes import redis_url_for
from checkout import catalog
from checkout.show_state import ShowStatus
from core.db import make_engine, make_sessionmaker, utcnow

WAIT_S = 10.0
PER_VIEWER = 3  # questions a viewer may ask in a burst (the live channel's ask limit)


async def _seed(database_url: str, data: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The show, and each product's id by name."""
    from live.models import Question, QuestionStatus

    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            earlier = await catalog.create_show(session, "Earlier show")
            show = await catalog.create_show(session, "Answers bench")
            await catalog.set_policies(session, show.id, dict(data.get("policies", {})))
            ids: dict[str, str] = {}
            for product in data["products"]:
                spec = catalog.ProductSpec(
                    name=product["name"],
                    description=product.get("description", ""),
                    facts=dict(product.get("facts", {})),
                    variants=[
                        catalog.VariantSpec(
                            v["sku"],
                            v["price"],
                            data["currency"],
                            v["stock"],
                            dict(v.get("attributes", {})),
                        )
                        for v in product["variants"]
                    ],
                )
                ids[product["name"]] = (await catalog.add_product(session, show.id, spec)).id
            now = utcnow()
            for past in data.get("answered", []):
                session.add(
                    Question(
                        show_id=earlier.id if past.get("product") else show.id,
                        viewer_id="bench-earlier",
                        viewer_name="Earlier viewer",
                        text=past["question"],
                        status=QuestionStatus.ANSWERED,
                        votes=0,
                        pinned=False,
                        answer=past["answer"],
                        answered_by="bench-moderator",
                        product_name=past.get("product"),
                        created_at=now,
                        answered_at=now,
                    )
                )
            await catalog.change_status(session, show.id, ShowStatus.LIVE)
            return show.id, ids
    finally:
        await engine.dispose()


class Socket:
    """One participant's socket: requests with refs, events kept until taken."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._refs = 0

    @classmethod
    async def open(cls, base: str, show_id: str, token: str) -> Socket:
        protocols = [Subprotocol("liveshop"), Subprotocol(f"token.{token}")]
        ws = await connect(f"{base}/live/{show_id}", subprotocols=protocols, max_size=2**22)
        return cls(ws)

    async def _next(self, deadline: float) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), left))
        if message.get("type") == "batch":
            self.seen.extend(message.get("messages", []))
        else:
            self.seen.append(message)
        return message

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._refs += 1
        ref = f"b{self._refs}"
        await self.ws.send(json.dumps({"type": kind, "ref": ref, **fields}))
        deadline = time.monotonic() + WAIT_S
        while True:
            for message in self.seen:
                if message.get("ref") == ref and message["type"] in ("ok", "error"):
                    self.seen.remove(message)
                    return message
            await self._next(deadline)

    async def answer_of(self, question_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while True:
            for message in self.seen:
                question = message.get("question") or {}
                if message.get("type") == "answer" and question.get("id") == question_id:
                    self.seen.remove(message)
                    return dict(question)
            await self._next(deadline)

    async def close(self) -> None:
        await self.ws.close()


async def _deals(host: Socket, data: dict[str, Any], variant_ids: dict[str, str]) -> None:
    for product in data["products"]:
        for v in product["variants"]:
            if v.get("deal_price") is not None and v["stock"] > 0:
                reply = await host.request(
                    "start_deal",
                    variant_id=variant_ids[v["sku"]],
                    price_minor=v["deal_price"],
                    units=v["stock"],
                    duration_s=3600,
                )
                if reply["type"] != "ok":
                    raise RuntimeError(f"deal refused: {reply}")


async def _ask_all(
    base: str,
    show_id: str,
    host_token: str,
    tokens: list[str],
    data: dict[str, Any],
    product_ids: dict[str, str],
    variant_ids: dict[str, str],
) -> list[tuple[dict[str, Any], dict[str, Any] | None, float | None]]:
    """(question, its automatic answer or None, ms from sending it to that answer)."""
    host = await Socket.open(base, show_id, host_token)
    await _deals(host, data, variant_ids)
    pinned: str | None = None
    results: list[tuple[dict[str, Any], dict[str, Any] | None, float | None]] = []
    viewer: Socket | None = None
    try:
        for n, question in enumerate(data["questions"]):
            if question["pinned"] != pinned:
                if pinned is not None:
                    await host.request("unpin", product_id=product_ids[pinned])
                if question["pinned"] is not None:
                    reply = await host.request("pin", product_id=product_ids[question["pinned"]])
                    if reply["type"] != "ok":
                        raise RuntimeError(f"pin refused: {reply}")
                pinned = question["pinned"]
            if n % PER_VIEWER == 0:
                if viewer is not None:
                    await viewer.close()
                viewer = await Socket.open(base, show_id, tokens[n // PER_VIEWER])
            assert viewer is not None
            sent = time.perf_counter()
            reply = await viewer.request("ask", text=question["text"])
            if reply["type"] != "ok":
                raise RuntimeError(f"question refused: {reply}")
            if reply["status"] == "answered":
                answer = await viewer.answer_of(reply["question_id"])
                results.append((question, answer, (time.perf_counter() - sent) * 1000))
            else:
                results.append((question, None, None))
    finally:
        if viewer is not None:
            await viewer.close()
        await host.close()
    return results


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def score(
    results: list[tuple[dict[str, Any], dict[str, Any] | None, float | None]],
) -> dict[str, Any]:
    right = wrong = answerable = 0
    wrong_answers = []
    times = []
    for question, answer, ms in results:
        expect = question["expect"]
        answerable += expect != "escalate"
        if answer is None:
            continue
        if ms is not None:
            times.append(ms)
        text = str(answer.get("answer") or "").lower()
        ok = expect != "escalate" and all(m.lower() in text for m in expect["mentions"])
        if ok:
            right += 1
        else:
            wrong += 1
            wrong_answers.append(
                {
                    "question": question["text"],
                    "pinned": question["pinned"],
                    "expect": expect,
                    "answer": answer.get("answer"),
                    "source": answer.get("answer_source"),
                }
            )
    automatic = right + wrong
    p95 = _percentile(times, 0.95)
    return {
        "questions": len(results),
        "answerable": answerable,
        "automatic": automatic,
        "right": right,
        "wrong": wrong,
        "precision": round(right / automatic, 4) if automatic else None,
        "coverage": round(right / answerable, 4) if answerable else None,
        "answer_p95_ms": None if p95 is None else round(p95, 1),
        "answer_p50_ms": None if not times else round(_percentile(times, 0.5) or 0, 1),
        "wrong_answers": wrong_answers,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="liveshop bench answers")
    parser.add_argument("file", type=Path, help="the question set (JSON)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args(argv)
    data = json.loads(args.file.read_text())
    with tempfile.TemporaryDirectory(prefix="liveshop-bench-") as tmp:
        workdir = Path(tmp)
        with redis_url_for(workdir, args.redis_url) as redis_url:
            result = _run(data, workdir, redis_url)
    print(json.dumps(result))
    return 0


def _run(data: dict[str, Any], workdir: Path, redis_url: str) -> dict[str, Any]:
    env, database_url = migrated_env(
        workdir,
        redis_url,
        LIVESHOP_AUTO_ANSWERS="true",
        LIVESHOP_MAX_SOCKETS_PER_ADDRESS="1000",
    )
    show_id, product_ids = asyncio.run(_seed(database_url, data))
    variant_ids = asyncio.run(_variant_ids(database_url, show_id))
    viewers = len(data["questions"]) // PER_VIEWER + 1
    host_token, tokens = issue_tokens(env, show_id, viewers)
    with server_processes(1, env, workdir) as servers:
        base = f"ws://127.0.0.1:{servers[0][0]}"
        results = asyncio.run(
            _ask_all(base, show_id, host_token, tokens, data, product_ids, variant_ids)
        )
    return score(results)


async def _variant_ids(database_url: str, show_id: str) -> dict[str, str]:
    """The seeded variants' ids by SKU."""
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            products = await catalog.show_catalog(session, show_id)
            return {v.sku: v.id for p in products for v in p.variants}
    finally:
        await engine.dispose()
