"""Telegram's HTML parse mode, rendered as Rich text the way a Telegram client shows it.

Telegram accepts a small set of tags: ``b``/``strong``, ``i``/``em``, ``u``/``ins``,
``s``/``strike``/``del``, ``a href``, ``code``, ``pre``, ``blockquote``, ``tg-spoiler``
(or ``span class="tg-spoiler"``). Everything else is shown as its text, and entities are
decoded, so the preview shows what a shopper would read.
"""

from __future__ import annotations

from html.parser import HTMLParser

from rich.style import Style
from rich.text import Text

_TAG_STYLES: dict[str, Style] = {
    "b": Style(bold=True),
    "strong": Style(bold=True),
    "i": Style(italic=True),
    "em": Style(italic=True),
    "u": Style(underline=True),
    "ins": Style(underline=True),
    "s": Style(strike=True),
    "strike": Style(strike=True),
    "del": Style(strike=True),
    "code": Style(color="bright_cyan"),
    "pre": Style(color="bright_cyan"),
    "blockquote": Style(italic=True, dim=True),
    "tg-spoiler": Style(reverse=True),
}
LINK_STYLE = Style(color="bright_blue", underline=True)


class _TelegramHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = Text()
        self._stack: list[tuple[str, Style]] = []
        self.links: list[tuple[str, str]] = []
        self._link_start: int | None = None
        self._href = ""

    def _style(self) -> Style:
        style = Style()
        for _, s in self._stack:
            style += s
        return style

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "br":
            self.text.append("\n")
            return
        if tag == "a":
            href = values.get("href") or ""
            self._href = href
            self._link_start = len(self.text)
            style = LINK_STYLE + Style(link=href) if href else LINK_STYLE
            self._stack.append((tag, style))
            return
        if tag == "span" and "tg-spoiler" in (values.get("class") or ""):
            self._stack.append((tag, _TAG_STYLES["tg-spoiler"]))
            return
        if tag == "blockquote":
            self.text.append("▍", style=Style(color="bright_blue"))
        self._stack.append((tag, _TAG_STYLES.get(tag, Style())))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break
        if tag == "a" and self._link_start is not None:
            self.links.append((self.text.plain[self._link_start :], self._href))
            self._link_start = None

    def handle_data(self, data: str) -> None:
        self.text.append(data, style=self._style())


def telegram_html(source: str) -> Text:
    """Rich text for a Telegram HTML message or caption (bold, italic, links, code...)."""
    parser = _TelegramHTML()
    parser.feed(source)
    parser.close()
    return parser.text


def telegram_links(source: str) -> list[tuple[str, str]]:
    """The ``(text, url)`` pairs of a message's links, in order."""
    parser = _TelegramHTML()
    parser.feed(source)
    parser.close()
    return parser.links


def plain_text(source: str) -> str:
    """What a shopper reads, without any styling."""
    return telegram_html(source).plain
