"""The words that make a reply more than thanks, per language: the vetoes thanks reads.

A "not" in any of its forms, a "but", "still" or "again", a request, a reported fault: one
of these anywhere in a reply, across punctuation too, and it is not only thanks, whatever
else it says. The keys and the splitting into words are thankwords'; no phrase there may
hold a veto (tests/reading/test_thanks.py checks).
"""

from __future__ import annotations

# Every "not". An apostrophe splits a word, so "don't" is "don" and "t", and French
# "n'est" is "n" and "est".
NEGATIONS: dict[str, tuple[str, ...]] = {
    "en": ("not", "t", "no", "nope", "nothing", "never", "none", "nor", "neither", "cannot",
           "without", "dont", "doesnt", "didnt", "isnt", "wasnt", "cant", "wont", "havent",
           "hasnt", "arent", "couldnt"),
    "de": ("nicht", "nichts", "kein", "keine", "keinen", "keiner", "keinem", "nie",
           "niemals", "nein", "ohne"),
    "fr": ("ne", "n", "pas", "non", "rien", "jamais", "aucun", "aucune", "plus", "sans"),
    "es": ("no", "nada", "nunca", "ningún", "ninguno", "ninguna", "tampoco", "sin"),
    "nl": ("niet", "geen", "nooit", "niets", "niks", "nee", "zonder"),
    "it": ("non", "nessun", "nessuno", "nessuna", "niente", "nulla", "mai", "senza"),
    "pt": ("não", "nao", "nada", "nunca", "nenhum", "nenhuma", "sem"),
    "sv/da/no": ("inte", "ej", "icke", "ingen", "inget", "inga", "aldrig", "nej", "utan",
                 "ikke", "ikkje", "intet", "aldri", "nei", "uden", "uten"),
    "pl": ("nie", "nic", "nigdy", "żaden", "żadna", "żadne", "bez"),
    "cs": ("ne", "nic", "nikdy", "žádný", "žádná", "žádné", "nefunguje", "nejde", "bez"),
    "el": ("δεν", "όχι", "οχι", "μη", "μην", "τίποτα", "ποτέ", "χωρίς"),
    "ru/uk": ("не", "нет", "ни", "ничего", "никогда", "ні", "ніколи", "нічого", "без"),
    "vi": ("không", "chưa", "chẳng", "đừng"),
    "zh": ("不", "没", "沒", "别", "別", "未", "无", "無"),
}
# "But", "still", "again", "anyway", "unfortunately", "only": the thanks comes with a
# reservation ("thanks anyway" means it did not help).
CONTRASTS: dict[str, tuple[str, ...]] = {
    "en": ("but", "however", "although", "though", "except", "still", "again", "anyway",
           "anyways", "unfortunately", "sadly", "yet", "only"),
    "de": ("aber", "jedoch", "allerdings", "doch", "sondern", "trotzdem", "dennoch", "noch",
           "wieder", "erneut", "nochmal", "nochmals", "leider", "nur"),
    "fr": ("mais", "cependant", "pourtant", "toutefois", "sauf", "encore", "toujours",
           "nouveau", "malheureusement", "quand même", "seulement"),
    "es": ("pero", "sin embargo", "aunque", "todavía", "aún", "sigue", "siguen", "sigo",
           "otra vez", "de nuevo", "nuevamente", "lamentablemente", "desafortunadamente",
           "igual", "solo", "sólo"),
    "nl": ("maar", "echter", "toch", "nog", "steeds", "weer", "opnieuw", "helaas", "alleen"),
    "it": ("ma", "però", "tuttavia", "comunque", "ancora", "nuovo", "purtroppo", "solo"),
    "pt": ("mas", "porém", "contudo", "entretanto", "todavia", "ainda", "novo", "novamente",
           "infelizmente", "mesmo assim", "só"),
    "sv/da/no": ("men", "dock", "ändå", "fortfarande", "fortsatt", "ännu", "igen", "tyvärr",
                 "bara", "alligevel", "stadig", "stadigvæk", "desværre", "uansett",
                 "fremdeles", "igjen", "dessverre", "kun"),
    "pl": ("ale", "jednak", "lecz", "niestety", "nadal", "wciąż", "dalej", "jeszcze",
           "znowu", "ponownie", "tylko", "mimo to"),
    "cs": ("ale", "však", "bohužel", "stále", "pořád", "ještě", "znovu", "opět", "zase",
           "jen", "stejně"),
    "el": ("αλλά", "αλλα", "όμως", "ομως", "ωστόσο", "δυστυχώς", "ακόμα", "ακόμη", "ξανά",
           "ξανα", "πάλι", "παλι", "πάντως", "μόνο"),
    "ru/uk": ("но", "однако", "к сожалению", "ещё", "еще", "до сих пор", "снова", "опять",
              "всё равно", "все равно", "только", "але", "проте", "на жаль", "досі", "ще",
              "знову", "все одно", "тільки"),
    "vi": ("nhưng", "tuy nhiên", "vẫn", "lại", "nữa", "tiếc là", "chỉ"),
    "zh": ("但", "可是", "不过", "不過", "却", "卻", "还", "還", "仍", "依然", "又", "再", "只"),
}
# A request or a question without its mark: "please", "can you", "also", a question word.
REQUESTS: dict[str, tuple[str, ...]] = {
    "en": ("please", "pls", "plz", "can you", "can u", "could you", "could u", "would you",
           "will you", "help me", "need", "question", "also", "how", "why"),
    "de": ("bitte", "können sie", "könnten sie", "kannst du", "könntest du", "brauche",
           "frage", "auch", "wie", "warum"),
    "fr": ("s'il vous plaît", "s'il te plaît", "svp", "stp", "pouvez-vous", "pourriez-vous",
           "peux-tu", "pourrais-tu", "besoin", "question", "aussi", "comment", "pourquoi"),
    "es": ("por favor", "puede", "puedes", "pueden", "podría", "podrías", "podrían",
           "necesito", "pregunta", "también", "cómo", "por qué"),
    "nl": ("alsjeblieft", "alstublieft", "aub", "graag", "kunt u", "kun je", "kan je",
           "kunnen jullie", "vraag", "ook", "hoe", "waarom"),
    "it": ("per favore", "per piacere", "può", "puoi", "potete", "potrebbe", "potresti",
           "domanda", "anche", "come mai", "perché"),
    "pt": ("por favor", "pode", "podem", "poderia", "poderiam", "preciso", "pergunta",
           "também", "como", "porque"),
    "sv/da/no": ("snälla", "vänligen", "venligst", "vennligst", "kan du", "kan ni",
                 "kunne du", "kan dere", "fråga", "spørgsmål", "spørsmål", "också", "også",
                 "hur", "hvordan", "varför", "hvorfor"),
    "pl": ("proszę", "prosze", "czy", "możecie", "może", "mogą", "pytanie", "też", "także",
           "jak", "dlaczego"),
    "cs": ("prosím", "prosim", "můžete", "mohli", "mohl", "otázka", "také", "taky", "jak",
           "proč"),
    "el": ("παρακαλώ", "παρακαλω", "μπορείτε", "μπορείς", "ερώτηση", "επίσης", "πώς",
           "γιατί"),
    "ru/uk": ("пожалуйста", "можете", "могли бы", "вопрос", "также", "тоже", "как",
              "почему", "будь ласка", "питання", "також", "як", "чому"),
    "vi": ("vui lòng", "làm ơn", "có thể", "câu hỏi", "cũng", "tại sao"),
    # 吗 and 呢 end a question as its mark does.
    "zh": ("请", "請", "麻烦", "麻煩", "能否", "可否", "帮我", "幫我", "也", "吗", "嗎", "呢",
           "为什么", "為什麼", "怎么", "怎麼"),
}
# A fault reported in a word ("Thanks!\nBroken" is no name).
TROUBLE: dict[str, tuple[str, ...]] = {
    "en": ("error", "broken", "bug", "fail", "fails", "failed", "failing", "wrong", "crash",
           "crashes", "crashed"),
    "de": ("fehler", "kaputt", "falsch", "absturz", "stürzt"),
    "fr": ("erreur", "bug", "cassé", "plante"),
    "es": ("error", "fallo", "falla", "roto"),
    "nl": ("fout", "foutmelding", "kapot", "storing"),
    "it": ("errore", "guasto", "rotto"),
    "pt": ("erro", "falha", "quebrado"),
    "sv/da/no": ("fel", "felet", "trasig", "fejl", "feil"),
    "pl": ("błąd", "awaria"),
    "cs": ("chyba", "porucha"),
    "el": ("σφάλμα", "λάθος"),
    "ru/uk": ("ошибка", "сбой", "помилка", "збій"),
    "vi": ("lỗi", "hỏng"),
    "zh": ("错误", "錯誤", "报错", "報錯", "故障", "失败", "失敗"),
}
