"""USDC on Solana through Solana Pay transfer requests, confirmed by polling a JSON-RPC node.

How a payment goes (Solana Pay spec, "Transfer Request")::

    start(order)    a fresh random *reference* key per order (kept as ``order.checkout_ref``) and
                    solana:<recipient>?amount=27.8&spl-token=<mint>&reference=<ref>
                          &label=<shop>&message=Order%20<NUMBER>&memo=<order id>
                    as a link and a QR code; the shopper's wallet builds and signs the transfer
    check(order)    getSignaturesForAddress(reference) finds the transactions that carry the
                    reference; getTransaction (jsonParsed) of each, oldest first, is accepted only
                    if it succeeded and the recipient's balance of the mint rose by exactly the
                    order's amount
    UsdcPoller      (solana_poller.py) checks every pending USDC order, one poller at a time
                    across the fleet, and hands payments, problems and expired orders on

Why polling: a transfer request is non-interactive, so nothing calls the shop back; the
reference is the only handle on the payment before it exists, and validators index
transactions by it.

Amounts: orders priced in USD (or USDC) are paid 1:1 in USDC, exactly, in integers: 27.80 USD
is 2780 cents, and 27_800_000 base units of a 6-decimal mint. Any other currency is refused;
ChatPay never invents an exchange rate.

Refunds: the shop's server only watches the chain and holds no private key, so it cannot send
USDC. :meth:`SolanaPayProvider.refund` says so, with the amount, for the merchant to send from
their own wallet; the order is marked refunded once they confirm it.

The recipient must be the merchant's wallet address (the owner), never its USDC token
account: wallets derive the associated token account from it and the mint. The mint is
configurable (``USDC_MINT``) for devnet, whose Circle USDC mint is
``4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import segno
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from chatpay.core.errors import ConfigError, PaymentError
from chatpay.core.money import exponent
from chatpay.core.orders import ConfirmedPayment, Order
from chatpay.core.ports import CheckoutStart

log = logging.getLogger(__name__)

USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
"""Circle's USDC mint on Solana mainnet-beta (6 decimals)."""

PROVIDER = "usdc"
TOKEN = "USDC"
PRICED_IN = frozenset({"USD", "USDC"})
"""Currencies paid 1:1 in USDC; anything else would need an exchange rate, which ChatPay does not invent."""

SIGNATURE_LIMIT = 50
"""Transactions looked at per reference. Anyone may send transactions that mention a public key,
so this bounds the work a spammer can cause; a real payment is one transaction."""

COMMITMENT = "confirmed"
"""Optimistically confirmed by a supermajority: what wallets show as done, seconds after sending."""

# encodeURIComponent leaves these unescaped; the spec asks for exactly that encoding.
_URI_COMPONENT_SAFE = "-_.!~*'()"


def _public_key(value: str, setting: str) -> str:
    """``value`` if it is a base58 Solana public key (32 bytes), else a ConfigError naming ``setting``."""
    try:
        return str(Pubkey.from_string(value.strip()))
    except ValueError as exc:
        raise ConfigError(setting, f"{value!r} is not a Solana address (a base58 public key): {exc}") from exc


def ui_amount(base_units: int, decimals: int, *, min_places: int = 0) -> str:
    """``base_units`` of a ``decimals``-place token as a plain decimal, without float or exponent.

    With ``min_places=0`` this is the spec's shortest form (``27.8``, ``0.01``, ``100``);
    ``min_places=2`` gives the form people read prices in (``27.80``).
    """
    if base_units < 0:
        raise ValueError("an amount of tokens cannot be negative")
    whole, fraction = divmod(base_units, 10**decimals)
    digits = f"{fraction:0{decimals}d}".rstrip("0") if decimals else ""
    digits = digits.ljust(min_places, "0")
    return f"{whole}.{digits}" if digits else str(whole)


def transfer_request_url(recipient: str, *, amount: str, spl_token: str, reference: str,
                         label: str = "", message: str = "", memo: str = "") -> str:
    """A Solana Pay transfer request URL, parameters in the spec's order, URL-encoded as it asks.

    Empty text fields are left out, as the spec's optional fields allow.
    """
    params = [("amount", amount), ("spl-token", spl_token), ("reference", reference),
              ("label", label), ("message", message), ("memo", memo)]
    query = "&".join(f"{key}={quote(value, safe=_URI_COMPONENT_SAFE)}" for key, value in params if value)
    return f"solana:{quote(recipient, safe=_URI_COMPONENT_SAFE)}?{query}"


def qr_png(text: str) -> bytes:
    """A QR code of ``text`` as PNG bytes, large enough to scan from a phone screen."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


@dataclass(frozen=True)
class PaymentProblem:
    """A transaction that carries an order's reference but does not pay it; never accepted.

    ``reason`` is said in plain words for the merchant ("underpaid: 27.00 of 27.80 USDC"):
    the money (if any) is theirs to return or settle by hand.
    """

    order_id: str
    signature: str
    reason: str


class SolanaPayProvider:
    """Takes USDC through Solana Pay transfer requests and confirms them from a Solana JSON-RPC node.

    Args:
        recipient: The merchant's wallet address (base58), not a token account.
        rpc_url: A Solana JSON-RPC endpoint (it may carry an API key; it is never logged).
        mint: The USDC mint; mainnet's by default.
        decimals: The mint's decimals (USDC: 6).
        label: What wallets show as the payee when the shop has no name.
        timeout: Seconds for one RPC call.

    Raises:
        ConfigError: the recipient or mint is not a public key, or decimals are negative.
    """

    name = PROVIDER
    sandbox = False

    def __init__(self, recipient: str, rpc_url: str, *, mint: str = USDC_MINT, decimals: int = 6,
                 label: str = "", timeout: float = 10.0) -> None:
        if decimals < 0:
            raise ConfigError("decimals", f"a token has 0 or more decimals, not {decimals}")
        self.recipient = _public_key(recipient, "recipient")
        self.mint = _public_key(mint, "mint")
        self.rpc_url = rpc_url
        self.decimals = decimals
        self.label = label
        self.timeout = timeout

    def amount_due(self, order: Order) -> int:
        """What ``order`` costs in the mint's base units, exactly.

        Raises:
            PaymentError: the order is not priced in USD, is free, or has a fraction of a base unit.
        """
        if order.currency not in PRICED_IN:
            raise PaymentError(PROVIDER, f"order {order.id} is priced in {order.currency}; USDC can only "
                                         f"pay prices in USD (there is no exchange rate to use)")
        if order.total_minor <= 0:
            raise PaymentError(PROVIDER, f"order {order.id} has nothing to pay")
        return self._base_units(order.total_minor, order.currency)

    def _base_units(self, minor: int, currency: str) -> int:
        shift = self.decimals - exponent(currency)
        if shift >= 0:
            return minor * 10**shift
        units, rest = divmod(minor, 10**-shift)
        if rest:
            raise PaymentError(PROVIDER, f"{minor} minor units of {currency} is a fraction of the token's "
                                         f"smallest unit ({self.decimals} decimals)")
        return units

    def _show(self, base_units: int) -> str:
        return f"{ui_amount(base_units, self.decimals, min_places=2)} {TOKEN}"

    async def start(self, order: Order, *, shop_name: str) -> CheckoutStart:
        """A transfer request for exactly the order's total, with a fresh reference and its QR code.

        The reference is a random public key nobody holds the secret of: it only tags the
        transaction so it can be found, and a new one per order keeps orders apart.
        """
        due = self.amount_due(order)
        reference = str(Keypair().pubkey())
        url = transfer_request_url(
            self.recipient, amount=ui_amount(due, self.decimals), spl_token=self.mint, reference=reference,
            label=shop_name.strip() or self.label, message=f"Order {order.number}", memo=order.id,
        )
        shown = self._show(due)
        return CheckoutStart(
            url=url,
            label=f"Pay {shown}",
            text=(f"Open this link or scan the QR code with a Solana wallet (Phantom, Solflare, ...) to pay "
                  f"exactly {shown} on Solana. Your order is confirmed here as soon as the payment "
                  f"lands, usually within a minute."),
            image_png=qr_png(url),
            checkout_ref=reference,
        )

    async def refund(self, order: Order) -> str:
        """Always raises: USDC cannot be sent from here, because the shop's server holds no private key.

        Raises:
            PaymentError: saying what to send back, to whom, and that the order is marked once
                the merchant confirms they sent it.
        """
        paid = order.paid_minor if order.paid_minor is not None else order.total_minor
        amount = self._show(self._base_units(paid, order.currency))  # start() only takes USD-priced orders
        payer = order.extra.get("payer")
        to_whom = f" to the wallet that paid ({payer})" if payer else " to the shopper's wallet"
        via = f" (payment {order.provider_payment_id})" if order.provider_payment_id else ""
        raise PaymentError(PROVIDER, (
            f"USDC refunds cannot be sent by the shop's server: it holds no private key. Send {amount}"
            f"{to_whom}{via} from your own wallet; order {order.number} is marked refunded once you "
            f"confirm you sent it."))

    async def check(self, order: Order) -> ConfirmedPayment | PaymentProblem | None:
        """Look for the order's payment on chain.

        Returns the oldest transaction with the reference that pays exactly the amount due to
        the recipient in the mint, else a :class:`PaymentProblem` for the oldest one that
        carries the reference but does not (underpaid, overpaid, another token, another
        wallet, failed), else None (nothing yet).

        Raises:
            PaymentError: the order has no reference or is not payable in USDC, or the node
                failed or refused (HTTP error, JSON-RPC error, malformed answer).
        """
        if not order.checkout_ref:
            raise PaymentError(PROVIDER, f"order {order.id} has no Solana Pay reference to look for")
        due = self.amount_due(order)
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            options = {"limit": SIGNATURE_LIMIT, "commitment": COMMITMENT}
            found = await self._rpc(http, "getSignaturesForAddress", [order.checkout_ref, options])
            signatures = _signatures_oldest_first(found)
            problem: PaymentProblem | None = None
            for signature in signatures:
                tx = await self._rpc(http, "getTransaction", [signature, {
                    "encoding": "jsonParsed", "commitment": COMMITMENT, "maxSupportedTransactionVersion": 0}])
                if tx is None:  # listed, but not yet visible at this commitment
                    continue
                try:
                    verdict = self._judge(order, signature, tx, due)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    raise PaymentError(PROVIDER, f"getTransaction answered an unexpected shape for "
                                                 f"{signature}: {type(exc).__name__}: {exc}") from exc
                if isinstance(verdict, ConfirmedPayment):
                    return verdict
                problem = problem or verdict
        return problem

    def _judge(self, order: Order, signature: str, tx: Mapping[str, Any],
               due: int) -> ConfirmedPayment | PaymentProblem | None:
        """What one transaction that carries the order's reference means for the order."""
        listed = tx["transaction"]["message"]["accountKeys"]  # jsonParsed: objects; json: strings
        keys = {key["pubkey"] if isinstance(key, Mapping) else key for key in listed}
        if order.checkout_ref not in keys:  # the node listed it, but it does not carry the reference
            return None
        meta = tx["meta"]
        if meta["err"] is not None:
            return PaymentProblem(order.id, signature, "failed: the transaction was rejected on chain "
                                                       f"({json.dumps(meta['err'])}), so no {TOKEN} moved")
        changes = _token_changes(meta.get("preTokenBalances") or [], meta.get("postTokenBalances") or [])
        got = changes.get((self.recipient, self.mint), 0)
        if got == due:
            payers = [owner for (owner, mint), delta in changes.items() if mint == self.mint and delta < 0]
            return ConfirmedPayment(provider=PROVIDER, order_id=order.id, payment_id=signature,
                                    currency=order.currency, total_minor=order.total_minor,
                                    payer=payers[0] if payers else None)
        if got > 0:
            word = "underpaid" if got < due else "overpaid"
            paid = ui_amount(got, self.decimals, min_places=2)
            return PaymentProblem(order.id, signature, f"{word}: {paid} of {self._show(due)}")
        other_mints = [mint for (owner, mint), delta in changes.items()
                       if owner == self.recipient and delta > 0]
        if other_mints:
            return PaymentProblem(order.id, signature, f"paid in another token (mint {other_mints[0]}), "
                                                       f"not {TOKEN}")
        other_owners = [owner for (owner, mint), delta in changes.items() if mint == self.mint and delta > 0]
        if other_owners:
            return PaymentProblem(order.id, signature, f"paid to another wallet ({other_owners[0]}), "
                                                       f"not the shop's")
        return PaymentProblem(order.id, signature, f"no {TOKEN} reached the shop's wallet")

    async def _rpc(self, http: httpx.AsyncClient, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; every failure is a PaymentError that names the method, never the URL."""
        try:
            response = await http.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                           "params": params})
        except httpx.HTTPError as exc:
            raise PaymentError(PROVIDER, f"Solana RPC {method} could not be reached: "
                                         f"{type(exc).__name__}") from exc
        if response.status_code != 200:
            raise PaymentError(PROVIDER, f"Solana RPC {method} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise PaymentError(PROVIDER, f"Solana RPC {method} answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise PaymentError(PROVIDER, f"Solana RPC {method} answered an unexpected shape")
        error = body.get("error")
        if error is not None:
            detail = error.get("message", error) if isinstance(error, dict) else error
            code = f" (code {error['code']})" if isinstance(error, dict) and "code" in error else ""
            raise PaymentError(PROVIDER, f"Solana RPC {method} refused: {detail}{code}")
        return body.get("result")


def _signatures_oldest_first(found: Any) -> list[str]:
    """The signatures of a ``getSignaturesForAddress`` result, which lists the newest first."""
    try:
        return [str(entry["signature"]) for entry in reversed(found)]
    except (KeyError, TypeError) as exc:
        raise PaymentError(PROVIDER, "Solana RPC getSignaturesForAddress answered an unexpected "
                                     "shape") from exc


def _token_changes(pre: list[Mapping[str, Any]], post: list[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """How much each (owner, mint) gained in base units; a token account made in the transaction had 0."""
    before = {entry["accountIndex"]: int(entry["uiTokenAmount"]["amount"]) for entry in pre}
    after = {entry["accountIndex"]: int(entry["uiTokenAmount"]["amount"]) for entry in post}
    who = {entry["accountIndex"]: (entry["owner"], entry["mint"]) for entry in (*pre, *post)}
    changes: dict[tuple[str, str], int] = {}
    for index, owner_mint in who.items():
        changes[owner_mint] = changes.get(owner_mint, 0) + after.get(index, 0) - before.get(index, 0)
    return changes


def from_env(env: Mapping[str, str]) -> SolanaPayProvider:
    """The provider from ``USDC_RECIPIENT``, ``SOLANA_RPC_URL`` and optionally ``USDC_MINT``.

    Raises:
        ConfigError: naming every required setting that is missing at once, or the one that is
            malformed (an address that is not a base58 public key, an RPC URL that is not HTTP).
    """
    required = ("USDC_RECIPIENT", "SOLANA_RPC_URL")
    missing = [name for name in required if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(", ".join(missing), "required for USDC payments (Solana Pay) but not set")
    recipient = _public_key(env["USDC_RECIPIENT"], "USDC_RECIPIENT")
    mint = _public_key(env["USDC_MINT"], "USDC_MINT") if env.get("USDC_MINT", "").strip() else USDC_MINT
    rpc_url = env["SOLANA_RPC_URL"].strip()
    if not rpc_url.startswith(("https://", "http://")):
        raise ConfigError("SOLANA_RPC_URL", "must be an http(s):// URL of a Solana JSON-RPC node")
    return SolanaPayProvider(recipient, rpc_url, mint=mint)
