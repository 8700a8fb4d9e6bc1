"""What each mail client writes above the quoted mail, in many languages (the examples of
README's "Reply text"): each starts the quoted history, followed by quoted lines (a
quote, dropped) or by unquoted text (the quoted mail, cut)."""

from __future__ import annotations

import pytest

from mailcase.reading import replytext

ATTRIBUTIONS = [
    "On Mon, 23 Nov 2026 at 10:00, Support <s@x.org> wrote:",
    "Am Mo., 23. Nov. 2026 um 10:00 Uhr schrieb Support <s@x.org>:",
    "Le lun. 23 nov. 2026 à 10:00, Support <s@x.org> a écrit :",
    "El lun, 23 nov 2026 a las 10:00, Support (<s@x.org>) escribió:",
    "Op ma 23 nov. 2026 om 10:00 schreef Support <s@x.org>:",
    "Il giorno lun 23 nov 2026 alle ore 10:00 Support <s@x.org> ha scritto:",
    "Em seg., 23 de nov. de 2026 às 10:00, Support <s@x.org> escreveu:",
    "pon., 23 lis 2026 o 10:00 Support <s@x.org> napisał(a):",
    "пн, 23 нояб. 2026 г. в 10:00, Support <s@x.org>:",
    "2026年11月23日(月) 10:00 Support <s@x.org>:",
    "Support <s@x.org> 于2026年11月23日周一 10:00写道：",
    "Op 23 nov. 2026 om 10:00 heeft Support <s@x.org> het volgende geschreven:",
    "Den 23. nov. 2026 kl. 10.00 skrev Support <s@x.org>:",
    "понедельник, 23 ноября 2026 г. пользователь Support написал:",
    '23 нояб. 2026 г. 10:00 пользователь "Support" <s@x.org> написал:',
    "Понедельник, 23 ноября 2026, 10:00 +03:00 от Support <s@x.org>:",
    "2026-11-23 10:00 GMT+01:00 Support <s@x.org>:",
    "2026/11/23 Support <s@x.org>",
    '23.11.2026, 10:00, "Support" <s@x.org>:',
    "Monday, 23 November 2026, 10:00 AM +0300 from s@x.org <s@x.org>:",
    "---- On Mon, 23 Nov 2026 10:00:00 +0100 Support <s@x.org> wrote ----",
    "------On Mon, 23 Nov 2026 Support <s@x.org> wrote-----",
    "Support <s@x.org> wrote:",
    "Support via Helpdesk <s@x.org> schrieb:",
    "Support <s@x.org> schrieb am Mo., 23. Nov. 2026 um 10:00 Uhr:",
    "At 23/11/2026 10:00, you wrote:",
    "Support <s@x.org> sent:",
    "Vào 10:00 Th 2, 23 thg 11, 2026 Support <s@x.org> đã viết:",
    "ma 23.11.2026 klo 10.00 Support <s@x.org> kirjoitti:",
    "23 Kas 2026 Pzt, 10:00 tarihinde Support <s@x.org> şunu yazdı:",
    "Dne 23.11.2026 v 10:00 Support <s@x.org> napsal(a):",
    "Στις Δευ 23 Νοε 2026 στις 10:00, ο/η Support <s@x.org> έγραψε:",
    # wrapped by the client
    "On Mon, 23 Nov 2026 at 10:00, Support <\ns@x.org> wrote:",
    '20 окт. 2016 г. 19:37 пользователь "Support" <\ns@x.org> написал:',
    "tir. 18. apr. 2017 kl. 13:09 skrev Support <s@x.org\n>:",
]
SEPARATORS = [
    "-----Original Message-----",
    "-----Ursprüngliche Nachricht-----",
    "-------- Message d'origine --------",
    "-------- Oprindelig besked --------",
    "------------------ 原始邮件 ------------------",
]
HEADER_BLOCKS = [
    "From: Support <s@x.org>\nSent: Monday, November 23, 2026 10:00\nTo: Ann\nSubject: Re: x",
    "Von: Support <s@x.org>\nGesendet: Montag, 23. November 2026 10:00\nAn: Ann\nBetreff: AW: x",
    "De : Support <s@x.org>\nEnvoyé le : lundi 23 novembre 2026 10:00\nÀ : Ann\nObjet : RE: x",
    "Van: Support <s@x.org>\nVerzonden: maandag 23 november 2026 10:00\nAan: Ann\nOnderwerp: x",
    "Från: Support <s@x.org>\nSkickat: den 23 november 2026 10:00\nTill: Ann\nÄmne: SV: x",
    "От: Support <s@x.org>\nОтправлено: 23 ноября 2026 г. 10:00\nКому: Ann\nТема: RE: x",
    "发件人: Support <s@x.org>\n发送时间: 2026年11月23日 10:00\n收件人: Ann\n主题: 回复: x",
    "*From:* Support <s@x.org>\n*Sent:* Monday, November 23, 2026 10:00\n*To:* Ann\n*Subject:* x",
    "From: Support <s@x.org>\nDate: Monday, November 23, 2026 10:00\nTo: Ann",
    "Message du : 23/11/2026 10:00\nDe : Support <s@x.org>\nA : Ann\nSujet : x",
]
REPLY = "It works now."


@pytest.mark.parametrize("history", ATTRIBUTIONS + SEPARATORS + HEADER_BLOCKS)
@pytest.mark.parametrize("after", ["\n> old quoted\n> more", "\n\nold unquoted text"],
                         ids=["quoted", "unquoted"])
def test_each_clients_form_starts_the_quoted_history(history: str, after: str) -> None:
    """The reply above the form is the comment; the form and the old mail go."""
    assert replytext.new_text(f"{REPLY}\n\n{history}{after}") == REPLY


def test_an_attribution_sharing_a_line_with_the_reply_is_cut_from_it() -> None:
    """"It works now. On … wrote:" on one line keeps the sentence, drops the attribution."""
    body = f"{REPLY} On Mon, 23 Nov 2026 at 10:00, Support <s@x.org> wrote:\n> old text"
    assert replytext.new_text(body) == REPLY


@pytest.mark.parametrize("text", [
    "On Monday I wrote:\nthe serial is 4711. It is 4712.",
    "The label says\nFrom: Berlin warehouse\nTo: Munich office\nPlease fix.",
    "We met on 2026-11-23 and I sent:\n- the invoice\n- the serial",
    "Call 030 1234 or write to ann@customer.example\nThanks",
])
def test_the_writers_own_text_is_no_attribution(text: str) -> None:
    """Look-alikes in the writer's own text, with no quote after them, cut nothing."""
    assert replytext.new_text(text) == text
