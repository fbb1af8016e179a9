"""Telegram HTML as the preview shows it: styles where Telegram has them, text everywhere else."""

from __future__ import annotations

from rich.text import Text

from chatpay_tui.telegram_html import plain_text, telegram_html, telegram_links


def styles_of(text: Text, word: str) -> list[str]:
    start = text.plain.index(word)
    return [str(span.style) for span in text.spans if span.start <= start < span.end]


def test_bold_italic_underline_strike_and_code_are_styled() -> None:
    text = telegram_html("<b>Sunrise</b> <i>light</i> <u>roast</u> <s>old</s> <code>SKU-1</code>")
    assert text.plain == "Sunrise light roast old SKU-1"
    assert "bold" in " ".join(styles_of(text, "Sunrise"))
    assert "italic" in " ".join(styles_of(text, "light"))
    assert "underline" in " ".join(styles_of(text, "roast"))
    assert "strike" in " ".join(styles_of(text, "old"))
    assert styles_of(text, "SKU-1")


def test_nested_tags_combine_and_unclosed_ones_end_with_the_text() -> None:
    text = telegram_html("<b>all <i>both</i></b> plain <b>open")
    both = " ".join(styles_of(text, "both"))
    assert "bold" in both and "italic" in both
    assert styles_of(text, "plain") == []
    assert "bold" in " ".join(styles_of(text, "open"))


def test_links_keep_their_text_and_url() -> None:
    source = 'See <a href="https://shop.example/p/1">the product page</a> &amp; more'
    assert plain_text(source) == "See the product page & more"
    assert telegram_links(source) == [("the product page", "https://shop.example/p/1")]
    assert any("link https://shop.example/p/1" in s for s in styles_of(telegram_html(source), "product"))


def test_entities_are_decoded_and_unknown_tags_show_as_text() -> None:
    assert plain_text("5 &lt; 6 &gt; 4 &quot;ok&quot; <unknown>kept</unknown>") == '5 < 6 > 4 "ok" kept'
    assert plain_text("line<br>next") == "line\nnext"
