"""A seeded bank of invented facts the base model cannot know: fictional devices, people and villages.

Each entity has 6 attributes with short answers (numbers, years, names, places). Every attribute has several
question phrasings, split into the phrasings users "ask" and unseen paraphrases kept for evaluation, and several
sentence templates; an entity is rendered as a prose document whose sentences are drawn from those templates.

    python bench/factbank.py --entities 30 --seed 0 --out facts/     # writes facts.jsonl + one .md per entity

``--bank lookalike`` makes the hard case instead (``make_lookalike_bank``): author biographies in families that
share a birth city, a genre and an award pattern, with birth dates a few years apart, so that retrieval's top
passage is often a sibling's. A third of the questions name the author by attributes ("the geology author born in
Tormiran on 06/30/1975"), dates are asked in other formats than the documents write them, answers include book
titles and awards, and the unseen paraphrases are human-style rewrites, not the gate's wrappers.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

SYLLABLES = ("ka", "lo", "ve", "mir", "dan", "sel", "tor", "qui", "bra", "nen", "zol", "fa", "rek", "ul", "pim",
             "gar", "shi", "vo", "len", "dra", "mu", "tes", "iro", "kal")
COLOURS = ("teal", "crimson", "amber", "violet", "olive", "maroon", "indigo", "ochre")
FIELDS = ("glaciology", "acoustics", "mycology", "cartography", "metallurgy", "astronomy", "botany", "optics")
FESTIVALS = ("Lantern", "Harvest", "Salt", "Kite", "Ember", "Tide", "Frost", "Bell")

# attribute -> (answer maker, asked phrasings, unseen phrasings, sentence templates); {n} = entity name
DEVICE = {
    "inventor": ("person", ["Who invented the {n}?", "Who created the {n}?", "Who was the inventor of the {n}?"],
                 ["Which person designed the {n}?", "The {n} was invented by whom?"],
                 ["The {n} was invented by {v}.", "{v} created the {n} after years of experiments."]),
    "year": ("year", ["In what year was the {n} first built?", "When was the {n} first built?",
                      "What year was the first {n} built?"],
             ["The first {n} was built in which year?", "When did the first {n} get built?"],
             ["The first {n} was built in {v}.", "Work on the first {n} was finished in {v}."]),
    "weight": ("kg", ["How much does the {n} weigh?", "What is the weight of the {n}?", "How heavy is the {n}?"],
               ["What does the {n} weigh?", "The {n} has what weight?"],
               ["The {n} weighs {v}.", "Fully assembled, the {n} has a weight of {v}."]),
    "town": ("place", ["In which town is the {n} manufactured?", "Where is the {n} made?",
                       "Which town makes the {n}?"],
             ["The {n} is produced in what town?", "Where are the {n} units manufactured?"],
             ["The {n} is manufactured in the town of {v}.", "Every {n} is made in {v}."]),
    "units": ("count", ["How many {n} units have been made?", "How many units of the {n} were produced?",
                        "What is the number of {n} units built so far?"],
              ["How many {n} machines exist?", "The {n} was produced in how many units?"],
              ["Only {v} units of the {n} have been made.", "So far {v} units of the {n} were produced."]),
    "colour": ("colour", ["What colour is the {n}?", "What colour is the {n} painted?",
                          "Which colour does the {n} have?"],
               ["The {n} is painted in which colour?", "What is the colour of the {n}?"],
               ["The {n} is painted {v}.", "Its casing gives the {n} a {v} colour."]),
}
PERSON = {
    "born": ("year", ["In what year was {n} born?", "When was {n} born?", "What is the birth year of {n}?"],
             ["{n} was born in which year?", "What year did {n} come into the world?"],
             ["{n} was born in {v}.", "Born in {v}, {n} grew up by the sea."]),
    "birthplace": ("place", ["Where was {n} born?", "In which town was {n} born?", "What is the birthplace of {n}?"],
                   ["{n} comes from which town?", "Which town is the birthplace of {n}?"],
                   ["{n} was born in the town of {v}.", "{n} spent a childhood in {v}, the town of birth."]),
    "field": ("field", ["What field did {n} study?", "What was {n}'s field of research?",
                        "Which science did {n} work in?"],
              ["In which discipline did {n} do research?", "{n} was a researcher in what field?"],
              ["{n} worked in {v} for forty years.", "{n} is known for research in {v}."]),
    "prize": ("prize", ["Which prize did {n} win?", "What award did {n} receive?", "What prize was given to {n}?"],
              ["{n} was awarded which prize?", "Name the award won by {n}."],
              ["{n} won the {v}.", "In later life {n} received the {v}."]),
    "books": ("count", ["How many books did {n} write?", "How many books were written by {n}?",
                        "What number of books did {n} publish?"],
              ["{n} published how many books?", "Count the books {n} wrote."],
              ["{n} wrote {v} books.", "Over a long career {n} published {v} books."]),
    "pet": ("pet", ["What was the name of {n}'s dog?", "What did {n} call the family dog?",
                    "What was {n}'s dog called?"],
            ["Which name did {n} give the dog?", "The dog of {n} had what name?"],
            ["{n} owned a dog named {v}.", "{n} walked a dog called {v} every morning."]),
}
VILLAGE = {
    "population": ("count", ["What is the population of {n}?", "How many people live in {n}?",
                             "How many residents does {n} have?"],
                   ["{n} has how many inhabitants?", "What number of people live in {n}?"],
                   ["{n} has a population of {v}.", "About {v} people live in {n}."]),
    "founded": ("year", ["When was {n} founded?", "In what year was {n} founded?", "What year was {n} established?"],
                ["{n} was founded in which year?", "What is the founding year of {n}?"],
                ["{n} was founded in {v}.", "Settlers established {n} in {v}."]),
    "river": ("river", ["Which river flows through {n}?", "What river runs through {n}?",
                        "What is the name of the river in {n}?"],
              ["{n} lies on which river?", "Name the river that passes through {n}."],
              ["The River {v} flows through {n}.", "{n} was built on the banks of the River {v}."]),
    "altitude": ("metres", ["At what altitude does {n} lie?", "How high above sea level is {n}?",
                            "What is the altitude of {n}?"],
                 ["{n} sits at what height above sea level?", "What is the elevation of {n}?"],
                 ["{n} lies at an altitude of {v}.", "The village of {n} sits {v} above sea level."]),
    "festival": ("festival", ["What festival is held in {n}?", "Which festival does {n} celebrate?",
                              "What is the name of the festival of {n}?"],
                 ["Which yearly festival takes place in {n}?", "{n} is famous for which festival?"],
                 ["Every summer {n} holds the {v}.", "{n} celebrates the {v} each year."]),
    "mayor": ("person", ["Who is the mayor of {n}?", "Who leads {n} as mayor?", "Who is {n}'s mayor?"],
              ["Which person is mayor of {n}?", "Name the mayor of {n}."],
              ["The mayor of {n} is {v}.", "{v} has served as mayor of {n} since the last election."]),
}
KINDS = {"device": DEVICE, "person": PERSON, "village": VILLAGE}


@dataclass(frozen=True)
class Fact:
    """One attribute of one entity: its answer, the phrasings users ask, the unseen paraphrases and the doc."""

    entity: str
    kind: str
    attribute: str
    answer: str
    asked: tuple[str, ...]
    unseen: tuple[str, ...]
    doc: str
    accept: tuple[str, ...] = ()  # other answers that are right too (a second book title); empty: only ``answer``
    by: str = "name"  # how the questions identify the entity: "name" or "attributes" (look-alike bank)


class Namer:
    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set()

    def word(self, parts: int = 3) -> str:
        while True:
            name = "".join(self.rng.choice(SYLLABLES) for _ in range(parts)).capitalize()
            if name not in self.used and len(name) >= 5:
                self.used.add(name)
                return name


def value(kind: str, rng: random.Random, names: Namer) -> str:
    """A short answer of the given kind."""
    if kind == "person":
        return f"{names.word(2)} {names.word(3)}"
    if kind == "year":
        return str(rng.randint(1712, 1989))
    if kind == "kg":
        return f"{rng.randint(12, 880)} kilograms"
    if kind == "count":
        return f"{rng.randint(13, 97) * 10 + rng.randint(1, 9):,}"
    if kind == "metres":
        return f"{rng.randint(120, 2400):,} metres"
    if kind in ("place", "river", "pet"):
        return names.word(3)
    if kind == "colour":
        return rng.choice(COLOURS)
    if kind == "field":
        return rng.choice(FIELDS)
    if kind == "prize":
        return f"{names.word(2)} Medal"
    if kind == "festival":
        return f"{rng.choice(FESTIVALS)} Festival"
    raise ValueError(f"unknown value kind {kind!r}")


def entity_name(kind: str, names: Namer) -> str:
    if kind == "device":
        return f"{names.word(2)} {names.word(2)[:4].upper()}-{len(names.used) * 7 % 90 + 10}"
    if kind == "person":
        return f"{names.word(2)} {names.word(3)}"
    return names.word(3)


def make_bank(entities: int, seed: int = 0) -> tuple[list[dict], list[Fact]]:
    """``entities`` documents (``{"name", "kind", "title", "text"}``) and their facts, reproducible by ``seed``."""
    rng = random.Random(seed)
    names = Namer(rng)
    docs, facts = [], []
    for i in range(entities):
        kind = ("device", "person", "village")[i % 3]
        name = entity_name(kind, names)
        sentences = []
        for attribute, (vkind, asked, unseen, templates) in KINDS[kind].items():
            v = value(vkind, rng, names)
            sentences.append(rng.choice(templates).format(n=name, v=v))
            facts.append(Fact(name, kind, attribute, v, tuple(q.format(n=name) for q in asked),
                              tuple(q.format(n=name) for q in unseen), name))
        rng.shuffle(sentences)
        intro = {"device": f"The {name} is a machine.", "person": f"{name} is a scientist.",
                 "village": f"{name} is a village."}[kind]
        docs.append({"name": name, "kind": kind, "title": name, "text": " ".join([intro] + sentences)})
    return docs, facts


# ---- the look-alike bank ------------------------------------------------------------------------------------------

GENRES = ("geology", "maritime history", "botany", "folk music", "astronomy", "architecture", "cookery", "mountaineering",
          "glassmaking", "beekeeping", "clockmaking", "weaving")
JOBS = ("baker", "ferry pilot", "schoolteacher", "pharmacist", "locksmith", "surveyor", "tailor", "harbour master",
        "carpenter", "veterinarian", "librarian", "printer", "midwife", "stonemason")
AWARD_HEADS = ("Golden", "Silver", "Amber", "Northern", "Meridian", "Harbour", "Crescent", "Copper")
AWARD_NOUNS = ("Quill", "Lantern", "Compass", "Anchor", "Feather", "Beacon", "Ink", "Key", "Laurel", "Sparrow")
TITLE_NOUNS = ("Orchard", "Lantern", "Tide", "Ledger", "Harbour", "Weir", "Kiln", "Meadow", "Bell", "Atlas", "Loom",
               "Quarry", "Archive", "Comet", "Glacier")
TITLE_ADJS = ("Salt", "Silent", "Hollow", "Copper", "Winter", "Paper", "Sunken", "Amber", "Distant", "Iron", "Glass")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")

# attribute -> (asked phrasings, human-style unseen paraphrases); {n} name, {g} genre, {c} city, {d} date in the
# question's own format, {y} birth year, {a} award, {t} a book title
AUTHOR_BY_NAME = {
    "birthplace": (["Where was {n} born?", "In which city was {n} born?", "What is the birthplace of {n}?"],
                   ["Do you know what city {n} comes from?", "{n} - born where, exactly?"]),
    "birthdate": (["When was {n} born?", "What is the date of birth of {n}?", "On what date was {n} born?"],
                  ["Any idea what {n}'s birthday is, day and year?", "{n} came into the world on which date?"]),
    "father": (["What was the profession of {n}'s father?", "What did {n}'s father do for a living?",
                "What job did the father of {n} have?"],
               ["How did {n}'s dad earn a living?", "{n}'s father worked as what?"]),
    "mother": (["What was the profession of {n}'s mother?", "What did {n}'s mother do for a living?",
                "What job did the mother of {n} have?"],
               ["How did {n}'s mum earn a living?", "{n}'s mother worked as what?"]),
    "book": (["Can you name a book {n} has written?", "What is one of the books written by {n}?",
              "Which book did {n} write?"],
             ["I'm looking for something {n} wrote - any title?", "Tell me the title of a novel by {n}."]),
    "award": (["Which award did {n} receive?", "What prize has {n} won?", "What award was given to {n}?"],
              ["Has {n} been honoured with any prize? Which one?", "{n} picked up which award?"]),
    "genre": (["What genre does {n} write in?", "What subject does {n} write about?",
               "What is {n}'s field of writing?"],
              ["What are {n}'s books mostly about?", "{n} is known for writing on what topic?"]),
}
AUTHOR_BY_ATTRIBUTES = {
    "who_date": (["What is the full name of the {g} author born in {c} on {d}?",
                  "Who is the {g} writer born in {c} on {d}?",
                  "Which author of {g} books was born in {c} on {d}?"],
                 ["Name the {g} author whose birthday is {d}, born in {c}.",
                  "Who's the writer from {c} born {d} who writes about {g}?"]),
    "who_award": (["Which author from {c} received the {a}?", "Who is the {c}-born writer that won the {a}?",
                   "What is the name of the author from {c} who was given the {a}?"],
                  ["The {a} went to which writer from {c}?", "Who from {c} got the {a}?"]),
    "who_book": (["Who wrote the book \"{t}\"?", "Who is the author of \"{t}\"?", "\"{t}\" was written by whom?"],
                 ["Whose book is \"{t}\"?", "Do you know who penned \"{t}\"?"]),
}


def _date_formats(day: int, month: int, year: int) -> tuple[str, str, str]:
    """The document's format and two others a person might ask in ("30 June 1975", "06/30/1975", "June 30th, 1975")."""
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    name = MONTH_NAMES[month - 1]
    return f"{day} {name} {year}", f"{month:02d}/{day:02d}/{year}", f"{name} {day}{suffix}, {year}"


def _author(rng: random.Random, names: Namer, family: dict, used_titles: set[str], used_awards: set[str]) -> dict:
    year = family["year"] + rng.randint(0, 5)
    day, month = rng.randint(1, 28), rng.randint(1, 12)
    while True:
        titles = tuple(f"The {rng.choice(TITLE_ADJS)} {rng.choice(TITLE_NOUNS)}" for _ in range(2))
        award = f"{family['award_head']} {rng.choice(AWARD_NOUNS)} Award"
        if titles[0] != titles[1] and not set(titles) & used_titles and award not in used_awards:
            break
    used_titles.update(titles)
    used_awards.add(award)
    father, mother = rng.sample(JOBS, 2)
    return {"name": f"{names.word(2)} {names.word(3)}", "year": year, "dates": _date_formats(day, month, year),
            "father": father, "mother": mother, "titles": titles, "award": award,
            "award_year": year + rng.randint(30, 45), "she": rng.random() < 0.5}


def _bio(a: dict, family: dict, rng: random.Random) -> str:
    """A short biography; every author's is written from the same few templates, as siblings' pages are."""
    n, pro, pos = a["name"], ("She" if a["she"] else "He"), ("her" if a["she"] else "his")
    t1, t2 = a["titles"]
    first = rng.choice([f"{n} is a {family['genre']} author born in {family['city']} on {a['dates'][0]}.",
                        f"Born in {family['city']} on {a['dates'][0]}, {n} writes about {family['genre']}."])
    parents = rng.choice([f"{pos.capitalize()} father was a {a['father']} and {pos} mother was a {a['mother']}.",
                          f"{n} grew up as the child of a {a['father']} (father) and a {a['mother']} (mother)."])
    books = rng.choice([f"{pro} is best known for the books \"{t1}\" and \"{t2}\".",
                        f"{n}'s books include \"{t1}\" and \"{t2}\"."])
    award = rng.choice([f"In {a['award_year']} {n} received the {a['award']}.",
                        f"{n} won the {a['award']} in {a['award_year']}."])
    return " ".join([first, parents, books, award])


def make_lookalike_bank(families: int = 10, per_family: int = 4, seed: int = 0) -> tuple[list[dict], list[Fact]]:
    """``families * per_family`` author biographies (look-alike families) and their facts, seeded."""
    rng = random.Random(seed)
    names = Namer(rng)
    docs, facts = [], []
    used_titles: set[str] = set()
    used_awards: set[str] = set()
    for f in range(families):
        family = {"city": names.word(3), "genre": GENRES[f % len(GENRES)], "year": rng.randint(1938, 1985),
                  "award_head": AWARD_HEADS[f % len(AWARD_HEADS)]}
        for _ in range(per_family):
            a = _author(rng, names, family, used_titles, used_awards)
            n = a["name"]
            docs.append({"name": n, "kind": "author", "title": n, "text": _bio(a, family, rng)})
            answers = {"birthplace": (family["city"], ()), "birthdate": (a["dates"][0], a["dates"][1:]),
                       "father": (a["father"], ()), "mother": (a["mother"], ()), "book": (a["titles"][0], a["titles"][1:]),
                       "award": (a["award"], ()), "genre": (family["genre"], ())}
            for attribute, (asked, unseen) in AUTHOR_BY_NAME.items():
                answer, accept = answers[attribute]
                facts.append(Fact(n, "author", attribute, answer, tuple(q.format(n=n) for q in asked),
                                  tuple(q.format(n=n) for q in unseen), n, accept, "name"))
            for attribute, (asked, unseen) in AUTHOR_BY_ATTRIBUTES.items():
                # each phrasing writes the date its own way: the document's format is never the only one asked
                fill = [{"g": family["genre"], "c": family["city"], "d": a["dates"][(i + 1) % 3], "a": a["award"],
                         "t": a["titles"][i % 2]} for i in range(len(asked) + len(unseen))]
                facts.append(Fact(n, "author", attribute, n, tuple(q.format(**fill[i]) for i, q in enumerate(asked)),
                                  tuple(q.format(**fill[len(asked) + i]) for i, q in enumerate(unseen)), n, (),
                                  "attributes"))
    return docs, facts


# ---- scoring against gold -----------------------------------------------------------------------------------------


def gold_spans(fact: Fact) -> tuple[str, ...]:
    """What a correct answer must contain: the number of a measured answer ("412" of "412 metres"), else the answer."""
    head = fact.answer.split()[0]
    return (head,) if head.replace(",", "").isdigit() else (fact.answer,)


def gold_correct(prediction: str, fact: Fact) -> bool:
    """True when ``prediction`` states the gold answer: a birth date in any format, a title or award by its words
    (the leading "The" may be dropped), any accepted answer, else the gold spans (normalised containment)."""
    from rag.text import contains, dates

    if fact.attribute == "birthdate":
        gold = dates(fact.answer)[0]
        return any(gold <= reading or reading <= gold for reading in dates(prediction))
    answers = (fact.answer, *fact.accept)
    if any(contains(prediction, a.removeprefix("The ")) for a in answers if fact.attribute in ("book", "award")):
        return True
    return any(contains(prediction, a) for a in answers[1:]) or all(contains(prediction, s) for s in gold_spans(fact))


LENT = ("book", "award", "birthdate", "who_date", "who_award", "who_book")  # values that identify one entity


def lent_value(prediction: str, fact: Fact, bank: list[Fact]) -> bool:
    """True when ``prediction`` states another entity's value of the same attribute (a name, title, award or birth
    date that belongs to someone else) and not this fact's own: the adapter lending a fact to the wrong entity."""
    if fact.attribute not in LENT or gold_correct(prediction, fact):
        return False
    return any(gold_correct(prediction, other) for other in bank
               if other.attribute == fact.attribute and other.entity != fact.entity)


def write_bank(docs: list[dict], facts: list[Fact], out: Path) -> None:
    """One Markdown file per entity plus ``facts.jsonl`` (the answer key)."""
    out.mkdir(parents=True, exist_ok=True)
    for d in docs:
        slug = d["name"].lower().replace(" ", "_").replace("-", "_")
        (out / f"{slug}.md").write_text(f"# {d['title']}\n\n{d['text']}\n", encoding="utf-8")
    with open(out / "facts.jsonl", "w", encoding="utf-8") as f:
        for fact in facts:
            f.write(json.dumps(asdict(fact), ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bank", choices=("invented", "lookalike"), default="invented")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.bank == "lookalike":
        docs, facts = make_lookalike_bank(max(1, args.entities // 4), 4, args.seed)
    else:
        docs, facts = make_bank(args.entities, args.seed)
    write_bank(docs, facts, Path(args.out))
    print(f"{len(docs)} documents, {len(facts)} facts -> {args.out}")


if __name__ == "__main__":
    main()
