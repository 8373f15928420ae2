"""A seeded bank of invented facts the base model cannot know: fictional devices, people and villages.

Each entity has 6 attributes with short answers (numbers, years, names, places). Every attribute has several
question phrasings, split into the phrasings users "ask" and unseen paraphrases kept for evaluation, and several
sentence templates; an entity is rendered as a prose document whose sentences are drawn from those templates.

    python bench/factbank.py --entities 30 --seed 0 --out facts/     # writes facts.jsonl + one .md per entity
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
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    docs, facts = make_bank(args.entities, args.seed)
    write_bank(docs, facts, Path(args.out))
    print(f"{len(docs)} documents, {len(facts)} facts -> {args.out}")


if __name__ == "__main__":
    main()
