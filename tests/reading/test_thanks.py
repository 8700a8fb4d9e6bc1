"""Whether a reply says only thanks: short thanks in every language of replymarkers, with a
greeting, a closing and a name around them, are; anything more is not, and whatever is not
understood is not either (a closed case stays closed only for a plain thanks)."""

from __future__ import annotations

import pytest

from mailcase.reading import replymarkers, replytext, thankvetoes, thankwords
from mailcase.reading.thanks import only_thanks

THANKS_BY_LANGUAGE = {
    "en": ["thanks!", "Thank you, that fixed it.", "Many thanks — all good now",
           "Thanks a lot, works like a charm 👍", "Great, thank you so much!",
           "Thanks for the quick reply, problem solved :)", "Cheers, that did the trick"],
    "de": ["Danke, hat geklappt!", "Vielen Dank für die schnelle Hilfe.",
           "Super, danke schön!", "Herzlichen Dank, jetzt funktioniert es."],
    "fr": ["Merci beaucoup", "Merci pour votre aide, ça marche !", "C'est bon, merci bien.",
           "Parfait, je vous remercie."],
    "es": ["Gracias, ya funciona", "¡Muchas gracias por la ayuda!", "Perfecto, mil gracias.",
           "Gracias, problema resuelto"],
    "nl": ["Dank je wel", "Bedankt, het werkt nu!", "Top, hartelijk dank voor de hulp."],
    "it": ["Grazie mille", "Grazie, ora funziona!", "Perfetto, grazie per l'aiuto."],
    "pt": ["Obrigado!", "Muito obrigada, deu certo.", "Valeu pela ajuda, tudo certo!"],
    "sv/da/no": ["Tack!", "Tack så mycket, nu fungerar det.", "Mange tak, det virker nu",
                 "Tusen takk for hjelpen!"],
    "pl": ["Dziękuję", "Dzięki, już działa!", "Bardzo dziękuję za pomoc."],
    "cs": ["Děkuji", "Díky, už to funguje.", "Moc děkuji za rychlou odpověď!"],
    "el": ["Ευχαριστώ πολύ!", "Σας ευχαριστώ, λειτουργεί τώρα."],
    "ru/uk": ["Спасибо, всё работает", "Большое спасибо за помощь!", "Дякую, все працює."],
    "vi": ["Cảm ơn", "Cảm ơn anh, được rồi!", "Cảm ơn bạn nhiều."],
    "zh": ["谢谢", "非常感谢，问题解决了！", "谢谢你的帮助", "好的，谢谢"],
}


@pytest.mark.parametrize(("language", "text"), [
    pytest.param(language, text, id=f"{language}: {text}")
    for language, texts in THANKS_BY_LANGUAGE.items() for text in texts
])
def test_a_short_thanks_in_each_language_is_only_thanks(language: str, text: str) -> None:
    """A thanks, with what it is for or a word that it works, says nothing more."""
    assert only_thanks(text), language


@pytest.mark.parametrize("text", [
    "Hi Anna,\n\nthanks, that fixed it!\n\nBest,\nBob",
    "Hallo Frau Meier,\nvielen Dank, jetzt klappt es.\nViele Grüße\nPeter Müller",
    "Bonjour,\n\nC'est bon, merci !\n\nCordialement,\nJean Dupont",
    "Dear Mrs. Smith,\nthank you!",
    "Hi team, thanks guys!",
    "Thanks, Anna!",
    "Thank you Anna for your help, all good now.",
    "Thanks!\n\nAnna",
    "Thank you!\nThat fixed it.",
    "Hola Marta,\n¡gracias!\nUn saludo",
    "Dobrý den,\nděkuji, vše funguje.\nS pozdravem\nJan Novák",
    "Здравствуйте!\nСпасибо, всё работает.\nС уважением,\nИван",
])
def test_greetings_closings_and_names_around_the_thanks_are_allowed(text: str) -> None:
    """A greeting, a closing and a short capitalised name around the thanks change nothing."""
    assert only_thanks(text)


@pytest.mark.parametrize("text", [
    "ＴＨＡＮＫ ＹＯＵ！",
    "THANKS!!!",
    "Thanks\u00a0a\u00a0lot",
    "\r\n  Thank you\r\n\r\n",
    "Thanks\u200b!",
    "Thanks, that\u2019s it",
])
def test_case_unicode_forms_and_whitespace_do_not_matter(text: str) -> None:
    """Full-width letters, capitals, odd spaces, line ends and apostrophes read as plain
    ones."""
    assert only_thanks(text)


@pytest.mark.parametrize("text", [
    pytest.param("Thanks, but it still doesn't work", id="but-still-not"),
    pytest.param("Thank you! Can you also reset my password?", id="second-request"),
    pytest.param("thanks\n\nThe export to CSV stops halfway through the file.",
                 id="new-problem-in-a-paragraph"),
    pytest.param("Danke, aber es geht immer noch nicht", id="de-but"),
    pytest.param("Merci, mais ça ne marche toujours pas", id="fr-but"),
    pytest.param("Thank you for the quick reply. I tried the steps you sent and the report "
                 "now opens, but the totals in the last column are different from the ones "
                 "in last month's export.", id="long-paragraph"),
    pytest.param("No thanks", id="no-thanks"),
    pytest.param("Thanks for nothing", id="thanks-for-nothing"),
    pytest.param("thanks?", id="question"),
    pytest.param("https://example.com thanks", id="link"),
    pytest.param("Thanks, see www.example.com", id="bare-link"),
    pytest.param("Thanks, write to ann@example.com", id="address"),
    pytest.param("Hello", id="no-thanks-at-all"),
    pytest.param("Works now.", id="a-confirmation-is-no-thanks"),
    pytest.param("", id="empty"),
    pytest.param(" \n\n ", id="blank"),
    pytest.param("Thanks anyway", id="thanks-anyway"),
    pytest.param("Thanks again!", id="again-even-in-thanks-again"),
    pytest.param("Thanks. Please close my account", id="please"),
    pytest.param("Thanks :(", id="sad-emoticon"),
    pytest.param("Thanks \U0001f641", id="sad-emoji"),
    pytest.param("Thanks, order 1234 arrived", id="digits"),
    pytest.param("thanks printer works", id="unknown-word"),
    pytest.param("Thanks!\nBroken", id="fault-on-the-name-line"),
    pytest.param("Thanks!\nNot Fixed", id="negation-on-the-name-line"),
])
def test_more_than_thanks_is_not_only_thanks(text: str) -> None:
    """A question, a request, a reservation, a link, more words or none is not thanks."""
    assert not only_thanks(text)


@pytest.mark.parametrize("text", [
    "Gracias, pero sigue sin funcionar",
    "Bedankt, maar het werkt nog steeds niet",
    "Grazie, ma non funziona ancora",
    "Obrigado, mas ainda não funciona",
    "Tack, men det fungerar fortfarande inte",
    "Dziękuję, ale nadal nie działa",
    "Děkuji, ale pořád to nefunguje",
    "Ευχαριστώ, αλλά δεν λειτουργεί ακόμα",
    "Спасибо, но всё ещё не работает",
    "Cảm ơn, nhưng vẫn không hoạt động",
    "谢谢，但是还是不行",
])
def test_a_but_or_a_not_in_each_language_is_more_than_thanks(text: str) -> None:
    """"Thanks, but it still does not work" is a complaint in every language."""
    assert not only_thanks(text)


@pytest.mark.parametrize("text", [
    "Thanks?", "Thanks\uff1f", "Ευχαριστώ\u037e", "Ευχαριστώ;", "\u00bfGracias", "Thanks\u203d",
])
def test_a_question_mark_of_any_script_is_more_than_thanks(text: str) -> None:
    """A question mark, the full-width one, the Greek one (or the semicolon Greek keyboards
    type for it) and the Spanish opening one all ask something."""
    assert not only_thanks(text)


def test_the_quoted_mail_and_signature_are_gone_before_the_thanks_is_read() -> None:
    """Read on replytext's new text, a thanks above a signature with a link and a quoted
    question is only thanks."""
    body = ("Thanks, works now!\n\n-- \nAnn Customer\nhttps://customer.example\n\n"
            "On Mon, 23 Nov 2026 at 10:00, Support <s@x.org> wrote:\n"
            "> Does the export run again after the update?\n")
    assert only_thanks(replytext.new_text(body))


def test_only_a_short_thanks_is_only_thanks() -> None:
    """Twelve words of thanks and confirmation on two lines are short; a thirteenth word or
    a third line is more."""
    assert only_thanks("Thank you so much for your help, that fixed it, works now")
    assert not only_thanks("Thank you so much for your help, that fixed it, works now, great")
    assert only_thanks("Thanks!\nWorks now.")
    assert not only_thanks("Thanks!\nWorks now.\nAll good.")


def test_every_language_of_replymarkers_can_thank() -> None:
    """Each language replymarkers knows has thanks, and no table names another language."""
    assert set(replymarkers.OPENERS) <= set(thankwords.THANKS)
    tables = [value for module in (thankwords, thankvetoes)
              for name, value in vars(module).items() if name.isupper()]
    for table in tables:
        assert set(table) <= set(thankwords.THANKS)


@pytest.mark.parametrize("language", sorted(thankwords.THANKS))
def test_every_phrase_of_the_tables_reads_as_thanks(language: str) -> None:
    """Each phrase, in its place around a thanks of its language, is understood and holds
    no veto."""
    thanks = thankwords.THANKS[language][0]
    texts = [*thankwords.THANKS[language],
             *(f"{greeting},\n{thanks}" for greeting in thankwords.GREETINGS[language]),
             *(f"{thanks} {addressee}" for addressee in thankwords.ADDRESSEES[language]),
             *(f"{thanks} {reason}" for reason in thankwords.REASONS[language]),
             *(f"{thanks}, {word}" for word in thankwords.CONFIRMATIONS[language]),
             *(f"{thanks} {word} {thankwords.CONFIRMATIONS[language][0]}"
               for word in thankwords.AND.get(language, ())),
             *(f"{thanks}\n{closing},\nAnna" for closing in thankwords.CLOSINGS[language])]
    assert [text for text in texts if not only_thanks(text)] == []


@pytest.mark.parametrize("language", sorted(thankwords.THANKS))
def test_a_veto_is_never_taken_for_a_name(language: str) -> None:
    """A veto word on the last line, capitalised like a name, still makes the reply more."""
    thanks = thankwords.THANKS[language][0]
    tables = (thankvetoes.NEGATIONS, thankvetoes.CONTRASTS, thankvetoes.REQUESTS,
              thankvetoes.TROUBLE)
    vetoes = [veto for table in tables for veto in table.get(language, ())]
    assert [veto for veto in vetoes if only_thanks(f"{thanks}!\n{veto.title()}")] == []
