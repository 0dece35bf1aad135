"""Synthetic item text (chapter 6): the grammar says what the hidden attributes are, in two disjoint halves."""

import dataclasses
import itertools
import re
import time

import numpy as np
import pandas as pd
import pytest

from recrl_lite.data import load_dataset
from recrl_lite.data.titles import (
    BUDGET_BELOW,
    HIGH_QUALITY_AT,
    PREMIUM_ABOVE,
    VOCABULARIES,
    generate_item_texts,
    grammar_words,
    price_tiers,
    tokenize,
)
from recrl_lite.envs import ECommerceConfig, ECommerceEnv

SPLIT_SLOTS = ("budget", "mid", "premium", "honest_quality", "plain", "hype", "hype_template", "hype_description",
               "honest_template", "honest_description")


def _catalogue(**kwargs):
    return ECommerceEnv(ECommerceConfig(**kwargs)).catalogue


@pytest.fixture(scope="module")
def default():
    return ECommerceEnv().catalogue


@pytest.fixture(scope="module")
def large():
    return _catalogue(n_items=2000)


def _is_split(slot):
    return slot.startswith("noun:") or slot in SPLIT_SLOTS


def _tokens(entries):
    """Tokens of words or templates, placeholders removed."""
    return {t for e in entries for t in tokenize(re.sub(r"\{[a-z_]+\}", " ", e))}


def _slot_tokens(vocabulary, *slots):
    words = grammar_words(vocabulary)
    return _tokens([e for s in slots for e in words[s]])


def _hype_tokens(vocabulary):
    return _slot_tokens(vocabulary, "hype", "hype_template", "hype_description")


def _has(text, tokens):
    return bool(set(tokenize(text)) & tokens)


def test_one_row_per_item_in_action_order(default):
    texts = generate_item_texts(default)
    assert list(texts.columns) == ["item_id", "title", "description"]
    assert texts["item_id"].dtype == np.int64 and pd.api.types.is_string_dtype(texts["title"])
    assert pd.api.types.is_string_dtype(texts["description"])
    np.testing.assert_array_equal(texts["item_id"], default.item_id)
    assert (texts["title"].str.len() > 10).all() and (texts["description"].str.len() > 10).all()


def test_deterministic_per_seed_and_seeds_differ(default):
    state = np.random.get_state()[1].copy()
    price = default.price.copy()
    first = generate_item_texts(default, seed=5, vocabulary="A")
    pd.testing.assert_frame_equal(first, generate_item_texts(default, seed=5, vocabulary="A"))
    other = generate_item_texts(default, seed=6, vocabulary="A")
    assert (first["title"] != other["title"]).mean() > 0.8
    assert (first["description"] != other["description"]).mean() > 0.5
    # its own generator: the global numpy state and the catalogue are untouched
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.testing.assert_array_equal(default.price, price)
    assert not generate_item_texts(default, seed=5, vocabulary="A").equals(generate_item_texts(default, seed=5, vocabulary="B"))


def test_halves_share_no_attribute_word_and_keep_the_distractors():
    a, b = grammar_words("A"), grammar_words("B")
    everything = grammar_words("all")
    assert a.keys() == b.keys() == everything.keys()
    for slot in everything:
        if _is_split(slot):
            assert set(a[slot]).isdisjoint(b[slot]) and set(a[slot]) | set(b[slot]) == set(everything[slot]), slot
        else:
            assert a[slot] == b[slot] == everything[slot], slot
    split_a = _slot_tokens("A", *[s for s in a if _is_split(s)])
    split_b = _slot_tokens("B", *[s for s in b if _is_split(s)])
    assert split_a.isdisjoint(split_b), split_a & split_b


def test_attribute_word_classes_do_not_overlap():
    """Each hidden attribute has its own words: no token says two things (or is also a distractor)."""
    words = grammar_words("all")
    classes = {}
    for slot, entries in words.items():
        if slot.startswith(("noun:", "budget", "mid", "premium", "honest_quality", "plain")):
            key = slot
        elif slot.startswith("hype"):
            key = "hype"
        elif slot.startswith("honest_"):
            key = "honest templates"
        else:
            key = "distractors"
        classes.setdefault(key, set()).update(_tokens(entries))
    assert len(classes) == 11 + 5 + 3
    for (k1, t1), (k2, t2) in itertools.combinations(classes.items(), 2):
        assert t1.isdisjoint(t2), (k1, k2, t1 & t2)


def test_each_half_keeps_enough_variety():
    for vocabulary in ("A", "B"):
        words = grammar_words(vocabulary)
        assert all(len(words[f"noun:{c}"]) >= 4 for c in ECommerceEnv().catalogue.category_names)
        assert len(words["noun:generic"]) >= 4
        assert len(words["hype_template"]) >= 3 and len(words["honest_template"]) >= 3
        assert len(words["hype_description"]) >= 3 and len(words["honest_description"]) >= 3
        assert min(len(words[s]) for s in ("budget", "premium", "honest_quality", "plain", "hype")) >= 4
    assert all(len(grammar_words()[f"noun:{c}"]) >= 8 for c in ECommerceEnv().catalogue.category_names)


@pytest.mark.parametrize("n_categories", [10, 15])
def test_generated_text_uses_only_its_own_half(n_categories):
    catalogue = _catalogue(n_items=1000, n_categories=n_categories)
    split = {v: _slot_tokens(v, *[s for s in grammar_words(v) if _is_split(s)]) for v in ("A", "B")}
    for mine, theirs in (("A", "B"), ("B", "A")):
        texts = generate_item_texts(catalogue, seed=1, vocabulary=mine)
        used = _tokens(texts["title"].tolist() + texts["description"].tolist())
        assert used.isdisjoint(split[theirs]), used & split[theirs]
        assert len(used & split[mine]) > 50


def test_the_same_seed_gives_the_same_distractors_in_both_halves(default):
    """A template shows some of the item's distractors; where both halves show one, it is the same."""
    a, b = (generate_item_texts(default, seed=2, vocabulary=v) for v in ("A", "B"))
    both = 0
    for slot in ("brand", "colour"):
        values = grammar_words()[slot]
        for column in ("title", "description"):
            for ta, tb in zip(a[column], b[column], strict=True):
                found_a = {v for v in values if re.search(rf"\b{re.escape(v)}\b", ta, re.IGNORECASE)}
                found_b = {v for v in values if re.search(rf"\b{re.escape(v)}\b", tb, re.IGNORECASE)}
                if found_a and found_b:
                    assert found_a == found_b, (ta, tb)
                    both += 1
    assert both > 30


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
def test_clickbait_titles_carry_hype_of_their_half_and_honest_ones_none(large, vocabulary):
    texts = generate_item_texts(large, seed=3, vocabulary=vocabulary)
    hype_mine, hype_any = _hype_tokens(vocabulary), _hype_tokens("all")
    praise = _slot_tokens("all", "honest_quality", "plain")
    for title, description, bait in zip(texts["title"], texts["description"], large.is_clickbait, strict=True):
        if bait:
            assert _has(title, hype_mine) and _has(description, hype_mine), title
            assert not _has(title, praise) and not _has(description, praise), title
        else:
            assert not _has(title, hype_any) and not _has(description, hype_any), title
            assert "!" not in title


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
def test_price_words_follow_the_price_tier(large, vocabulary):
    ratio = large.price / large.reference_price
    tier = price_tiers(large)
    np.testing.assert_array_equal(tier == "budget", ratio < BUDGET_BELOW)
    np.testing.assert_array_equal(tier == "premium", ratio > PREMIUM_ABOVE)
    assert 0.1 < (tier == "budget").mean() < 0.5 and 0.1 < (tier == "premium").mean() < 0.5
    texts = generate_item_texts(large, seed=4, vocabulary=vocabulary)
    for column in ("title", "description"):
        for name in ("budget", "premium", "mid"):
            words = _slot_tokens(vocabulary, name)
            says = np.array([_has(t, words) for t in texts[column]])
            if column == "description":
                says = says[~large.is_clickbait]  # clickbait descriptions say nothing about the item
                in_tier = (tier == name)[~large.is_clickbait]
            else:
                in_tier = tier == name
            if name == "mid":  # neutral word on about half the mid-tier items, never elsewhere
                assert not says[~in_tier].any() and 0.3 < says[in_tier].mean() < 0.7
            else:
                np.testing.assert_array_equal(says, in_tier)


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
def test_praise_only_for_high_quality_ordinary_items(large, vocabulary):
    texts = generate_item_texts(large, seed=5, vocabulary=vocabulary)
    high = ~large.is_clickbait & (large.quality >= HIGH_QUALITY_AT)
    plain = ~large.is_clickbait & (large.quality < HIGH_QUALITY_AT)
    praise, basic = _slot_tokens(vocabulary, "honest_quality"), _slot_tokens(vocabulary, "plain")
    for column in ("title", "description"):
        np.testing.assert_array_equal([_has(t, praise) for t in texts[column]], high)
        np.testing.assert_array_equal([_has(t, basic) for t in texts[column]], plain)


def test_every_title_names_a_product_of_its_category(large):
    texts = generate_item_texts(large, seed=6, vocabulary="B")
    words = grammar_words("B")
    nouns = {c: _slot_tokens("B", f"noun:{c}") for c in large.category_names}
    for title, c in zip(texts["title"], large.category, strict=True):
        name = large.category_names[c]
        tokens = set(tokenize(title))
        assert any(set(tokenize(n)) <= tokens for n in words[f"noun:{name}"]), title
        assert all(tokens.isdisjoint(nouns[o]) for o in large.category_names if o != name), title


def test_titles_are_unique_even_when_the_grammar_repeats_itself(default, large):
    for catalogue in (default, large):
        assert generate_item_texts(catalogue)["title"].is_unique
    # 300 clickbait items of one category and tier: short hype templates must repeat, then get a model number
    base = _catalogue(n_items=300, n_categories=1)
    same = dataclasses.replace(base, is_clickbait=np.ones(300, dtype=bool), price=np.full(300, base.reference_price))
    titles = generate_item_texts(same, vocabulary="A")["title"]
    assert titles.is_unique
    suffixed = titles.str.contains(r" – [A-Z]{2}-\d{3}$", regex=True)
    assert suffixed.sum() >= 10
    assert set(titles[suffixed].str.replace(r" – [A-Z]{2}-\d{3}$", "", regex=True)) <= set(titles[~suffixed])


def _template_regexes(vocabulary):
    """One regex per template: each placeholder accepts exactly the grammar's values for it."""
    words = grammar_words(vocabulary)

    def alt(*slots):
        values = sorted({v for s in slots for v in words[s]}, key=len, reverse=True)
        return "(?:" + "|".join(re.escape(v) for v in values) + ")"

    nouns = [s for s in words if s.startswith("noun:")]
    noun = rf"(?:{alt('line')}(?: \d+)? line )?{alt(*nouns)}"
    price = alt("budget", "mid", "premium")
    fill = {
        "noun": noun, "np": rf"(?:{price} )?{noun}", "adj": rf"(?:{price} )?{alt('honest_quality', 'plain')}",
        "hype": alt("hype"), "brand": alt("brand"), "colour": alt("colour"), "pack": alt("pack"),
        "material": alt(*[s for s in words if s.startswith("material:")]),
        "size": alt(*[s for s in words if s.startswith("size:")]), "model": r"[A-Z]{2}-\d{3}", "count": r"\d+",
    }

    def compile_(template):
        parts = re.split(r"\{([a-z_]+)\}", template)
        body = "".join(fill[p] if k % 2 else re.escape(p) for k, p in enumerate(parts))
        return re.compile(body + r"(?: – [A-Z]{2}-\d{3})?", re.IGNORECASE)

    return {kind: [compile_(t) for t in words[kind]] for kind in ("hype_template", "honest_template")}


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
def test_titles_follow_the_templates_and_use_many_of_them(default, vocabulary):
    regexes = _template_regexes(vocabulary)
    texts = generate_item_texts(default, seed=0, vocabulary=vocabulary)
    used = {"hype_template": set(), "honest_template": set()}
    for title, bait in zip(texts["title"], default.is_clickbait, strict=True):
        kind, other = ("hype_template", "honest_template") if bait else ("honest_template", "hype_template")
        matches = [k for k, r in enumerate(regexes[kind]) if r.fullmatch(title)]
        assert matches, title
        assert not any(r.fullmatch(title) for r in regexes[other]), title
        used[kind].update(matches)
    # 24 clickbait and 96 ordinary items spread over the templates of the half
    assert len(used["hype_template"]) >= min(5, len(regexes["hype_template"]))
    assert len(used["honest_template"]) >= len(regexes["honest_template"]) - 1


def test_text_is_not_a_lookup_key(large):
    texts = generate_item_texts(large, seed=7, vocabulary="A")
    words = grammar_words("A")
    tokens = [set(tokenize(t)) for t in texts["title"]]
    # every noun of the half is used by many items
    for c in large.category_names:
        for noun in words[f"noun:{c}"]:
            assert sum(set(tokenize(noun)) <= t for t in tokens) >= 10, noun
    # distractors are drawn independently of the hidden attributes: every brand and colour appears on
    # clickbait and on ordinary items, and showing a brand or a colour at all is not a clickbait cue
    for slot in ("brand", "colour"):
        shows = np.zeros(len(tokens), dtype=bool)
        for value in words[slot]:
            has = np.array([re.search(rf"\b{re.escape(value)}\b", t, re.IGNORECASE) is not None
                            for t in texts["title"]])
            assert has[large.is_clickbait].any() and has[~large.is_clickbait].any(), value
            shows |= has
        assert abs(shows[large.is_clickbait].mean() - shows[~large.is_clickbait].mean()) < 0.2, slot


def test_any_number_of_categories_gets_readable_line_names():
    catalogue = _catalogue(n_items=300, n_categories=15)
    assert catalogue.category_names[0] == "category_0"
    texts = generate_item_texts(catalogue, seed=0)
    generic = _slot_tokens("all", "noun:generic")
    lines = grammar_words()["line"]
    for title, c in zip(texts["title"], catalogue.category, strict=True):
        assert f"{lines[c]} line ".lower() in title.lower() and _has(title, generic), title
    many = _catalogue(n_items=200, n_categories=60)
    titles = generate_item_texts(many, seed=0)["title"]
    assert titles.is_unique
    assert titles[many.category == 30].str.contains(f"{lines[30 % len(lines)]} 2 line ", case=False).all()


def test_a_keyword_rule_on_the_hype_words_recovers_clickbait_exactly(default, large):
    """The signal is in the text: the grammar's hype words alone separate clickbait from honest titles."""
    hype = _hype_tokens("all")
    for catalogue in (default, large):
        titles = generate_item_texts(catalogue, seed=8)["title"]
        predicted = np.array([_has(t, hype) for t in titles])
        np.testing.assert_array_equal(predicted, catalogue.is_clickbait)


def test_bad_inputs_are_refused(default):
    with pytest.raises(ValueError, match=r"invalid vocabulary 'C': expected one of \['all', 'A', 'B'\]"):
        generate_item_texts(default, vocabulary="C")
    with pytest.raises(ValueError, match="vocabulary"):
        grammar_words("a")
    with pytest.raises(TypeError, match=r"(?s)invalid catalogue .*\(type DataFrame\): expected a recrl_lite Catalogue"):
        generate_item_texts(pd.DataFrame({"item_id": [1]}))
    with pytest.raises(TypeError, match="catalogue"):
        price_tiers("items")
    with pytest.raises(ValueError, match="seed.*-1"):
        generate_item_texts(default, seed=-1)
    for seed in (1.5, True, "0", None):
        with pytest.raises(TypeError, match="seed"):
            generate_item_texts(default, seed=seed)
    pd.testing.assert_frame_equal(generate_item_texts(default, seed=np.int64(3)), generate_item_texts(default, seed=3))


def test_tokenize_splits_hyphens_and_drops_numbers():
    assert tokenize("You won't believe: HIGH-END chef's knife, 20 cm – Élan KX-204!!") == [
        "you", "won", "believe", "high", "end", "chef", "knife", "cm", "élan", "kx"]


def test_a_thousand_items_take_under_50_ms():
    catalogue = _catalogue(n_items=1000)
    best = min(_timed(lambda: generate_item_texts(catalogue, seed=0)) for _ in range(5))
    assert best < 0.05, best


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_dataset_items_carry_the_titles(small_dataset, default):
    items = small_dataset.items
    assert list(items.columns) == ["item_id", "category", "price", "title"]
    assert pd.api.types.is_string_dtype(items["title"])
    expected = generate_item_texts(default, seed=ECommerceConfig().catalogue_seed)["title"]
    assert items["title"].tolist() == expected.tolist()


def test_awkward_titles_survive_the_csv_round_trip(small_dataset, tmp_path):
    awkward = ['Doctors hate this "kettle", really!!!', "Nordvik chef's knife, 20 cm – Maison Léa", "a,b,,c",
               "  leading and trailing spaces  ", 'quote " and comma, and é ü ñ – — …', "semi;colon\ttab"]
    items = small_dataset.items.copy()
    items["title"] = pd.Series([awkward[k % len(awkward)] for k in range(len(items))], dtype="str")
    dataset = dataclasses.replace(small_dataset, items=items)
    dataset.to_csv(tmp_path)
    loaded = load_dataset(tmp_path)
    pd.testing.assert_frame_equal(loaded.items, items)
    # and the grammar's own titles hold such characters
    generated = small_dataset.items["title"]
    for char in (",", "–", "!", "'"):
        assert generated.str.contains(char, regex=False).any(), char
    assert generated.map(lambda t: not t.isascii()).any()
