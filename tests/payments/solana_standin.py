"""A Solana JSON-RPC node stand-in on 127.0.0.1, for testing Solana Pay without the network.

It is a real HTTP server (stdlib, in a thread) answering ``getSignaturesForAddress`` and
``getTransaction`` with results of the shape a node gives (``encoding: jsonParsed``), so the
provider's HTTP, JSON-RPC and parsing code all run. A test programs what is on chain::

    with SolanaRpcStandin() as node:
        signature = node.pay(reference, Transfer(payer=shopper, to=shop, mint=USDC_MINT, amount=27_800_000))
        provider = SolanaPayProvider(shop, node.url)

Transactions are listed newest first, as a node does. ``fail`` makes the next calls a JSON-RPC
error, ``http_status`` a bare HTTP error; ``requests`` records every call.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
ASSOCIATED_TOKEN_PROGRAM = "ATokenGPvbdGVxr1b2hvZbsiqW3xDa8eWFw8M7ddJ8L"
MEMO_PROGRAM = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
USDT_MINT = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"

PAYER_START = 1_000_000_000  # the shopper holds 1000 tokens (6 decimals)
SHOP_START = 5_000_000  # the shop already holds 5 tokens, unless its token account is new


def new_key() -> str:
    """A fresh random public key (a wallet, a reference)."""
    return str(Keypair().pubkey())


def new_signature() -> str:
    """A fresh transaction signature, base58 like a real one."""
    return str(Keypair().sign_message(new_key().encode()))


def token_account(owner: str, mint: str) -> str:
    """The associated token account of ``owner`` for ``mint``, where wallets send tokens."""
    seeds = [bytes(Pubkey.from_string(key)) for key in (owner, TOKEN_PROGRAM, mint)]
    address, _bump = Pubkey.find_program_address(seeds, Pubkey.from_string(ASSOCIATED_TOKEN_PROGRAM))
    return str(address)


@dataclass(frozen=True)
class Transfer:
    """What a wallet sent: ``amount`` base units of ``mint`` from ``payer`` to ``to``'s token account.

    ``err`` set means the transaction failed on chain (balances unchanged); ``new_account`` that
    the recipient's token account was created by this transaction (no balance before it);
    ``carries_reference=False`` a transaction the node lists for the reference without it.
    """

    payer: str
    to: str
    mint: str
    amount: int
    decimals: int = 6
    memo: str = ""
    err: Any = None
    new_account: bool = False
    carries_reference: bool = True


def _balance(index: int, owner: str, mint: str, amount: int, decimals: int) -> dict[str, Any]:
    ui = amount / 10**decimals
    return {"accountIndex": index, "mint": mint, "owner": owner, "programId": TOKEN_PROGRAM,
            "uiTokenAmount": {"amount": str(amount), "decimals": decimals, "uiAmount": ui,
                              "uiAmountString": f"{ui:.{decimals}f}".rstrip("0").rstrip(".")}}


def _key(pubkey: str, *, signer: bool = False, writable: bool = False) -> dict[str, Any]:
    return {"pubkey": pubkey, "signer": signer, "source": "transaction", "writable": writable}


def transaction(signature: str, reference: str, transfer: Transfer, slot: int) -> dict[str, Any]:
    """The ``getTransaction`` (jsonParsed) result of a Solana Pay transfer, as a node returns it."""
    source = token_account(transfer.payer, transfer.mint)
    destination = token_account(transfer.to, transfer.mint)
    moved = 0 if transfer.err is not None else transfer.amount
    keys = [_key(transfer.payer, signer=True, writable=True), _key(source, writable=True),
            _key(destination, writable=True), _key(transfer.mint)]
    if transfer.carries_reference:
        keys.append(_key(reference))
    keys += [_key(TOKEN_PROGRAM), _key(MEMO_PROGRAM)]
    shop_before = 0 if transfer.new_account else SHOP_START
    pre = [_balance(1, transfer.payer, transfer.mint, PAYER_START, transfer.decimals)]
    if not transfer.new_account:
        pre.append(_balance(2, transfer.to, transfer.mint, shop_before, transfer.decimals))
    post = [_balance(1, transfer.payer, transfer.mint, PAYER_START - moved, transfer.decimals),
            _balance(2, transfer.to, transfer.mint, shop_before + moved, transfer.decimals)]
    ui = transfer.amount / 10**transfer.decimals
    instructions: list[dict[str, Any]] = [
        {"parsed": transfer.memo, "program": "spl-memo", "programId": MEMO_PROGRAM, "stackHeight": None},
        {"parsed": {"info": {"authority": transfer.payer, "destination": destination, "mint": transfer.mint,
                             "source": source,
                             "tokenAmount": {"amount": str(transfer.amount), "decimals": transfer.decimals,
                                             "uiAmount": ui, "uiAmountString": str(ui)}},
                    "type": "transferChecked"},
         "program": "spl-token", "programId": TOKEN_PROGRAM, "stackHeight": None},
    ]
    return {
        "slot": slot,
        "blockTime": 1_767_225_600 + slot,
        "version": "legacy",
        "meta": {
            "err": transfer.err,
            "status": {"Ok": None} if transfer.err is None else {"Err": transfer.err},
            "fee": 5000,
            "preBalances": [50_000_000, 2_039_280, 2_039_280, 1_461_600] + [1] * (len(keys) - 4),
            "postBalances": [49_995_000, 2_039_280, 2_039_280, 1_461_600] + [1] * (len(keys) - 4),
            "preTokenBalances": pre,
            "postTokenBalances": post,
            "innerInstructions": [],
            "logMessages": [f"Program {TOKEN_PROGRAM} invoke [1]", f"Program {TOKEN_PROGRAM} success"],
            "rewards": [],
            "loadedAddresses": {"readonly": [], "writable": []},
            "computeUnitsConsumed": 6_500,
        },
        "transaction": {
            "signatures": [signature],
            "message": {"accountKeys": keys, "instructions": instructions,
                        "recentBlockhash": "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N"},
        },
    }


@dataclass
class _Chain:
    by_reference: dict[str, list[str]] = field(default_factory=dict)  # oldest first
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    slot: int = 300_000_000
    error: tuple[int, str] | None = None
    http_status: int | None = None
    requests: list[tuple[str, list[Any]]] = field(default_factory=list)


class SolanaRpcStandin:
    """A programmable Solana JSON-RPC node on a free loopback port."""

    def __init__(self) -> None:
        self._chain = _Chain()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def requests(self) -> list[tuple[str, list[Any]]]:
        """Every call so far, as ``(method, params)``."""
        with self._lock:
            return list(self._chain.requests)

    def pay(self, reference: str, transfer: Transfer) -> str:
        """Put a transaction carrying ``reference`` on chain; returns its signature."""
        signature = new_signature()
        with self._lock:
            chain = self._chain
            chain.slot += 3
            chain.transactions[signature] = transaction(signature, reference, transfer, chain.slot)
            chain.by_reference.setdefault(reference, []).append(signature)
        return signature

    def fail(self, code: int, message: str) -> None:
        """Answer every later call with this JSON-RPC error."""
        with self._lock:
            self._chain.error = (code, message)

    def http_error(self, status: int) -> None:
        """Answer every later call with this HTTP status and no JSON."""
        with self._lock:
            self._chain.http_status = status

    def _answer(self, request: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        method, params = request.get("method", ""), request.get("params", [])
        with self._lock:
            chain = self._chain
            chain.requests.append((method, params))
            if chain.http_status is not None:
                return chain.http_status, None
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
            if chain.error is not None:
                reply["error"] = {"code": chain.error[0], "message": chain.error[1]}
            elif method == "getSignaturesForAddress":
                limit = params[1].get("limit", 1000) if len(params) > 1 else 1000
                newest_first = list(reversed(chain.by_reference.get(params[0], [])))[:limit]
                reply["result"] = [self._signature_info(chain.transactions[s]) for s in newest_first]
            elif method == "getTransaction":
                reply["result"] = chain.transactions.get(params[0])
            else:
                reply["error"] = {"code": -32601, "message": "Method not found"}
        return 200, reply

    @staticmethod
    def _signature_info(tx: dict[str, Any]) -> dict[str, Any]:
        memo = tx["transaction"]["message"]["instructions"][0]["parsed"]
        return {"signature": tx["transaction"]["signatures"][0], "slot": tx["slot"], "err": tx["meta"]["err"],
                "memo": f"[{len(memo)}] {memo}" if memo else None, "blockTime": tx["blockTime"],
                "confirmationStatus": "confirmed"}

    def start(self) -> SolanaRpcStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, reply = standin._answer(json.loads(body))
                data = json.dumps(reply).encode() if reply is not None else b"upstream unavailable"
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if reply is not None else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests' output is for failures."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval: shutdown() waits for the loop to notice, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="solana-rpc-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SolanaRpcStandin:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
