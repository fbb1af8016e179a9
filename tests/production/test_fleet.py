"""A fleet: five businesses, one ``chatpay webhook``, three ``chatpay-worker`` processes, a Redis Cluster.

The issue's must-show, end to end and with every piece real: five businesses (the ``forge``,
``glow``, ``hearth``, ``inkwell`` and ``paws`` shops from ``fixtures/``), each with its own bot
token (distinct numeric bot ids), its own webhook secret and its own catalog, listed in a
``CHATPAY_BUSINESSES`` file; one ``python -m chatpay.cli webhook`` process and three
``python -m chatpay.worker`` processes, all with ``REDIS_CLUSTER=1`` on a private three-master
Redis Cluster; the HTTP Bot API double (it records the bot token of each call from the request
path ``/bot<token>/<method>``) and a slow OpenAI-compatible model server (``SlowOpenAI``, 300 ms
an answer) so that a small-talk turn takes as long as a real model makes it.

``test_five_businesses_sigkills_nothing_lost_doubled_or_crossed``: 50 shoppers per business (the
same 50 Telegram users at every shop, and the same update ids at every bot, so that only the
business keeps their carts, claims and replies apart) each POST four updates over real HTTP with
their shop's secret: small talk, "add 1 <A>", "add 1 <B>", "what's in my cart?". Meanwhile a
worker holding updates is SIGKILLed twice and replaced. Then every update must be answered (none
lost), each cart in Redis must hold exactly A x1 and B x1 (nothing doubled), every reply must have
gone out on its own business's bot token to the shopper's chat and name only that shop's products
(nothing crosses businesses), and there must be no dead letters.

``test_a_flooding_business_does_not_slow_another`` measures business B's reply time (the test's
clock at the webhook POST to the Bot API double's clock when the reply arrived; one process, one
clock) with B alone, then while business A has a backlog of 2,000 updates from 2,000 shoppers
pushed through the webhook at once, and requires B's p95 under the flood to be at most twice its
p95 alone. A is ``forge`` and B is ``glow``, the business right after A in the file (the least
favourable pair for B when slots visited the businesses in turn: 14-20x before a free slot went
to the business with the fewest turns in flight). Both are small talk (one 300 ms model call each); the workers
keep Telegram's own sending limits (30 messages/s per bot), so A's backlog drains slowly and is
still there when B's last reply arrives (asserted: the measurement really ran under the flood).
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chatpay.adapters.redis import RedisQueue, connect, queue_name
from chatpay.webhook import SECRET_HEADER
from tests.production.helpers import (
    ROOT,
    Plan,
    SlowOpenAI,
    WorkerProcess,
    audit,
    cart_key,
    message,
    outcome_key,
    reply_kind,
    wait_until,
    worker_env,
)
from tests.support.botapi import BotApiDouble
from tests.support.redis_cluster import REDIS_CLI, LocalCluster
from tests.support.redis_server import REDIS_SERVER, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]

QUEUE_BASE = "chatpay_queue"
MODEL_DELAY = 0.3  # seconds the slow model takes per answer (the 300 ms)
USERS = 50
FIRST_USER = 5000  # the same Telegram users shop at every business
WORKERS = 3
KILLS = 2
SMALL_TALK = "hello there, how is your day?"
VIEW = "what's in my cart?"

# Titles that "add 1 <title>" resolves to exactly that product in its shop (checked against the
# fixtures), none of which contains, or is contained in, a title of another shop.
TITLES: dict[str, tuple[str, ...]] = {
    "forge": ("Torquemax 18V Brushless Drill Driver", "Torquemax 18V Brushless Hammer Drill",
              "Voltedge 12V Compact Drill Driver", "Torquemax 18V Impact Driver", "Torquemax 18V Li-ion Battery",
              "Torquemax 18V Rapid Charger", "Steelhand 800W SDS Plus Rotary Hammer",
              "Torquemax 18V 165mm Circular Saw", "Steelhand 650W Orbital Jigsaw", "Steelhand Hardpoint Hand Saw"),
    "glow": ("Velvet Melt Cleansing Balm", "Calm Oat Gel Cleanser", "Rose Micellar Water",
             "Clarifying Salicylic Foam Cleanser", "Vitamin C 15% Brightening Serum", "Hyaluronic Hydra Serum",
             "Niacinamide 10% Clear Skin Serum", "Peptide Firming Eye Serum", "Cold-Pressed Rosehip Face Oil",
             "Pure Squalane Facial Oil"),
    "hearth": ("Kurogane Gyuto Chef's Knife", "Kurogane Paring Knife 3.5 in", "Ashford Serrated Bread Knife 10 in",
               "Ashford 6-Piece Knife Block Set", "Ironclad Cast Iron Skillet", "Ironclad Enameled Cast Iron Dutch Oven",
               "Ironclad Reversible Cast Iron Griddle", "Ironclad Cast Iron Care Kit",
               "Cladwell Tri-Ply Stainless Frying Pan", "Cladwell Tri-Ply Saute Pan with Lid"),
    "inkwell": ("Pride and Prejudice", "Jane Eyre", "Great Expectations", "Middlemarch",
                "The Hound of the Baskervilles", "Frankenstein", "Wuthering Heights",
                "The Lighthouse Keeper's Daughter", "A Murder in Little Hambling", "The Salt Road"),
    "paws": ("Old Oak Senior Lamb & Oatmeal Dry Dog Food", "Barkley Farms Beef Stew Wet Dog Food",
             "Purrfect Pate Variety Pack Wet Cat Food", "Chewton Peanut Butter Training Treats",
             "Chewton Himalayan Yak Cheese Chew", "Catnip Crunch Salmon Cat Treats", "Tuffbone Rubber Chew Toy",
             "Squeakerville Plush Squirrel Dog Toy", "Fetchmaster Tennis Balls (3 Pack)", "Feather Frenzy Wand Cat Toy"),
}
SHOPS = tuple(TITLES)


@dataclass(frozen=True)
class Shop:
    """One business of the fleet: its bot, its webhook secret and its catalog's titles and handles."""

    id: str
    bot_id: int
    token: str
    secret: str
    handles: dict[str, str]  # every product title of its catalog -> the product's handle

    @property
    def queue(self) -> str:
        return queue_name(QUEUE_BASE, self.id)

    @property
    def env_prefix(self) -> str:
        return self.id.upper()


def shops() -> dict[str, Shop]:
    """The five businesses, each with its own numeric bot id, token and secret."""
    made = {}
    for n, shop in enumerate(SHOPS):
        catalog = json.loads((ROOT / "fixtures" / shop / "catalog.json").read_text(encoding="utf-8"))
        bot_id = 7_100_001 + n
        made[shop] = Shop(shop, bot_id, f"{bot_id}:{shop.upper()}-fleet_token", f"{shop}-fleet_secret",
                          {p["title"]: p["handle"] for p in catalog["products"]})
    return made


def businesses_toml(all_shops: dict[str, Shop]) -> str:
    """The ``CHATPAY_BUSINESSES`` file: one ``[[business]]`` per shop, secrets only named."""
    parts = []
    for shop in all_shops.values():
        fixture = ROOT / "fixtures" / shop.id
        parts.append(f'[[business]]\nid = "{shop.id}"\nname = "{shop.id.title()}"\n'
                     f'catalog = "{fixture / "catalog.json"}"\nstore = "{fixture / "store.json"}"\n'
                     f'bot_token_env = "{shop.env_prefix}_BOT_TOKEN"\n'
                     f'webhook_secret_env = "{shop.env_prefix}_WEBHOOK_SECRET"\n')
    return "\n".join(parts)


def p95(values: list[float]) -> float:
    """The 95th percentile by nearest rank (no interpolation: one of the measured values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Rig:
    """The running fleet: cluster, Bot API double, slow model, webhook process and worker processes."""

    cluster: LocalCluster
    bot_api: BotApiDouble
    model: SlowOpenAI
    shops: dict[str, Shop]
    businesses_file: Path
    work_dir: Path
    webhook_port: int = 0
    webhook: subprocess.Popen[bytes] | None = None
    workers: list[WorkerProcess] = field(default_factory=list)  # the current ones
    started: list[WorkerProcess] = field(default_factory=list)  # every one ever started
    generation: int = 0

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}"

    def secrets_env(self) -> dict[str, str]:
        env = {"CHATPAY_BUSINESSES": str(self.businesses_file)}
        for shop in self.shops.values():
            env[f"{shop.env_prefix}_BOT_TOKEN"] = shop.token
            env[f"{shop.env_prefix}_WEBHOOK_SECRET"] = shop.secret
        return env

    def start_webhook(self) -> None:
        """``python -m chatpay.cli webhook`` on a free port, ready once ``/readyz`` answers 200."""
        env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV"}}
        env.update({"PYTHONPATH": str(ROOT), "REDIS_URL": self.cluster.url, "REDIS_CLUSTER": "1",
                    **self.secrets_env()})
        self.webhook_port = free_port()
        log = (self.work_dir / "webhook.log").open("wb")
        self.webhook = subprocess.Popen([sys.executable, "-m", "chatpay.cli", "webhook", "--port",
                                         str(self.webhook_port)], env=env, cwd=self.work_dir,
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.webhook.poll() is not None:
                raise AssertionError(f"chatpay webhook exited: {self.webhook_log()}")
            try:
                with urllib.request.urlopen(f"{self.webhook_url}/readyz", timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "chatpay webhook did not become ready"
                time.sleep(0.05)

    def webhook_log(self) -> str:
        return (self.work_dir / "webhook.log").read_text(errors="replace")[-3000:]

    def spawn(self) -> WorkerProcess:
        """A fresh ``chatpay-worker`` serving every business, with its own data directory and WORKER_ID."""
        self.generation += 1
        worker_id = f"fleet-{self.generation}"
        data_dir = self.work_dir / worker_id
        data_dir.mkdir()
        env = worker_env(self.cluster.url, self.bot_api.base_url, worker_id, OPENAI_API_KEY="sk-test",
                         OPENAI_BASE_URL=self.model.base_url, CHATPAY_DATA_DIR=str(data_dir),
                         **self.secrets_env())
        del env["TELEGRAM_BOT_TOKEN"]  # only the businesses' own bots: a reply on any other token is a failure
        assert env["REDIS_CLUSTER"] == "1"
        worker = WorkerProcess(env, "--state-store", "redis", "--heartbeat-ttl", "2", "--drain-timeout", "10",
                               log_dir=self.work_dir)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        tails = [f"--- {w.worker_id} (exit {w.proc.poll()})\n{w.log_path.read_text(errors='replace')[-1500:]}"
                 for w in self.started]
        return "\n".join([*tails, f"--- webhook\n{self.webhook_log()}"])


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The fleet for this module: started once; every process stopped by its pid at the end."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server and redis-cli are not installed on this machine")
    work_dir = tmp_path_factory.mktemp("fleet")
    all_shops = shops()
    businesses_file = work_dir / "businesses.toml"
    businesses_file.write_text(businesses_toml(all_shops), encoding="utf-8")
    with LocalCluster() as cluster, BotApiDouble() as bot_api:
        model = SlowOpenAI(delay=MODEL_DELAY).start()
        fleet = Rig(cluster, bot_api, model, all_shops, businesses_file, work_dir)
        try:
            fleet.start_webhook()
            fleet.workers = [fleet.spawn() for _ in range(WORKERS)]
            yield fleet
        finally:
            for worker in fleet.started:  # the backlog of the flood is not drained: stop at once
                worker.signal(signal.SIGKILL)
                worker.wait(10)
            if fleet.webhook is not None and fleet.webhook.poll() is None:
                fleet.webhook.send_signal(signal.SIGTERM)
                fleet.webhook.wait(30)
            model.stop()


# ----------------------------------------------------------------------------- helpers over Redis and HTTP


async def serving(r: Any, fleet: Rig) -> bool:
    """Every current worker is registered on every business's queue."""
    ids = {w.worker_id for w in fleet.workers}
    for shop in fleet.shops.values():
        registered = {m.split(".", 1)[0] for m in await r.smembers(f"{shop.queue}:workers")}
        if not ids <= registered:
            return False
    return True


async def lanes_held(r: Any, fleet: Rig, worker: WorkerProcess) -> int:
    """Updates ``worker`` holds right now, over every business (through the registries, never a SCAN)."""
    held = 0
    for shop in fleet.shops.values():
        for member in await r.smembers(f"{shop.queue}:workers"):
            if member.split(".", 1)[0] == worker.worker_id:
                held += int(await r.llen(f"{shop.queue}:w:{member}:lanes"))
    return held


async def backlog(r: Any, shop: Shop) -> int:
    """Updates of ``shop`` not yet finished: inbound, staged or in lanes."""
    depth = await RedisQueue(r, shop.queue).depth()
    return depth["inbound"] + depth["staging"] + depth["lanes"]


async def post(session: aiohttp.ClientSession, fleet: Rig, shop: Shop, raw: str, *, secret: str | None = None) -> int:
    """POST one update to ``/telegram/<shop>`` the way Telegram does; the answer's status."""
    headers = {SECRET_HEADER: secret or shop.secret, "Content-Type": "application/json"}
    async with session.post(f"{fleet.webhook_url}/telegram/{shop.id}", data=raw.encode(), headers=headers) as resp:
        await resp.read()
        return resp.status


def sent_by_token(bot_api: BotApiDouble) -> dict[str, list[tuple[str, str, float]]]:
    """``(chat_id, text, at)`` of every message delivered, per bot token, in arrival order."""
    out: dict[str, list[tuple[str, str, float]]] = {}
    for call in bot_api.delivered("sendMessage"):
        out.setdefault(call.token, []).append((str(call.params["chat_id"]), str(call.params["text"]), call.at))
    return out


def shopping(shop: Shop) -> tuple[Plan, dict[int, tuple[str, str]], dict[int, list[tuple[int, str]]]]:
    """Each user's four updates at ``shop``: small talk, add A, add B, view the cart.

    Returns the plan (for :func:`audit`), each user's two titles, and each user's updates in
    order. Update ids are 1..200 at every business: Telegram numbers updates per bot.
    """
    plan = Plan()
    picks: dict[int, tuple[str, str]] = {}
    scripts: dict[int, list[tuple[int, str]]] = {}
    titles = TITLES[shop.id]
    for k in range(USERS):
        user = FIRST_USER + k
        a, b = titles[k % len(titles)], titles[(k + 3) % len(titles)]
        picks[user] = (a, b)
        texts = [SMALL_TALK, f"add 1 {a}", f"add 1 {b}", VIEW]
        scripts[user] = [(4 * k + i + 1, text) for i, text in enumerate(texts)]
        plan.pushes.extend((uid, user, text) for uid, text in scripts[user])
        plan.expected[user] = [("other", 0), ("add", 1), ("add", 2), ("view", 2)]
        plan.adds[user] = 2
    return plan, picks, scripts


# ----------------------------------------------------------------------------- the must-show


async def test_five_businesses_sigkills_nothing_lost_doubled_or_crossed(rig: Rig) -> None:
    fleet = rig
    rng = random.Random(23)
    r = connect(fleet.cluster.url, cluster=True)
    plans = {shop_id: shopping(shop) for shop_id, shop in fleet.shops.items()}
    statuses: list[int] = []
    kills: list[tuple[str, int]] = []  # (worker killed, updates it held)
    started = time.monotonic()

    async def shopper(session: aiohttp.ClientSession, shop: Shop, updates: list[tuple[int, str]],
                      user: int) -> None:
        await asyncio.sleep(rng.uniform(0.0, 8.0))  # shoppers arrive over ~8 s, then take their time
        for update_id, text in updates:
            statuses.append(await post(session, fleet, shop, message(update_id, user, text)))
            await asyncio.sleep(rng.uniform(0.2, 1.0))

    async def killer() -> None:
        for at in (3.0, 7.0):  # seconds into the run
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            held: dict[int, int] = {}

            async def busy(held: dict[int, int] = held) -> bool:  # a worker with updates in its lanes
                for i, worker in enumerate(fleet.workers):
                    held[i] = await lanes_held(r, fleet, worker)
                return max(held.values()) > 0

            await wait_until(busy, 20, "a worker holding updates", step=0.02)
            slot = max(held, key=lambda i: held[i])
            victim = fleet.workers[slot]
            await asyncio.to_thread(victim.kill)
            kills.append((victim.worker_id, held[slot]))
            fleet.workers[slot] = fleet.spawn()

    try:
        await wait_until(lambda: serving(r, fleet), 120, "three workers serving every business", step=0.2)
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as session:
            # Another business's secret on a business's path is refused: nothing queued, nothing answered.
            intruder = message(1, FIRST_USER - 1, "add 1 Jane Eyre")
            refused = await post(session, fleet, fleet.shops["inkwell"], intruder, secret=fleet.shops["glow"].secret)
            started = time.monotonic()
            tasks = [shopper(session, fleet.shops[shop_id], scripts[user], user)
                     for shop_id, (_, _, scripts) in plans.items() for user in scripts]
            await asyncio.gather(killer(), *tasks)
        pushed_s = time.monotonic() - started

        async def finished() -> bool:
            sent = sent_by_token(fleet.bot_api)
            for shop in fleet.shops.values():
                if len(sent.get(shop.token, [])) < 4 * USERS or await backlog(r, shop):
                    return False
            return True

        try:
            await wait_until(finished, 90, "every update of every business answered", step=0.5)
        except AssertionError as exc:
            why = await unanswered(r, fleet, {shop_id: plan for shop_id, (plan, _, _) in plans.items()})
            raise AssertionError(f"{exc}; POST statuses {sorted(set(statuses))}\n{why}\n{fleet.logs()}") from None
        answered_s = time.monotonic() - started
        carts: dict[str, dict[int, list[tuple[str, str, int]]]] = {}
        outcomes: dict[str, dict[int, Any]] = {}
        dead: dict[str, int] = {}
        for shop in fleet.shops.values():
            carts[shop.id] = {}
            for user in plans[shop.id][0].expected:
                lines = await r.hget(cart_key(user, shop.id), "lines")
                carts[shop.id][user] = [tuple(x) for x in json.loads(lines)] if lines else []
            outcomes[shop.id] = {}
            for uid, _, _ in plans[shop.id][0].pushes:
                raw = await r.get(outcome_key(uid, shop.id))
                outcomes[shop.id][uid] = json.loads(raw) if raw else None
            dead[shop.id] = int(await r.llen(f"{shop.queue}:dead"))
    finally:
        await r.aclose()

    sent = sent_by_token(fleet.bot_api)
    tokens = {shop.token: shop for shop in fleet.shops.values()}
    figures: dict[str, Any] = {"kills": kills, "workers_started": len(fleet.started), "pushed_s": round(pushed_s, 1),
                               "answered_s": round(answered_s, 1), "dead_letters": dead}
    crossed: list[str] = []
    for shop in fleet.shops.values():
        plan, picks, _ = plans[shop.id]
        replies = [(chat, text) for chat, text, _ in sent.get(shop.token, [])]
        quantities = {user: sum(q for _, _, q in lines) for user, lines in carts[shop.id].items()}
        figures[shop.id] = audit(plan, replies, quantities, outcomes[shop.id])
        others = [t for o in fleet.shops.values() if o.id != shop.id for t in o.handles]
        for chat, text in replies:
            plain = html.unescape(text)
            user = int(chat)
            if user not in picks:
                crossed.append(f"{shop.id}: a reply to chat {chat}, who never wrote to it")
                continue
            strangers = [t for t in others if t in plain]
            if strangers:
                crossed.append(f"{shop.id} -> {chat}: names {strangers} of another business")
            if reply_kind(plain) == "view" and not all(t in plain for t in picks[user]):
                crossed.append(f"{shop.id} -> {chat}: a cart without {picks[user]}: {plain[:120]!r}")
        for user, (a, b) in picks.items():
            want = sorted([(shop.handles[a], 1), (shop.handles[b], 1)])
            got = sorted((handle, q) for handle, _, q in carts[shop.id][user])
            if got != want:
                crossed.append(f"{shop.id}: user {user}'s cart holds {got}, not {want}")
    print("\nfleet:", json.dumps(figures))
    assert refused == 403
    assert statuses == [200] * (len(SHOPS) * USERS * 4)
    assert set(sent) <= set(tokens), f"replies on unknown bot tokens: {set(sent) - set(tokens)}"
    assert all(call.token in tokens for call in fleet.bot_api.calls), "a Bot API call on a token of no business"
    assert str(FIRST_USER - 1) not in {chat for replies in sent.values() for chat, _, _ in replies}
    assert len(kills) == KILLS and all(held > 0 for _, held in kills)  # each kill hit work in flight
    for shop_id in SHOPS:
        assert figures[shop_id]["lost"] == 0, (shop_id, figures[shop_id], fleet.logs())
        assert figures[shop_id]["doubled_effects"] == 0, (shop_id, figures[shop_id])
        assert figures[shop_id]["order_violations"] == 0, (shop_id, figures[shop_id])
    assert not crossed, crossed[:10]
    assert dead == dict.fromkeys(SHOPS, 0)
    assert not fleet.bot_api.violations


async def unanswered(r: Any, fleet: Rig, plans: dict[str, Plan]) -> str:
    """Why updates went unanswered: per business, replies and queue depth; per shopper left waiting,
    the lane's length, whether it is ready, and which worker lists hold it (registered or not)."""
    sent = sent_by_token(fleet.bot_api)
    lines = []
    for shop in fleet.shops.values():
        depth = await RedisQueue(r, shop.queue).depth()
        lines.append(f"{shop.id}: {len(sent.get(shop.token, []))} replies, depth {depth}")
        got: dict[str, int] = {}
        for chat, _, _ in sent.get(shop.token, []):
            got[chat] = got.get(chat, 0) + 1
        registered = {str(m) for m in await r.smembers(f"{shop.queue}:workers")}
        holders = [k async for k in r.scan_iter(match=f"{shop.queue}:w:*:lanes")]
        for user in sorted({u for _, u, _ in plans[shop.id].pushes if got.get(str(u), 0) < 4}):
            lane = await r.llen(f"{shop.queue}:lane:{user}")
            ready = str(user) in await r.lrange(f"{shop.queue}:ready", 0, -1)
            held = [(k, k.split(":w:", 1)[1].rsplit(":", 1)[0] in registered) for k in holders
                    if str(user) in await r.lrange(k, 0, -1)]
            lines.append(f"  user {user}: {got.get(str(user), 0)} replies; lane holds {lane}, ready {ready}, "
                         f"held by (list, registered) {held}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- fairness


async def warm(r: Any, fleet: Rig, session: aiohttp.ClientSession, first_user: int) -> int:
    """Send small talk until every current worker has imported every business's catalog.

    A worker builds a business's runtime (catalog import, retrieval index) on its first turn of
    it; that one-off cost is not what the fairness comparison measures. Returns the next free user.
    """
    user = first_user

    def imported(worker: WorkerProcess) -> set[str]:
        return {e.get("business_id", "") for e in worker.logs() if e.get("msg") == "catalog imported"}

    for _round in range(12):
        missing = {s for w in fleet.workers for s in SHOPS if s not in imported(w)}
        if not missing:
            return user
        batch = []
        for shop_id in sorted(missing):
            for _ in range(3 * WORKERS * 4):
                batch.append((fleet.shops[shop_id], user))
                user += 1
        before = len(fleet.bot_api.delivered("sendMessage"))
        codes = await asyncio.gather(*(post(session, fleet, shop, message(u, u, SMALL_TALK)) for shop, u in batch))
        assert set(codes) == {200}
        await wait_until(lambda n=before + len(batch): len(fleet.bot_api.delivered("sendMessage")) >= n, 60,
                         "the warm-up replies", step=0.1)
    raise AssertionError(f"workers did not import every catalog\n{fleet.logs()}")


async def reply_times(fleet: Rig, session: aiohttp.ClientSession, shop: Shop, users: list[int],
                      gap: float) -> list[float]:
    """Small talk from each of ``users`` at ``shop``, one every ``gap`` s; seconds from POST to reply."""
    posted: dict[str, float] = {}
    for user in users:
        posted[str(user)] = time.time()
        assert await post(session, fleet, shop, message(user, user, SMALL_TALK)) == 200
        await asyncio.sleep(gap)

    def arrived() -> dict[str, float]:
        first: dict[str, float] = {}
        for chat, _, at in sent_by_token(fleet.bot_api).get(shop.token, []):
            if chat in posted:
                first.setdefault(chat, at)
        return first

    got = await wait_until(lambda: len(arrived()) == len(users) and arrived(), 60, f"{shop.id}'s replies")
    return [got[chat] - posted[chat] for chat in posted]


async def test_a_flooding_business_does_not_slow_another(rig: Rig) -> None:
    fleet = rig
    flooder, other = fleet.shops["forge"], fleet.shops["glow"]
    samples, gap, flood = 60, 0.06, 2000
    r = connect(fleet.cluster.url, cluster=True)
    try:
        await wait_until(lambda: serving(r, fleet), 120, "three workers serving every business", step=0.2)
        for shop in fleet.shops.values():  # nothing left over from an earlier test
            await wait_until(lambda s=shop: _idle(r, s), 120, f"{shop.id}'s queue empty", step=0.2)
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as session:
            user = await warm(r, fleet, session, 100_000)
            alone = await reply_times(fleet, session, other, list(range(user, user + samples)), gap)
            user += samples
            pushed_at = time.monotonic()
            codes = await asyncio.gather(*(post(session, fleet, flooder, message(u, u, SMALL_TALK))
                                           for u in range(user, user + flood)))
            pushed_s = time.monotonic() - pushed_at
            user += flood
            assert codes == [200] * flood
            flooded = await reply_times(fleet, session, other, list(range(user, user + samples)), gap)
            left = await backlog(r, flooder)
        dead = int(await r.llen(f"{other.queue}:dead"))
    finally:
        await r.aclose()
    figures = {"alone_p95_s": round(p95(alone), 3), "flooded_p95_s": round(p95(flooded), 3),
               "alone_median_s": round(sorted(alone)[len(alone) // 2], 3),
               "flooded_median_s": round(sorted(flooded)[len(flooded) // 2], 3),
               "flood_pushed_s": round(pushed_s, 2), "flooder_backlog_after": left,
               "ratio": round(p95(flooded) / p95(alone), 2)}
    print(f"\nfairness ({other.id} while {flooder.id} floods {flood}):", json.dumps(figures))
    assert left > flood // 4, "the flood had drained: B was not measured under it"
    assert dead == 0
    assert p95(alone) >= MODEL_DELAY  # a reply really waited for the slow model
    assert p95(flooded) <= 2 * p95(alone), figures


async def _idle(r: Any, shop: Shop) -> bool:
    return await backlog(r, shop) == 0


async def test_the_report_of_the_run_reconciles_with_its_usage_records(rig: Rig) -> None:
    """``chatpay report`` over what the fleet recorded: per business, every figure equals the usage records'.

    Without MongoDB each worker keeps its usage and events in its own data directory (written when
    it stops), so the workers still running are stopped cleanly and each one's records are read.
    Costs are summed here from the raw documents, independently of the report, and must agree to
    the last digit; the model calls must be the ones the slow model server answered for them.
    """
    from decimal import Decimal

    from bson.decimal128 import Decimal128

    from chatpay.adapters.mongo._base import USAGE
    from chatpay.adapters.mongo.filestore import FileBackedDatabase
    from chatpay.report import build_report

    fleet = rig
    for worker in fleet.workers:
        worker.signal(signal.SIGTERM)
    for worker in fleet.workers:
        assert await asyncio.to_thread(worker.wait, 60) == 0
    checked: dict[str, int] = {}
    total_cost = Decimal(0)
    for worker in fleet.workers:
        db = FileBackedDatabase(fleet.work_dir / worker.worker_id, "chatpay")
        docs = list(db[USAGE].find({}))
        assert docs, f"{worker.worker_id} recorded no usage"
        report = {b.business_id: b for b in build_report(db).businesses}
        assert set(report) <= set(fleet.shops)
        for business_id, figures in report.items():
            mine = [d for d in docs if d["business_id"] == business_id]
            cost = sum((c.to_decimal() if isinstance(c, Decimal128) else Decimal(str(c))
                        for d in mine if (c := d.get("cost_usd")) is not None), Decimal(0))
            calls = [d for d in mine if d["kind"] != "offline"]
            assert figures.cost_usd == cost
            total_cost += cost
            assert figures.model_calls == len(calls)
            assert (figures.prompt_tokens, figures.completion_tokens) == (
                sum(d["prompt_tokens"] for d in calls), sum(d["completion_tokens"] for d in calls))
            assert figures.turns == len({d["turn_id"] for d in mine})
            # Every committed turn leaves its TurnCompleted; a turn fenced off by a reclaim recorded its
            # model call (usage is written as it happens) but committed nothing.
            assert 0 < figures.turn_latency.samples <= figures.turns
            checked[business_id] = checked.get(business_id, 0) + figures.turns
    print(f"\nreport reconciled, turns per business: {json.dumps(checked)}; cost ${total_cost}")
    assert set(checked) == set(fleet.shops) and total_cost > 0
