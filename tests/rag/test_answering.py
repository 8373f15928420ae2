"""Answer styles end to end over fakes: auto keeps supported text, falls back, abstains; generative stops early."""

from dataclasses import dataclass, replace

import pytest

from fakes import KeywordEmbedder
from rag.grounding.answering import Attempt, clean_output, meta_answer
from rag.config import AnswerConfig
from rag.grounding.ground import Grounder
from rag.grounding.sentences import answers_type
from rag.types import Hit, Passage

KEYWORDS = ["kiln", "velmora", "saltwren", "crossing", "porcelain", "passengers"]
KILN = "The kiln was built in 1987. The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain."
CONTEXT = (Hit(Passage("kiln", KILN, "/d/kiln.md", "/d/kiln.md"), 1.0, 1, {"dense": 0.8}),)


@dataclass
class Prompt:
    text: str
    context: tuple


class ScriptedGenerator:
    """Streams a fixed answer word by word and counts how many pieces were taken."""

    model_id, adapter_id, last_stats = "scripted", None, {}

    def __init__(self, answer: str) -> None:
        self.answer, self.taken, self.calls = answer, 0, 0

    def stream(self, prompt: str):  # noqa: ANN201
        self.calls += 1
        for i, word in enumerate(self.answer.split(" ")):
            self.taken += 1
            yield word if i == 0 else " " + word


def _attempt(answer, question="What temperature does the Velmora kiln reach?", context=CONTEXT, **kw):
    gen = ScriptedGenerator(answer)
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(KEYWORDS))
    # these check what the generated answer goes through: quote_first would answer the kiln's temperature unasked
    attempt = Attempt(AnswerConfig(**{"quote_first": False, **kw}), grounder, gen, Prompt("p", context), question)
    return attempt, attempt.finish("".join(attempt.pieces())), gen


def test_auto_keeps_a_supported_generated_answer():
    _, outcome, gen = _attempt("The Velmora kiln reaches 1,340 °C [1].")
    assert outcome.text == "The Velmora kiln reaches 1,340 °C [1]." and outcome.style == "generative"
    assert outcome.supported is True and [c.kind for c in outcome.citations] == ["supported"] and gen.calls == 1


def test_auto_replaces_a_wrong_answer_by_the_quoted_sentence():
    _, outcome, _ = _attempt("The Velmora kiln reaches 900 °C.")
    quote = "The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain."
    assert outcome.style == "fallback" and outcome.text == quote and outcome.supported is True
    [cite] = outcome.citations
    assert cite.kind == "supported" and KILN[slice(*cite.span)] == quote
    assert outcome.grounding["generated"] == "The Velmora kiln reaches 900 °C."


def test_quote_first_all_quotes_every_covered_question_but_a_yes_no_one_and_auto_picks_it_by_model():
    """``quote_first = "all"``: "What can the Velmora kiln fire?" asks for no number, default or code name, yet its
    covered best sentence is quoted without the model; a yes/no question still needs the model's yes or no.
    ``"auto"`` is "all" for the bundled 135M model (its checked answers were no better than the quote) and
    "values" for any other model, which generates that question."""
    quote = "The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain."
    question = "What can the Velmora kiln fire?"
    _, outcome, gen = _attempt("It fires bricks [1].", question, quote_first="all")
    assert gen.calls == 0 and outcome.text == quote and outcome.grounding["quote_first"] is True
    _, outcome, gen = _attempt("It fires porcelain [1].", "Can the Velmora kiln fire porcelain?", quote_first="all")
    assert gen.calls == 1 and "quote_first" not in outcome.grounding
    _, outcome, gen = _attempt("It fires porcelain [1].", "Who fires the Velmora kiln?", quote_first="all")
    assert gen.calls == 1  # "who": a two-word name in a quote may be a street, not a person
    # a yes/no question for a value the quote states anew ("Default: true") is a 'values' quote, in 'all' too
    _, outcome, gen = _attempt("No [1].", "Is the Velmora kiln hot, to what temperature?", quote_first="all")
    assert gen.calls == 0 and outcome.grounding["quote_first"] is True
    _, outcome, gen = _attempt("It is in Port Aubrey [1].", "Where is the Velmora kiln?", quote_first="all")
    assert gen.calls == 1  # a place is asked, and the quote names none the question does not
    _, outcome, gen = _attempt("It fires porcelain [1].", question, quote_first="values")
    assert gen.calls == 1 and "quote_first" not in outcome.grounding
    _, outcome, gen = _attempt("It fires porcelain [1].", question, quote_first="auto")  # "scripted" is not bundled
    assert gen.calls == 1
    bundled = ScriptedGenerator("It fires bricks [1].")
    bundled.model_id = "HuggingFaceTB/SmolLM2-135M-Instruct"
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(KEYWORDS))
    attempt = Attempt(AnswerConfig(), grounder, bundled, Prompt("p", CONTEXT), question)
    assert attempt.finish("".join(attempt.pieces())).text == quote and bundled.calls == 0
    assert AnswerConfig(quote_first=True).quote_first == "values"  # older configs' booleans still load
    assert AnswerConfig(quote_first=False).quote_first == "off"


def test_auto_quotes_a_sentence_stating_the_number_asked_without_generating():
    """``quote_first``: "What temperature ..." wants a number, the best sentence states one the question does not,
    and the passage covers the question: quoted as supported, the model never runs. A question that asks for no
    number, default or code name ("Is ... suited to porcelain?") is still generated and checked; so is one that no
    passage covers ("suit" is in none)."""
    quote = "The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain."
    _, outcome, gen = _attempt("The Velmora kiln reaches 900 °C [1].", quote_first=True)
    assert outcome.text == quote and outcome.supported is True and gen.calls == 0
    assert outcome.style == "extractive" and outcome.grounding["quote_first"] is True
    assert [c.kind for c in outcome.citations] == ["supported"]
    _, outcome, gen = _attempt("The Velmora kiln fires porcelain [1].", "Is the Velmora kiln hot enough for porcelain?",
                               quote_first=True)
    assert gen.calls == 1 and outcome.style == "generative" and "quote_first" not in outcome.grounding
    _, outcome, gen = _attempt("It reaches 1,340 °C [1].", "What temperature does the Velmora kiln suit?",
                               quote_first=True)
    assert gen.calls == 1 and "quote_first" not in outcome.grounding
    _, outcome, gen = _attempt("It reaches 1,340 °C [1].", quote_first=True, style="extractive")
    assert outcome.style == "extractive" and "quote_first" not in outcome.grounding  # only auto chooses


def test_extractive_never_generates_and_off_topic_abstains_without_generating():
    _, outcome, gen = _attempt("unused", style="extractive")
    assert outcome.style == "extractive" and "1,340" in outcome.text and gen.calls == 0
    far = (Hit(CONTEXT[0].passage, 1.0, 1, {"dense": 0.3}),)  # what retrieval gives an off-topic question
    _, outcome, gen = _attempt("unused", question="How do I deploy Django on Heroku?", context=far)
    assert outcome.abstained and outcome.text == "The documents do not say." and gen.calls == 0
    assert outcome.supported is None and outcome.citations == ()


def test_generative_streams_the_first_sentence_word_by_word_and_later_ones_whole():
    gen = ScriptedGenerator("The kiln is hot. It glows red. It glows red.")
    attempt = Attempt(AnswerConfig(style="generative"), None, gen, Prompt("p", CONTEXT), "q")
    pieces = list(attempt.pieces())
    assert pieces[:4] == ["The", " kiln", " is", " hot."] and "".join(pieces) == "The kiln is hot. It glows red."


def test_generative_stops_after_max_sentences_and_at_a_repeat():
    attempt, outcome, gen = _attempt("It is hot. It glows red. It has a chimney. " * 20, style="generative")
    assert outcome.text == "It is hot. It glows red." and gen.taken < 12
    _, outcome, gen = _attempt("It takes 600 seconds. It takes 60 seconds. It takes 6 seconds.",
                               style="generative", max_sentences=0)
    assert outcome.text == "It takes 600 seconds." and outcome.supported is False and gen.taken <= 9


@pytest.mark.parametrize("echo", ['<passage id="1">', "</passage>", '<section id="section-1-1">'])
def test_echoed_prompt_markup_is_removed(echo):
    assert clean_output(f"{echo}The kiln is hot.") == "The kiln is hot."


def test_a_question_no_passage_covers_is_quoted_as_not_supported_unless_the_generated_answer_is():
    question = "Does the Velmora kiln suit porcelain?"  # "suit" is in no passage: coverage 3/4, retrieval 0.8 is close
    _, outcome, _ = _attempt("Yes, the Velmora kiln reaches 1,340 °C, hot enough to fire porcelain [1].", question)
    assert outcome.style == "generative" and outcome.supported is True and not outcome.abstained
    _, outcome, _ = _attempt("Yes, the Velmora kiln suits porcelain.", question)  # "suits": a claim no passage makes
    assert outcome.style == "fallback" and outcome.supported is False and not outcome.abstained
    assert outcome.text == "The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain."
    _, outcome, gen = _attempt("unused", question, style="extractive")
    assert outcome.style == "extractive" and outcome.supported is False and gen.calls == 0


def test_auto_quotes_instead_of_a_supported_answer_without_the_asked_number():
    _, outcome, _ = _attempt("The Velmora kiln is hot enough to fire porcelain [1].")  # true, but no temperature
    assert outcome.style == "fallback" and "1,340" in outcome.text
    assert outcome.grounding["generated"] == "The Velmora kiln is hot enough to fire porcelain [1]."


KILN_Q = "What temperature does the Velmora kiln reach?"


@pytest.mark.parametrize(("answer", "question", "reason"), [
    ('The passage "The Velmora kiln reaches 1,340 °C, hot enough to fire true porcelain" is about the Kiln.', KILN_Q,
     "talks about the passages"),  # the bundled model's first demo answer
    ("The passage mentions that the Velmora kiln reaches 1,340 °C.", KILN_Q, "talks about the passages"),
    ("According to the text, the kiln reaches 1,340 °C.", KILN_Q, "talks about the passages"),
    ("The text mentions a kiln on Quarry Lane.", KILN_Q, "talks about the passages"),
    ("Based on the provided passages, it reaches 1,340 °C [1].", KILN_Q, "talks about the passages"),
    ("As stated in passage [1], the kiln reaches 1,340 °C.", KILN_Q, "talks about the passages"),
    ("The information provided is a list of the members of the cooperative.", "How many boats does it have?",
     "talks about the passages"),
    ("The kiln is in Port Aubrey. This excerpt also describes porcelain.", KILN_Q, "talks about the passages"),
    ("The knowledge base does not contain the answer.", KILN_Q, "talks about the passages"),
    ("The passage contains the answer to the question: 420.", "How many passengers?", "talks about the passages"),
    ("The answer to the question is 1,340 °C.", KILN_Q, "talks about the question"),
    ("This question asks about the kiln's temperature.", KILN_Q, "talks about the question"),
    ("The Velmora kiln reaches a temperature.", KILN_Q, "restates the question"),
    ("The answer is: The Glenroe Creamery.", "Who founded the Glenroe Creamery?", "restates the question"),
])
def test_meta_answers_are_recognised(answer, question, reason) -> None:
    assert meta_answer(answer, question) == reason


@pytest.mark.parametrize(("answer", "question"), [
    ("The kiln reaches 1,340 °C.", KILN_Q),
    ("The Velmora kiln reaches 1,340 °C [1].", KILN_Q),
    ("It reaches 1,340 °C, hot enough to fire true porcelain. A full firing takes 31 hours.", KILN_Q),
    ("The answer is: 31 hours.", "How long does a full firing take?"),
    ("Yes, the Velmora kiln fires porcelain.", "Does the Velmora kiln fire porcelain?"),  # a yes/no answer restates
    ("The text of the charter was signed in 1820.", "When was the charter signed?"),
    ("The Northwest Passage was first navigated in 1906.", "When was the Northwest Passage first navigated?"),
    ("In the passage, the bill needed 40 votes.", "What did the passage of the bill need?"),  # the question's word
    ("Ilse Marrow founded the workshop in 1987.", "Who founded the Velmora ceramics workshop?"),
])
def test_direct_answers_are_not_meta(answer, question) -> None:
    assert meta_answer(answer, question) is None


def test_auto_quotes_the_passage_instead_of_a_supported_answer_about_the_passage():
    text = 'The passage "The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain" is about the kiln.'
    attempt, outcome, _ = _attempt(text)
    assert attempt._ground(text).supported is True  # the support check alone lets it through: its facts are right
    assert outcome.style == "fallback" and outcome.text == "The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain."
    assert outcome.supported is True and outcome.grounding["meta"] == "talks about the passages"
    assert outcome.grounding["generated"] == text


BIO = ("Nendan Mirdrabra is a geology author born in Rekullo on 20 July 1954. Nendan Mirdrabra grew up as the child "
       "of a carpenter (father) and a schoolteacher (mother). In 1992 Nendan Mirdrabra received the Golden Key Award.")


def test_a_paraphrase_gets_a_quote_with_an_answer_of_the_kind_asked_else_it_abstains():
    """Retrieval is weak (0.5) and the biography lacks "went", "writer", "dad", "earn" and "living", words no passage
    holds. The names hold: a quote that names a new writer, never called supported, and nothing generated (the small
    model names look-alikes); a question for a category (a job) abstains, as it did before."""
    from rag.text import content_words

    known = set(content_words(BIO))
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(KEYWORDS), idf=lambda w: 1.0 if w in known else 7.0,
                        known=lambda w: w in known)
    bio = (Hit(Passage("bio", BIO, "/d/bio.md", "/d/bio.md"), 1.0, 1, {"dense": 0.5}),)

    def ask(question, answer, **kw):
        gen = ScriptedGenerator(answer)
        attempt = Attempt(AnswerConfig(**kw), grounder, gen, Prompt("p", bio), question)
        return attempt.finish("".join(attempt.pieces())), gen

    outcome, gen = ask("The Golden Key Award went to which writer from Rekullo?", "Bo Kran won it [1].")
    assert outcome.text == "In 1992 Nendan Mirdrabra received the Golden Key Award." and gen.calls == 0
    assert outcome.style == "fallback" and outcome.supported is False and not outcome.abstained
    assert outcome.grounding["named_only"] is True
    outcome, _ = ask("How did Nendan Mirdrabra's dad earn a living?", "He was a carpenter.")
    assert outcome.abstained and outcome.text == "The documents do not say."
    outcome, gen = ask("The Golden Key Award went to which writer from Rekullo?", "unused", style="extractive")
    assert outcome.abstained and gen.calls == 0  # only the auto style answers a paraphrase


SPAWN = Hit(Passage("spawn", "Event: 'spawn'. The 'spawn' event is emitted once the child process has spawned "
                    "successfully.", "/d/cp.md", "/d/cp.md"), 1.0, 1, {"dense": 0.8})
ERROR = Hit(Passage("error", "Event: 'error'. The 'error' event is emitted whenever the child process could not be "
                    "spawned or killed.", "/d/cp.md", "/d/cp.md"), 0.9, 2, {"dense": 0.7})


@pytest.mark.parametrize(("agree_top", "style"), [(1, "fallback"), (0, "generative")])
def test_a_code_name_answer_must_come_from_the_best_sentences(agree_top, style):
    """A 135M model named the 'error' event for "emitted once spawned": each word of its answer is in a passage,
    but the sentence that answers, ranked first, names 'spawn'; with ``agree_top`` the best sentence is quoted."""
    question = "Which event is emitted once the child process has spawned successfully?"
    answer = "The 'error' event is emitted once the child process has spawned successfully."
    gen = ScriptedGenerator(answer)
    grounder = Grounder(AnswerConfig(agree_top=agree_top),
                        KeywordEmbedder(["event", "emitted", "spawned", "successfully", "child"]))
    attempt = Attempt(AnswerConfig(agree_top=agree_top, quote_first=False), grounder, gen, Prompt("p", (SPAWN, ERROR)),
                      question)
    outcome = attempt.finish("".join(attempt.pieces()))
    assert outcome.style == style
    if agree_top:
        assert "'spawn'" in outcome.text and outcome.grounding["off_best"] == "error"
    else:
        assert outcome.text == answer


def test_a_question_pinned_by_its_code_identifier_gets_a_quote_of_the_kind_asked():
    """"How many levels deep does `console.dir()` go when I don't pass a depth?" misses "levels" and "nested", words
    other pages hold, so coverage refuses it and ``named`` does too; the identifier names the subject exactly and the
    best line states a default value: quoted, never called supported. Without a default value in that line, or
    when the passage does not hold the identifier, it abstains."""
    from rag.text import content_words

    dir_doc = ("`depth` {number} Tells util.inspect() how many times to recurse while formatting the object. To make "
               "it recurse indefinitely, pass null. Default: 2.")
    own, others = set(content_words(dir_doc)), {"levels", "nested", "deep"}  # words of this page, of other pages
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["depth", "recurse", "default"]),
                        idf=lambda w: 1.0 if w in own else 4.0 if w in others else 7.0,
                        known=lambda w: w in own | others)

    def ask(text, question="How many levels deep does `console.dir()` go into nested objects when I don't pass a "
                           "depth?"):
        hit = Hit(Passage("dir", text, "/d/console.md", "/d/console.md", title="Console",
                          metadata={"section": "console.dir(obj[, options])"}), 1.0, 1, {"dense": 0.45})
        gen = ScriptedGenerator("It goes 5 levels deep [1].")
        attempt = Attempt(AnswerConfig(), grounder, gen, Prompt("p", (hit,)), question)
        return attempt.finish("".join(attempt.pieces())), gen

    outcome, gen = ask(dir_doc)
    assert outcome.text == "To make it recurse indefinitely, pass null. Default: 2." and gen.calls == 0
    assert outcome.style == "fallback" and outcome.supported is False and outcome.grounding["pinned"] is True
    outcome, _ = ask(dir_doc.replace(" Default: 2.", ""))  # no default stated: nothing of the kind asked
    assert outcome.abstained
    outcome, _ = ask(dir_doc, "How many levels deep does `console.log()` go into nested objects when I don't pass "
                              "a depth?")  # the passage is about console.dir()
    assert outcome.abstained


def test_a_quote_for_a_code_name_named_only_in_its_heading_leads_with_the_heading():
    """Node.js's http.md names the method in the heading only: "Sends an HTTP/1.1 100 Continue message to the
    client." under "response.writeContinue()". A quote of the sentence alone cannot answer "which method"."""
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["continue", "sends", "message"]))
    text = "Sends an HTTP/1.1 100 Continue message to the client, indicating that the request body should be sent."
    hit = Hit(Passage("w", text, "/d/http.md", "/d/http.md", title="HTTP",
                      metadata={"section": "Class: http.ServerResponse > response.writeContinue()"}), 1.0, 1,
              {"dense": 0.8})

    def ask(question):
        attempt = Attempt(AnswerConfig(style="extractive"), grounder, ScriptedGenerator("unused"),
                          Prompt("p", (hit,)), question)
        return attempt.finish("".join(attempt.pieces()))

    outcome = ask("Which method of http.ServerResponse sends an HTTP/1.1 100 Continue message to the client?")
    assert outcome.text == f"response.writeContinue(): {text}"
    assert outcome.citations[0].span == (0, len(text))  # the citation points at the sentence itself
    assert ask("What does the server send to the client for a 100 Continue?").text == text  # no code name asked
    # "i.e." is no code name the quote holds: zlib.md says "This function is only available for zlib-based streams,
    # i.e. not Brotli." under "zlib.params(level, strategy, callback)"
    text = "This function is only available for zlib-based streams, i.e. not Brotli."
    hit = replace(hit, passage=replace(hit.passage, text=text, metadata={"section": "zlib.params(level, strategy)"}))
    assert ask("Which zlib stream method for changing the level is not available for Brotli?").text == \
        f"zlib.params(level, strategy): {text}"
    # another name of a code identifier the question names is a code name asked for too: cluster.md says
    # "Deprecated alias for cluster.isPrimary." under "cluster.isMaster"
    text = "Deprecated alias for cluster.isPrimary."
    hit = replace(hit, passage=replace(hit.passage, text=text, metadata={"section": "cluster.isMaster"}))
    assert ask("What was cluster.isPrimary called before it was deprecated?").text == f"cluster.isMaster: {text}"
    assert ask("What was the cluster's first primary called?").text == text  # no code identifier named


def test_a_generated_default_must_be_the_value_a_line_states_as_the_default():
    """Node.js's http.md, `response.statusCode`: "* {number} **Default:** `200`" then an example that sets 404. The
    135M model answered "404": in the passage, supported, but not the default. The generated value must be one a
    best-scored line states as a default; else the best sentence is quoted."""
    text = ("{number} Default: 200\n\nWhen using implicit headers, this property controls the status code that will "
            "be sent to the client when the headers get flushed. response.statusCode = 404;")
    hit = Hit(Passage("s", text, "/d/http.md", "/d/http.md", title="HTTP",
                      metadata={"section": "Class: http.ServerResponse > response.statusCode"}), 1.0, 1, {"dense": 0.8})
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["status", "code", "sent", "default"]))
    question = "Which status code does an http.ServerResponse send when you never set `response.statusCode`?"

    def ask(answer):
        attempt = Attempt(AnswerConfig(quote_first=False), grounder, ScriptedGenerator(answer), Prompt("p", (hit,)),
                          question)
        return attempt.finish("".join(attempt.pieces()))

    outcome = ask("The status code that will be sent to the client is 404 [1].")
    assert outcome.style == "fallback" and outcome.grounding["off_best"] == "404"
    assert ask("The status code that will be sent to the client is 200 [1].").style == "generative"


def test_an_answer_about_a_default_must_name_a_value_and_a_quote_must_state_the_default():
    """"What is the default `agent` used by https.request()?" got "... is the default agent object.": every word in
    the passage, no value. A quote for a default that states none ("The Connection: keep-alive header is always
    sent ...") is shown but not called supported."""
    text = ("agent Default: https.globalAgent. The Connection: keep-alive header is always sent when using an agent "
            "except when the Connection header is explicitly specified.")
    hit = Hit(Passage("a", text, "/d/https.md", "/d/https.md", title="HTTPS",
                      metadata={"section": "https.request(options[, callback])"}), 1.0, 1, {"dense": 0.8})
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["agent", "default", "request"]))

    def ask(question, answer):
        attempt = Attempt(AnswerConfig(quote_first=False), grounder, ScriptedGenerator(answer), Prompt("p", (hit,)),
                          question)
        return attempt.finish("".join(attempt.pieces()))

    question = "What is the default `agent` used by https.request()?"
    assert answers_type(question, "The default agent is https.globalAgent.")
    assert not answers_type(question, "The default agent used by https.request() is the default agent.")
    outcome = ask(question, "The default agent used by https.request() is the default agent [1].")
    assert outcome.style == "fallback" and outcome.text == "agent Default: https.globalAgent." and outcome.supported
    ev = grounder.evidence("How long is the keep-alive header sent for by default?", [hit])
    [best] = grounder.extract(ev)
    assert grounder.quote_answers_kind(best, ev, "The Connection: keep-alive header is always sent.") is False
    assert grounder.quote_answers_kind(best, ev, "agent Default: https.globalAgent.") is True


def test_a_quote_about_a_sibling_of_the_asked_code_name_is_not_called_supported():
    """"What shell does child_process.exec() use by default on Unix?" got "... child_process.execFile() can be more
    efficient because it does not spawn a shell by default.": a look-alike's line. Shown, never called supported, and
    not quoted first: the model answers, and the checks decide."""
    question = "What shell does child_process.exec() use by default on Unix?"
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["shell", "default", "unix", "spawn"]))

    def ask(text, section):
        hit = Hit(Passage("e", text, "/d/cp.md", "/d/cp.md", title="Child process", metadata={"section": section}),
                  1.0, 1, {"dense": 0.8})
        gen = ScriptedGenerator("It uses a shell [1].")
        attempt = Attempt(AnswerConfig(), grounder, gen, Prompt("p", (hit,)), question)
        return attempt.finish("".join(attempt.pieces())), gen

    sibling = ("On Unix child_process.execFile() is faster because it does not spawn a shell by default, "
               "unlike '/bin/sh' runs.")
    outcome, gen = ask(sibling, "Spawning .bat and .cmd files on Windows")
    assert outcome.grounding["sibling"] == "child_process.execFile" and gen.calls == 1
    assert outcome.supported is False and "quote_first" not in outcome.grounding
    outcome, gen = ask(sibling, "child_process.exec(command[, options][, callback])")  # the asked one's own section
    assert "sibling" not in outcome.grounding and outcome.supported is True and gen.calls == 0  # quoted first


def test_a_rival_sentence_within_tie_margin_is_quoted_too_and_the_quote_is_not_supported():
    """Docs held-out n03: "On Windows, what is the shell field of the object that os.userInfo() returns?" scored
    "The returned object includes the username, uid, gid, shell, and homedir." 0.892 and "On Windows, the uid and
    gid fields are -1, and shell is null." 0.891: the scorer cannot tell which answers, so both are shown (in passage
    order) and neither is called supported. The same sentence in another passage is no rival."""
    question = "What temperature does the Velmora kiln reach?"
    quote = "The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain."
    _, alone, gen = _attempt("x", question, quote_first="all")  # the default margin: "built in 1987" is far behind
    assert alone.text == quote and alone.supported is True and "tie" not in alone.grounding and gen.calls == 0
    _, tied, _ = _attempt("x", question, quote_first="all", tie_margin=1.0)
    assert tied.text == KILN and tied.supported is False and tied.grounding["tie"] > 0
    assert [KILN[slice(*c.span)] for c in tied.citations] == [quote, "The kiln was built in 1987."]
    same = "The Velmora kiln reaches 1,340 °C."
    twice = tuple(Hit(Passage(f"k{i}", same, f"/d/k{i}.md", f"/d/k{i}.md"), 1.0, i + 1, {"dense": 0.8}) for i in range(2))
    _, repeated, _ = _attempt("x", question, twice, quote_first="all", tie_margin=1.0)
    assert repeated.text == same and repeated.supported is True and "tie" not in repeated.grounding
