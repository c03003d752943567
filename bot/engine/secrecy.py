"""Which values golive must never show: the secrets its environment holds for it, and the
credentials written into its configured URLs. One Redactor is built from them at start-up."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bot.domain.config import Config, Secrets
from bot.domain.redact import Redactor, url_credentials

# Read by the Slack adapter, not named in golive.yml.
SLACK_SECRETS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_SECRET",
)
SLACK_URLS = ("SLACK_API_URL",)
_URL = re.compile(r"^https?://", re.IGNORECASE)


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, path)
    else:
        yield path, value


def secret_env_names(config: Config) -> list[str]:
    """Every environment variable golive.yml names (`*_env` keys and `preflight.env`)."""
    names = [
        value
        for path, value in _leaves(config.model_dump())
        if isinstance(value, str) and (path.endswith("_env") or path == "preflight.env")
    ]
    return list(dict.fromkeys([*SLACK_SECRETS, *names]))


def configured_urls(config: Config) -> list[str]:
    """Every URL written in golive.yml, wherever it is."""
    return [
        value
        for _, value in _leaves(config.model_dump())
        if isinstance(value, str) and _URL.match(value)
    ]


def redactor_for(config: Config, secrets: Secrets) -> Redactor:
    """A Redactor knowing every secret value the config names and every URL credential."""
    values = [secrets.get(name) for name in secret_env_names(config)]
    urls = [*configured_urls(config), *(secrets.get(name) for name in SLACK_URLS)]
    credentials = [c for url in urls if url for c in url_credentials(url)]
    return Redactor([v for v in values if v] + credentials)
