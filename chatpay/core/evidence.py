"""Explicit evidence for actions: a cart change needs words that ask for it.

Small talk needs its words too: in a shop, "keep my dog cool in the summer heat" is a request for
a product, not chat; a chitchat reading without a greeting, thanks or other chat word is searched.

"Everything" is a quantifier, not a command: it is no cue to empty the cart on its own.

The classifier reads the whole message and can be swayed by its shape ("keep my phone dry in the
pool" looks like a request); acting on the cart needs more. A reading of ``cart_add``,
``cart_remove``, ``cart_clear`` or ``payments`` from the classifier or the model stands only when
the message holds one of that action's cue words (below, English and Russian, matched as whole
words or word starts for Russian's endings), a quantity in front of what it names ("2x gloves",
"3 bags of compost"), a word that points at something already in the conversation ("it",
"that one", "the second"), or (for adding) an option of the product in focus ("1kg whole bean
then", checked by the engine). Otherwise the message is a question, and product search answers it.
"""

from __future__ import annotations

from chatpay.core.text import NUMBER_WORDS, ORDINALS, tokens

CUES: dict[str, frozenset[str]] = {
    "cart_add": frozenset(
        """add adding added addd put throw chuck stick pop include buy buying grab take taking want order
        i'll ill i'd we'll more another again extra also plus same pick choose gimme bag basket cart
        make switch change swap instead increase double getting book
        добавь добавьте добавить добавлю положи положите положить закинь кинь возьму беру берем
        хочу куплю купить нужен нужна нужно нужны давай ещё еще плюс закажу заказать поменяй замени""".split()),
    "cart_remove": frozenset(
        """remove removing delete drop take off out minus less fewer cancel scrap scratch ditch lose bin rid
        rmv
        undo don't dont no longer nevermind never mind only just reduce decrease lower make change
        убери уберите убрать удали удалите удалить минус меньше отмени выкинь убавь вычеркни не надо""".split()),
    "cart_clear": frozenset(
        """empty clear wipe reset start over bin scrap cancel remove delete
        очисти очистите очистить очищай обнули удали""".split()),
    "payments": frozenset(
        """checkout chekout checkut check out pay paying payment paid buy order invoice receipt charge
        charged card
        purchase proceed complete finish done ready
        оформи оформить оформляй оплатить оплата оплачу оплачиваю заказ чек счет счёт купить""".split()),
}
CUES["chitchat"] = frozenset(
    """hi hii hello helo hallo hey heyy heya hiya hoi hola bonjour salut hej ciao yo morning evening thanks thank thx ty cheers bye goodbye later lol lmao haha
    joke funny bot robot human person real weather name who how are you doing sorry love great awesome
    cool nice ok okay fine good bad sad happy tired boring help hmm wow
    привет здравствуйте здрасте спасибо благодарю пока бот робот человек живой погода шутка анекдот
    ахах хаха лол круто класс супер отлично ладно понятно как дела""".split())
# Russian words change their endings; a cue of five letters or more also matches as a word start.
_PREFIX = 5
POINTERS = frozenset({"it", "its", "that", "this", "them", "those", "these", "one", "ones", "both", "all",
                      "его", "ее", "её", "их", "это", "этот", "эту", "эти", "обе", "оба", *ORDINALS})


def has_cue(text: str, intent: str) -> bool:
    words = tokens(text)
    cues = CUES.get(intent)
    if cues is None:
        return True
    joined = " ".join(words)
    for cue in cues:
        if " " in cue and cue in joined:
            return True
    for i, w in enumerate(words):
        if w in ("want", "хочу") and i + 1 < len(words) and words[i + 1] in ("to", "чтобы"):
            continue  # "I want to help the bees": a wish to do something, not to have a thing
        if w in cues:
            return True
        if len(w) >= _PREFIX and not w.isascii() and any(len(c) >= _PREFIX and w.startswith(c[:_PREFIX]) for c in cues):
            return True
    return False


def points_or_counts(text: str) -> bool:
    """A pointer to something shown or a leading quantity ("2x gloves", "three bags of compost")."""
    words = tokens(text)
    if any(w in POINTERS for w in words):
        return True
    first = words[0] if words else ""
    return bool(first) and (first.rstrip("x").isdigit() or first in NUMBER_WORDS and first not in ("a", "an"))


def stands(text: str, intent: str) -> bool:
    """Whether a classifier's reading of ``intent`` has the words it needs to act."""
    if intent not in CUES:
        return True
    if has_cue(text, intent):
        return True
    return intent == "cart_add" and points_or_counts(text)
