"""A local HTTP stand-in for the few Stripe API endpoints ChatPay calls, and a webhook signer.

It serves ``POST /v1/checkout/sessions`` and ``POST /v1/refunds`` on 127.0.0.1 from a background
thread, so the real stripe SDK does its own form encoding, headers, retries and error parsing
against it. Like Stripe it checks the bearer API key, replays the first answer to a repeated
``Idempotency-Key`` (and refuses the key with other parameters), and answers errors in Stripe's
``{"error": {"type", "code", "message"}}`` shape with a ``Request-Id`` header. Every request is
recorded with its decoded parameters.

Webhooks go the other way: :meth:`StripeStandIn.payment_event` builds the event Stripe would send
when a session it made gets paid, and :func:`sign` writes the ``Stripe-Signature`` header for it
(``t=<ts>,v1=<HMAC-SHA256 of "<ts>.<body>">``), independently of the SDK that checks it.

Use it as a context manager::

    with StripeStandIn(api_key="sk_test_x") as stripe_api:
        provider = StripeCheckoutProvider(..., api_base=stripe_api.url, ...)
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends with ``payload``, signed at ``timestamp`` (now)."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding back into nested data: ``a[b][0][c]=x`` is ``{"a": {"b": [{"c": "x"}]}}``."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        path = re.findall(r"[^\[\]]+", key)
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    """Dicts keyed 0, 1, 2... (how the form spells arrays) as lists."""
    if not isinstance(node, dict):
        return node
    items = {key: _listify(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


@dataclass(frozen=True)
class Request:
    """One request the stand-in received."""

    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int


@dataclass(frozen=True)
class _Failure:
    status: int
    body: dict[str, Any]
    retryable: bool


class StripeStandIn:
    """Plays Stripe's API for one test; see the module docstring."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Request] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}  # made by payment_event, refunded by /v1/refunds
        self._replies: dict[str, tuple[str, dict[str, Any], int, dict[str, Any]]] = {}
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # A short poll keeps shutdown (and so each test's teardown) from waiting half a second.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="stripe-standin", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> StripeStandIn:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ steering

    def fail_next(self, status: int, error_type: str, message: str, *, code: str | None = None,
                  retryable: bool = False) -> None:
        """Answer the next request with this Stripe error, before it reaches the idempotency layer.

        ``retryable`` sets ``Stripe-Should-Retry: true`` (the SDK retries), otherwise ``false``
        (it gives up at once, which keeps tests fast).
        """
        self._failures.append(_Failure(status, _error(error_type, message, code=code), retryable))

    def payment_event(self, session_id: str, *, event_type: str = "checkout.session.completed",
                      payment_status: str = "paid", event_id: str | None = None) -> bytes:
        """The webhook body Stripe sends when ``session_id`` completes; its payment can then be refunded."""
        with self._lock:
            session = self.sessions[session_id]
            intent = session["payment_intent"] or f"pi_standin_{next(self._ids)}"
            session.update(status="complete", payment_status=payment_status, payment_intent=intent)
            self.payment_intents[intent] = {"amount": session["amount_total"], "currency": session["currency"],
                                            "refunded": False}
            return self.event(event_type, dict(session), event_id=event_id)

    def event(self, event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> bytes:
        """A webhook body for any event about ``obj``, as Stripe serialises it."""
        event = {"id": event_id or f"evt_standin_{next(self._ids)}", "object": "event", "api_version": "2025-03-31.basil",
                 "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
                 "request": {"id": None, "idempotency_key": None}, "type": event_type, "data": {"object": obj}}
        return json.dumps(event, indent=2).encode()

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    # ------------------------------------------------------------------ the API

    def _answer(self, method: str, path: str, headers: dict[str, str], body: str) -> tuple[int, dict[str, Any], bool]:
        params = decode_form(body)
        key = headers.get("idempotency-key")
        status, reply, retryable = self._answer_unrecorded(method, path, headers, params, key)
        self.requests.append(Request(method, path, params, key, status))
        return status, reply, retryable

    def _answer_unrecorded(self, method: str, path: str, headers: dict[str, str], params: dict[str, Any],
                           key: str | None) -> tuple[int, dict[str, Any], bool]:
        presented = headers.get("authorization", "").removeprefix("Bearer ")
        if presented != self.api_key:
            # Stripe masks all but the last four characters; echoing the whole key lets a test
            # prove that ChatPay keeps it out of its own messages regardless.
            return 401, _error("invalid_request_error", f"Invalid API Key provided: {presented}"), False
        if self._failures:
            failure = self._failures.pop(0)
            return failure.status, failure.body, failure.retryable
        if key is not None and key in self._replies:
            first_path, first_params, status, reply = self._replies[key]
            if (first_path, first_params) != (path, params):
                return 400, _error("idempotency_error", "Keys for idempotent requests can only be used with the "
                                   "same parameters they were first used with."), False
            return status, reply, False
        if method == "POST" and path == "/v1/checkout/sessions":
            status, reply = self._create_session(params)
        elif method == "POST" and path == "/v1/refunds":
            status, reply = self._create_refund(params)
        else:
            status, reply = 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path}).")
        if key is not None:
            self._replies[key] = (path, params, status, reply)
        return status, reply, False

    def _create_session(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        items = params.get("line_items") or []
        currencies = {item["price_data"]["currency"] for item in items}
        if params.get("mode") != "payment" or not items or len(currencies) != 1:
            return 400, _error("invalid_request_error", "mode=payment needs line items in one currency.",
                               code="parameter_invalid")
        session_id = f"cs_test_standin{next(self._ids)}"
        session = {
            "id": session_id, "object": "checkout.session", "mode": "payment", "status": "open",
            "payment_status": "unpaid", "url": f"{self.url}/c/pay/{session_id}", "livemode": False,
            "currency": currencies.pop(),
            "amount_total": sum(int(i["price_data"]["unit_amount"]) * int(i["quantity"]) for i in items),
            "client_reference_id": params.get("client_reference_id"), "metadata": params.get("metadata", {}),
            "success_url": params.get("success_url"), "cancel_url": params.get("cancel_url"),
            "payment_intent": None, "created": int(time.time()),
        }
        self.sessions[session_id] = session
        return 200, dict(session)

    def _create_refund(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent_id = params.get("payment_intent", "")
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            return 400, _error("invalid_request_error", f"No such payment_intent: '{intent_id}'", code="resource_missing")
        if intent["refunded"]:
            return 400, _error("invalid_request_error", f"Charge for {intent_id} has already been refunded.",
                               code="charge_already_refunded")
        intent["refunded"] = True
        refund = {"id": f"re_standin{next(self._ids)}", "object": "refund", "amount": intent["amount"],
                  "currency": intent["currency"], "payment_intent": intent_id, "status": "succeeded"}
        self.refunds[refund["id"]] = refund
        return 200, refund

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                headers = {name.lower(): value for name, value in self.headers.items()}
                with standin._lock:
                    status, reply, retryable = standin._answer(self.command, self.path, headers, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_standin{len(standin.requests)}")
                if status >= 400:
                    self.send_header("Stripe-Should-Retry", "true" if retryable else "false")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        return Handler


def _error(error_type: str, message: str, *, code: str | None = None) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, **({"code": code} if code else {})}}
