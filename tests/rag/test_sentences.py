"""The sentence scorer and context selection, with exactly predictable embeddings (``KeywordEmbedder``)."""

import numpy as np
import pytest

from rag.config import AnswerConfig
from rag.grounding.ground import Grounder
from rag.grounding.excerpts import excerpts
from rag.grounding.asks import identifiers, wants_code, wants_default, wants_number
from rag.grounding.sentences import SentenceScorer, answers_type, changelog, head, names_term, states_number
from rag.types import Hit, Passage
from fakes import KeywordEmbedder

KEYWORDS = ["max_age", "default", "corsmiddleware", "gzipmiddleware", "compresslevel", "browsers"]
CORS = ("CORSMiddleware takes these arguments. `allow_origins` - A list of origins that may make requests. "
        "`max_age` - Sets a maximum time in seconds for browsers to cache CORS responses. Defaults to `600`.")
NOTES = "📝 Add missing compresslevel parameter on docs for GZipMiddleware. PR #1234 by @someone."
GZIP = "GZipMiddleware compresses responses. The compresslevel is used during compression, 9 by default."


def _hit(pid, text, rank, source=None):
    return Hit(Passage(pid, text, pid, source or f"/docs/{pid}.md", title=pid), 1.0 / rank, rank, {"dense": 0.7})


def test_identifiers_are_code_words_and_quoted_terms_not_ordinary_capitals():
    assert identifiers("What is the default `max_age` of CORSMiddleware?") == ["max_age", "CORSMiddleware"]
    assert identifiers("Which event does readline emit on 'close'?") == ["close"]
    assert identifiers("What is the default keepAliveMsecs of http.Agent?") == ["keepAliveMsecs", "http.Agent"]
    assert identifiers("What is the ferry's Capital City?") == []  # an apostrophe is no quote
    assert identifiers("Does GZipMiddleware compress?") == ["GZipMiddleware"]
    assert names_term("Sets `max_age` here", "max_age") and not names_term("Sets max_ages here", "max_age")
    # a call or a manual page reference names a function; "item(s)" does not
    assert identifiers("It is a synchronous call to getaddrinfo(3) or open().") == ["getaddrinfo", "open"]
    assert identifiers("Pick the item(s) you need.") == []
    assert wants_code("Which operating system function does dns.lookup() call?")  # two words before the noun
    assert not wants_code("Which operating system is supported?")


def test_an_item_is_about_the_identifier_it_starts_with():
    assert head("PRIORITY_HIGH The process scheduling priority below PRIORITY_HIGHEST.") == "PRIORITY_HIGH"
    assert head("* `backlog` {number} Common parameter.") == "backlog"
    assert head("dns.lookup() uses the resolver.") == "dns.lookup"
    assert head("The highest process scheduling priority.") is None


ROWS = ("PRIORITY_HIGH The process scheduling priority above PRIORITY_ABOVE_NORMAL and below PRIORITY_HIGHEST. "
        "This corresponds to HIGH_PRIORITY_CLASS on Windows.\n\n"
        "PRIORITY_HIGHEST The highest process scheduling priority. This corresponds to REALTIME_PRIORITY_CLASS on "
        "Windows.")


def test_a_row_that_names_the_asked_constant_in_passing_is_not_its_row():
    """os.md's table of priority constants: PRIORITY_HIGH's row names PRIORITY_HIGHEST ("below ..."), so both rows'
    "This corresponds to ..." had the same full credit for the asked constant and the earlier row won."""
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["priority", "windows", "corresponds"]))
    question = "Which Windows priority class does the os constant PRIORITY_HIGHEST correspond to?"
    [best] = grounder.extract(grounder.evidence(question, [_hit("os", ROWS, 1)]))
    assert "REALTIME_PRIORITY_CLASS" in best.text


def test_changelog_lines_are_recognised_by_their_form_or_their_source():
    assert changelog(NOTES, "/docs/middleware.md")
    assert changelog("Fix the timeout of the client (#812).", "/docs/a.md")
    assert changelog("The compresslevel is used.", "/docs/release-notes.md")
    assert not changelog(GZIP, "/docs/middleware.md")


def test_the_answer_is_the_default_in_the_list_item_that_names_the_identifier():
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(KEYWORDS))
    evidence = grounder.evidence("What is the default max_age in CORSMiddleware?", [_hit("cors", CORS, 1)])
    [best] = grounder.extract(evidence)
    # "Defaults to `600`." alone names nothing: it is joined to its list item, and that unit is the answer
    assert best.text.endswith("Defaults to `600`.") and best.text.startswith("`max_age`")
    assert CORS[best.start : best.end] == best.text


def test_a_changelog_line_that_names_the_terms_loses_to_the_sentence_that_answers():
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(KEYWORDS))
    context = [_hit("notes", NOTES, 1), _hit("gzip", GZIP, 2)]
    [best] = grounder.extract(grounder.evidence("What is the default compresslevel of GZipMiddleware?", context))
    assert best.text == "The compresslevel is used during compression, 9 by default."


def test_excerpts_keep_the_best_sentences_with_neighbours_in_passage_order_under_the_budget():
    texts = ["One alpha. Two beta. Three gamma. Four delta.", "Five eps. Six zeta."]
    spans = [(0, 0, 10), (0, 11, 20), (0, 21, 33), (0, 34, 45), (1, 0, 9), (1, 10, 19)]
    words = lambda t: len(t.split())  # noqa: E731 - two tokens a sentence
    scores = [0.1, 0.2, 0.9, 0.0, 0.5, 0.3]
    # best "Three gamma." then its neighbours "Two beta." and "Four delta.", then "Five eps." (budget 8)
    assert excerpts(spans, texts, scores, words, 8) == {0: "Two beta. Three gamma. Four delta.", 1: "Five eps."}
    # a smaller budget: the best sentence and its subject only
    assert excerpts(spans, texts, scores, words, 4) == {0: "Two beta. Three gamma."}
    # gaps are marked; sentences scoring 0 or less are never shown
    assert excerpts(spans, texts, [0.9, 0.0, 0.0, 0.8, 0.0, 0.0], words, 6) == {0: "One alpha. Two beta. … Four delta."}
    assert excerpts(spans, texts, [0.0] * 6, words, 100) == {}


AGENT = ("Agent options can have the following fields:\n\n"
         "keepAlive {boolean} Keep sockets around. Default: false.\n\n"
         "keepAliveMsecs {number} When using the keepAlive option, specifies the initial delay for TCP Keep-Alive "
         "packets. Ignored when the keepAlive option is false. Default: 1000.\n\n"
         "timeout {number} Socket timeout in milliseconds, 5000 by default.")


def test_an_answer_stated_about_another_setting_is_out_of_place():
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(KEYWORDS))
    evidence = grounder.evidence("What is the default `keepAliveMsecs` of an Agent?", [_hit("agent", AGENT, 1)])
    # every word and number of the wrong answer is in the passage, but 5000 is the timeout's default
    assert grounder.out_of_place("The default keepAliveMsecs of an Agent is 5000.", evidence) == "5000"
    assert grounder.out_of_place("The default keepAliveMsecs of an Agent is 1000.", evidence) is None
    assert grounder.out_of_place("It is the keepAliveMsecs setting of the Agent.", evidence) is None  # nothing new


def test_the_answer_type_covers_numbers_and_code_names():
    assert not answers_type("What is the maximum size in bytes?", "It is large.")
    assert answers_type("What is the maximum size in bytes?", "65,507 bytes.")
    assert not answers_type("Which method reschedules a timer?", "It reschedules the timer [1].")
    assert answers_type("Which method reschedules a timer?", "The `timeout.refresh()` method.")
    assert answers_type("Who founded the kiln?", "Rhona Callister.")  # neither kind asked


def test_a_sentence_that_states_another_day_than_the_question_loses():
    """Look-alike biographies: both sentences share the place, the genre and the year; the question's date in
    another format picks its own author's line."""
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["dandraka", "mountaineering", "born"]))
    teslo = _hit("teslo", "Born in Dandraka on 23 August 1966, Teslo Kabrarek writes about mountaineering.", 1)
    nenka = _hit("nenka", "Born in Dandraka on 6 April 1966, Nenka Iropimdra writes about mountaineering.", 2)
    question = "What is the full name of the mountaineering author born in Dandraka on 04/06/1966?"
    [best] = grounder.extract(grounder.evidence(question, [teslo, nenka]))
    assert "Nenka Iropimdra" in best.text
    [undated] = grounder.extract(grounder.evidence("Who writes about mountaineering in Dandraka?", [teslo, nenka]))
    assert "Teslo Kabrarek" in undated.text  # no date asked: the first passage's line, as before


def test_a_place_question_wants_a_line_that_names_a_place():
    """"Born where?" put to a biography: its parents line shares the name and the embedder's words, yet only the
    line that names a town answers, and an answer naming no place does not answer it (a rescued look-alike
    question was answered with the parents line)."""
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["votor", "ironenpim", "born"]))
    bio = _hit("votor", "Votor Ironenpim was born to a locksmith (father) and a veterinarian (mother). "
                        "Votor Ironenpim spent a childhood in Rekullo, the town of birth.", 1)
    question = "Votor Ironenpim - born where, exactly?"
    [best] = grounder.extract(grounder.evidence(question, [bio]))
    assert "Rekullo" in best.text
    assert not answers_type(question, "Votor Ironenpim grew up as the child of a locksmith [1].")
    assert answers_type(question, "Votor Ironenpim was born in Rekullo [1].")
    books = 'Votor Ironenpim\'s books include "The Hollow Weir" and "The Sunken Comet" [1].'
    assert not answers_type("Do you know what city Votor Ironenpim comes from?", books)  # titles, no place
    assert answers_type("Where is the config file located?", "It is in the home folder.")  # no place asked


def _section_hit(pid, text, section, rank):
    passage = Passage(pid, text, pid, f"/docs/{pid}.md", title="dgram", metadata={"section": section})
    return Hit(passage, 1.0 / rank, rank, {"dense": 0.7})


def test_a_sentence_under_the_section_named_by_the_asked_identifier_answers():
    """API pages name a function in the section heading, not in each of its sentences: "Sets the
    `IP_MULTICAST_TTL` socket option." answers for ``socket.setMulticastTTL()`` because its section is that
    function's, while a sentence from another function's section shares the question's words."""
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["socket", "option", "dgram"]))
    create = _section_hit("create", "Sets up a `dgram.Socket` object, whose socket option is set by the caller.",
                          "dgram.createSocket(options)", 1)
    ttl = _section_hit("ttl", "Sets the `IP_MULTICAST_TTL` socket option.", "socket.setMulticastTTL(ttl)", 2)
    [best] = grounder.extract(grounder.evidence("Which socket option does dgram socket.setMulticastTTL() set?",
                                                [create, ttl]))
    assert best.text == "Sets the `IP_MULTICAST_TTL` socket option."


def test_a_default_is_answered_by_the_line_that_states_a_default_value():
    """"What is the default backlog value?": the option's own line names ``backlog`` and ``server.listen()``; the
    line that answers states a default and a value the question does not hold (Node.js's net.md)."""
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["backlog", "default", "value"]))
    option = _hit("option", "* `backlog` {number} Common parameter of `server.listen()` functions.", 1)
    listen = _hit("listen", "All `listen()` methods can take a `backlog` parameter to specify the maximum length of "
                            "the queue. The default value of this parameter is 511 (not 512).", 2)
    [best] = grounder.extract(grounder.evidence("What is the default backlog value for server.listen()?",
                                                [option, listen]))
    assert best.text == "The default value of this parameter is 511 (not 512)."


def test_an_unpunctuated_default_line_answers_with_the_option_it_belongs_to():
    """Node.js's dns.md: "`tries` {integer} The number of tries ... before giving up. **Default:** `4`" has no final
    full stop, so "Default: 4" stood alone, too short to answer, and the quote of the option line lacked the 4."""
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["tries", "resolver", "server"]))
    text = ("* `timeout` {integer} Query timeout in milliseconds. **Default:** `-1`\n"
            "* `tries` {integer} The number of tries the resolver will try contacting each name server before "
            "giving up. **Default:** `4`")
    question = "By default, how many times does a dns.Resolver (`tries` option) contact each name server?"
    [best] = grounder.extract(grounder.evidence(question, [_hit("dns", text, 1)]))
    assert "giving up" in best.text and best.text.endswith("`4`")
    assert wants_number("What is the default `stackSizeMb` resource limit of a Worker thread, in MB?")


def test_a_default_asked_without_the_word_is_still_a_default():
    """People ask "unless you set it", "when no ipv4 argument is given": Node.js's dns.md answers with
    "`ipv4` {string} A string representation of an IPv4 address. **Default:** `'0.0.0.0'`"."""
    for asked in ("If I never change it, how many headers will an http.Server accept at most?",
                  "How many spaces is a tab worth unless you set `tabSize`?", "Which host when you don't give one?",
                  "Which host when you don’t give one?",
                  "What color mode if you leave `colorMode` out?", "How many sessions are cached out of the box?",
                  "What encoding is used when none is specified?", "Which port if the options give none?"):
        assert wants_default(asked), asked
    for other in ("Which option sets the timeout?", "What is set when the socket closes?",
                  "Which method reschedules a timer without allocating a new object?"):
        assert not wants_default(other), other
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["ipv4", "address", "resolver"]))
    text = ("The resolver will use the v4 local address when making requests to IPv4 DNS servers.\n\n"
            "ipv4 {string} A string representation of an IPv4 address. Default: '0.0.0.0'")
    question = "Which IPv4 address does resolver.setLocalAddress() use when no ipv4 argument is given?"
    [best] = grounder.extract(grounder.evidence(question, [_hit("dns", text, 1)]))
    assert best.text.endswith("'0.0.0.0'")


def test_a_default_value_may_be_a_word_and_a_cross_reference_is_no_answer():
    """"**Default:** 'auto'" and "Default: Infinity" state values; "See the 'checkContinue' event" points elsewhere."""
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["color", "console"]))
    text = ("* `colorMode` {boolean|string} Set color support for this Console instance. Setting to true enables "
            "coloring. This option can not be used, if colors is set as well. **Default:** 'auto'.")
    [best] = grounder.extract(grounder.evidence("What color mode does a new console.Console use if you leave "
                                                "`colorMode` out?", [_hit("console", text, 1)]))
    assert best.text.endswith("'auto'.")
    assert states_number("Default: Infinity.") and not states_number("Default: 'auto'.")
    question = "Which event handles the body with checkContinue?"
    see, says = SentenceScorer().scores(question, ["See the checkContinue event on Server for the body.",
                                                   "The checkContinue event on Server gets the body."],
                                        ["", ""], ["", ""], np.array([0.5, 0.5]), [(0, []), (1, [])])
    assert see < says


def test_the_digits_of_a_name_are_no_number_asked_for():
    """"What is the maximum UDP payload size in bytes?" is not answered by "The maximum size of an IPv4/v6 datagram
    depends on the MTU": the 4 and the 6 name protocols."""
    grounder = Grounder(AnswerConfig(), KeywordEmbedder(["payload", "size"]))
    question = "What is the maximum UDP payload size in bytes for an IPv4 datagram?"
    assert not answers_type(question, "The maximum size of an IPv4/v6 datagram depends on the MTU.")
    assert answers_type(question, "A payload cannot exceed 65,507 bytes.")


def test_when_that_opens_a_clause_asks_for_no_time():
    assert wants_number("When was the Harrow tide mill built?")
    assert not wants_number("When stringDecoder.end() is called, what are incomplete bytes replaced with?")
    assert wants_number("When the socket closes, how many bytes are flushed?")  # "how many" still asks
    # docs held-out g05: "HTTP/1.1" in a writeContinue() line counted as the number asked
    assert not wants_number("Which http.ClientRequest event fires when the server answers with '100 Continue'?")
    assert wants_number("Which status code does the server send when the headers time out?")  # a code that is a number


def test_a_sentence_that_negates_what_is_asked_loses():
    """os.md's signal table: "SIGKILL | Sent to a process to terminate it immediately." lost to child_process.md's
    "Node.js processes will not terminate immediately due to receipt of those signals": it says what does not
    happen. A question that is negated itself keeps its negated line."""
    sentences = ["The process will not terminate immediately on this signal.",
                 "The process will terminate immediately on this signal."]

    def scores(question):
        return SentenceScorer().scores(question, sentences, ["", ""], ["", ""], np.array([0.6, 0.6]),
                                       [(0, []), (1, [])])

    denied, stated = scores("Which signal makes the process terminate immediately?")
    assert stated - denied == pytest.approx(0.1)
    denied, stated = scores("Which signal does not make the process terminate immediately?")
    assert denied == pytest.approx(stated)
    sentences[0] = "The process won’t terminate immediately on this signal."  # a curly apostrophe negates too
    denied, stated = scores("Which signal makes the process terminate immediately?")
    assert stated - denied == pytest.approx(0.1)
    denied, stated = scores("Which signal doesn’t make the process terminate immediately?")
    assert denied == pytest.approx(stated)


def test_a_code_example_loses_to_the_prose_that_answers_unless_the_output_is_asked():
    """child_process.md joins a code example to the prose after it: "const defaults = { cwd: undefined, ... };" was
    quoted for "Which error code ... if `cwd` does not exist?", above "... the child process emits an ENOENT error".
    A question about what code returns or prints may be answered by a code line ("// Returns: '/foo/bar/baz'")."""
    sentences = ["const defaults = {\ncwd: undefined,\n};\nUse cwd to set the directory the child process is spawned in.",
                 "If the cwd directory does not exist, the child process emits an ENOENT error."]

    def gap(question):  # the prose line's lead over the code line
        code, prose = SentenceScorer().scores(question, sentences, ["", ""], ["", ""], np.array([0.8, 0.6]),
                                              [(0, []), (1, [])])
        return prose - code

    # the two questions differ in one word that neither line holds: only the code rule tells them apart
    asked = gap("Which error code does the child process emit when its cwd directory is gone?")
    output = gap("Which error code does the child process emit when its cwd directory is returned?")
    assert asked - output == pytest.approx(0.1)
    sentences[0] = "The spawn\nfunction is called in the cwd directory, and\nimport the module first."  # wrapped prose
    assert gap("Which error code does the child process emit when its cwd directory is gone?") == pytest.approx(
        gap("Which error code does the child process emit when its cwd directory is returned?"))


def test_a_passage_that_never_names_the_backticked_code_name_loses():
    """Docs held-out k20: "How long does an https.Server keep an idle keep-alive connection open by default
    (`server.keepAliveTimeout`)?" quoted http.Agent's "The Connection: keep-alive header is always sent ...", from a
    passage that never names server.keepAliveTimeout, above "{number} Default: 5000 (5 seconds)" under its heading.
    Names the asker did not put in backticks pin nothing: "Node.js" is no code name to hold every passage to."""
    sentences = ["The keep-alive header is always sent when an agent is used.",
                 "The keep-alive header is always sent when an agent is used."]
    passages = ["HTTP. Class: http.Agent. The keep-alive header is always sent when an agent is used.",
                "HTTPS. server.keepAliveTimeout. The keep-alive header is always sent when an agent is used."]

    def scores(question, held=passages):
        return SentenceScorer().scores(question, sentences, ["", ""], ["", ""], np.array([0.6, 0.6]),
                                       [(0, []), (1, [])], held)

    other, named = scores("How long is a keep-alive connection kept open (`server.keepAliveTimeout`)?")
    assert named - other == pytest.approx(0.1)
    other, named = scores("How long is a keep-alive connection kept open (`server.keepAliveTimeout()`)?")
    assert named - other == pytest.approx(0.1)  # a call in backticks names the function
    other, named = scores("How long is a keep-alive connection kept open (server.keepAliveTimeout)?")
    assert named == pytest.approx(other)
    other, named = scores("How long is a keep-alive connection kept open (`server.keepAliveTimeout`)?", ())
    assert named == pytest.approx(other)  # without the passages, nothing to hold them to


def test_a_default_question_wants_the_stated_default_value_not_another_value():
    """Docs held-out g02: "If I never change it, how many incoming headers will an http.Server accept at most
    (`server.maxHeadersCount`)?" quoted "If set to 0, no limit will be applied." above "{number} Default: 2000", and
    g03 quoted the code line "response.statusCode = 404;" above "{number} Default: 200". A line that names a value
    but no default is no default's line; "Default: X" states the value itself."""
    sentences = ["Default: 2000 headers are accepted.", "By default, 2000 headers are accepted.",
                 "If set to 0, no limit applies to the headers accepted."]

    def shift(sentence):  # what asking for the default adds to a sentence's score
        def score(question):
            return SentenceScorer().scores(question, [sentence], [""], [""], np.array([0.6]), [(0, [])])[0]
        return score("How many headers are accepted if I never change it?") - score(
            "How many headers are accepted if I always change it?")

    named, stated, other = (shift(s) for s in sentences)
    assert stated == pytest.approx(0.2) and named == pytest.approx(0.3) and other == pytest.approx(-0.1)



def test_a_question_for_an_error_wants_the_line_that_names_one():
    """Docs held-out n04: "What error is thrown if events.defaultMaxListeners is set to something that is not a
    positive number?" quoted "To change the default for all EventEmitter instances, the events.defaultMaxListeners
    property can be used." (EventEmitter is a new code name, no error) above "If this value is not a positive number,
    a RangeError is thrown." An error the question names itself is no answer."""
    sentences = ["If this value is not a positive number, a RangeError is thrown.",
                 "If this value is not a positive number, an error is thrown.",
                 "If this value is not a positive number, a RangeError is thrown by EventEmitter."]

    def scores(question):
        return SentenceScorer().scores(question, sentences, ["", "", ""], ["", "", ""], np.array([0.6, 0.6, 0.6]),
                                       [(0, []), (1, []), (2, [])])

    named, bare, _ = scores("What error is thrown if the value is not a positive number?")
    same_named, same_bare, _ = scores("Is an error thrown if the value is not a positive number?")  # same words
    assert (named - bare) - (same_named - same_bare) == pytest.approx(0.15)
    for question in ("Which exception is raised if the value is not a positive number?",
                     "Which error code comes back if the value is not a positive number (ERR_OUT_OF_RANGE)?"):
        named, bare, _ = scores(question)
        assert named - bare > same_named - same_bare
    named, bare, _ = scores("What error besides a RangeError is thrown if the value is not a positive number?")
    same_named, same_bare, _ = scores("Is an error besides a RangeError thrown if the value is not a positive number?")
    assert named - bare == pytest.approx(same_named - same_bare)  # the question names it: nothing new


def test_a_number_the_question_states_is_not_the_number_it_asks_for():
    """Docs tuned q10: "Above what delay value is a setTimeout() delay reset to 1 millisecond?" quoted "delay
    {number} ... Default: 1." above "When delay is larger than 2147483647 or less than 1, the delay will be set to
    1.": the 1 is the question's own. "Above what" asks for a number."""
    assert wants_number("Above what delay value is a setTimeout() delay reset to 1 millisecond?")
    assert not wants_number("Is the delay above the value reset to 1 millisecond?")

    def shift(sentence):  # what asking for a number adds to a sentence's score
        def score(question):
            return SentenceScorer().scores(question, [sentence], [""], [""], np.array([0.6]), [(0, [])])[0]
        return score("Above what delay value is the delay reset to 1 millisecond?") - score(
            "Is the delay above the value reset to 1 millisecond?")

    assert shift("Default: 1 millisecond of delay.") == pytest.approx(-0.1)
    assert shift("A delay above 2147483647 is reset to 1 millisecond.") == pytest.approx(0.1)
    assert shift("A delay above any limit is reset to 1 millisecond.") == pytest.approx(-0.1)


def test_a_negated_question_wants_the_sentence_that_negates_the_same_thing():
    """Docs held-out p01: "What does console.clear() do when stdout is not a TTY?" quoted "When stdout is a TTY,
    calling console.clear() will attempt to clear the TTY." above "When stdout is not a TTY, this method does
    nothing.": the first is about the other case. The mirror of a negated sentence losing to an affirmed question."""
    sentences = ["When stdout is not a TTY, console.clear() does nothing.",
                 "When stdout is a TTY, console.clear() clears the screen.",
                 "console.clear() can vary across terminals."]

    def scores(question):
        return SentenceScorer().scores(question, sentences, [""] * 3, [""] * 3, np.array([0.6, 0.6, 0.6]),
                                       [(0, []), (1, []), (2, [])])

    agrees, opposite, neither = scores("What does console.clear() do when stdout is not a TTY?")
    # the same words affirmed: the negated sentence loses 0.1 there (``_denies``), and gains 0.1 here
    was_agrees, was_opposite, was_neither = scores("What does console.clear() do when stdout is a TTY?")
    assert agrees - was_agrees == pytest.approx(0.2) and opposite - was_opposite == pytest.approx(-0.1)
    assert neither == pytest.approx(was_neither)  # it names no TTY: no case either way
    assert agrees > opposite > was_agrees
