r"""Synthetic item text: titles and short descriptions written from each item's hidden attributes.

Introduced in chapter 6 ("Large models in the loop"), where a frozen pretrained sentence encoder
(all-MiniLM-L6-v2; Reimers and Gurevych, 2019) embeds item titles and an agent must generalise to
items it has never recommended from their text alone.

**The text is synthetic.** A small seeded grammar writes it from the simulator's hidden attributes
(:class:`~recrl_lite.envs.ecommerce.Catalogue`: category, price, quality, clickbait). It still tests
the real mechanism: every word list and template list is split into two disjoint halves, ``"A"`` and
``"B"``, so a model trained on items worded with half A meets items worded with words it has never
seen. A bag-of-words model has nothing to go on there; a frozen pretrained encoder can still map
"affordable sturdy keyboard" near "budget durable headphones", because it learned from real text
that those words mean similar things. That mapping of unseen wording to the right region is what
the chapter measures.

What the text says (thresholds relative to ``catalogue.reference_price``, the median price):

==============  =======================================  ============================================
attribute       rule                                     words (slot of :func:`grammar_words`)
==============  =======================================  ============================================
category        always: a product noun of the category   ``noun:<category>`` (>= 8 per named category;
                                                         ``category_k`` gets ``noun:generic`` plus a
                                                         line name, ``"Cobalt line"``)
price tier      budget: price < 0.6 x reference          ``budget`` (always in the title)
                mid: otherwise                           ``mid`` (neutral, in half the titles) or none
                premium: price > 1.6 x reference         ``premium`` (always in the title)
quality         ordinary item with quality >= 1.35       ``honest_quality`` ("durable", "sturdy", ...)
                other ordinary items                     ``plain`` ("basic", "everyday", ...)
clickbait       ``is_clickbait``                         ``hype``, ``hype_template``,
                                                         ``hype_description``: hype, capitals, "!!!",
                                                         fake urgency, no quality words
==============  =======================================  ============================================

Ordinary items read like honest listings (``honest_template``, ``honest_description``). Both kinds
carry distractor attributes drawn independently of the hidden ones (``brand``, ``colour``,
``material:<category>``, ``size:<category>``, ``pack``, a model number such as ``"KX-204"``), so
the text is not a lookup key: only the attribute words carry signal. The distractor lists (and the
line names) are shared by both halves; every other list is split by alternate entries, and the
halves share no word (:func:`tokenize`, which also splits hyphenated words). Titles are unique
within a catalogue: a repeat gets a fresh model number appended.

The same seed gives the same draws in every vocabulary, so item *i* worded with half A and with half
B has the same brand, colour, material and size (each template shows some of them); the attribute
words and the templates differ.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from recrl_lite.envs.ecommerce import Catalogue
from recrl_lite.errors import check_int, invalid, invalid_type

VOCABULARIES = ("all", "A", "B")

BUDGET_BELOW = 0.6
"""An item is budget when its price is below this multiple of the catalogue's reference price."""
PREMIUM_ABOVE = 1.6
"""An item is premium when its price is above this multiple of the reference price."""
HIGH_QUALITY_AT = 1.35
"""An ordinary item with at least this quality is described with honest praise."""

# ---------------------------------------------------------------------------- word lists
# Each split list is ordered so that alternate entries (A = even, B = odd) give two halves of
# similar meaning and disjoint words.

_NOUNS: dict[str, tuple[str, ...]] = {
    "electronics": ("headphones", "charger", "speaker", "webcam", "earbuds", "power bank", "soundbar",
                    "keyboard", "router", "monitor"),
    "books": ("novel", "cookbook", "paperback", "hardcover", "biography", "atlas", "thriller", "anthology",
              "textbook", "memoir"),
    "fashion": ("jacket", "sneakers", "scarf", "hoodie", "jeans", "dress", "sweater", "handbag", "boots",
                "blouse"),
    "home": ("chef's knife", "frying pan", "duvet", "table lamp", "cushion", "kettle", "bath towel",
             "storage box", "curtains", "doormat"),
    "beauty": ("moisturiser", "lipstick", "shampoo", "face serum", "perfume", "hair dryer", "nail polish",
               "sunscreen", "mascara", "body lotion"),
    "sports": ("yoga mat", "dumbbells", "running shoes", "tennis racket", "water bottle", "football",
               "cycling helmet", "resistance bands", "skipping rope", "gym bag"),
    "toys": ("building blocks", "jigsaw puzzle", "plush bear", "doll", "board game", "kite", "action figure",
             "rocking horse", "puppet", "marbles"),
    "grocery": ("coffee beans", "olive oil", "dark chocolate", "herbal tea", "pasta", "honey", "granola",
                "basmati rice", "peanut butter", "spice mix"),
    "garden": ("garden hose", "pruning shears", "watering can", "planter", "lawn mower", "wheelbarrow",
               "bird feeder", "rake", "trowel", "hedge trimmer"),
    "automotive": ("car wax", "phone mount", "tyre inflator", "dash cam", "seat covers", "jump starter",
                   "wiper blades", "ice scraper", "tyre pressure gauge", "steering wheel cover"),
    "generic": ("gadget", "accessory", "kit", "bundle", "module", "device", "widget", "organiser", "refill",
                "gizmo"),
}

_SPLIT: dict[str, tuple[str, ...]] = {
    "budget": ("budget", "affordable", "value", "economy", "cheap", "low-cost", "bargain", "inexpensive"),
    "mid": ("mid-range", "reasonable", "fairly priced", "midmarket"),
    "premium": ("premium", "luxury", "high-end", "deluxe", "designer", "upscale", "flagship", "prestige"),
    "honest_quality": ("durable", "long-lasting", "well-made", "sturdy", "top-rated", "reliable", "robust",
                       "dependable", "highly rated", "solid", "expertly crafted", "hard-wearing"),
    "plain": ("basic", "simple", "everyday", "standard", "plain", "no-frills", "ordinary", "classic"),
    "hype": ("INSANE", "WOW", "UNREAL", "UNBELIEVABLE", "MIND-BLOWING", "JAW-DROPPING", "CRAZY", "EPIC",
             "MUST-HAVE", "MIRACLE", "VIRAL", "OMG"),
    # {np} is the price word (if any) and the noun; clickbait may shout it in capitals
    "hype_template": (
        "You won't believe what our {brand} {np} does!!",
        "Doctors hate this {material} {np}",
        "SHOCKING {colour} {np} deal – 90% OFF",
        "{brand} {np} PRICE CRASH!!! {hype}",
        "{hype}!!! The {size} {np} that will change your life",
        "Why did nobody mention this {colour} {np}?!",
        "LAST CHANCE: {brand} {colour} {np} almost sold out!!!",
        "HURRY!!! {hype} {colour} {np} selling fast, {pack}",
        "Only {count} left!!! {hype} {colour} {np}, {pack}",
        "{hype}: {brand} {np} stuns experts",
        "{hype} {brand} {np} everyone is talking about!!",
        'Celebrities call this {brand} {np} "{hype}"!!!',
    ),
    "hype_description": (
        "Limited stock!!! Click now before it's gone",
        "Hurry!!! Supplies vanishing fast, order immediately",
        "Everyone wants one. Don't miss out!!!",
        "Thousands snapped up!! Grab yours tonight",
        "{hype} offer, today only!!! Tap to see more",
        "{hype} {noun} secret revealed inside!!!",
    ),
    # {adj} is the price word (if any) and the quality word
    "honest_template": (
        "{brand} {adj} {noun}, {colour}",
        "{adj} {noun} by {brand}",
        "{adj} {material} {noun} – {size}",
        "{brand} {adj} {noun} – {material}, {size}",
        "{brand} {model} {adj} {noun}, {colour}",
        "{colour} {adj} {noun}, {size}",
        "{adj} {noun} ({pack}, {size})",
        "{adj} {noun} – {pack}, {material}",
        "{brand} {adj} {noun} in {colour}",
        "{brand} {model}: {adj} {colour} {noun}",
    ),
    "honest_description": (
        "{adj} {noun} from {brand}. Material: {material}. Colour: {colour}.",
        "{adj} {noun} by {brand}; {material} build, {size}.",
        "{adj} {noun}, {material}, {size}. Model {model}.",
        "{brand} {model}: {adj} {noun}, {colour}, {pack}.",
        "{brand} {noun} in {colour}, {pack}; {adj}, {material} finish.",
        "Specs: {material}, {size}, {colour}; {adj} {noun}.",
    ),
}

# Distractors: drawn independently of the hidden attributes, shared by both halves.
_SHARED: dict[str, tuple[str, ...]] = {
    "brand": ("Nordvik", "Maison Léa", "Kestrel & Co", "Tidewell", "Brightfield", "Oakhaven", "Lumora",
              "Pinecrest", "Solenne", "Halvorsen", "Corvana", "Élan Studio", "Fernwick", "Quillon", "Marlowe",
              "Zenbury"),
    "colour": ("black", "white", "navy", "charcoal", "sand", "red", "teal", "graphite", "ivory", "mustard",
               "burgundy", "sky blue"),
    "pack": ("single", "pack of 2", "pack of 3", "set of 4", "twin pack", "bulk pack of 6"),
    "line": ("Aurora", "Birch", "Cobalt", "Dune", "Ember", "Fjord", "Glacier", "Harbour", "Iris", "Juniper",
             "Kelp", "Lumen", "Meadow", "Nimbus", "Orchid", "Pebble", "Quartz", "Ridge", "Solstice", "Tundra",
             "Umbra", "Vale", "Willow", "Zephyr"),
}
_MATERIALS: dict[str, tuple[str, ...]] = {
    "electronics": ("aluminium", "matte plastic", "recycled plastic", "brushed metal"),
    "books": ("recycled paper", "cloth-bound", "gloss laminate", "large print"),
    "fashion": ("organic cotton", "merino wool", "recycled polyester", "leather"),
    "home": ("stainless-steel", "ceramic", "oak", "linen", "cast iron"),
    "beauty": ("vegan formula", "fragrance-free", "aloe vera", "shea"),
    "sports": ("neoprene", "TPE foam", "carbon fibre", "breathable mesh"),
    "toys": ("wooden", "BPA-free plastic", "soft fleece", "cardboard"),
    "grocery": ("organic", "fair-trade", "gluten-free", "cold-pressed"),
    "garden": ("galvanised steel", "recycled plastic", "FSC wood", "weatherproof resin"),
    "automotive": ("rubber", "silicone", "ABS plastic", "microfibre"),
    "generic": ("recycled", "aluminium", "cotton", "wood"),
}
_SIZES: dict[str, tuple[str, ...]] = {
    "electronics": ("10 W", "30 W", "1 m cable", "2 m cable", "USB-C"),
    "books": ("240 pages", "320 pages", "512 pages", "pocket format"),
    "fashion": ("size S", "size M", "size L", "XL"),
    "home": ("20 cm", "28 cm", "1.7 l", "double", "king size"),
    "beauty": ("30 ml", "50 ml", "100 ml", "250 ml"),
    "sports": ("4 kg", "6 mm", "750 ml", "size 5"),
    "toys": ("ages 3+", "ages 6+", "500 pieces", "1000 pieces"),
    "grocery": ("250 g", "500 g", "1 kg", "750 ml"),
    "garden": ("15 m", "25 m", "40 cm", "60 l"),
    "automotive": ("12 V", "universal fit", "55 cm", "65 cm"),
    "generic": ("small", "medium", "large", "compact"),
}
_MODEL_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"  # consonants only, so a model code never spells a word
_COUNTS = ("2", "3", "5", "7")


def _half(words: tuple[str, ...], vocabulary: str) -> tuple[str, ...]:
    return words if vocabulary == "all" else words[0::2] if vocabulary == "A" else words[1::2]


def _check_vocabulary(vocabulary: object) -> str:
    if not isinstance(vocabulary, str) or vocabulary not in VOCABULARIES:
        raise invalid("vocabulary", vocabulary, f"one of {list(VOCABULARIES)}")
    return vocabulary


def grammar_words(vocabulary: str = "all") -> dict[str, tuple[str, ...]]:
    """The grammar's word and template lists by slot, as used for ``vocabulary`` ("all", "A" or "B").

    Split slots (halved by alternate entries): ``noun:<category>`` (the ten built-in categories and
    ``noun:generic``), ``budget``, ``mid``, ``premium``, ``honest_quality``, ``plain``, ``hype``,
    ``hype_template``, ``hype_description``, ``honest_template``, ``honest_description``. Shared
    distractor slots (the same in every half): ``brand``, ``colour``, ``pack``, ``line``,
    ``material:<category>``, ``size:<category>``. Templates hold ``{placeholders}``.
    """
    vocabulary = _check_vocabulary(vocabulary)
    words: dict[str, tuple[str, ...]] = {f"noun:{c}": _half(n, vocabulary) for c, n in _NOUNS.items()}
    words.update({slot: _half(w, vocabulary) for slot, w in _SPLIT.items()})
    words.update(_SHARED)
    words.update({f"material:{c}": m for c, m in _MATERIALS.items()})
    words.update({f"size:{c}": s for c, s in _SIZES.items()})
    return words


_TOKEN = re.compile(r"[^\W\d_]+")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens of ``text``: runs of letters (hyphens, apostrophes and digits split
    them), at least two letters long. The halves A and B share no token of their attribute words."""
    return [t for t in _TOKEN.findall(text.lower()) if len(t) >= 2]


def price_tiers(catalogue: Catalogue) -> np.ndarray:
    """Each item's price tier, ``"budget"``, ``"mid"`` or ``"premium"`` (thresholds above)."""
    if not isinstance(catalogue, Catalogue):
        raise invalid_type("catalogue", catalogue, "a recrl_lite Catalogue")
    ratio = np.asarray(catalogue.price, dtype=np.float64) / catalogue.reference_price
    return np.where(ratio < BUDGET_BELOW, "budget", np.where(ratio > PREMIUM_ABOVE, "premium", "mid"))


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def generate_item_texts(catalogue: Catalogue, seed: int = 0, vocabulary: str = "all") -> pd.DataFrame:
    """A title and a short description for every item, written from its hidden attributes.

    Returns columns ``item_id`` (int64), ``title`` (str) and ``description`` (str), one row per item
    in action order. Deterministic per (``catalogue``, ``seed``, ``vocabulary``); the grammar draws
    from its own ``np.random.default_rng(seed)`` and never touches the simulator's generators.
    """
    if not isinstance(catalogue, Catalogue):
        raise invalid_type("catalogue", catalogue, "a recrl_lite Catalogue")
    seed = check_int("seed", seed, low=0)
    words = grammar_words(vocabulary)
    n = catalogue.n_items
    rng = np.random.default_rng(int(seed))

    tiers = price_tiers(catalogue)
    high = ~np.asarray(catalogue.is_clickbait, dtype=bool) & (np.asarray(catalogue.quality) >= HIGH_QUALITY_AT)
    names = catalogue.category_names
    known = [name if name in _MATERIALS else "generic" for name in names]

    # One uniform draw per item and slot, made up front so every vocabulary sees the same draws.
    columns = ("template", "noun", "title_price", "title_quality", "mid_word", "shout", "hype", "desc_hype",
               "brand", "colour", "material", "size", "pack", "count", "desc_template", "desc_price",
               "desc_quality", "model_a", "model_b")
    u = dict(zip(columns, rng.random((len(columns), n)), strict=True))
    model_digits = rng.integers(100, 1000, n)

    def pick(options: tuple[str, ...], slot: str, i: int) -> str:
        return options[int(u[slot][i] * len(options))]

    def model(i: int) -> str:
        return (_MODEL_LETTERS[int(u["model_a"][i] * len(_MODEL_LETTERS))]
                + _MODEL_LETTERS[int(u["model_b"][i] * len(_MODEL_LETTERS))]
                + f"-{model_digits[i]}")

    def price_word(i: int, slot: str) -> str:
        tier = str(tiers[i])
        if tier == "mid":  # neutral word on half the mid-tier items, none on the rest
            return pick(words["mid"], slot, i) if u["mid_word"][i] < 0.5 else ""
        return pick(words[tier], slot, i)

    titles: list[str] = []
    descriptions: list[str] = []
    seen: set[str] = set()
    for i in range(n):
        c = int(catalogue.category[i])
        family = known[c]
        noun = pick(words[f"noun:{family}"], "noun", i)
        if family == "generic":  # category_k: a readable line name says which category
            line = _SHARED["line"][c % len(_SHARED["line"])] + (f" {c // len(_SHARED['line']) + 1}"
                                                                 if c >= len(_SHARED["line"]) else "")
            noun = f"{line} line {noun}"
        fields = {
            "noun": noun,
            "brand": pick(_SHARED["brand"], "brand", i),
            "colour": pick(_SHARED["colour"], "colour", i),
            "material": pick(_MATERIALS[family], "material", i),
            "size": pick(_SIZES[family], "size", i),
            "pack": pick(_SHARED["pack"], "pack", i),
            "model": model(i),
            "count": pick(_COUNTS, "count", i),
        }
        if catalogue.is_clickbait[i]:
            np_ = " ".join(w for w in (price_word(i, "title_price"), noun) if w)
            fields |= {"np": np_.upper() if u["shout"][i] < 0.3 else np_, "hype": pick(words["hype"], "hype", i)}
            title = pick(words["hype_template"], "template", i).format(**fields)
            fields["hype"] = pick(words["hype"], "desc_hype", i)
            description = pick(words["hype_description"], "desc_template", i).format(**fields)
        else:
            quality = words["honest_quality" if high[i] else "plain"]
            title_adj = " ".join(w for w in (price_word(i, "title_price"), pick(quality, "title_quality", i)) if w)
            desc_adj = " ".join(w for w in (price_word(i, "desc_price"), pick(quality, "desc_quality", i)) if w)
            title = pick(words["honest_template"], "template", i).format(**fields, adj=title_adj)
            description = pick(words["honest_description"], "desc_template", i).format(**fields, adj=desc_adj)
        title = base = _capitalise(title)
        while title in seen:  # a repeat gets a fresh model number (drawn after all the per-item draws)
            a, b, digits = rng.integers(0, len(_MODEL_LETTERS), 2).tolist() + [int(rng.integers(100, 1000))]
            title = f"{base} – {_MODEL_LETTERS[a]}{_MODEL_LETTERS[b]}-{digits}"
        seen.add(title)
        titles.append(title)
        descriptions.append(_capitalise(description))

    return pd.DataFrame({
        "item_id": np.asarray(catalogue.item_id).astype(np.int64),
        "title": pd.Series(titles, dtype="str"),
        "description": pd.Series(descriptions, dtype="str"),
    })


