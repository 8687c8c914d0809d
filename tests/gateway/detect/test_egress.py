import pytest

from gateway.detect.egress import blobs, mask, secrets

KEYS = {
    "OpenAI API key": "sk-proj-" + "A1b2C3d4" * 6,
    "Anthropic API key": "sk-ant-api03-" + "x9Y8z7" * 6,
    "GitHub token": "ghp_" + "a1B2c3D4e5" * 4,
    "AWS access key id": "AKIAIOSFODNN7EXAMPLE",
    "Slack token": "xoxb-1234567890-abcdefghij",
    "Google API key": "AIza" + "B" * 35,
    "Stripe secret key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "private key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
    "JSON Web Token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "bearer token": "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
}


@pytest.mark.parametrize(("kind", "secret"), list(KEYS.items()))
def test_each_secret_is_found_and_never_repeated(kind: str, secret: str) -> None:
    found = secrets(f"here it is: {secret} -- done")
    assert [leak.kind for leak in found] == [kind]
    assert found[0].secret in secret
    if len(found[0].secret) > 12:
        assert found[0].secret not in found[0].excerpt and found[0].secret[:20] not in found[0].excerpt


@pytest.mark.parametrize("text", ["sk-short", "skeleton key", "AKIA lowercase akiaiosfodnn7example",
                                  "-----BEGIN PUBLIC KEY-----", "eyJ alone", "bearer of bad news"])
def test_near_misses(text: str) -> None:
    assert secrets(text) == []


def test_mask() -> None:
    assert mask("sk-proj-abcdefghijklmnop1234") == "sk-pr…1234 (28 chars)"
    assert mask("short") == "sh… (5 chars)"


def test_blobs() -> None:
    assert [b.kind for b in blobs("data=" + "QUJD" * 100)] == ["base64 data"]
    assert [b.kind for b in blobs("digest " + "ab12" * 40)] == ["hex data"]
    assert blobs("a perfectly normal sentence " * 20) == []
    assert blobs("1234567890" * 40) == []  # a long number is not encoded data
