"""Automatic answers to shoppers' questions, from what the shop knows and nothing else.

``answer(question, pinned, knowledge)`` returns an ``Answer`` when the question is one the
shop's own data settles: the live stock or price of a product (its variants picked from the
sizes and colours the question names), a product fact (material, fit, care, what is in the
box, any key the shop set), a shop policy (shipping, returns, payment), or a question a
moderator already answered (the same question, reworded, about the same product). Anything
else, or anything the data does not say, returns None and the question goes to the
moderators, with ``drafts(...)``: the best facts and earlier answers to start a reply from.

The technique is rules over normalised words, with rapidfuzz for typos (a shopper's "avaliable"
and "matrial" are still "available" and "material") and for reworded repeats: precision
comes first, so a rule answers only when the question asks one thing it knows how to read,
and names nothing (a country, a payment method, a date) that the data is silent on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from core.currency import exponent

# Where an automatic answer comes from (shown beside it: "from product facts").
LIVE_STOCK = "live stock"
LIVE_PRICE = "live price"
PRODUCT_FACTS = "product facts"
SHOP_POLICY = "shop policy"
EARLIER_ANSWER = "earlier answer"
SOURCES = (LIVE_STOCK, LIVE_PRICE, PRODUCT_FACTS, SHOP_POLICY, EARLIER_ANSWER)

REPEAT_SCORE = 80  # two questions' content words this alike ask the same thing
DRAFT_SCORE = 40
LISTED = 8  # variants an answer lists


@dataclass(frozen=True)
class VariantFacts:
    sku: str
    attributes: Mapping[str, str]
    price_minor: int
    stock: int
    deal_price_minor: int | None = None  # while a deal on it runs


@dataclass(frozen=True)
class ProductFacts:
    name: str
    variants: tuple[VariantFacts, ...] = ()
    description: str = ""
    facts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PastAnswer:
    question: str
    answer: str
    product: str | None = None  # the product it was about (pinned when asked)


@dataclass(frozen=True)
class Knowledge:
    currency: str
    products: tuple[ProductFacts, ...] = ()
    policies: Mapping[str, str] = field(default_factory=dict)
    answered: tuple[PastAnswer, ...] = ()


@dataclass(frozen=True)
class Answer:
    text: str
    source: str  # one of SOURCES

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "source": self.source}


@dataclass(frozen=True)
class Draft:
    text: str
    source: str
    score: float

    def to_json(self) -> dict[str, str | float]:
        return {"text": self.text, "source": self.source, "score": round(self.score, 1)}


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# -- words ----------------------------------------------------------------------------------

SLANG = {
    "u": "you",
    "ur": "your",
    "r": "are",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "avail": "available",
    "avl": "available",
    "instock": "in stock",
    "qty": "quantity",
    "sz": "size",
    "szs": "sizes",
    "colour": "color",
    "colours": "colors",
    "gonna": "going to",
    "wanna": "want to",
    "whats": "what is",
    "wheres": "where is",
    "hows": "how is",
    "dont": "do not",
    "doesnt": "does not",
    "isnt": "is not",
    "arent": "are not",
    "cant": "can not",
    "wont": "will not",
    "im": "i am",
    "itll": "it will",
    "theres": "there is",
    "yall": "you",
    "smol": "small",
    "tts": "true to size",
    "rn": "right now",
    "pcs": "pieces",
    "pc": "piece",
    "xtra": "extra",
    "lg": "large",
    "med": "medium",
    "sm": "small",
    "ship": "shipping",
    "ships": "shipping",
    "shipped": "shipping",
    "deliver": "delivery",
    "delivered": "delivery",
    "cheaper": "discount",
    "offer": "deal",
    "sale": "deal",
    "promo": "deal",
}
SIZE_WORDS = {
    "xxs": "xxs",
    "xs": "xs",
    "s": "s",
    "small": "s",
    "m": "m",
    "medium": "m",
    "l": "l",
    "large": "l",
    "xl": "xl",
    "xxl": "xxl",
    "2xl": "xxl",
    "xxxl": "xxxl",
    "3xl": "xxxl",
}
COLOR_WORDS = _set(
    "black white grey gray navy blue red green yellow orange pink purple brown beige "
    "cream ivory olive khaki burgundy maroon teal turquoise gold silver tan camel "
    "charcoal lilac lavender mint coral rust sand stone nude multicolor"
)
STOCK_WORDS = _set("available availability stock left remaining sold")
# These ask for stock only beside a size or colour ("do you have it in M?").
WEAK_STOCK_WORDS = _set("have got any still come comes")
STOCK_PHRASES = ("in stock", "sold out", "how many", "any left")
PRICE_WORDS = _set("price priced cost costs discount deal expensive")
FUTURE_WORDS = _set(
    "restock restocking restocked tomorrow later next soon future again coming upcoming"
)
FUTURE_PHRASES = ("back in stock", "come back", "be back", "in the future")
OPINION_WORDS = _set(
    "recommend recommendation should suggest think opinion prefer better best worth "
    "look looks flattering suit suits favorite favourite"
)
ORDER_WORDS = _set("order orders tracking track refund cancel cancelled account")
MATERIAL_NOUNS = _set(
    "polyester cotton wool merino cashmere leather synthetic nylon linen silk plastic metal "
    "steel wood bamboo acrylic viscose spandex elastane denim suede gold silver ceramic glass"
)
MATERIAL_QUALIFIERS = _set("real pure genuine 100 percent made fake actual proper natural")
# A fact key family: the words that ask for it; a fact whose key holds one of the key words.
FACT_FAMILIES: tuple[tuple[frozenset[str], tuple[str, ...], tuple[str, ...]], ...] = (
    # (key words, question words, question phrases)
    (
        frozenset({"material", "materials", "fabric", "composition"}),
        ("material", "fabric", "composition"),
        ("made of", "made from", "what is it made"),
    ),
    (
        frozenset({"fit", "sizing", "size guide"}),
        ("fit", "fits", "tight", "loose", "baggy", "oversized", "snug", "roomy"),
        (
            "run small",
            "runs small",
            "run large",
            "runs large",
            "run big",
            "runs big",
            "true to size",
            "size up",
            "size down",
            "run true",
        ),
    ),
    (
        frozenset({"care", "washing", "wash", "cleaning"}),
        (
            "wash",
            "washable",
            "dishwasher",
            "washing",
            "machine",
            "dryer",
            "tumble",
            "iron",
            "care",
            "clean",
        ),
        ("dry clean",),
    ),
    (
        frozenset({"dimensions", "size", "measurements", "length", "width", "height"}),
        ("dimensions", "measurements", "measure", "inches", "length", "width", "height", "inseam"),
        ("how big", "how long is it", "how wide", "how tall is it", "how high"),
    ),
    (
        frozenset({"in the box", "in box", "included", "box", "contents"}),
        ("included", "includes", "include", "box", "contents", "charger", "cable"),
        ("come with", "comes with", "in the box"),
    ),
    (
        frozenset({"capacity", "volume"}),
        ("capacity", "ml", "litre", "litres", "liter", "liters", "oz", "ounces", "volume"),
        ("how much does it hold", "how much can it hold", "how much will it hold"),
    ),
    (
        frozenset({"insulation", "insulated"}),
        ("insulated", "insulation", "cold", "hot"),
        ("keep cold", "keeps cold", "keep hot", "keeps hot", "keep things", "keep drinks"),
    ),
    (
        frozenset({"weight"}),
        ("weight", "weigh", "weighs", "heavy", "lightweight"),
        (),
    ),
    (
        frozenset({"origin", "made in", "country"}),
        (),
        ("made in", "where is it made", "where was it made", "where is it from", "produced in"),
    ),
    (
        frozenset({"usage", "use", "directions", "application"}),
        ("apply", "using", "directions"),
        ("how do i use", "how to use", "how to apply", "how do i apply", "how do you use"),
    ),
    (
        frozenset({"warranty", "guarantee"}),
        ("warranty", "guarantee", "guaranteed"),
        (),
    ),
    (
        frozenset({"battery", "battery life"}),
        ("battery", "charging"),
        ("battery life",),
    ),
    (
        frozenset({"waterproof", "water resistance", "water"}),
        ("waterproof", "water", "rain", "swim", "shower"),
        (),
    ),
)
POLICY_FAMILIES: tuple[tuple[frozenset[str], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        frozenset({"shipping", "delivery"}),
        ("shipping", "delivery", "arrive", "postage", "courier", "dispatch"),
        ("how long to get", "when will i get", "when will it arrive", "how fast"),
    ),
    (
        frozenset({"returns", "return", "refunds", "exchanges"}),
        ("return", "returns", "exchange", "exchanges", "refundable"),
        ("send it back", "send back", "money back"),
    ),
    (
        frozenset({"payment", "payments", "payment options"}),
        ("payment", "pay", "paying", "card", "accept", "installments", "instalments"),
        ("pay with", "pay by", "pay in"),
    ),
)
# Names a policy must carry itself before a question naming them is answered from it.
SPECIFIC_WORDS = _set(
    "klarna paypal afterpay affirm applepay apple google gpay venmo crypto bitcoin "
    "amex visa mastercard cash cod invoice bank transfer sepa ideal express overnight "
    "international worldwide free tracked tracking monday tuesday wednesday thursday "
    "friday saturday sunday tomorrow christmas weekend exchange exchanges installments "
    "instalments gift giftcard voucher"
)
# Of those, the names that point at the one policy that carries them ("paypal").
NAME_WORDS = _set(
    "klarna paypal afterpay affirm applepay apple google gpay venmo crypto bitcoin amex "
    "visa mastercard sepa ideal"
)
# Words that only ask whether a fact holds ("does it work on ...", "can it go in ...").
GENERIC = _set(
    "work works working use used using go goes put fit fits have has come comes keep keeps "
    "take make need ok okay good safe suitable compatible possible"
)
# Places too short to tell from other words: after "to" or "in" they name a place.
PLACE_WORDS = _set("us usa uk")
STOPWORDS = _set(
    "a an the is it its this that these those do does did you your i me my we our us "
    "to in on of for and or with be are am can could would will any some there here "
    "what which how much many still have has got get please thanks hi hey hello so "
    "just also really very too not no yes one ones they them he she her his if at as "
    "by from up out about like ok okay lol pls"
)


def words(text: str) -> list[str]:
    """Lower case, apostrophes gone ("it's" is "its"), slang spelled out."""
    raw = re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower().replace("'", "").replace("\u2019", ""))
    out: list[str] = []
    for word in raw:
        out.extend(SLANG.get(word, word).split())
    return out


class Vocabulary:
    """Typo correction towards the words the rules and the shop's data know.

    A word is corrected when it is not known and one known word is one edit away (two for
    words of 8 letters or more) by optimal string alignment (a swap of two letters is one
    edit), and the shopper's word is not the longer: "avaliable", "matrial" and "sweter"
    are fixed, but "playing" does not become "paying" nor "ideal" "deal".
    """

    def __init__(self, known: Iterable[str]) -> None:
        self._known_set = {w for w in known if len(w) >= 4}
        self._known = sorted(self._known_set)
        self._cache: dict[str, str] = {}

    def correct(self, word: str) -> str:
        if len(word) < 5 or word in STOPWORDS or word in self._known_set or word.isdigit():
            return word
        if word in self._cache:
            return self._cache[word]
        edits = 2 if len(word) >= 8 else 1
        found = process.extract(word, self._known, scorer=OSA.distance, score_cutoff=edits, limit=3)
        close = sorted(
            (distance, target)
            for target, distance, _ in found
            if len(target) >= len(word) and abs(len(target) - len(word)) <= edits
        )
        fixed = word
        if close and (len(close) == 1 or close[0][0] < close[1][0]):
            fixed = str(close[0][1])
        self._cache[word] = fixed
        return fixed


BASE_VOCABULARY = (
    set(STOCK_WORDS)
    | set(WEAK_STOCK_WORDS)
    | set(PRICE_WORDS)
    | {w for family in (*FACT_FAMILIES, *POLICY_FAMILIES) for w in family[1]}
    | {w for phrase in STOCK_PHRASES for w in phrase.split()}
    | set(FUTURE_WORDS)
    | set(OPINION_WORDS)
    | set(COLOR_WORDS)
    | set(SPECIFIC_WORDS)
    | {"available", "shipping", "delivery", "material", "returns"}
)


@dataclass
class Question:
    """A question as the rules read it."""

    text: str
    words: list[str]

    @property
    def joined(self) -> str:
        return " " + " ".join(self.words) + " "

    def has(self, *options: str) -> bool:
        joined = self.joined
        return any(f" {o} " in joined for o in options)

    def any_word(self, options: Iterable[str]) -> bool:
        present = set(self.words)
        return any(o in present for o in options)


# "left" before these is a side, not what remains ("left handed", "left earbud").
SIDES = _set("handed hand hander side sleeve leg ear earbud foot shoe pocket arm eye")


def read(text: str, vocabulary: Vocabulary) -> Question:
    found = [vocabulary.correct(w) for w in words(text)]
    # a side is not stock: "left handed" reads as one word
    for i in range(len(found) - 1):
        if found[i] in {"left", "right"} and found[i + 1] in SIDES:
            found[i] = f"{found[i]}-side"
    return Question(text, found)


# -- the answerer ---------------------------------------------------------------------------


def money(amount: int, currency: str) -> str:
    digits = exponent(currency)
    major = f"{amount / 10**digits:.{digits}f}" if digits else str(amount)
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}.get(currency)
    return f"{symbol}{major}" if symbol else f"{major} {currency}"


def _stem(word: str) -> str:
    """A plural's singular, roughly ("bags" "bag", "trousers" "trouser", "knives"
    "knife"), for names."""
    if len(word) > 4 and word.endswith("ves"):
        return word[:-3] + "fe"
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _product_words(product: ProductFacts) -> set[str]:
    return {_stem(w) for w in words(product.name) if w not in STOPWORDS and len(w) >= 3}


def _value_words(product: ProductFacts) -> dict[str, set[str]]:
    """Each attribute's values, as words (sizes in their short form)."""
    values: dict[str, set[str]] = {}
    for variant in product.variants:
        for name, value in variant.attributes.items():
            values.setdefault(name, set()).add(_norm_value(str(value)))
    return values


def _norm_value(value: str) -> str:
    low = " ".join(words(value))
    return SIZE_WORDS.get(low, low)


class Answerer:
    """The shop's knowledge, read once; ``answer`` and ``drafts`` per question."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        known = set(BASE_VOCABULARY)
        for product in knowledge.products:
            known |= _product_words(product)
            known |= {w for key in product.facts for w in words(key)}
            for values in _value_words(product).values():
                known |= {w for v in values for w in v.split()}
        known |= {w for key in knowledge.policies for w in words(key)}
        self.vocabulary = Vocabulary(known)
        self._by_name = {p.name.lower(): p for p in knowledge.products}
        # What every question reads of a product, worked out once (by the product's id).
        self._values = {id(p): _value_words(p) for p in knowledge.products}
        self._value_words = {
            key: {w for vs in values.values() for v in vs for w in v.split()}
            for key, values in self._values.items()
        }
        names = {id(p): _product_words(p) for p in knowledge.products}
        self._distinctive = [
            (
                p,
                names[id(p)]
                - COLOR_WORDS
                - set().union(*(names[id(o)] for o in knowledge.products if o is not p)),
            )
            for p in knowledge.products
        ]
        # earlier questions as the rules read them (typos fixed)
        self._past = [
            (past, read(past.question, self.vocabulary).words) for past in knowledge.answered
        ]

    def read(self, text: str) -> Question:
        return read(text, self.vocabulary)

    # which product ------------------------------------------------------------------------

    def product_of(self, question: Question, pinned: str | None) -> ProductFacts | None:
        """The product the question names (by a distinctive word of its name), else the
        pinned one."""
        present = {_stem(w) for w in question.words}
        named: list[tuple[int, ProductFacts]] = []
        for product, distinctive in self._distinctive:
            hits = len(distinctive & present)
            if hits:
                named.append((hits, product))
        if named:
            named.sort(key=lambda item: -item[0])
            if len(named) == 1 or named[0][0] > named[1][0]:
                return named[0][1]
            return None  # two products named alike: ask a person
        if pinned is not None:
            return self._by_name.get(pinned.lower())
        if len(self.knowledge.products) == 1:
            return self.knowledge.products[0]
        return None

    # the rules ----------------------------------------------------------------------------

    def answer(self, text: str, pinned: str | None) -> Answer | None:
        question = read(text, self.vocabulary)
        if not question.words or len(question.words) > 40:
            return None
        if question.any_word(OPINION_WORDS) or question.any_word(ORDER_WORDS - {"refund"}):
            return self._repeat(question, pinned)
        if question.any_word(FUTURE_WORDS) or question.has(*FUTURE_PHRASES):
            return self._repeat(question, pinned)
        for rule in (self._stock, self._price, self._repeat, self._policy, self._fact):
            found = rule(question, pinned)
            if found is not None:
                return found
        return None

    def _repeat(self, question: Question, pinned: str | None) -> Answer | None:
        """A question a moderator answered already, reworded: its content words (typos
        fixed, stopwords gone) alike by rapidfuzz's token set and token sort ratios."""
        if self._asks_live_numbers(question):
            return None  # "is M still available?" answered yesterday is not today's stock
        product = self.product_of(question, pinned)
        names = set() if product is None else _product_words(product)
        asked = _content([w for w in question.words if _stem(w) not in names])
        if not asked:
            return None
        best: tuple[float, PastAnswer] | None = None
        for past, before_words in self._past:
            if past.product is not None and (product is None or past.product != product.name):
                continue
            before = _content([w for w in before_words if _stem(w) not in names])
            if not before:
                continue
            score = (fuzz.token_set_ratio(asked, before) + fuzz.token_sort_ratio(asked, before)) / 2
            if score >= REPEAT_SCORE and (best is None or score > best[0]):
                best = (score, past)
        return None if best is None else Answer(best[1].answer, EARLIER_ANSWER)

    def _wanted_variants(
        self, question: Question, product: ProductFacts
    ) -> tuple[list[VariantFacts], list[str]] | None:
        """The variants the question narrows to by the values it names, and the values it
        names that the product does not come in (None: it names none)."""
        values = self._values[id(product)]
        all_values = {v for vs in values.values() for v in vs}
        present = question.words
        asked: dict[str, set[str]] = {}
        missing: list[str] = []
        for i, word in enumerate(present):
            pair = " ".join(present[i : i + 2])
            candidates = [pair, word, SIZE_WORDS.get(word, "")]
            if word in {"extra", "x"} and i + 1 < len(present):
                candidates.insert(0, SIZE_WORDS.get("x" + present[i + 1], ""))
            for candidate in candidates:
                if candidate and candidate in all_values:
                    for name, vs in values.items():
                        if candidate in vs:
                            asked.setdefault(name, set()).add(candidate)
                    break
            else:
                # a colour word of a longer value ("blue" of "midnight blue") is that value
                within = {(name, v) for name, vs in values.items() for v in vs if word in v.split()}
                if within and word not in STOPWORDS:
                    for name, v in within:
                        asked.setdefault(name, set()).add(v)
                elif word in COLOR_WORDS:
                    missing.append(word)
                elif word in SIZE_WORDS and len(word) > 1:
                    if not all_values & set(SIZE_WORDS.values()):
                        return [], ["?"]  # "the small one" of sizes in ml: a person knows
                    missing.append(word)
        if not asked and not missing:
            return None
        chosen = [
            v
            for v in product.variants
            if all(_norm_value(str(v.attributes.get(n, ""))) in vs for n, vs in asked.items())
        ]
        return chosen, missing

    def _stock(self, question: Question, pinned: str | None) -> Answer | None:
        strong = question.any_word(STOCK_WORDS) or question.has(*STOCK_PHRASES)
        weak = question.any_word(WEAK_STOCK_WORDS)
        if not strong and not weak:
            return None
        if question.has("how much") and not question.any_word({"left", "stock"}):
            return None
        if question.has("how many") and not self._counts_units(question, pinned):
            return None  # "how many lumens?"
        if question.any_word({"when", "why", "shipping", "delivery", "return", "returns"}):
            return None
        if question.any_word(PRICE_WORDS) or question.has("how much is", "how much does"):
            return None
        product = self.product_of(question, pinned)
        if product is None or not product.variants:
            return None
        wanted = self._wanted_variants(question, product)
        if not strong and (wanted is None or self._asks_a_fact(question, product)):
            return None  # "do you have a size guide?", "does it come with a case?"
        if wanted is None:
            chosen, missing = list(product.variants), list[str]()
        else:
            chosen, missing = wanted
        if missing == ["?"]:
            return None
        if missing:
            return Answer(
                f"{product.name} does not come in {', '.join(missing)}: it comes in "
                f"{self._range(product)}.",
                LIVE_STOCK,
            )
        if not chosen:
            return Answer(
                f"{product.name} does not come in that combination: it comes in "
                f"{self._range(product)}.",
                LIVE_STOCK,
            )
        if len(chosen) == 1:
            v = chosen[0]
            label = self._label(v)
            what = f"{product.name}{' in ' + label if label else ''}"
            if v.stock <= 0:
                return Answer(f"{what} is sold out right now.", LIVE_STOCK)
            return Answer(f"Yes: {what}, {v.stock} left.", LIVE_STOCK)
        parts = [
            f"{self._label(v) or v.sku}: {v.stock} left"
            if v.stock > 0
            else f"{self._label(v) or v.sku}: sold out"
            for v in chosen
        ]
        total = sum(max(0, v.stock) for v in chosen)
        return Answer(f"{product.name}: {total} left in all ({_listed(parts)}).", LIVE_STOCK)

    def _price(self, question: Question, pinned: str | None) -> Answer | None:
        asks = question.any_word(PRICE_WORDS - {"pay"}) or question.has("how much")
        not_price = {"weigh", "weighs", "weight", "shipping", "delivery", "hold", "holds"}
        if not asks or question.any_word(not_price):
            return None
        if question.any_word({"code", "coupon", "voucher", "student", "bulk", "wholesale"}):
            return None
        product = self.product_of(question, pinned)
        if product is None or not product.variants:
            return None
        wanted = self._wanted_variants(question, product)
        chosen = list(product.variants) if wanted is None or not wanted[0] else wanted[0]
        if wanted is not None and wanted[1]:
            return None
        deal_asked = question.any_word({"deal", "discount"})
        deals = [v for v in chosen if v.deal_price_minor is not None]
        if deal_asked and not deals:
            return None  # no deal on it now: whether one is coming is a person's answer
        prices = {(v.price_minor, v.deal_price_minor) for v in chosen}
        currency = self.knowledge.currency
        if len(prices) == 1:
            price, deal = next(iter(prices))
            if deal is not None:
                text = (
                    f"{product.name}: {money(deal, currency)} during the deal "
                    f"(usually {money(price, currency)})."
                )
            else:
                text = f"{product.name}: {money(price, currency)}."
            return Answer(text, LIVE_PRICE)
        parts = []
        for v in chosen:
            now = v.deal_price_minor if v.deal_price_minor is not None else v.price_minor
            extra = " (deal)" if v.deal_price_minor is not None else ""
            parts.append(f"{self._label(v) or v.sku}: {money(now, currency)}{extra}")
        return Answer(f"{product.name}: {_listed(parts)}.", LIVE_PRICE)

    def _fact(self, question: Question, pinned: str | None) -> Answer | None:
        product = self.product_of(question, pinned)
        if product is None or not product.facts:
            return None
        names = frozenset(_product_words(product))
        matches: list[tuple[str, str]] = []
        covered: set[int] = set()  # the families the product has a fact of
        named = False  # a fact's key is named ("what steel is it?")
        for key, value in product.facts.items():
            key_text = " ".join(words(key))
            family = next((i for i, f in enumerate(FACT_FAMILIES) if _key_in(key_text, f[0])), None)
            if family is not None:
                covered.add(family)
            by_key = _names_key(question, key_text)
            named = named or by_key
            if by_key or (family is not None and _asks(question, FACT_FAMILIES[family], names)):
                matches.append((key, value))
        if not matches:
            matches = self._fact_by_value(question, product, names)
        if not matches or len(matches) > 2:
            return None
        asked_families = {i for i, f in enumerate(FACT_FAMILIES) if _asks(question, f, names)}
        if asked_families - covered and not named:
            return None  # "is the leather waterproof?": the facts say nothing of water
        said = {w for key, value in matches for w in words(f"{key} {value}")}
        if any(w in SPECIFIC_WORDS and w not in said for w in question.words):
            return None
        text = "; ".join(f"{key}: {value}" for key, value in matches)
        return Answer(f"{product.name}: {text}.", PRODUCT_FACTS)

    @staticmethod
    def _fact_by_value(
        question: Question, product: ProductFacts, names: frozenset[str]
    ) -> list[tuple[str, str]]:
        """The one fact whose text holds the question's one word of substance, when the
        rest only asks whether it does ("does it work on induction?", "can it go in the
        oven?"): nothing when the question says more ("carbonated drinks")."""
        content = [
            w
            for w in question.words
            if w not in STOPWORDS and w not in GENERIC and _stem(w) not in names
        ]
        if len(content) != 1 or len(content[0]) < 4:
            return []
        word = content[0]
        holding = [(key, value) for key, value in product.facts.items() if word in words(value)]
        return holding if len(holding) == 1 else []

    def _policy(self, question: Question, pinned: str | None) -> Answer | None:
        matches: list[tuple[str, str]] = []
        for key, value in self.knowledge.policies.items():
            key_text = " ".join(words(key))
            family = next((f for f in POLICY_FAMILIES if _key_in(key_text, f[0])), None)
            named = {w for w in question.words if w in NAME_WORDS} & set(words(value))
            asked = (
                _names_key(question, key_text, every=True)
                or bool(named)
                or (family is not None and _asks(question, family))
            )
            if asked:
                matches.append((key, value))
        if len(matches) != 1:
            return None
        key, value = matches[0]
        policy_words = set(words(value)) | set(words(key))
        unsaid = [w for w in question.words if w in SPECIFIC_WORDS and w not in policy_words]
        if unsaid or self._names_a_place(question, policy_words):
            return None
        return Answer(f"{key.capitalize()}: {value}", SHOP_POLICY)

    @staticmethod
    def _names_a_place(question: Question, policy_words: set[str]) -> bool:
        """A word after "to" or "in" that neither the policy nor the rules know (a country,
        a city)."""
        present = question.words
        for i, word in enumerate(present[:-1]):
            if word not in {"to", "in"}:
                continue
            following = present[i + 1]
            if following in {"the", "my", "a"} and i + 2 < len(present):
                following = present[i + 2]
            if following in PLACE_WORDS and following not in policy_words:
                return True
            if following.isdigit() or following in STOPWORDS or following in policy_words:
                continue
            if following in BASE_VOCABULARY:
                continue
            return True
        return False

    @staticmethod
    def _asks_live_numbers(question: Question) -> bool:
        """Stock or price: only the live numbers answer these, never an earlier answer."""
        return (
            question.any_word(STOCK_WORDS | PRICE_WORDS)
            or question.has(*STOCK_PHRASES)
            or question.has("how much is", "how much are", "how much for")
        )

    def _counts_units(self, question: Question, pinned: str | None) -> bool:
        """ "how many" asks for units when what follows is nothing, "left", "are there",
        the product's name or one of its sizes or colours."""
        present = question.words
        at = next(i for i in range(len(present) - 1) if present[i : i + 2] == ["how", "many"])
        following = present[at + 2 : at + 3]
        if not following:
            return True
        word = following[0]
        if word in {"left", "are", "is", "remain", "remaining", "in", "still", "do", "of"}:
            return True
        if word in {"pieces", "piece", "units", "unit", "items", "pairs", "sets"}:
            return True
        product = self.product_of(question, pinned)
        if product is None:
            return False
        values = self._value_words[id(product)]
        return _stem(word) in _product_words(product) or word in values or word in SIZE_WORDS

    def _asks_a_fact(self, question: Question, product: ProductFacts) -> bool:
        """Whether the question asks for a fact, not counting the words of the product's
        sizes and colours ("still got the 30 ml?" asks for stock, not capacity)."""
        values = self._value_words[id(product)]
        rest = Question(question.text, [w for w in question.words if w not in values])
        return any(_asks(rest, family) for family in FACT_FAMILIES) or rest.any_word(
            {"guide", "case", "bag", "box", "chart"}
        )

    def _range(self, product: ProductFacts) -> str:
        return ", ".join(dict.fromkeys(self._label(v) or v.sku for v in product.variants))

    @staticmethod
    def _label(variant: VariantFacts) -> str:
        return " ".join(str(value) for value in variant.attributes.values())

    # drafts -------------------------------------------------------------------------------

    def drafts(self, text: str, pinned: str | None, limit: int = 3) -> list[Draft]:
        """Facts, policies and earlier answers closest to the question, best first: their
        words and the question's (stopwords left out) by rapidfuzz's token set ratio."""
        question = self.read(text)
        asked = _content(question.words)
        product = self.product_of(question, pinned)
        docs: list[tuple[str, str, str]] = []  # (what is matched, draft text, source)
        for p in self.knowledge.products if product is None else (product,):
            for key, value in p.facts.items():
                docs.append((f"{key} {value}", f"{p.name}: {key}: {value}.", PRODUCT_FACTS))
        for key, value in self.knowledge.policies.items():
            docs.append((f"{key} {value}", f"{key.capitalize()}: {value}", SHOP_POLICY))
        for past in self.knowledge.answered:
            if product is None or past.product in (None, product.name):
                docs.append((f"{past.question} {past.answer}", past.answer, EARLIER_ANSWER))
        if not docs or not asked:
            return []
        scored = process.extract(
            asked,
            [_content(self.read(d[0]).words) for d in docs],
            scorer=fuzz.token_set_ratio,
            limit=limit,
            score_cutoff=DRAFT_SCORE,
        )
        return [Draft(docs[i][1], docs[i][2], float(score)) for _, score, i in scored]


def _listed(parts: list[str]) -> str:
    """At most ``LISTED`` parts, then how many more (an answer stays a line or two)."""
    shown = "; ".join(parts[:LISTED])
    return shown if len(parts) <= LISTED else f"{shown}; and {len(parts) - LISTED} more"


def _asks(
    question: Question,
    family: tuple[frozenset[str], tuple[str, ...], tuple[str, ...]],
    names: frozenset[str] = frozenset(),
) -> bool:
    if question.any_word(family[1]) or question.has(*family[2]):
        return True
    if family is FACT_FAMILIES[0] and question.any_word(MATERIAL_NOUNS):
        # "is it real linen?", "100% cotton?": a material named and nothing else asked
        # ("does the linen crease?" asks about creases)
        rest = [
            w
            for w in question.words
            if w not in STOPWORDS
            and w not in MATERIAL_NOUNS
            and w not in MATERIAL_QUALIFIERS
            and _stem(w) not in names
        ]
        return not rest
    return False


def _names_key(question: Question, key_text: str, *, every: bool = False) -> bool:
    """The question names a fact's or policy's key: the whole key, or one of its words of
    four letters or more (``every``: each of them), or that word's start ("bright" of
    "brightness", "wrap" of "gift wrapping") or the word with an ending ("powered" of
    "power")."""
    if question.has(key_text):
        return True
    asked = [w for w in question.words if len(w) >= 4 and w not in STOPWORDS]
    named = [
        any(_same_word(w, k) for w in asked)
        for k in key_text.split()
        if len(k) >= 4 and k not in STOPWORDS
    ]
    return bool(named) and (all(named) if every else any(named))


def _same_word(asked: str, key: str) -> bool:
    """``asked`` is ``key``, its start, the key with an ending, or they differ only in
    their endings past a common stem of six letters ("seasoned" and "seasoning")."""
    if asked == key or key.startswith(asked):
        return True
    if asked in {key + ending for ending in ("s", "d", "ed", "ing")}:
        return True
    stem = next((i for i, (a, b) in enumerate(zip(asked, key, strict=False)) if a != b), None)
    stem = min(len(asked), len(key)) if stem is None else stem
    return 6 <= stem < min(len(asked), len(key)) and len(asked) - stem <= 3


def _content(found: list[str]) -> str:
    return " ".join(w for w in found if w not in STOPWORDS)


def _key_in(key_text: str, key_words: frozenset[str]) -> bool:
    return key_text in key_words or any(w in key_words for w in key_text.split())


def answer(question: str, pinned: str | None, knowledge: Knowledge) -> Answer | None:
    return Answerer(knowledge).answer(question, pinned)


def drafts(question: str, pinned: str | None, knowledge: Knowledge) -> Sequence[Draft]:
    return Answerer(knowledge).drafts(question, pinned)
