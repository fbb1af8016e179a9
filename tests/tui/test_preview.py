"""The Telegram preview's pieces that the main flows do not reach: invoices, URL buttons, clearing."""

from __future__ import annotations

from textual.app import App, ComposeResult

from chatpay.core.ports import OutgoingMessage
from chatpay_tui.preview import Bubble, KeyboardButton, PhotoPlaceholder, TelegramPreview


class Harness(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.pressed: list[str] = []

    def compose(self) -> ComposeResult:
        yield TelegramPreview(id="preview")

    def on_telegram_preview_callback_pressed(self, event: TelegramPreview.CallbackPressed) -> None:
        self.pressed.append(event.data)


INVOICE = OutgoingMessage("sendInvoice", {
    "chat_id": "t", "title": "Bean & Leaf order", "description": "2 items", "payload": "order-1",
    "provider_token": "", "currency": "EUR", "prices": [{"label": "Coffee", "amount": 2500},
                                                         {"label": "Shipping", "amount": 490}],
})
LINKS = OutgoingMessage("sendMessage", {
    "chat_id": "t", "text": "See <a href='https://shop.example'>our shop</a>", "parse_mode": "HTML",
    "reply_markup": {"inline_keyboard": [[{"text": "Open shop", "url": "https://shop.example"},
                                          {"text": "More", "callback_data": "i|house-espresso"}]]},
})
PHOTO = OutgoingMessage("sendPhoto", {"chat_id": "t", "photo": "https://shop.example/a.jpg",
                                      "caption": "<b>Mug</b> — €9.00"})


async def test_an_invoice_shows_its_prices_and_total_and_a_pay_button() -> None:
    app = Harness()
    async with app.run_test(size=(60, 30)) as pilot:
        preview = app.query_one(TelegramPreview)
        await preview.show([INVOICE])
        await pilot.pause()
        body = str(app.query_one(Bubble).query(".text").first().render())
        assert "Bean & Leaf order" in body and "Coffee: 25.00 EUR" in body and "Shipping: 4.90 EUR" in body
        [pay] = preview.buttons()
        assert str(pay.label) == "Pay 29.90 EUR"
        pay.press()
        await pilot.pause()
        assert app.pressed == [], "paying is not simulated: no turn is sent"


async def test_url_buttons_copy_the_link_and_callback_buttons_post_their_data() -> None:
    app = Harness()
    async with app.run_test(size=(60, 30)) as pilot:
        preview = app.query_one(TelegramPreview)
        await preview.show([LINKS, PHOTO])
        await pilot.pause()
        url_button, more = preview.buttons()
        assert (url_button.url, more.callback_data) == ("https://shop.example", "i|house-espresso")
        url_button.press()
        more.press()
        await pilot.pause()
        assert app.clipboard == "https://shop.example"
        assert app.pressed == ["i|house-espresso"]
        assert [p.url for p in app.query(PhotoPlaceholder)] == ["https://shop.example/a.jpg"]


async def test_clearing_removes_every_message_and_button() -> None:
    app = Harness()
    async with app.run_test(size=(60, 30)) as pilot:
        preview = app.query_one(TelegramPreview)
        await preview.show([LINKS], user="hi")
        await preview.clear()
        await pilot.pause()
        assert preview.messages == [] and preview.buttons() == [] and not list(app.query(KeyboardButton))
