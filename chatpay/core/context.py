"""Reading a short follow-up against the previous turn.

"yes" means whatever the assistant just asked: add it, empty the cart, check out.
"the 1kg", "black", "the second one", "both please" pick among what was just offered.
These rules look at the delexicalised message and the last assistant message only;
they know nothing about any particular store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from chatpay.core.evidence import has_cue
from chatpay.core.mentions import Delexicalised
from chatpay.core.negation import QUESTION_OPENERS
from chatpay.core.replies import says_sold_out
from chatpay.core.text import NUMBER_WORDS, ORDINALS, normalise
from chatpay.core.turns import Message

AFFIRMATIVE = frozenset({
    "yes", "yes please", "yeah", "yea", "yep", "yup", "sure", "ok", "okay", "go ahead", "please do", "do it",
    "sounds good", "perfect", "yes add it", "add it", "of course", "definitely", "absolutely", "si", "oui",
    "ja", "ok do it", "yes pls", "yes thanks", "yes thank you", "sure thing", "why not", "yes do it",
    "go for it", "yes go ahead", "yeah go ahead", "yes please do", "ok go ahead", "yes sure", "please", "y",
    "confirm", "confirmed", "yes i do", "i do", "sure go ahead", "alright", "all right", "ok sure",
    "yes empty it", "yes clear it", "yes please empty it", "yes empty", "yes clear",
    "да", "ага", "угу", "давай", "конечно", "да пожалуйста", "да давай", "ок", "хорошо", "да очисти",
    "да удали", "да добавь", "да, добавь", "добавь", "да конечно", "давайте", "да, давай",
    "беру", "берем", "возьму", "возьмем",  # "I'll take it", the object left unsaid as Russian does
})
NEGATIVE = frozenset({
    "no", "nope", "no thanks", "no thank you", "not now", "nah", "maybe later", "not yet", "no thx",
    "never mind", "nevermind", "no need", "no keep it", "no don't", "no dont", "keep it",
    "нет", "не надо", "нет спасибо", "не нужно", "не", "неа",
})
AFFIRMATIVE_HEADS = frozenset({"yes", "yeah", "yep", "yup", "sure", "ok", "okay", "да", "ага", "давай", "конечно"})
# What a "yes" agrees to, read from the question it answers; the first that matches wins, so a
# question about emptying the cart is never read as one about adding. English and Russian stems.
YES_CUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cart_clear", ("empty", "clear", "wipe", "start over", "очист", "очищ", "пуст")),
    ("cart_remove", ("remove", "take it off", "убра", "удал")),
    ("payments", ("checkout", "check out", "pay", "оформ", "оплат")),
    ("cart_add", ("add", "добав", "полож")),
)


def is_affirmative(said: str) -> bool:
    """ "yes", "yes please", "да, очищай", "да, положите её в корзину": agreement, with a few words after it."""
    if said in AFFIRMATIVE or said.rstrip("!") in AFFIRMATIVE:
        return True
    words = said.split()
    return bool(words) and words[0] in AFFIRMATIVE_HEADS and len(words) <= 6 and not any(
        w in ("not", "don't", "dont", "no", "не", "нет") for w in words[1:])


def yes_means(question: str) -> str | None:
    """The intent a yes to ``question`` carries, by the action the question names."""
    q = normalise(question)
    for intent, cues in YES_CUES:
        if any(cue in q for cue in cues):
            return intent
    return None


# Words that may surround a pick ("the copper one please", "2 of the VARIANT ones").
PICK_FILLER = frozenset(
    """the a an one ones of please pls plz thanks thank you i'll ill i'd id take have want get go with
    for me ok okay yes yeah sure and just then that in size colour color version option like would
    lets let's let us please
    тогда ну ладно хорошо ок давай давайте мне пожалуйста можно в на с цвете цвет размер размере
    беру берем возьму возьмем ту тот то ту одну один одно его её ее их вот такую такой такое""".split()
)
PICK_WORDS = frozenset({"VARIANT", "both", "all", *ORDINALS})
_QUESTION_END = re.compile(r"[^.!?\n]*\?")

Classify = Callable[[str], list[tuple[str, float]]]
YES_INTENTS = ("cart_add", "cart_clear", "payments", "cart_remove")


def last_assistant(history: Sequence[Message]) -> str | None:
    for message in reversed(history):
        if message.role == "assistant":
            return message.content
    return None


def last_question(text: str) -> str | None:
    found = _QUESTION_END.findall(text)
    return found[-1].strip() if found else None


def is_pick(delex: Delexicalised) -> bool:
    """True when the message only picks a variant, an ordinal or "both" ("the 1kg", "black")."""
    words = delex.text.replace("?", " ").split()
    if not words:
        return False
    has_pick = False
    for i, w in enumerate(words):
        if w in PICK_WORDS or (w.replace(".", "", 1).isdigit() and i + 1 < len(words) and words[i + 1] in ("one", "ones")):
            has_pick = True  # "the 50 one": a number that picks an option
        elif w in PICK_FILLER or w.isdigit() or w in NUMBER_WORDS or w == "PRODUCT":
            continue
        else:
            return False
    return has_pick


# "and add a charger" after a removal adds: a continuation keeps the previous action unless the
# classifier's own reading of the message is the other cart action.
CONTINUATION = ("and ", "also ", "plus ", "oh and ", "and also ", "as well as ", "oh also ",
                "и ", "а еще ", "и еще ", "еще ", "также ", "плюс ")


def last_user_intent(history: Sequence[Message]) -> str | None:
    for message in reversed(history):
        if message.role == "user":
            return message.intent
    return None


def added_before_a_question(history: Sequence[Message]) -> bool:
    """Whether the shopper added something and then asked one question: "add the jump starter", "how
    big an engine will it start?", then "and a tow rope just in case" goes on adding."""
    said = [m.intent for m in history if m.role == "user"][-2:]
    return said == ["cart_add", "enquiry"]


def context_intent(
    delex: Delexicalised, history: Sequence[Message], classify: Classify,
    names: Callable[[str], bool] | None = None,
) -> tuple[str, float, str] | None:
    """An intent read from the previous assistant message, with confidence and reason, or None."""
    previous = last_assistant(history)
    if previous is None:
        return None
    said = normalise(delex.original)
    if is_affirmative(said):
        question = last_question(previous)
        if question is None:
            return None
        named = yes_means(question)
        if named is not None:
            return named, 0.9, f"yes to {question!r}"
        ranked = classify(question)
        intent, p = ranked[0]
        if intent in YES_INTENTS:
            return intent, min(0.95, 0.5 + p / 2), f"yes to {question!r}"
        if "add" in normalise(question).split():
            return "cart_add", 0.8, f"yes to {question!r}"
        return None
    if said in NEGATIVE:
        return "chitchat", 0.9, "declined"
    previous_intent = last_user_intent(history)
    if (previous_intent == "enquiry" and added_before_a_question(history) and "?" not in delex.original
            and not QUESTION_OPENERS.intersection(said.split())):
        previous_intent = "cart_add"  # the question was an aside; the list of things to add goes on
    names_something = "PRODUCT" in delex.text.split() or any(
        w.isdigit() or w in NUMBER_WORDS for w in said.split()[1:]) or (
        # "and some jeans": a word of the shop's product names, when several products share it
        names is not None and "?" not in delex.original and any(names(w) for w in said.split()[1:]))
    if said.startswith(CONTINUATION) and previous_intent in ("cart_add", "cart_remove") and names_something:
        rest = said.split()[1:]
        counted = bool(rest) and (rest[0].isdigit() or rest[0] in NUMBER_WORDS)  # "and 2 packs of ..."
        adds = has_cue(delex.original, "cart_add") or counted
        removes = has_cue(delex.original, "cart_remove")
        if adds != removes:  # "and add a cable" after a removal: the message's own verb decides
            own = "cart_add" if adds else "cart_remove"
            return own, 0.9, f"names its own action ({own}) after a {previous_intent}"
        own, p = classify(delex.text)[0]
        # Both cues, or none: the classifier weighs the words, except that a removal needs a word that
        # asks for it ("и щетку для мойки" after an addition adds, whatever the classifier makes of it)
        if own in ("cart_add", "cart_remove") and own != previous_intent and (own == "cart_add" or removes):
            return own, p, f"names its own action ({own}) after a {previous_intent}"
        return previous_intent, 0.8, f"continues the previous {previous_intent}"
    if is_pick(delex) and ("?" in previous or "\n" in previous or " or " in previous):
        return "cart_add", 0.85, f"picked {delex.text!r} from the previous offer"
    words = delex.text.replace("?", " ? ").split()
    if (says_sold_out(previous) and "VARIANT" in words and "?" not in words
            and not has_cue(delex.original, "cart_remove")):  # "fine, take out the 4.5mm then" removes
        # "the steel workbench in 1.8m then", right after "Sorry, X is out of stock": another choice
        return "cart_add", 0.8, "named another product and option after a refusal"
    return None
