"""The Redactor and safe_url: secret values and URL credentials never come out in the clear."""

from __future__ import annotations

import pytest

from bot.domain.redact import REDACTED, Redactor, safe_url, url_credentials

TOKEN = "xoxb-1234567890-abcdefghij"
ROUTING = "R0UT1NGKEY+with/slash"


def test_known_values_are_replaced_wherever_they_appear() -> None:
    """Every occurrence of every known value, plain or URL-encoded, becomes [redacted]."""
    r = Redactor([TOKEN, ROUTING])
    text = f"SLACK_BOT_TOKEN={TOKEN}\nurl=https://x/?k=R0UT1NGKEY%2Bwith%2Fslash {TOKEN}{TOKEN}"
    out = r.text(text)
    assert TOKEN not in out and "R0UT1NGKEY" not in out
    assert out == f"SLACK_BOT_TOKEN={REDACTED}\nurl=https://x/?k={REDACTED} {REDACTED}{REDACTED}"


def test_short_values_do_not_shred_text() -> None:
    """A value under the minimum length (and an empty one) is left alone."""
    r = Redactor(["ab", "", "1234567"])
    assert not r
    assert r.text("ab 1234567 about") == "ab 1234567 about"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    """The longer value wins, so no tail of it survives the shorter one's replacement."""
    r = Redactor(["secretvalue", "secretvalue-and-more"])
    assert r.text("x secretvalue-and-more y") == f"x {REDACTED} y"


def test_scrub_walks_nested_data_and_leaves_other_types() -> None:
    """Strings inside dicts, lists and tuples are redacted; numbers and None pass through."""
    r = Redactor([TOKEN])
    data = {"evidence": {"output": f"t={TOKEN}", "lines": [TOKEN, 3, None]}, TOKEN: (TOKEN,)}
    assert r.scrub(data) == {
        "evidence": {"output": f"t={REDACTED}", "lines": [REDACTED, 3, None]},
        REDACTED: (REDACTED,),
    }


def test_repr_never_shows_values() -> None:
    """Printing a Redactor (in a log or a traceback) shows no secret."""
    assert TOKEN not in repr(Redactor([TOKEN]))


def test_safe_cut_never_splits_a_secret() -> None:
    """A cut inside a secret moves to its start (or its end when cutting forward)."""
    r = Redactor([TOKEN])
    data = b"0123456789" + TOKEN.encode() + b"abcdef"
    inside = 10 + 5
    assert r.safe_cut(data, inside, forward=False) == 10
    assert r.safe_cut(data, inside, forward=True) == 10 + len(TOKEN)
    assert r.safe_cut(data, 4, forward=False) == 4


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://deploy:hunter2@notes.example.com/v1",
            "https://deploy:[redacted]@notes.example.com/v1",
        ),
        (
            "https://ghp_abcdef123456@github.example.com/x",
            "https://[redacted]@github.example.com/x",
        ),
        (
            "https://h.example.com/health?access_token=abc123&verbose=1",
            "https://h.example.com/health?access_token=[redacted]&verbose=1",
        ),
        (
            "https://h.example.com/n/{version}?X-Amz-Signature=f00d&sig=1&API-Key=k&page=2",
            "https://h.example.com/n/{version}?X-Amz-Signature=[redacted]&sig=[redacted]"
            "&API-Key=[redacted]&page=2",
        ),
        ("https://h.example.com/health?check=deep", "https://h.example.com/health?check=deep"),
        ("http://user:pw@[::1/x", "http://[redacted]@[::1/x"),
    ],
)
def test_safe_url_hides_credentials_only(url: str, shown: str) -> None:
    """User-info passwords, lone user-info tokens and credential query values are hidden."""
    assert safe_url(url) == shown


def test_url_credentials_are_the_hidden_values() -> None:
    """What safe_url hides is what the Redactor learns, decoded as well as raw."""
    url = "https://deploy:p%40ss-word-1@h.example.com/x?token=abc%2Bdef123&page=2"
    assert url_credentials(url) == ["p%40ss-word-1", "p@ss-word-1", "abc%2Bdef123", "abc+def123"]
    r = Redactor(url_credentials(url))
    assert "abc" not in r.text(f"GET {url}") and "ss-word" not in r.text(f"GET {url}")


async def test_checks_show_configured_urls_without_credentials() -> None:
    """Health and provider evidence name the URL with its credentials hidden; the request
    itself still carries them."""
    import httpx

    from checks.health import check_health
    from checks.http import ProviderError, request_json

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if request.url.path == "/health" else 404)

    url = "https://ops:pw@h.example.com/health?access_token=abc123&deep=1"
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        result = await check_health(client, "api", url, attempts=1)
        with pytest.raises(ProviderError) as raised:
            await request_json(client, "GET", url.replace("/health", "/x"), provider="P")
    shown = "https://ops:[redacted]@h.example.com/health?access_token=[redacted]&deep=1"
    assert result.summary == f"api is unhealthy: HTTP 503 from {shown}"
    assert result.evidence["url"] == shown
    assert "abc123" not in raised.value.message and "abc123" not in str(raised.value.evidence)
    assert "pw@" not in str(raised.value.evidence)
    assert seen[0].url.params["access_token"] == "abc123"
    assert seen[0].headers["authorization"].startswith("Basic ")


def test_the_redactor_knows_every_secret_the_config_names() -> None:
    """Slack tokens, every `*_env` variable, preflight.env and URL credentials are known."""
    from bot.domain.config import Secrets
    from bot.engine.secrecy import redactor_for
    from tests.conftest import make_config

    config = make_config(
        preconditions={
            "ci": {"repository": "acme/app", "required_checks": ["ci"], "token_env": "GH"},
            "release_notes": {"url": "https://wiki.example.com/{version}?token=notes-token-1"},
            "rollback": {"registry_url": "https://bot:registry-pass-1@r.example.com"},
        },
        preflight={"workdir": "/srv", "quick": ["true"], "env": ["DEPLOY_TOKEN"]},
        monitoring={"pagerduty_routing_key_env": "PD_KEY"},
    )
    environment = {
        "SLACK_BOT_TOKEN": "xoxb-slack-bot-token",
        "SLACK_SIGNING_SECRET": "slack-signing-secret",
        "SLACK_APP_TOKEN": "xapp-slack-app-token",
        "GH": "ghp_github_token_value",
        "DEPLOY_TOKEN": "deploy-token-value",
        "PD_KEY": "pagerduty-routing-key",
        "SLACK_API_URL": "https://u:slack-api-pass@slack.example.com/api/",
        "HOME": "/home/golive-user",
    }
    redactor = redactor_for(config, Secrets(environment))
    text = " ".join(environment.values()) + " notes-token-1 registry-pass-1"
    out = redactor.text(text)
    for name, value in environment.items():
        if name not in ("SLACK_API_URL", "HOME"):
            assert value not in out, name
    assert "slack-api-pass" not in out and "notes-token-1" not in out
    assert "registry-pass-1" not in out
    assert "/home/golive-user" in out  # not a secret
