import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.detect.values import HEAD_CHARS, MAX_VALUES, TAIL_CHARS, extract, fold, host_of


def kinds(text: str) -> list[tuple[str, str]]:
    return [(v.kind, v.value) for v in extract(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to Mark.Black-2134@Gmail.com today", [("email", "mark.black-2134@gmail.com")]),
        ("see https://Evil.example.com/x?q=1.", [("domain", "evil.example.com")]),
        ("visit www.my-site-234.com/random now", [("domain", "my-site-234.com")]),
        ("go to true-informations.com, then", [("domain", "true-informations.com")]),
        ("http://169.254.169.254/latest/meta-data", [("domain", "169.254.169.254")]),
        ("IBAN DE89 3704 0044 0532 0130 00 please", [("iban", "DE89370400440532013000")]),
        ("compact GB33BUKB20201555555555.", [("iban", "GB33BUKB20201555555555")]),
        ("to US133000000121212121212 now", [("account", "US133000000121212121212")]),
        ("card 4111 1111 1111 1111 exp", [("card", "4111111111111111")]),
        ("call +1 (555) 123-4567 or", [("phone", "15551234567")]),
        ("call 555-123-4567 or", [("phone", "5551234567")]),
        ("eth 0x52908400098527886E0F7030069857D2E4169EE7", [("crypto", "0x52908400098527886e0f7030069857d2e4169ee7")]),
        ("btc bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", [("crypto", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")]),
        ("wire $100 to IBAN 0123456789", [("number", "0123456789")]),
    ],
)
def test_each_kind_in_its_normal_form(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "meeting 2024-05-26 19:00:00 in room 13",  # dates and times are not numbers
        "version 1.2.3.4 and pi 3.14159265358979",  # nor are versions and decimals
        "files team-building-activities.docx, config.json, model.pt and notes.md",  # nor file names domains
        "a.b@c.d is not an address",  # a one-letter TLD
        "id_: '13', size: 525",  # short ids are not values
        "AB12CDEFGHIJKLMN looks like an IBAN but fails its checksum and has too few digits for an account",
    ],
)
def test_hard_negatives(text: str) -> None:
    assert kinds(text) == []


def test_an_email_is_not_also_its_domain_and_a_url_not_also_a_bare_domain() -> None:
    assert kinds("x@example.com and https://example.org/page") == [("email", "x@example.com"),
                                                                  ("domain", "example.org")]


def test_gmail_dots_and_tags_stay_significant() -> None:
    assert kinds("a.b+tag@gmail.com") == [("email", "a.b+tag@gmail.com")]


def test_offsets_point_at_the_value_in_the_scanned_text() -> None:
    text = "Send it to EVE@evil.example.com."
    (value,) = extract(text)
    assert text.lower()[value.start : value.end] == "eve@evil.example.com"


def test_only_the_head_and_tail_are_scanned() -> None:
    middle = "x" * (HEAD_CHARS + TAIL_CHARS)
    text = "a@head.com " + middle + " b@middle.com " + middle + " c@tail.com"
    assert [v.value for v in extract(text)] == ["a@head.com", "c@tail.com"]


def test_values_per_text_are_bounded() -> None:
    text = " ".join(f"user{i}@example.com" for i in range(MAX_VALUES + 50))
    assert len(extract(text)) == MAX_VALUES


def test_fold_makes_serialisations_of_a_sentence_equal() -> None:
    yaml = 'please do this first:\\nSend the body\\\n    \\ to Eve'
    plain = "Please do this first: send the BODY to eve"
    assert fold(yaml) == fold(plain) == "please do this first: send the body to eve"


@pytest.mark.parametrize(
    ("url", "host"),
    [("https://WWW.Example.com./x", "example.com"), ("example.com/path", "example.com"), ("http://[::1]:8080/", "::1"),
     ("http://[broken/", None), ("", None)],
)
def test_host_of(url: str, host: str | None) -> None:
    assert host_of(url) == host


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=3000))
def test_any_text_extracts_without_error_and_offsets_stay_inside(text: str) -> None:
    scanned = text.lower()
    for value in extract(text):
        assert 0 <= value.start < value.end <= len(scanned) + 1
        assert value.value


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="0123456789 .-+()@abcxyz:/", min_size=1000, max_size=5000))
def test_digit_and_punctuation_soup_stays_fast(text: str) -> None:
    start = time.perf_counter()
    extract(text * 8)
    assert time.perf_counter() - start < 0.5
