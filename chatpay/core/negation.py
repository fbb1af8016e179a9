"""Negation and its scope: "don't remove the kettle" asks for nothing to be removed.

A negator ("don't", "do not", "never", "не") governs the action verb that follows it within
the same clause and at most two words on ("don't *remove*", "please do not *empty* my cart",
"не *удаляй*"). "I don't want the kettle anymore" is no negated command: "want" is not an
action, and the agent reads it as a removal. Words are data below, English and Russian; a
clause ends at punctuation or "but".
"""

from __future__ import annotations

import re

from chatpay.core.text import tokens

NEGATORS = frozenset({"don't", "dont", "do not", "never", "not", "no need to", "do n't", "не", "никогда", "нельзя"})
ACTIONS = frozenset(
    """remove delete empty clear drop take cancel add put buy checkout pay order change switch touch throw
    bin wipe reset erase get rid swap
    удаляй удалять удали убирай убери убрать очищай очисти очищать чисти добавляй добавь добавлять клади
    положи оформляй оформлять плати платить трогай меняй менять выкидывай выбрасывай""".split()
)
WINDOW = 3  # the negator and up to two words between it and the verb ("do not ever empty")
_CLAUSE = re.compile(r"[.!?;,]+|\bbut\b|\bно\b", re.IGNORECASE)


def negated_action(text: str) -> str | None:
    """The action verb a negator governs in ``text``, or None when no command is negated."""
    for clause in _CLAUSE.split(text):
        words = tokens(clause)
        for i, w in enumerate(words):
            pair = f"{w} {words[i + 1]}" if i + 1 < len(words) else ""
            if w in NEGATORS or pair in NEGATORS:
                start = i + (2 if pair in NEGATORS and w not in NEGATORS else 1)
                for v in words[start : start + WINDOW]:
                    if v in ACTIONS:
                        return v
    return None
