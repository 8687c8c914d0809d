from gateway.detect.anchors import AHEAD, BACK, anchored, words_of


def test_words_of_splits_on_punctuation_but_keeps_apostrophes_and_hyphens() -> None:
    assert words_of("Hello, world! don't re-run (now)") == {"Hello", "world", "don't", "re-run", "now"}


def test_words_with_an_apostrophe_are_word_anchors_not_substrings() -> None:
    rule = anchored("answer's", r"your answer's order", lead=False)
    assert rule.words == {"answer's"} and not rule.stems
    text = "reverse your answer's order"
    assert rule.search(text, words_of(text)) is not None
    assert anchored("<| jailbr*", "x").stems == ("<|", "jailbr")


def test_a_rule_without_its_anchor_never_runs() -> None:
    rule = anchored("ignore", r"ignore \w+")
    assert rule.search("please disregard this", words_of("please disregard this")) is None


def test_lead_rule_matches_at_word_anchors_only() -> None:
    rule = anchored("send", r"\bsend \w+")
    text = "resend it; then send money"
    match = rule.search(text, words_of(text))
    assert match is not None and match.group() == "send money"


def test_window_rule_finds_a_match_that_starts_before_its_anchor() -> None:
    rule = anchored("model", r"to you, the model", lead=False)
    text = "x " * 5000 + "to you, the model" + " y" * 5000
    assert rule.search(text, words_of(text)) is not None


def test_window_rule_ignores_a_match_far_from_any_anchor() -> None:
    rule = anchored("model", r"to you", lead=False)
    text = "to you" + " pad" * ((BACK + AHEAD) // 2) + " model"
    assert rule.search(text, words_of(text)) is None


def test_stems_and_symbols_are_substring_anchors() -> None:
    rule = anchored("jailbr* <|", r"jailbr\w+|<\|im_start\|>")
    assert rule.search("a jailbreaking b", set()) is not None
    assert rule.search("x <|im_start|> y", set()) is not None
