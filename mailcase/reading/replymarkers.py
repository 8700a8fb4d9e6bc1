"""The words mail clients write around a quoted mail, per language: the data replytext reads.

Each table maps a language to the words its clients use; replytext builds its patterns from
the union, so teaching mailcase a language is adding a line here, never code. The shapes
they fill (an attribution ends with its verb, a header block is three header fields, …)
are described in replytext. Sources: the clients themselves (Gmail, Outlook, Apple Mail,
Thunderbird, Yahoo, Mail.ru, Zoho, Polymail, K-9, mobile clients) as seen in the public
reply corpora of tests/data.
"""

from __future__ import annotations

# What an attribution line begins with ("On … wrote:", "Am … schrieb …:").
OPENERS: dict[str, tuple[str, ...]] = {
    "en": ("On", "At", "In message"),
    "de": ("Am",),
    "fr": ("Le",),
    "es": ("El",),
    "nl": ("Op",),
    "it": ("Il giorno", "Il", "In data"),
    "pt": ("Em", "No dia"),
    "sv/da/no": ("Den", "På"),
    "pl": ("W dniu", "Dnia", "Dňa"),
    "cs": ("Dne",),
    "el": ("Στις", "Ο/Η"),
    "ru/uk": ("В",),
    "vi": ("Vào",),
    "zh": ("在",),
}
# The verb that says someone wrote the quoted mail; an attribution ends with it, or names
# the writer after it ("Am … schrieb Name <addr>:"). A "(a)" after it is allowed.
VERBS: dict[str, tuple[str, ...]] = {
    "en": ("wrote", "writes"),
    "de": ("schrieb", "geschrieben", "schrieben Sie"),
    "fr": ("a écrit", "nous a dit", "écrit"),
    "es": ("escribió",),
    "nl": ("schreef", "het volgende geschreven"),
    "it": ("ha scritto", "scrive"),
    "pt": ("escreveu",),
    "sv/da/no": ("skrev",),
    "fi": ("kirjoitti",),
    "pl": ("napisała", "napisał", "pisze"),
    "cs": ("napsala", "napsal"),
    "el": ("έγραψε",),
    "ru": ("написала", "написал", "пишет"),
    "uk": ("написав", "пише"),
    "tr": ("yazdı",),
    "vi": ("đã viết",),
    "zh": ("写道", "寫道"),
    "ja": ("書きました", "のメッセージ"),
    "ko": ("작성",),
}
# Verbs that ordinary sentences use too ("… and I sent:"): an attribution only with the
# writer's address ("Support <support@example.com> sent:").
WEAK_VERBS: dict[str, tuple[str, ...]] = {
    "en": ("sent", "said"),
}
# Header fields of a quoted mail, by role. Outlook, Apple Mail, Yahoo, Mail.ru and others
# write these in the reader's language above the quoted text.
FROM_FIELDS: dict[str, tuple[str, ...]] = {
    "en": ("From",), "de": ("Von",), "fr": ("De", "Expéditeur"), "es/pt": ("De",),
    "nl": ("Van",), "it": ("Da",), "sv": ("Från",), "da/no": ("Fra",), "pl/cs": ("Od",),
    "fi": ("Lähettäjä",), "ru": ("От",), "ja": ("差出人",), "zh": ("发件人", "寄件者", "發件人"),
    "ko": ("보낸 사람",), "tr": ("Kimden",),
}
DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "en": ("Sent", "Date"), "de": ("Gesendet", "Datum"),
    "fr": ("Envoyé", "Envoyé le", "Date d'envoi", "Message du"),
    "es": ("Enviado", "Enviado el", "Fecha"), "pt": ("Enviada em", "Enviado em", "Data"),
    "nl": ("Verzonden", "Verstuurd", "Datum"), "it": ("Inviato", "Data"),
    "sv": ("Skickat", "Datum"), "da/no": ("Sendt", "Dato"), "pl": ("Wysłano", "Data"),
    "cs": ("Odesláno",), "fi": ("Lähetetty",), "ru": ("Отправлено", "Дата"),
    "ja": ("送信日時",), "zh": ("发送时间", "傳送時間", "日期"), "ko": ("보낸 날짜",),
    "tr": ("Gönderildi", "Tarih"),
}
OTHER_FIELDS: dict[str, tuple[str, ...]] = {
    "en": ("To", "Cc", "Reply-To", "Subject"), "de": ("An", "Cc", "Betreff"),
    "fr": ("À", "A", "Cc", "Copie à", "Destinataire", "Répondre à", "Objet", "Sujet"),
    "es": ("Para", "CC", "Asunto"), "pt": ("Para", "Cc", "Assunto"),
    "nl": ("Aan", "CC", "Onderwerp", "Beantwoorden - Aan"),
    "it": ("A", "Cc", "Risposta", "Oggetto"), "sv": ("Till", "Kopia", "Ämne"),
    "da/no": ("Til", "Kopi", "Emne"), "pl": ("Do", "DW", "Temat"), "cs": ("Komu", "Předmět"),
    "fi": ("Vastaanottaja", "Aihe"), "ru": ("Кому", "Копия", "Тема"), "ja": ("宛先", "件名"),
    "zh": ("收件人", "收件者", "抄送", "主题", "主旨"), "ko": ("받는 사람", "제목"),
    "tr": ("Kime", "Konu"),
}
# The title of the line before a quoted mail ("-----Original Message-----").
ORIGINAL_MESSAGE: dict[str, tuple[str, ...]] = {
    "en": ("Original Message", "Reply Message", "Reply message"),
    "de": ("Ursprüngliche Nachricht", "Originalnachricht", "Original Nachricht"),
    "fr": ("Message d'origine", "Message original"), "es": ("Mensaje original",),
    "nl": ("Oorspronkelijk bericht", "Origineel bericht"), "it": ("Messaggio originale",),
    "pt": ("Mensagem original",), "sv": ("Ursprungligt meddelande",),
    "da": ("Oprindelig besked", "Oprindelig meddelelse"), "no": ("Opprinnelig melding",),
    "fi": ("Alkuperäinen viesti",), "pl": ("Oryginalna wiadomość",),
    "cs": ("Původní zpráva",), "ru": ("Исходное сообщение", "Исходное письмо"),
    "zh": ("原始邮件", "原始郵件"), "ja": ("元のメッセージ",), "ko": ("원본 메시지",),
}
# A forward's marker: the forwarded mail after it is kept whole.
FORWARDED: dict[str, tuple[str, ...]] = {
    "en": ("Forwarded message", "Forwarded Message"),
    "de": ("Weitergeleitete Nachricht",), "fr": ("Message transféré",),
    "es": ("Mensaje reenviado",), "nl": ("Doorgestuurd bericht",),
    "it": ("Messaggio inoltrato",), "pt": ("Mensagem encaminhada",),
    "sv": ("Vidarebefordrat meddelande",), "da/no": ("Videresendt meddelelse",),
    "pl": ("Przekazana wiadomość",), "ru": ("Пересылаемое сообщение",),
    "zh": ("转发的邮件",),
}
# Apple Mail's and others' forward line, which has no dashes around it.
FORWARD_LINES: dict[str, tuple[str, ...]] = {
    "en": ("Begin forwarded message:",),
    "de": ("Anfang der weitergeleiteten Nachricht:",),
    "fr": ("Début du message réexpédié :", "Début du message transféré :"),
    "es": ("Inicio del mensaje reenviado:",), "nl": ("Begin doorgestuurd bericht:",),
    "it": ("Inizio messaggio inoltrato:",), "pt": ("Início da mensagem reencaminhada:",),
}
# The footer mobile clients add under the text ("Sent from my iPhone"), as regular
# expressions matched against a whole line. A line of them ends the writer's text.
MOBILE_FOOTERS: dict[str, tuple[str, ...]] = {
    "en": (r"[(<]*Sent (?:from|via|with|by|using) [^,;]{1,80}?[)>]*",
           r"Get Outlook for \S.*", r"From my (?:i\w+|Android|mobile|phone)\b.{0,20}",
           r"\w+ from mobile"),
    "de": (r"Von meinem \S.{0,60} gesendet\.?", r"Gesendet von meinem \S.*",
           r"Gesendet von \S.{0,40} für \S.*", r"Diese Nachricht wurde von .{1,80} gesendet\.?"),
    "fr": (r"Envoyé (?:de|depuis) (?:mon|ma|Yahoo Mail)\b.*",
           r"Envoyé (?:à partir|depuis) de \S.*"),
    "es": (r"Enviado desde mi \S.*", r"Enviado desde \S.{0,40} para \S.*"),
    "pt": (r"Enviado do meu \S.*", r"Enviado do \S.{0,40} para \S.*"),
    "nl": (r"Verzonden (?:vanaf|met) (?:mijn )?\S.*", r"Verstuurd vanaf mijn \S.*"),
    "it": (r"Inviato da(?:l mio)? \S.*",),
    "sv": (r"Skickat från min \S.*", r"[Ff]rån min \S.*"),
    "da/no": (r"Sendt fra min \S.*",),
    "zh": (r"從我的 iPhone 傳送", r"发自我的\S+"),
}
