"""The one place where ChatPay's objects meet.

``build(settings)`` gives the configured runtime: real MongoDB, Redis, OpenAI and
Telegram when their settings are present, the embedded default otherwise (mongomock,
fakeredis, the offline engine, the bundled demo store). Tests and the TUI swap parts
with keyword-only overrides. Vendor SDKs are imported lazily, here and nowhere else
outside their adapters.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatpay.config import Settings, load_settings
from chatpay.core.agents import Engine
from chatpay.core.budget import BudgetGuard
from chatpay.core.catalog import Catalog
from chatpay.core.classifier import IntentClassifier, default_classifier
from chatpay.core.errors import InvalidInput
from chatpay.core.metering import MeteredChatModel, MeteredEmbedder, UsageMeter
from chatpay.core.ports import ChatModel, Clock, Embedder, PaymentProvider, Stores, VectorIndexFactory
from chatpay.core.presenter import TelegramPresenter
from chatpay.core.routing import Router
from chatpay.core.service import TurnResult, TurnService
from chatpay.core.turns import Turn

DEMO_BUSINESS = "demo"  # always there: the bundled demo store is loaded on first use

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """A wired ChatPay: the turn service and the parts behind it."""

    settings: Settings
    stores: Stores
    service: TurnService
    engine: Engine
    presenter: TelegramPresenter
    clock: Clock
    database: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def describe(self) -> dict[str, str]:
        info = self.settings.describe()
        info["engine"] = self.engine.name
        return info

    def turn(
        self,
        text: str = "",
        *,
        thread_id: str = "local",
        business_id: str | None = None,
        callback_data: str | None = None,
        update_id: int | None = None,
    ) -> Turn:
        """A new turn for this runtime's business (or ``business_id``)."""
        return Turn(
            business_id=business_id or self.settings.business_id,
            thread_id=thread_id,
            turn_id=uuid.uuid4().hex[:16],
            text=text,
            callback_data=callback_data,
            update_id=update_id,
            chat_id=thread_id,
            at=self.clock.now(),
        )

    async def catalog(self, business_id: str | None = None) -> Catalog | None:
        return await self.stores.catalogs.get(business_id or self.settings.business_id)

    async def import_catalog(self, catalog: Catalog) -> Catalog:
        """Replace a business's catalog and index it for retrieval."""
        stored = await self.stores.catalogs.replace(catalog)
        await self.engine.retriever.prepare(stored)
        self.flush()
        return stored

    def flush(self) -> None:
        """Write what changed to the embedded default's data directory (a no-op on MongoDB)."""
        from chatpay.adapters.mongo.filestore import FileBackedDatabase

        if isinstance(self.database, FileBackedDatabase):  # (a plain Database answers any attribute)
            self.database.flush()

    async def load_catalog_file(
        self, path: Path, *, business_id: str | None = None, currency: str | None = None,
        store_file: Path | None = None, progress: Any = None,
    ) -> Catalog:
        from chatpay.catalog_files import load_catalog_file, load_store_profile

        business = business_id or self.settings.business_id
        profile = load_store_profile(store_file) if store_file else None
        catalog = load_catalog_file(
            path, business_id=business, currency=currency or (profile.currency if profile else None),
            default_currency=profile.currency if profile else None, progress=progress,
        )
        if profile:
            from dataclasses import replace

            catalog = replace(catalog, policies=profile.policies, store_name=profile.name)
        return await self.import_catalog(catalog)

    async def start(self, *, demo: bool = True) -> None:
        """Create indexes, and load the bundled demo store when the business has no catalog."""
        if self.database is not None:
            from chatpay.adapters.mongo import ensure_indexes

            ensure_indexes(self.database)
        business = self.settings.business_id
        existing = await self.stores.catalogs.get(business)
        if existing is None and demo and business != DEMO_BUSINESS:
            known = sorted({DEMO_BUSINESS, *await self.stores.catalogs.businesses()})
            raise InvalidInput(f"unknown business {business!r}; this store holds {', '.join(known)}. Import its "
                               f"catalog with `chatpay catalog import FILE --business {business}`")
        if existing is None and demo:
            from chatpay.resources import demo_store

            products, store = demo_store()
            await self.load_catalog_file(products, business_id=business, store_file=store)
        elif existing is not None:
            await self.engine.retriever.prepare(existing)


def _default_stores(settings: Settings) -> tuple[Stores, Any]:
    from chatpay.adapters.mongo import embedded_database, mongo_stores

    if settings.mongodb_uri:
        import pymongo

        client: Any = pymongo.MongoClient(settings.mongodb_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
        db = client[settings.mongodb_db]
        return mongo_stores(db, offload=True), db
    if settings.data_dir is not None:  # the embedded default, kept between processes
        from chatpay.adapters.mongo.filestore import FileBackedDatabase

        kept: Any = FileBackedDatabase(settings.data_dir, settings.mongodb_db)
        return mongo_stores(kept), kept
    db = embedded_database(settings.mongodb_db)
    return mongo_stores(db), db


def _default_embedder(settings: Settings) -> tuple[Embedder | None, bool]:
    """The sentence encoder and whether it is local (free).

    ``openai``: the configured embedding API. Otherwise a local model: with the fitted language
    engine (``CHATPAY_NLU=fitted``) all-MiniLM-L6-v2 int8 through onnxruntime, unless
    ``CHATPAY_EMBEDDINGS=static``; with the legacy engine the distilled static model it was tuned on.
    """
    if settings.embeddings == "openai" and settings.openai_api_key:
        from chatpay.adapters.openai_llm import OpenAIEmbedder

        return OpenAIEmbedder(model=settings.embedding_model, api_key=settings.openai_api_key,
                              base_url=settings.openai_base_url), False
    try:
        if settings.nlu == "fitted" and settings.embeddings != "static":
            from chatpay.adapters.encoders.onnx_minilm import OnnxMiniLMEncoder

            return OnnxMiniLMEncoder(), True
        from chatpay.adapters.local_embedder import LocalEmbedder

        return LocalEmbedder(), True
    except Exception as exc:  # the model files are optional; lexical search still works
        log.warning("local encoder unavailable; search runs lexical-only", extra={"error": repr(exc)})
        return None, True


def _default_llm(settings: Settings) -> ChatModel | None:
    if not settings.openai_api_key:
        return None
    from chatpay.adapters.openai_llm import OpenAIChatModel

    return OpenAIChatModel(
        model=settings.model, api_key=settings.openai_api_key, base_url=settings.openai_base_url
    )


def payment_provider(settings: Settings) -> PaymentProvider:
    """The provider ``CHATPAY_PAYMENTS`` names (the sandbox by default); configuration was checked on load."""
    env = settings.payment_env
    if settings.payments == "telegram":
        from chatpay.adapters.payments.telegram import TelegramInvoiceProvider

        return TelegramInvoiceProvider(settings.telegram_provider_token or "")
    if settings.payments == "stars":
        from chatpay.adapters.payments.telegram import StarsProvider

        return StarsProvider(_bot_call(settings))
    if settings.payments == "stripe":
        from chatpay.adapters.payments.stripe_checkout import from_env as stripe_from_env

        return stripe_from_env(env)
    if settings.payments == "usdc":
        from chatpay.adapters.payments.solana_pay import from_env as usdc_from_env

        return usdc_from_env(env)
    from chatpay.adapters.payments.sandbox import SandboxPaymentProvider

    return SandboxPaymentProvider()


def _bot_call(settings: Settings) -> Any:
    """A Bot API call for providers that need one (Stars refunds), opened on first use."""
    if not settings.telegram_bot_token:
        return None

    async def call(method: str, params: Any) -> Any:
        from chatpay.adapters.telegram import TelegramChannel

        async with TelegramChannel.from_settings(settings) as channel:
            return await channel.call(method, params)

    return call


def build(
    settings: Settings | None = None,
    *,
    llm: ChatModel | None = None,
    offline: bool = False,
    embedder: Embedder | None = None,
    no_embedder: bool = False,
    index_factory: VectorIndexFactory | None = None,
    stores: Stores | None = None,
    clock: Clock | None = None,
    payments: PaymentProvider | None = None,
    classifier: IntentClassifier | None = None,
    budget: BudgetGuard | None = None,
) -> Runtime:
    """Wire a runtime from ``settings`` (read from the environment when None).

    Args:
        llm: a chat model to use instead of the configured one (tests pass a ScriptedChatModel).
        offline: force the offline engine even when an API key is configured.
        embedder: an embedder to use instead of the local model; ``no_embedder`` runs lexical-only.
        stores: stores to use instead of MongoDB / the embedded mongomock.
        budget: the business's spending guard (the worker passes a Redis-backed one per business);
            None: ``CHATPAY_TOKEN_BUDGET`` as a monthly token cap, counted in this process.
    """
    from chatpay.adapters.clock import SystemClock

    settings = settings or load_settings()
    clock = clock or SystemClock()
    database = None
    if stores is None:
        stores, database = _default_stores(settings)
    model = None if offline else (llm or _default_llm(settings))
    if budget is None:  # counted in this process, from the usage records on the first check
        from chatpay.businesses import Budget
        from chatpay.core.budget import InMemoryBudgetCounter

        usage: Any = stores.usage
        if settings.mongodb_uri and database is not None:
            from chatpay.adapters.redis.budget import MongoUsageTotals

            usage = MongoUsageTotals(database, offload=True)
        budget = BudgetGuard(Budget(monthly_tokens=settings.token_budget), InMemoryBudgetCounter(), stores.events,
                             usage=usage)
    meter = UsageMeter(stores.usage, clock, engine=model.name if model else "offline", guard=budget)
    local = True
    if embedder is None and not no_embedder:
        embedder, local = _default_embedder(settings)
    if index_factory is None:
        from chatpay.adapters.vector_numpy import NumpyVectorIndex

        index_factory = NumpyVectorIndex
    metered_embedder = MeteredEmbedder(embedder, meter, local=local) if embedder is not None else None
    metered_model = MeteredChatModel(model, meter) if model is not None else None
    retriever: Any
    if settings.nlu == "fitted":
        from chatpay.nlu.search import CatalogSearch

        retriever = CatalogSearch(metered_embedder, vectors=stores.vectors, model=metered_model)
    else:
        from chatpay.core.retrieval import Retriever

        retriever = Retriever(metered_embedder, index_factory)
    intents: Any = classifier
    if intents is None:
        if settings.nlu == "fitted":
            from chatpay.nlu.intent import default_intent_classifier

            intents = default_intent_classifier()
            encode = getattr(embedder, "encode", None)
            if embedder is not None and local and callable(encode):
                intents = intents.with_encoder(embedder.name, encode)
        else:
            intents = default_classifier()
    router = Router(intents, metered_model)
    engine = Engine(
        router=router, retriever=retriever, meter=meter, model=metered_model,
        payments=payments or payment_provider(settings), top_k=settings.top_k, persona=settings.persona,
    )
    service: TurnService = TurnService(stores=stores, engine=engine, clock=clock)
    from chatpay.adapters.mongo.filestore import FileBackedDatabase

    if isinstance(database, FileBackedDatabase):
        service = _FlushingService(database, stores=stores, engine=engine, clock=clock)
    return Runtime(settings, stores, service, engine, TelegramPresenter(), clock, database)


class _FlushingService(TurnService):
    """The turn service of the embedded default: each turn's changes reach the data directory."""

    def __init__(self, database: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._database = database

    async def handle(self, turn: Turn, *, intent: str | None = None) -> TurnResult:
        result = await super().handle(turn, intent=intent)
        self._database.flush()
        return result
