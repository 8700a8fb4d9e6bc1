"""Keep only what the writer added to a reply: quoted history, signatures and footers go.

The comment is cut at the first sign of the quoted mail, in the writer's language:

* an attribution line, also when the client wrapped it over up to three lines
  ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", "El … escribió:",
  "Op … schreef …:", "Il giorno … ha scritto:", "Em … escreveu:", …);
* Outlook's header block of the quoted mail ("From:/Sent:", "Von:/Gesendet:",
  "De :/Envoyé :", "De:/Enviado el:", "Van:/Verzonden:", "Da:/Inviato:",
  "De:/Enviada em:", …) and the separator line before it;
* a localized "-----Original Message-----" line.

Then ``>``-quoted lines, a ``-- `` signature (RFC 3676 4.3) and mobile footers ("Sent
from my iPhone", "Get Outlook for Android", …) are removed. HTML-only mail is cut at
its quote markup first (see htmltext). If nothing would be left, the whole text is
kept; the full original always stays stored with the message.

Why not a library: mail-parser-reply (the best kept of them) left Dutch, Spanish and
Portuguese attributions and every signature and mobile footer in place, and
quotequail does not know localized Outlook headers; see the README.
"""

from __future__ import annotations

import re

from mailcase.reading.htmltext import html_to_text
from mailcase.reading.parsing import ParsedMail

# How a quoting line begins and ends, per language (the attribution of Gmail, Apple
# Mail, Thunderbird and most others).
_OPENERS = (
    "On", "Am", "Le", "El", "Op", "Il giorno", "Il", "Em", "Den", "På", "W dniu", "Dne",
    "Στις", "Ο/Η", "В",  # Greek and Russian openers, not Latin look-alikes
)
_VERBS = (
    "wrote", "schrieb", "a écrit", "escribió", "schreef", "ha scritto", "scrive", "escreveu",
    "skrev", "napisał", "napsal", "έγραψε", "написал", "пишет",
)
# Opener … verb … colon: with the verb last, or anywhere when a date or an address
# shows it is an attribution (German and Dutch name the writer after the verb); and
# Thunderbird's plain "Name <address> wrote:".
_OPENER = rf"^[ \t>]*(?:{'|'.join(_OPENERS)})\b"
_VERB = rf"(?:{'|'.join(_VERBS)})"
_ATTRIBUTION = re.compile(
    rf"{_OPENER}.{{0,400}}?{_VERB}\s*:\s*$"
    rf"|{_OPENER}(?=.*[0-9@]).{{0,400}}?{_VERB}.{{0,200}}:\s*$"
    rf"|^[ \t>]*[^:]{{0,200}}@[^:]{{0,200}}\b{_VERB}\s*:\s*$"
    # Gmail in Japanese, Chinese and Russian: a date, the writer, then a colon.
    r"|^[ \t>]*\d{4}年\d{1,2}月\d{1,2}日.{0,300}[:：]\s*$"
    r"|^[ \t>]*.{0,200}于\s?\d{4}.{0,200}写道[:：]\s*$"
    r"|^[ \t>]*.{0,200}(?:пишет|написал\w*)\s*[:：]\s*$"
    r"|^[ \t>]*\w{2},\s\d{1,2}\s\w+\.?\s\d{4}\s?г\..{0,200}[:：]\s*$",
    re.IGNORECASE | re.DOTALL,
)


# Outlook's block: a From line, then within a few lines a Sent/Date line and a To or
# Subject line (a shipping label's "From: … To: …" is no header block).
_FIELD_FROM = re.compile(
    r"^\s*\*?(?:From|Von|De|Van|Da|Fra|Från|Od|Lähettäjä|От|差出人|发件人|寄件者|보낸 사람)"
    r"\s?[:：]\*?\s",
    re.IGNORECASE,
)
_FIELD_SENT = re.compile(
    r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Date d'envoi|Enviado(?: el)?|Enviada em|"
    r"Fecha|Verzonden|Verstuurd|Inviato|Data|Sendt|Skickat|Wysłano|Odesláno|Отправлено|"
    r"Дата|送信日時|发送时间|傳送時間|日期|보낸 날짜)\s?[:：]\*?\s",
    re.IGNORECASE,
)
_FIELD_OTHER = re.compile(
    r"^\s*\*?(?:To|An|À|A|Para|Aan|Til|Till|Do|Komu|Кому|宛先|收件人|收件者|받는 사람|"
    r"Subject|Betreff|Objet|Asunto|Onderwerp|Oggetto|Assunto|Emne|Ämne|Temat|Předmět|Тема|"
    r"件名|主题|主旨|제목)\s?[:：]\*?\s",
    re.IGNORECASE,
)
# A forwarded mail's own text is what the writer brings to the case: never cut it.
_FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré|"
    r"Mensaje reenviado|Doorgestuurd bericht|Messaggio inoltrato|Mensagem encaminhada|"
    r"Пересылаемое сообщение)\s*-{2,}|Begin forwarded message:|Anfang der weitergeleiteten "
    r"Nachricht:|Début du message réexpédié\s?:)\s*$",
    re.IGNORECASE,
)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:Fwd?|WG|TR|RV|ENC|Doorst|I|Fw)\s?:", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"^\s*(?:_{8,}|-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Originalnachricht|"
    r"Message d'origine|Mensaje original|Oorspronkelijk bericht|Messaggio originale|"
    r"Mensagem original|Opprinnelig melding|Ursprungligt meddelande|Oryginalna wiadomość)"
    r"\s*-{2,})\s*$",
    re.IGNORECASE,
)
_MOBILE_FOOTER = re.compile(
    r"^\s*(?:Sent from my \S.*|Sent from (?:Mail|Yahoo Mail|Outlook) for \S.*|"
    r"Get Outlook for (?:iOS|Android)\b.*|Sent from Outlook for (?:iOS|Android)\b.*|"
    r"Von meinem \S.* gesendet|Gesendet von meinem \S.*|Envoyé de mon \S.*|"
    r"Enviado desde mi \S.*|Enviado do meu \S.*|Verzonden (?:vanaf|met) mijn \S.*|"
    r"Verstuurd vanaf mijn \S.*|Inviato da(?:l mio)? \S.*)\s*$",
    re.IGNORECASE,
)
SIGNATURE = "-- "
HEADER_LOOKAHEAD = 5
ATTRIBUTION_LINES = 3


def comment_text(mail: ParsedMail) -> str:
    """The new text of ``mail``: from its text part, or from its HTML when it has none.

    A forward (by subject or by its marker line) is kept whole: the forwarded mail is
    what its writer brings to the case.
    """
    if _FORWARD_SUBJECT.match(mail.subject):
        return _without_footers(mail.text.replace("\r\n", "\n").split("\n")) or mail.text
    if mail.text_from_html and mail.html:
        text = new_text(html_to_text(mail.html, strip_quotes=True))
        return text or mail.text
    return new_text(mail.text)


def new_text(body: str) -> str:
    """The text the writer added on top of the quoted mail in ``body``."""
    lines = body.replace("\r\n", "\n").split("\n")
    start, by_attribution = _history_starts(lines)
    if by_attribution and _answers_inline(lines[start:]):
        # Answers written between the quoted lines: keep them with what they answer.
        return _without_footers(lines) or body.strip()
    kept = [line for line in lines[:start] if not line.lstrip().startswith(">")]
    return _without_footers(kept) or body.strip()


def _without_footers(lines: list[str]) -> str:
    """``lines`` without a ``-- `` signature and mobile footers, trimmed."""
    if SIGNATURE in lines:
        lines = lines[: lines.index(SIGNATURE)]
    kept = [line for line in lines if not _MOBILE_FOOTER.match(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in kept)).strip()


def _answers_inline(history: list[str]) -> bool:
    """Whether the history is quoted at once and unquoted text follows quoted lines."""
    first = next((line for line in history[1:] if line.strip()), "")
    if not first.lstrip().startswith(">"):
        return False
    for line in history[1:]:
        if line.strip() and not line.lstrip().startswith(">"):
            # The first unquoted line after the quote: an answer, unless it is the
            # writer's signature or footer under a bottom quote.
            return not (line == SIGNATURE or _MOBILE_FOOTER.match(line))
    return False


def _history_starts(lines: list[str]) -> tuple[int, bool]:
    """The index of the first line of the quoted history (len(lines) when there is none),
    and whether an attribution line marked it."""
    for index, line in enumerate(lines):
        if _FORWARD_MARKER.match(line):
            return len(lines), False
        if _SEPARATOR.match(line):
            return index, False
        if _FIELD_FROM.match(line) and _header_block_follows(lines, index):
            return index, False
        if _attribution_at(lines, index):
            return index, True
    return len(lines), False


def _header_block_follows(lines: list[str], index: int) -> bool:
    following = lines[index + 1 : index + 1 + HEADER_LOOKAHEAD]
    return any(_FIELD_SENT.match(line) for line in following) and any(
        _FIELD_OTHER.match(line) for line in following
    )


def _attribution_at(lines: list[str], index: int) -> bool:
    """Whether an attribution starts at ``index``, on one line or wrapped over several.

    It must name a date or an address, or be followed by quoted lines: "On Monday I
    wrote:" in the writer's own text is not one.
    """
    if not lines[index].strip():
        return False
    for count in range(1, ATTRIBUTION_LINES + 1):
        window = lines[index : index + count]
        if len(window) < count or (count > 1 and not window[-1].strip()):
            break
        joined = " ".join(part.strip() for part in window)
        if _ATTRIBUTION.match(joined) and (
            re.search(r"[0-9@]", joined) or _quote_follows(lines, index + count)
        ):
            return True
    return False


def _quote_follows(lines: list[str], index: int) -> bool:
    following = next((line for line in lines[index:] if line.strip()), "")
    return following.lstrip().startswith(">")
