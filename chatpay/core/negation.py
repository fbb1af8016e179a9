"""Negation and its scope: "don't remove the kettle" asks for nothing to be removed.

A negator ("don't", "do not", "never", "не") governs the action verb that follows it within
the same clause and at most two words on ("don't *remove*", "please do not *empty* my cart",
"не *удаляй*"). "I don't want the kettle anymore" is no negated command: "want" is not an
action, and the agent reads it as a removal. Words are data below, English and Russian; a
clause ends at punctuation or "but".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from chatpay.core.text import normalise, tokens

NEGATORS = frozenset({"don't", "dont", "do not", "never", "not", "no need to", "do n't", "не", "никогда", "нельзя"})
ACTIONS = frozenset(
    """remove delete empty clear drop take cancel add put buy checkout pay order change switch touch throw
    bin wipe reset erase get rid swap
    удаляй удалять удали убирай убери убрать снимай сними снимать очищай очисти очищать чисти добавляй добавь добавлять клади
    положи оформляй оформлять плати платить трогай меняй менять выкидывай выбрасывай""".split()
)
WINDOW = 3  # the negator and up to two words between it and the verb ("do not ever empty")
CLAUSE_BREAK = re.compile(r"[.!?;,]+|\bbut\b|\bно\b", re.IGNORECASE)  # where a clause ends


QUESTION_STARTERS = frozenset("will does do is are how what why which would when where should".split())
# Words that open a question, English and Russian: the starters above, and the ones that may also
# open a request ("can you ...") where a question is all that matters.
QUESTION_OPENERS = QUESTION_STARTERS | frozenset(
    "who can could какой какая какие как когда где почему сколько можно есть".split())
SHOPPER_SUBJECTS = frozenset("i we it they she he my our this that these those".split())
CART_WORDS = frozenset("cart basket bag trolley order корзину корзина корзине корзины заказ".split())


def asks_about_not_for(text: str) -> bool:
    """A question about a product that borrows an action's verb ("will it clear up my skin?",
    "can I remove the door of the litter box?") rather than a request to the shop ("can you remove it?")."""
    words = tokens(text)
    if not words:
        return False
    if words[0] in QUESTION_STARTERS:
        return True
    if words[0] in ("can", "could", "may") and len(words) > 1:
        return words[1] in SHOPPER_SUBJECTS
    return False


ADVICE = frozenset("should shall".split())
# What "can I <verb>" asks of the shop rather than of the product
REQUEST_VERBS = frozenset("""get have order add buy take grab pay check checkout remove see view put
    switch change swap make empty clear cancel return book reserve keep try""".split())
YES_NO = frozenset("will does do is are did was were has have".split())  # "should I get the 50ml or the 100ml?" asks for advice
SHOP = frozenset("you u".split())


# Words that set products side by side: a comparison asks, it never acts.
COMPARES = frozenset("vs versus compare comparing comparison сравни сравнить разница разницу отличается отличаются".split())
COMPARE_PHRASES = ("difference between", "which is better", "что лучше")


def asks_rather_than_requests(text: str) -> bool:
    """A question about products ("will the battery fit the saw?", "does it charge my phone?",
    "should I get A or B?"), not a polite request to act ("can I get four of them?", "could you
    add it?"). Russian yes/no questions carry "ли" ("подойдёт ли ...?")."""
    words = tokens(text)
    if set(words) & COMPARES or any(p in " ".join(words) for p in COMPARE_PHRASES):
        return True  # "slim power bank vs the magnetic one", "difference between the pine and the clumping one"
    if "?" in text and {"which", "какой", "какую", "какое", "какие"} & set(words) and {"or", "или"} & set(words):
        return True  # "step ladder or the 4 in 1, which would you get?": advice between two, not an order
    while words and words[0] in ("ok", "okay", "so", "and", "hmm", "um", "also", "actually", "but", "ну", "а", "и"):
        words = words[1:]
    if not words:
        return False
    if "ли" in words:
        return True
    first, subject = words[0], (words[1] if len(words) > 1 else "")
    if first in ADVICE:
        return subject not in SHOP
    if first in ("can", "could", "may", "would"):
        # "can I get two?", "could you add it?", "would you remove it?": requests; "can i use it with
        # the serum?", "can I wash the cover?": questions about the product
        if subject not in ("i", "we", *SHOP):
            # "would the flux cable charge my macbook", "can it hold a 16 inch laptop": asked of a
            # product, which no one asks to act
            return subject not in ("ya", "someone")
        verb = words[2] if subject in ("i", "we") and len(words) > 2 else ""
        return "?" in text and bool(verb) and verb not in REQUEST_VERBS
    # Yes/no questions only: "how do I pay?" and "what do I click to check out?" ask to act.
    return first in YES_NO and subject not in SHOP or first in ("do", "does") and subject in SHOP


# Phrases that ask about one's own orders or payments rather than to pay or to change the cart.
# Matched as whole-word runs on the normalised text; the router sends them to the payments agent. A bare "my order" is not one: "drop the pans from my order" means
# the cart (a development shop's routing case caught that).
ORDER_QUESTIONS: tuple[tuple[str, ...], ...] = tuple(tuple(p.split()) for p in (
    "where is my order", "where's my order", "wheres my order", "my orders", "order status",
    "status of my order", "track my order", "did my payment", "payment go through", "payment went through",
    "did i pay", "was i charged", "have i paid", "has my order", "did my order", "has my payment",
    "payment gone through", "gone through yet", "been shipped", "shipped yet", "my card charged",
    "card been charged", "my refund", "order been",
    "где мой заказ", "мои заказы", "статус заказа", "оплата прошла", "платеж прошел", "платёж прошёл",
    "прошла ли оплата",
))
def _says(words: list[str], phrases: Iterable[tuple[str, ...]]) -> bool:
    """Whether one of ``phrases`` is a run of ``words``."""
    return any(tuple(words[i : i + len(p)]) == p for p in phrases for i in range(len(words) - len(p) + 1))


def asks_about_orders(text: str) -> bool:
    words = normalise(text).split()
    return _says(words, ORDER_QUESTIONS)


_HOW_MUCH = (("how", "much"), ("сколько",), ("what", "does", "it", "come", "to"))
_NOW = frozenset("now теперь сейчас".split())


def asks_new_total(text: str) -> bool:
    """"how much is it now", "сколько теперь выходит?": after a change to the cart, its new total."""
    words = tokens(text)
    return _says(words, _HOW_MUCH) and bool(_NOW & set(words))


def mentions_the_cart(text: str) -> bool:
    return any(w in CART_WORDS for w in tokens(text))


# Words that may stand before the cart's name when it means the cart: "my bag", "view basket",
# "what's in the cart", "покажи корзину", "что в корзине".
_CART_OPENERS = frozenset("""my the your our this that in to from of into view show see check open whats what
    s is mine me please pls shopping whole entire current мою моя моей мой в из покажи что показать
    посмотреть открой""".split())
_CART_KIND = frozenset("for для of to with".split())
_CART_PLURALS = frozenset("bags baskets carts trolleys".split())  # many of them: things sold


def cart_word_names_a_product(text: str) -> bool:
    """Whether every cart word of ``text`` names a kind of product instead of the shopper's cart:
    "poop bags", "the 15 lb bag", "proving basket", "корзина для белья". The cart is meant when the
    word opens the message or follows a possessive, article or viewing verb, and no "for" follows it."""
    words = tokens(text)
    at = [i for i, w in enumerate(words) if w in CART_WORDS - {"order", "заказ"}]
    if not at:
        return bool(set(words) & _CART_PLURALS)
    for i in at:
        before = words[i - 1] if i else None
        after = words[i + 1] if i + 1 < len(words) else None
        if (before is None or before in _CART_OPENERS) and after not in _CART_KIND:
            return False
    return True


def negated_action(text: str) -> str | None:
    """The action verb a negator governs in ``text``, or None when no command is negated."""
    for clause in CLAUSE_BREAK.split(text):
        words = tokens(clause)
        for i, w in enumerate(words):
            pair = f"{w} {words[i + 1]}" if i + 1 < len(words) else ""
            if w in NEGATORS or pair in NEGATORS:
                start = i + (2 if pair in NEGATORS and w not in NEGATORS else 1)
                for v in words[start : start + WINDOW]:
                    if v in ACTIONS:
                        return v
    return None
