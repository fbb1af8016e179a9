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

import re

from chatpay.core.text import NUMBER_WORDS, ORDINALS, tokens


def _cues(words: str, phrases: tuple[str, ...] = ()) -> frozenset[str]:
    """Single cue words, and phrases kept whole ("no longer" is a cue; "no" alone is not)."""
    return frozenset(words.split()) | frozenset(phrases)


CUES: dict[str, frozenset[str]] = {
    "cart_add": _cues(
        """add adding added addd put throw chuck stick pop include buy buying grab take taking want order
        i'll ill i'd we'll more another again extra also plus same pick choose gimme get bag basket cart
        make switch change swap instead increase double getting book
        добавь добавьте добавить добавлю положи положите положить закинь кинь возьму беру берем
        хочу куплю купить нужен нужна нужно нужны давай ещё еще плюс закажу заказать поменяй замени
        сделай сделайте""", ("в корзину",)),
    "cart_remove": _cues(
        """remove removing delete drop off out minus less fewer cancel scrap scratch ditch lose bin rid rmv undo
        reduce decrease lower make change
        убери уберите убрать удали удалите удалить минус меньше отмени выкинь убавь вычеркни сотри сотрите
        сними снимите снять вытащи вытащите сделай сделайте оставь""",
        ("take off", "take it off", "take them off", "take out", "take it out", "take them out", "no longer",
         "don't want", "dont want", "do not want", "never mind", "changed my mind", "only want", "just want",
         "не надо", "не нужно", "не нужен", "не нужна")),
    "cart_clear": _cues(
        """empty clear wipe reset bin scrap cancel remove delete
        очисти очистите очистить очищай обнули удали убери уберите выкинь выкиньте сотри сбрось опустоши снеси""",
        ("start over", "start again", "from scratch")),
    "payments": _cues(
        """checkout chekout checkut pay paying payment paid buy order invoice receipt charge
        charged card purchase proceed complete finish done ready
        оформи оформить оформляй оплатить оплата оплачу оплачиваю заказ чек счет счёт купить""",
        ("check out",)),
}
# The words among the cues above that ask to add and nothing else ("take", "want", "then", "I'll"
# also lean to adding but ask for nothing by themselves)
ADD_VERBS = frozenset("""add adding added addd put throw chuck stick pop include buy grab another more plus
    gimme добавь добавьте добавить добавлю положи положите положить закинь кинь ещё еще плюс""".split())
# ... and those of them that open a command to add ("add the ...", "добавь ...")
ADD_COMMANDS = frozenset("add добавь добавьте положи положите закинь кинь".split())
# ... and the words and phrases that ask to take away and nothing else ("make", "change" also set)
REMOVE_VERBS = frozenset("""remove removing delete drop minus cancel ditch rid scrap bin
    убери уберите убрать удали удалите удалить минус выкинь сними снимите вытащи вытащите""".split())
_TAKE_AWAY = ("take out", "take off", "take it out", "take it off", "take them out", "take them off")


def asks_only_to_remove(text: str) -> bool:
    """A word or phrase that takes away, and none that adds."""
    words = tokens(text)
    joined = f" {' '.join(words)} "
    removes = bool(set(words) & REMOVE_VERBS) or any(f" {p} " in joined for p in _TAKE_AWAY)
    return removes and not set(words) & ADD_VERBS


# "bin the lot", "throw it all out", "take everything out of the basket", "убери всё из корзины":
# a message of nothing but a verb that takes away and a word for everything asks to empty the cart,
# whatever the classifier made of it. Verbs that also mean having ("take", "get", "throw", "chuck")
# take away only with their particle ("take everything" buys it all; "take everything out" does not).
_EMPTY_VERBS = REMOVE_VERBS | frozenset("""clear empty wipe reset dump nuke trash
    очисти очистите очистить обнули опустоши сотри сотрите сбрось удалите убрать выкиньте""".split())
_PARTICLE_VERBS = frozenset("take throw chuck toss get".split())
_PARTICLES = frozenset("out off away rid".split())
_EVERYTHING = frozenset("everything all lot whole entire всё все весь всю целиком полностью".split())
_AROUND_EMPTY = frozenset("""the my a of from in it please pls just now ok okay so can you could yes
    cart basket bag trolley order из мою мой моей корзину корзины корзине пожалуйста давай можно""".split())


def asks_to_empty(text: str) -> bool:
    """A verb that takes away, a word for everything, and nothing else that says what to take."""
    words = tokens(text)
    said = set(words)
    if not said & _EVERYTHING or not said <= _EMPTY_VERBS | _PARTICLE_VERBS | _PARTICLES | _EVERYTHING | _AROUND_EMPTY:
        return False
    if "it" in said and "all" not in said:
        return False  # "clear it": the line in focus, not the cart
    return bool(said & _EMPTY_VERBS) or bool(said & _PARTICLE_VERBS and said & _PARTICLES)


# A clause with a verb of being or having is a remark, not one more item of a list: "remove the can,
# the kit already has one", "drop the earbuds, the headphones have bluetooth". In a removal it names
# nothing to take away unless it asks to remove too.
_REMARK_WORDS = frozenset("has have had is are was were already because since came comes does did уже есть".split())


def is_remark(words: list[str]) -> bool:
    return bool(_REMARK_WORDS & set(words)) and not has_cue(" ".join(words), "cart_remove")


CUES["chitchat"] = frozenset(  # single words only
    """hi hii hello helo hallo hey heyy heya hiya hoi hola bonjour salut hej ciao yo morning evening thanks thank thx ty cheers bye goodbye later lol lmao haha
    ta cheerio tara adios merci
    joke funny bot robot human person real weather name who how are you doing sorry love great awesome
    cool nice ok okay fine good bad sad happy tired boring help hmm wow
    привет здравствуйте здрасте спасибо благодарю пока бот робот человек живой погода шутка анекдот
    ахах хаха лол круто класс супер отлично ладно понятно как дела""".split())
# Words that ask to change a line's option ("switch it to white"). The router reads the narrower
# set; the cart agent, which already knows the line, also takes "rather", "replace", "вместо".
SWITCH_WORDS = frozenset("switch swap change instead exchange поменяй замени поменять заменить".split())
SWITCH_CUES = SWITCH_WORDS | frozenset("rather replace вместо".split())
# "make it the compact", "make that the 800 watt": "make" before a pointer and "the"/"a" names an
# option to switch to; "make it 2" sets a quantity instead.
_MAKE_SWITCH = (("make", "it", "the"), ("make", "it", "a"), ("make", "that", "the"), ("make", "them", "the"),
                ("make", "it", "in"), ("make", "them", "in"))


def asks_switch(words: list[str] | tuple[str, ...], *, strict: bool = False) -> bool:
    """Whether ``words`` ask to switch something to another option ("switch it to", "make it the");
    with ``strict``, only the verbs of changing count, not "instead" or "rather"."""
    if set(words) & (SWITCH_WORDS if strict else SWITCH_CUES):
        return True
    return any(tuple(words[i:i + 3]) in _MAKE_SWITCH for i in range(len(words) - 2))


# Russian words change their endings; a cue of five letters or more also matches as a word start.
_PREFIX = 5
POINTERS = frozenset({"it", "its", "that", "this", "them", "those", "these", "one", "ones", "both", "all",
                      "его", "ее", "её", "их", "это", "этот", "эту", "эти", "обе", "оба", *ORDINALS})


# Read once: phrase cues as padded token strings, and the stems of long Cyrillic cues.
_PHRASES = {i: tuple(f" {' '.join(tokens(c))} " for c in cues if " " in c) for i, cues in CUES.items()}
_STEMS = {i: frozenset(c[:_PREFIX] for c in cues if len(c) >= _PREFIX and not c.isascii()) for i, cues in CUES.items()}


def _slips(word: str) -> set[str]:
    """``word`` with one letter left out or two neighbours swapped: "rmove", "delet", "remvoe"."""
    out = {word[:i] + word[i + 1 :] for i in range(len(word))}
    out |= {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    return out - {word}


# A taking-away cue misspelt by a dropped or swapped letter still asks to take away ("rmove the
# cap", "delet the gloves"). Only cue words of six letters or more, so that a slip is rarely a word
# of its own (five-letter "reset" would give "rest"), and never by a letter changed or added
# ("remote", "removed" are words); only for taking away, where the cart agent still needs a line
# the words name, and in Latin letters (Russian cues already match by their first letters).
_SLIPS = {i: frozenset(slip for c in CUES[i] if " " not in c and len(c) >= 6 and c.isascii() for slip in _slips(c))
          - CUES[i] for i in ("cart_remove", "cart_clear")}


def _count(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word) if word not in ("a", "an") else None


def fewer_than_said(words: list[str]) -> bool:
    """"only 1 springform pan not 2", "just one bottle of ink not two": a count, then "not" and a
    larger count, asks to lower a quantity."""
    for i, w in enumerate(words[:-1]):
        said = _count(words[i + 1]) if w == "not" else None
        if said is not None and any((n := _count(v)) is not None and n < said for v in words[:i]):
            return True
    return False


_NOT_COUNT = re.compile(r"\bnot\s+(?:\d+|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")\b",
                        re.IGNORECASE)


def drop_corrected_count(text: str) -> str:
    """``text`` without the count it corrects: "only 1 springform pan not 2" -> "only 1 springform pan"."""
    return _NOT_COUNT.sub(" ", text) if fewer_than_said(tokens(text)) else text


def has_cue(text: str, intent: str) -> bool:
    words = tokens(text)
    cues = CUES.get(intent)
    if cues is None:
        return True
    if intent == "cart_remove" and fewer_than_said(words):
        return True
    joined = f" {' '.join(words)} "
    if any(phrase in joined for phrase in _PHRASES[intent]):
        return True
    for i, w in enumerate(words):
        if w in ("want", "хочу") and i + 1 < len(words) and words[i + 1] in ("to", "чтобы"):
            continue  # "I want to help the bees": a wish to do something, not to have a thing
        if w in cues or (len(w) >= _PREFIX and not w.isascii() and w[:_PREFIX] in _STEMS[intent]):
            return True
        if w in _SLIPS.get(intent, ()):
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
