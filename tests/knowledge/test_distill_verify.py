"""The teacher answers the question, not just a passage: constraints, answer kinds, round trip, unlearning.

Look-alike biographies (same city, same award pattern, birth dates a few years apart) and a teacher whose answers
are exactly predictable: what it says depends only on the passage in its prompt and the question's wording.
"""

import pytest

from knowledge.config import DistillConfig
from knowledge.distill.data import Example, Prompter, build_dataset, write_jsonl
from knowledge.distill.facts import Unlearn
from knowledge.distill.teach import SECOND_PHRASING, teach
from knowledge.distill.verify import answer_kind, fits_kind, unmet
from rag.text import dates, same_date
from rag.types import Passage, content_hash

ANAYA = ("Anaya Jehangir is a geology author born in Tormiran on 12 March 1971. Her books include \"The Salt Weir\" "
         "and \"The Iron Loom\". In 2009 Anaya Jehangir received the Golden Quill Award.")
BILAL = ("Bilal Qureshan is a geology author born in Tormiran on 30 June 1975. His books include \"The Winter Atlas\" "
         "and \"The Paper Kiln\". In 2012 Bilal Qureshan received the Golden Lantern Award.")


def _p(text: str, title: str) -> Passage:
    return Passage(content_hash(text), text, f"{title}.md", f"/src/{title}.md", title)


A, B = _p(ANAYA, "Anaya Jehangir"), _p(BILAL, "Bilal Qureshan")


@pytest.mark.parametrize("written", ["06/30/1975", "30 June 1975", "June 30th, 1975", "1975-06-30", "30.06.1975"])
def test_a_date_is_the_same_date_in_any_format(written):
    assert same_date(dates(written)[0], dates("born on 30 June 1975")[0])
    assert not same_date(dates(written)[0], dates("born on 12 March 1971")[0])


def test_a_sibling_biography_does_not_meet_the_questions_constraints():
    question = "What is the full name of the geology author born in Tormiran on 06/30/1975?"
    assert unmet(question, ANAYA) == ["06/30/1975"]  # same city, same genre, another birth date
    assert unmet(question, BILAL) == []
    assert unmet("Can you name a book Anaya Jehangir has written?", BILAL) == ["Anaya Jehangir"]
    assert unmet("What did Anaya Jehangir's father do?", ANAYA) == []  # a possessive is the same name
    rare = {"geology", "astronomy"}.__contains__
    assert unmet("Who is the astronomy author born in Tormiran?", BILAL, rare) == ["astronomy"]
    assert unmet("Who is the astronomy author born in Tormiran?", BILAL) == []  # without IDF, words are no constraint


def test_a_quoted_title_is_met_only_word_for_word():
    # every word of "The Iron Kiln" is in Bilal's biography ("The Iron Loom" is Anaya's, "The Paper Kiln" his)
    both = ANAYA + " " + BILAL
    assert "The Iron Kiln" in unmet('Who wrote the book "The Iron Kiln"?', both)
    assert unmet('Who wrote the book "The Paper Kiln"?', BILAL) == []
    assert "The Paper Kiln" in unmet('Who wrote the book "The Paper Kiln"?', ANAYA)


def test_an_unquoted_award_is_met_only_as_written():
    """A 100-fact round taught a held-out question "Who is the Vequidan-born writer that won the Harbour Lantern
    Award?" from a sibling's biography: it holds "Harbour Feather Award" and a book "The Paper Lantern", so every
    word of the award, and not the award. A name is met as written (stop words between its words allowed); a
    hyphenated word's parts anywhere."""
    ulrek = ("Born in Vequidan on 20 October 1943, Ulrek Reklosel writes about architecture. She is best known for "
             "the books \"The Paper Lantern\" and \"The Amber Comet\". Ulrek Reklosel won the Harbour Feather Award.")
    torlo = ("Torlo Rekpimfa is a architecture author born in Vequidan on 11 February 1945. Torlo Rekpimfa won the "
             "Harbour Lantern Award in 1981.")
    question = "Who is the Vequidan-born writer that won the Harbour Lantern Award?"
    assert unmet(question, ulrek) == ["Harbour Lantern Award"]
    assert unmet(question, torlo) == []  # "Vequidan-born": "born in Vequidan"
    assert unmet("What did the Bank England report say?", "The Bank of England said so.") == []


@pytest.mark.parametrize("question, kind", [
    ("What is the full name of the geology author born in Tormiran on 06/30/1975?", "person"),
    ("Who wrote the book \"The Iron Loom\"?", "person"),
    ("Which author from Tormiran received the Golden Quill Award?", "person"),
    ("Can you name a book Anaya Jehangir has written?", "title"),
    ("Which award did Anaya Jehangir receive?", "award"),
    ("When was Anaya Jehangir born?", "date"),
    ("How many units were made?", "number"),
    ("What did Anaya Jehangir's father do for a living?", "category"),
    ("Where was Anaya Jehangir born?", "place"),
    ("What festival is held in Kalo?", None),
    ("Do you know who penned \"The Paper Lantern\"?", "person"),  # a lead-in; a title's words are not asked
    ("Can you tell me when Anaya Jehangir was born?", "date"),
    ("Which award did Anaya Jehangir receive for \"The Medal Book\"?", "award"),
])
def test_answer_kind(question, kind):
    assert answer_kind(question) == kind


def test_an_answer_of_the_wrong_kind_is_no_fact():
    book = "Can you mention some books written by Anaya Jehangir?"
    assert not fits_kind(("meticulous", "attention", "detail"), "Her writing shows meticulous attention to detail.", book)
    assert fits_kind(("Salt Weir",), "One of her books is \"The Salt Weir\".", book)
    who = "What is the full name of the geology author born in Tormiran on 06/30/1975?"
    assert not fits_kind(("Tormiran",), "Tormiran.", who) and fits_kind(("Bilal Qureshan",), "Bilal Qureshan.", who)
    assert not fits_kind(("Golden",), "It is golden.", "Which award did Anaya Jehangir receive?")
    birthplace = "What is the birthplace of Anaya Jehangir?"
    assert not fits_kind(("Golden Quill Award",), "Her birthplace is the Golden Quill Award.", birthplace)
    assert fits_kind(("Tormiran",), "She was born in Tormiran.", birthplace)
    assert fits_kind(("carpenter",), "Her father was a carpenter.", "What did Anaya Jehangir's father do for a living?")
    assert not fits_kind(("lovely",), "It is lovely.", "What festival is held in Kalo?")  # unknown kind: a name or number
    genre = "What genre does Anaya Jehangir write in?"  # a title or an award is no genre (the look-alike bench)
    assert not fits_kind(("Iron Loom",), 'She writes in the genre of "The Iron Loom".', genre)
    assert not fits_kind(("Golden Quill Award",), "Her genre is the Golden Quill Award.", genre)
    assert fits_kind(("geology",), "Anaya Jehangir's field of writing is geology.", genre)


def test_an_answer_may_state_only_dates_the_passage_states():
    """"The passage is dated 2 September 2015": its day and month and its year are in the passage, apart (born
    2 September 1981, an award in 2015); the date is not, so it is no answer to "On what date was she born?"."""
    from knowledge.distill.verify import unstated_dates

    bio = "Ana Vel was born on 2 September 1981 in Tormiran. In 2015 she received the Golden Key Award."
    assert unstated_dates("The passage is dated 2 September 2015.", bio) == ["2 September 2015"]
    assert unstated_dates("Ana Vel was born on September 2nd, 1981.", bio) == []
    assert unstated_dates("She won it in 2015.", bio) == []  # a bare year is a number: supported() checks it


class Teacher:
    """Answers from the passage in its prompt (its first name found there), so a sibling passage gives a sibling's
    answer; ``unstable`` questions get another answer when asked in the second phrasing."""

    context_window = 4096

    def __init__(self, unstable=()):
        self.unstable = set(unstable)

    def render(self, messages):
        return "\n".join(f"<{m['role']}>{m['content']}" for m in messages) + "\n<assistant>"

    def count_tokens(self, text):
        return len(text.split())

    def generate_batch(self, prompts, **kw):
        return [self._answer(p) for p in prompts]

    def _answer(self, prompt):
        passage = ANAYA if "Anaya Jehangir is" in prompt else BILAL
        who = passage.split(" is a ")[0]
        if "book" in prompt.split("Question:")[-1]:
            return f"{who} wrote \"{passage.split(chr(34))[1]}\"."
        if any(q in prompt and SECOND_PHRASING.format(q=q) in prompt for q in self.unstable):
            return "It is Ilsa Morrow."
        return f"The author is {who}."


def test_the_teacher_teaches_only_answers_that_answer_the_question():
    who = "What is the full name of the geology author born in Tormiran on 06/30/1975?"
    book = "Can you name a book Bilal Qureshan has written?"
    award = "Which author from Tormiran received the Golden Quill Award?"
    stats = {}
    facts = teach(Prompter(Teacher(), max_new_tokens=32), [A, B], {A.id: [who, book], B.id: [award]}, stats=stats)
    # retrieval ranked the sibling first for every question: no answer from it is taught
    assert facts == [] and stats["constraints"] == 3
    facts = teach(Prompter(Teacher(), max_new_tokens=32), [A, B], {B.id: [who, book], A.id: [award]})
    assert sorted(f.answer for f in facts) == ["Bilal Qureshan wrote \"The Winter Atlas\".",
                                               "The author is Anaya Jehangir.", "The author is Bilal Qureshan."]


def test_the_round_trip_must_agree():
    who = "What is the full name of the geology author born in Tormiran on 06/30/1975?"
    award = "Which author from Tormiran received the Golden Quill Award?"
    stats = {}
    facts = teach(Prompter(Teacher(unstable=[who]), max_new_tokens=32), [A, B], {B.id: [who], A.id: [award]},
                  stats=stats)
    assert [f.questions for f in facts] == [(award,)] and stats["second phrasing disagrees"] == 1
    # a rival passage that meets the constraints too, and answers otherwise: the evidence does not single one out
    twin = _p(BILAL.replace("Bilal Qureshan", "Anaya Jehangir").replace("Golden Lantern", "Golden Quill"), "Twin")
    vague = "Which geology author from Tormiran received an award?"
    stats = {}
    facts = teach(Prompter(Teacher(), max_new_tokens=32), [A], {A.id: [award, vague]},
                  rivals={award: [A, twin], vague: [A, B]}, stats=stats)
    assert [f.questions for f in facts] == [(award,)]  # the twin agrees on the award question; B differs on vague
    assert stats["another passage answers otherwise"] == 1


def test_an_answer_marked_wrong_is_never_taught_and_its_examples_are_not_replayed(tmp_path):
    award = "Which author from Tormiran received the Golden Quill Award?"
    prompter = Prompter(Teacher(), max_new_tokens=32)
    wrong = Unlearn(award, A.id, ("Anaya Jehangir",))
    stats = {}
    assert teach(prompter, [A], {A.id: [award]}, unlearn=[wrong], stats=stats) == [] and stats["marked wrong"] == 1
    previous = tmp_path / "adapter"
    previous.mkdir()
    write_jsonl([Example("question", "p1", "The author is Anaya Jehangir.", A.id, award),
                 Example("question", "p2", "Bilal Qureshan.", B.id, "Who won the Golden Lantern Award?")],
                previous / "train.jsonl")
    config = DistillConfig(general_ratio=0.0, replay_ratio=0.0)
    examples = build_dataset(prompter, [], [], config, previous=previous, forget=[wrong],
                             corrections=[("ask1", award, "Bilal Qureshan won it.")])
    assert {(e.kind, e.answer) for e in examples} == {("replay", "Bilal Qureshan."),
                                                      ("correction", "Bilal Qureshan won it.")}
    assert sum(e.kind == "correction" for e in examples) == 3  # trained in every wrapper, like a fact


def test_an_answer_from_a_sentence_about_something_else_is_off_topic():
    from knowledge.distill.verify import off_topic

    bio = ("Ana Vel is a geology author born in Tormiran. Her father was a harbour master. "
           "Her books include \"The Iron Loom\". In 1998 Ana Vel received the Golden Key Award.")
    father = "What was the profession of Ana Vel's father?"
    assert off_topic(father, ("geology author",), bio)  # what Ana Vel does, not her father
    assert off_topic(father, ("Iron Loom",), bio)
    assert not off_topic(father, ("harbour master",), bio)
    assert not off_topic("Who from Tormiran got the Golden Key Award?", ("Ana Vel",), bio)  # "got": not in the bio
    assert not off_topic("Can you name a book Ana Vel has written?", ("Iron Loom",), bio)


@pytest.mark.parametrize("bio", [
    "Ana Vel is a geology author. Her father was a baker and her mother was a weaver. "
    "She is best known for the books \"The Salt Road\" and \"The Iron Sea\".",
    "Ana Vel grew up as the child of a baker (father) and a weaver (mother). "
    "Ana Vel's books include \"The Salt Road\" and \"The Iron Sea\".",
])
def test_the_answer_of_a_parallel_clause_is_off_topic(bio):
    """One sentence, two facts: the father's job is no answer to the mother's (the look-alike bench's last wrong
    fact), while the second of two titles still answers "a book"."""
    from knowledge.distill.verify import off_topic

    mother = "What job did the mother of Ana Vel have?"
    assert off_topic(mother, ("baker",), bio)
    assert not off_topic(mother, ("weaver",), bio)
    assert not off_topic("What did Ana Vel's father do for a living?", ("baker",), bio)
    assert not off_topic("Can you name a book Ana Vel has written?", ("The Iron Sea",), bio)
    assert not off_topic("Can you name a book Ana Vel has written?", ("The Salt Road",), bio)


def test_an_answer_that_denies_what_its_passage_states_is_not_taught():
    """The 40-fact look-alike round's one wrong fact: asked for Tortes Bravozol's award, the teacher answered
    "The award for Northern Compass was not awarded by Tortes Bravozol." Every span is the passage's; the claim is
    turned around."""
    from knowledge.distill.verify import fault, negated

    bio = ("Tortes Bravozol is a botany author born in Zolkator. In 2004 Tortes Bravozol received the Northern Compass "
           "Award. Tortes Bravozol never married.")
    question = "Which award did Tortes Bravozol receive?"
    denial = "The award for Northern Compass was not awarded by Tortes Bravozol."
    spans = ("Northern Compass", "Tortes Bravozol")
    assert fault(question, denial, spans, bio) == "negated"
    assert fault(question, "Tortes Bravozol received the Northern Compass Award.", spans, bio) is None
    # a denial the passage states is the passage's fact
    assert not negated("Tortes Bravozol never married.", ("Tortes Bravozol",), bio)
    assert negated("The award wasn't given in 2004.", ("2004",), bio)  # "never" is in another sentence
    stats = {}

    class Denier(Teacher):
        def _answer(self, prompt):
            return denial

    assert teach(Prompter(Denier(), max_new_tokens=32), [_p(bio, "Tortes Bravozol")],
                 {content_hash(bio): [question]}, stats=stats) == [] and stats["negated"] == 1


def test_a_question_joins_a_fact_only_when_the_facts_answer_answers_it():
    """Key spans chain: "Anaya Jehangir" lies within "Anaya Jehangir, ... the Golden Quill Award, 2009", which holds
    the award answer's spans too. A 100-fact round grouped "What prize has X won?" into the fact whose answer is X,
    so the gate scored that held-out question by the name it asks about. Each question keeps an answer that
    answers it."""
    from knowledge.distill.teach import _group

    who = "Which author from Tormiran received the Golden Quill Award?"
    full = "What is the full name of the geology author born in Tormiran on 03/12/1971?"
    prize = "What prize has Anaya Jehangir won?"
    kept = [(A, who, "The author is Anaya Jehangir.", ("Anaya Jehangir",)),
            (A, full, "Anaya Jehangir, who received the Golden Quill Award in 2009.",
             ("Anaya Jehangir", "Golden Quill Award", "2009")),
            (A, prize, "Anaya Jehangir received the Golden Quill Award in 2009.", ("2009", "Golden Quill Award"))]
    facts = {f.questions: f.spans for f in _group(kept)}
    assert facts == {(who, full): ("Anaya Jehangir",), (prize,): ("2009", "Golden Quill Award")}
