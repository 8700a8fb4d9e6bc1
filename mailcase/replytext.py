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

from mailcase.htmltext import html_to_text
from mailcase.parsing import ParsedMail

# How a quoting line begins and ends, per language (the attribution of Gmail, Apple
# Mail, Thunderbird and most others).
_OPENERS = (
    "On", "Am", "Le", "El", "Op", "Il giorno", "Il", "Em", "Den", "På", "W dniu", "Dne",
    "Στις", "Ο/Η", "В",  # noqa: RUF001 - Greek and Russian openers, not Latin look-alikes
)
_VERBS = (
    "wrote", "schrieb", "a écrit", "escribió", "schreef", "ha scritto", "scrive", "escreveu",
    "skrev", "napisał", "napsal", "έγραψε", "написал",
)
# Opener … verb … colon: with the verb last, or anywhere when a date or an address
# shows it is an attribution (German and Dutch name the writer after the verb); and
# Thunderbird's plain "Name <address> wrote:".
_OPENER = rf"^[ \t>]*(?:{'|'.join(_OPENERS)})\b"
_VERB = rf"(?:{'|'.join(_VERBS)})"
_ATTRIBUTION = re.compile(
    rf"{_OPENER}.{{0,400}}?{_VERB}\s*:\s*$"
    rf"|{_OPENER}(?=.*[0-9@]).{{0,400}}?{_VERB}.{{0,200}}:\s*$"
    rf"|^[ \t>]*[^:]{{0,200}}@[^:]{{0,200}}\b{_VERB}\s*:\s*$",
    re.IGNORECASE | re.DOTALL,
)


# Outlook's block: a From line, then within a few lines a Sent/Date, To or Subject line.
_FIELD_FROM = re.compile(
    r"^\s*\*?(?:From|Von|De|Van|Da|Fra|Från|Od|Lähettäjä|От)\s?:\*?\s", re.IGNORECASE
)
_FIELD_NEXT = re.compile(
    r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Date d'envoi|Enviado(?: el)?|Enviada em|"
    r"Fecha|Verzonden|Verstuurd|Inviato|Data|Sendt|Skickat|Wysłano|Odesláno|"
    r"To|An|À|A|Para|Aan|Til|Till|Do|Komu|"
    r"Subject|Betreff|Objet|Asunto|Onderwerp|Oggetto|Assunto|Emne|Ämne|Temat|Předmět)"
    r"\s?:\*?\s",
    re.IGNORECASE,
)
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
HEADER_LOOKAHEAD = 4
ATTRIBUTION_LINES = 3


def comment_text(mail: ParsedMail) -> str:
    """The new text of ``mail``: from its text part, or from its HTML when it has none."""
    if mail.text_from_html and mail.html:
        text = new_text(html_to_text(mail.html, strip_quotes=True))
        return text or mail.text
    return new_text(mail.text)


def new_text(body: str) -> str:
    """The text the writer added on top of the quoted mail in ``body``."""
    lines = body.replace("\r\n", "\n").split("\n")
    kept = lines[: _history_starts(lines)]
    kept = [line for line in kept if not line.lstrip().startswith(">")]
    if SIGNATURE in kept:
        kept = kept[: kept.index(SIGNATURE)]
    kept = [line for line in kept if not _MOBILE_FOOTER.match(line)]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in kept)).strip()
    return text or body.strip()


def _history_starts(lines: list[str]) -> int:
    """The index of the first line that belongs to the quoted history (or len(lines))."""
    for index, line in enumerate(lines):
        if _SEPARATOR.match(line):
            return index
        if _FIELD_FROM.match(line) and _header_block_follows(lines, index):
            return index
        if _attribution_at(lines, index):
            return index
    return len(lines)


def _header_block_follows(lines: list[str], index: int) -> bool:
    following = lines[index + 1 : index + 1 + HEADER_LOOKAHEAD]
    return any(_FIELD_NEXT.match(line) for line in following)


def _attribution_at(lines: list[str], index: int) -> bool:
    """Whether an attribution starts at ``index``, on one line or wrapped over several."""
    if not lines[index].strip():
        return False
    for count in range(1, ATTRIBUTION_LINES + 1):
        window = lines[index : index + count]
        if len(window) < count or (count > 1 and not window[-1].strip()):
            break
        if _ATTRIBUTION.match(" ".join(part.strip() for part in window)):
            return True
    return False
