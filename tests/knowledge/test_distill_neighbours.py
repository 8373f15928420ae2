"""Look-alike questions: a taught question asked of a rival subject, trained to "I do not know." and gated."""

from knowledge.distill import gate
from knowledge.distill.data import GateItem
from knowledge.distill.facts import Fact
from knowledge.distill.neighbours import UNKNOWN, examples, neighbours, split, swap_subject
from rag.types import Passage, content_hash

ANAYA = ("Anaya Jehangir is a geology author born in Tormiran on 12 March 1971. Her books include \"The Salt Weir\" "
         "and \"The Iron Loom\". In 2009 Anaya Jehangir received the Golden Quill Award.")
BILAL = ("Bilal Qureshan is a geology author born in Tormiran on 30 June 1975. His books include \"The Winter Atlas\" "
         "and \"The Paper Kiln\". In 2012 Bilal Qureshan received the Golden Lantern Award.")
CORA = ("Cora Lindqvist is a botany author born in Essamar on 2 May 1969. Her books include \"The Glass Fern\". "
        "In 2004 Cora Lindqvist received the Silver Quill Award.")
DRUM = "Drum kilns were fired at 1,200 degrees in Tormiran from 1971."


def _p(text: str, title: str, doc: str | None = None) -> Passage:
    return Passage(content_hash(text), text, f"{doc or title}.md", f"/src/{doc or title}.md", title)


A, B, C = _p(ANAYA, "Anaya Jehangir"), _p(BILAL, "Bilal Qureshan"), _p(CORA, "Cora Lindqvist")
HEADING = _p(DRUM, "Kilns of the north")


def test_a_name_is_swapped_for_the_rivals_title():
    assert swap_subject("Can you name a book Bilal Qureshan has written?", B, A) == \
        "Can you name a book Anaya Jehangir has written?"
    assert swap_subject("What is Bilal Qureshan's birthday?", B, C) == "What is Cora Lindqvist's birthday?"
    # a heading is no subject to ask about
    assert swap_subject("Can you name a book Bilal Qureshan has written?", B, HEADING) is None


def test_a_date_is_swapped_only_for_a_rival_that_meets_the_rest():
    who = "What is the full name of the geology author born in Tormiran on 06/30/1975?"
    assert swap_subject(who, B, A) == "What is the full name of the geology author born in Tormiran on 12 March 1971?"
    assert swap_subject(who, B, C) is None  # born in Essamar, a botany author: not a look-alike of this question


def test_neighbours_skip_what_the_adapter_knows_and_the_facts_own_document():
    book = "Can you name a book Bilal Qureshan has written?"
    fact = Fact(B.id, (book, "Which books did Bilal Qureshan write?"), "He wrote \"The Winter Atlas\".",
                ("The Winter Atlas",), "")
    same_doc = _p("Bilal Qureshan taught geology in Tormiran.", "Bilal Qureshan teaching", doc="Bilal Qureshan")
    rivals = {book: [B, same_doc, A, C], "Which books did Bilal Qureshan write?": [B, C, A]}
    found = neighbours([fact], {B.id: B}, rivals, taught=set())
    assert [n.question for n in found] == ["Can you name a book Anaya Jehangir has written?",
                                           "Can you name a book Cora Lindqvist has written?",
                                           "Which books did Anaya Jehangir write?"]  # each rival once, then again
    assert [n.rival.id for n in neighbours([fact], {B.id: B}, rivals, taught={A.id})][:1] == [C.id]
    # rivals of another question that ranked the fact's passage first are look-alikes too
    other = "Who wrote The Winter Atlas?"
    assert {n.rival.id for n in neighbours([fact], {B.id: B}, {other: [B, C]}, set(), asked={B.id: [other]})} == {C.id}
    train, held = split(found)
    assert [n.question for n in held] == ["Can you name a book Cora Lindqvist has written?"]
    assert {e.answer for e in examples(Prompter(), train)} == {UNKNOWN}


def test_the_gate_counts_a_neighbour_right_when_it_does_not_lend_the_fact():
    item = GateItem(gate.NEIGHBOUR, "p", ("The Winter Atlas",))
    fact_item = GateItem("heldout", "q", ("The Winter Atlas",))
    assert gate.grade([item, item, fact_item], ["She wrote The Winter Atlas.", UNKNOWN, "The Winter Atlas."]) == \
        [False, True, True]


class Prompter:
    """Renders a closed-book prompt as the question itself (what ``examples`` needs of ``data.Prompter``)."""

    def closed(self, question: str) -> str:
        return question



def test_an_adapter_that_lends_its_fact_to_look_alikes_is_refused():
    from knowledge.config import DistillConfig

    learnt = gate.GroupResult(12, 0.0, 0.75, 9, 0)
    ok, _ = gate.decide({"heldout": learnt, gate.NEIGHBOUR: gate.GroupResult(12, 1.0, 1.0, 0, 0)}, DistillConfig())
    refused, reason = gate.decide({"heldout": learnt, gate.NEIGHBOUR: gate.GroupResult(12, 1.0, 0.5, 0, 6)},
                                  DistillConfig())
    assert ok and not refused and "neighbour fell 1.000 -> 0.500" in reason


def test_unguarded_a_few_lent_look_alike_answers_refuse_the_round():
    """With ``generation.adapter_subjects`` off every closed-book question reaches the adapter: 2 of 3 look-alike
    answers lent refuse the round although 3 items prove nothing significant; guarded, they do not."""
    from knowledge.config import DistillConfig

    learnt = gate.GroupResult(12, 0.0, 0.75, 9, 0)
    few = {"heldout": learnt, gate.NEIGHBOUR: gate.GroupResult(3, 1.0, 0.333, 0, 2)}
    assert gate.decide(few, DistillConfig(), guarded=True)[0]
    refused, reason = gate.decide(few, DistillConfig(), guarded=False)
    assert not refused and "neighbour fell" in reason
    kept = {"heldout": learnt, gate.NEIGHBOUR: gate.GroupResult(3, 1.0, 1.0, 0, 0)}
    assert gate.decide(kept, DistillConfig(), guarded=False)[0]
