"""golive.yml: pydantic models for every key, durations and percentages, secrets by env-var name."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.domain.errors import ConfigError, MissingSecret
from bot.domain.model import Role

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")


def parse_duration(value: object) -> timedelta:
    """Read `30s`, `15m`, `1h`, `400ms` or `1h30m` into a timedelta; anything else is refused."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip() if isinstance(value, str) else None
    if text is None or not _DURATION.match(text):
        raise PydanticCustomError(
            "duration",
            "not a duration: {value} (write a number with a unit: 30s, 15m, 1h, 400ms)",
            {"value": repr(value)},
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise PydanticCustomError(
            "duration", "not a positive duration: {value}", {"value": repr(value)}
        )
    return timedelta(seconds=seconds)


def parse_percent(value: object) -> float:
    """Read `0.5%` (or a fraction such as 0.005) into a fraction between 0 and 1."""
    if isinstance(value, bool):
        raise PydanticCustomError("percent", "not a percentage: {value}", {"value": repr(value)})
    if isinstance(value, int | float):
        fraction = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*%\s*", value):
        fraction = float(value.strip().rstrip("%")) / 100.0
    else:
        raise PydanticCustomError(
            "percent",
            "not a percentage: {value} (write it like 0.5%)",
            {"value": repr(value)},
        )
    if not 0.0 <= fraction <= 1.0:
        raise PydanticCustomError(
            "percent", "a percentage must lie between 0% and 100%: {value}", {"value": repr(value)}
        )
    return fraction


def format_duration(value: timedelta) -> str:
    """The short human form of a duration: 15m, 1h, 30s, 400ms, 1h30m."""
    ms = round(value.total_seconds() * 1000)
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Percent = Annotated[float, BeforeValidator(parse_percent)]
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise PydanticCustomError("url", "not an http(s) URL: {value}", {"value": repr(value)})
    return value.rstrip("/") if value.count("/") == 2 or value.endswith("/") else value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise PydanticCustomError(
            "env", "not an environment variable name: {value}", {"value": repr(value)}
        )
    return value


def _slack_id(kind: str, pattern: re.Pattern[str], what: str, example: str) -> BeforeValidator:
    """A validator for one kind of Slack id (user, channel, user group, team)."""

    def check(value: object) -> object:
        if isinstance(value, str) and not pattern.match(value):
            raise PydanticCustomError(
                kind, f"not a Slack {what} id (like {example}): {{value}}", {"value": repr(value)}
            )
        return value

    return BeforeValidator(check)


Url = Annotated[str, BeforeValidator(lambda v: _http_url(v) if isinstance(v, str) else v)]
EnvName = Annotated[str, BeforeValidator(lambda v: _env_name(v) if isinstance(v, str) else v)]
UserId = Annotated[str, _slack_id("user", _USER_ID, "user", "U0123ABCD")]
ChannelId = Annotated[str, _slack_id("channel", _CHANNEL_ID, "channel", "C0123ABCD")]
GroupId = Annotated[str, _slack_id("group", _GROUP_ID, "user group", "S0123ABCD")]
TeamId = Annotated[str, _slack_id("team", _TEAM_ID, "team", "T0123ABCD")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackConfig(_Model):
    """Where the bot listens and announces, and which reaction approves a step."""

    release_channels: list[ChannelId] = Field(min_length=1)
    announce_channels: list[ChannelId] = Field(default_factory=list)
    approve_reaction: str = "white_check_mark"
    # Workspaces besides the one golive is installed in (auth.test) whose requests it takes:
    # the other workspaces of an Enterprise Grid organisation.
    allowed_team_ids: list[TeamId] = Field(default_factory=list)

    @field_validator("approve_reaction")
    @classmethod
    def _reaction(cls, value: str) -> str:
        name = value.strip().strip(":")
        if not re.fullmatch(r"[a-z0-9_+\-']+", name):
            raise PydanticCustomError(
                "reaction", "not a reaction name: {value}", {"value": repr(value)}
            )
        return name


class RolesConfig(_Model):
    """Default owners (Slack user ids); `/golive start` may override them per release. Where a
    `<role>_group` names a Slack user group, only its members may hold that role."""

    on_call: UserId | None = None
    backend: UserId | None = None
    frontend: UserId | None = None
    commander_group: GroupId | None = None
    on_call_group: GroupId | None = None
    backend_group: GroupId | None = None
    frontend_group: GroupId | None = None

    def group(self, role: Role) -> str | None:
        """The user group whose members alone may hold `role`, if the config names one."""
        group: str | None = getattr(self, f"{role.value}_group")
        return group


class ServiceConfig(_Model):
    """A deployable service: its tier, deploy wave, migrations, health URL and image."""

    name: str
    tier: Literal["backend", "frontend"]
    wave: int | None = Field(default=None, ge=1)
    migrations: bool = False
    health_url: Url | None = None
    expect_status: int | None = Field(default=None, ge=100, le=599)
    expect_json: Any = None
    expect_text: str | None = Field(default=None, min_length=1)
    image: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SERVICE_NAME.match(value):
            raise PydanticCustomError(
                "service",
                "not a service name (lowercase letters, digits, . _ -): {value}",
                {"value": repr(value)},
            )
        return value

    @model_validator(mode="after")
    def _wave_for_backend(self) -> ServiceConfig:
        if self.tier == "frontend" and self.wave is not None:
            raise PydanticCustomError("wave", "only backend services deploy in waves", {})
        return self

    @model_validator(mode="after")
    def _health_expectations(self) -> ServiceConfig:
        declared = [
            k
            for k in ("expect_status", "expect_json", "expect_text")
            if getattr(self, k) is not None
        ]
        if declared and self.health_url is None:
            raise PydanticCustomError(
                "health",
                "{keys} describe the health_url's answer; set health_url",
                {"keys": ", ".join(declared)},
            )
        if self.expect_json is not None and self.expect_text is not None:
            raise PydanticCustomError("health", "declare expect_json or expect_text, not both", {})
        return self

    @property
    def deploy_wave(self) -> int:
        """The backend wave this service deploys in (1 when not given)."""
        return self.wave or 1


class CIConfig(_Model):
    """GitHub checks that must be green on the release ref."""

    github_url: Url = "https://api.github.com"
    repository: str
    ref: str = "main"
    token_env: EnvName = "GITHUB_TOKEN"
    required_checks: list[str] = Field(min_length=1)
    wait: Duration = timedelta(minutes=10)
    poll_interval: Duration = timedelta(seconds=30)
    freeze_branch: str | None = None

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
            raise PydanticCustomError(
                "repository", "not an owner/name repository: {value}", {"value": repr(value)}
            )
        return value


class IncidentsConfig(_Model):
    """PagerDuty services whose open high-urgency incidents block a release."""

    pagerduty_url: Url = "https://api.pagerduty.com"
    token_env: EnvName = "PAGERDUTY_API_TOKEN"
    service_ids: list[str] = Field(default_factory=list)


class ReleaseNotesConfig(_Model):
    """Where the release notes live; `{version}` is replaced by the release version."""

    url: Url


class RollbackConfig(_Model):
    """The OCI registry that must hold a rollback image for every changed service."""

    registry_url: Url
    token_env: EnvName | None = None
    username_env: EnvName | None = None
    password_env: EnvName | None = None

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> RollbackConfig:
        if (self.username_env is None) != (self.password_env is None):
            raise PydanticCustomError(
                "credentials", "username_env and password_env go together: set both or neither", {}
            )
        return self


class PreconditionsConfig(_Model):
    """Runbook §2; an absent section becomes a manual confirmation by its owner."""

    ci: CIConfig | None = None
    incidents: IncidentsConfig | None = None
    release_notes: ReleaseNotesConfig | None = None
    rollback: RollbackConfig | None = None


class PreflightConfig(_Model):
    """Runbook §3: the preflight command (an argv list, never a shell string)."""

    workdir: str
    quick: list[str] = Field(min_length=1)
    full: list[str] | None = None
    timeout: Duration = timedelta(minutes=10)
    # The script sees PATH, HOME and LANG and these variables from golive's environment, no
    # others; their values are secrets: redacted wherever golive stores or posts text.
    env: list[EnvName] = Field(default_factory=list)


class WatchConfig(_Model):
    """How long a monitoring period lasts and how often it ticks."""

    duration: Duration
    interval: Duration

    @model_validator(mode="after")
    def _interval_fits(self) -> WatchConfig:
        if self.interval > self.duration:
            raise PydanticCustomError("interval", "interval is longer than duration", {})
        return self


class SoakConfig(WatchConfig):
    """The soak before traffic is widened (runbook §4.6): 15 minutes, a tick every 30 s."""

    duration: Duration = timedelta(minutes=15)
    interval: Duration = timedelta(seconds=30)


class HeightenedConfig(WatchConfig):
    """Heightened monitoring after completion (runbook §7): an hour, a tick a minute."""

    duration: Duration = timedelta(hours=1)
    interval: Duration = timedelta(minutes=1)


class MonitoringConfig(_Model):
    """Runbook §4.6 and §7: metrics, thresholds and the soak and heightened periods."""

    prometheus_url: Url | None = None
    requests_query: str = "sum(increase(http_requests_total[{window}]))"
    errors_query: str = 'sum(increase(http_requests_total{status=~"5.."}[{window}]))'
    latency_p95_query: str = (
        "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[{window}]))"
        " by (le))"
    )
    latency_bucket_query: str = (
        'sum(increase(http_request_duration_seconds_bucket{le="{le}"}[{window}]))'
    )
    window: Duration = timedelta(minutes=5)
    baseline_window: Duration = timedelta(hours=1)
    slo_p95: Duration = timedelta(milliseconds=400)
    min_error_increase: Percent = 0.005
    min_requests: int = Field(default=200, ge=1)
    false_page_rate: Percent = 0.01
    tolerance: float = Field(default=1.25, ge=1.0, lt=2.0)
    min_conclusive: Percent = 0.8
    significance: float = Field(default=0.01, gt=0.0, lt=0.5)  # deprecated, see DEPRECATED
    breach_ticks: int = Field(default=2, ge=1)  # deprecated, see DEPRECATED
    error_ticks: int = Field(default=3, ge=1)
    realert: Duration = timedelta(minutes=10)
    soak: SoakConfig = SoakConfig()
    heightened: HeightenedConfig = HeightenedConfig()
    pagerduty_events_url: Url | None = None
    pagerduty_routing_key_env: EnvName | None = None

    @field_validator("latency_bucket_query")
    @classmethod
    def _bucket_placeholders(cls, value: str) -> str:
        if "{le}" not in value or "{window}" not in value:
            raise PydanticCustomError(
                "placeholders",
                "the bucket query needs both {le} and {window} placeholders: {value}",
                {"value": repr(value)},
            )
        return value

    @field_validator("false_page_rate")
    @classmethod
    def _small_rate(cls, value: float) -> float:
        if not 0.0 < value <= 0.2:
            raise PydanticCustomError(
                "percent",
                "false_page_rate must lie above 0% and at most 20%: {value}",
                {"value": repr(value)},
            )
        return value

    def render(self, template: str, window: timedelta) -> str:
        """A PromQL query with `{window}` replaced by a Prometheus duration."""
        return template.replace("{window}", format_duration(window))


# Keys that are still accepted but no longer do anything, and what replaced them.
DEPRECATED: dict[str, str] = {
    "monitoring.breach_ticks": (
        "the sequential test weighs every tick's counts once, so bad ticks are no longer "
        "counted in a row; monitoring.false_page_rate sets how often it may page falsely"
    ),
    "monitoring.significance": (
        "replaced by monitoring.false_page_rate: golive chooses the sequential test's "
        "threshold for that share of false pages per release, and the success criteria "
        "test at that level"
    ),
}


def deprecations(config: Config) -> list[str]:
    """A sentence for every deprecated key the config sets: that it is ignored, and why."""
    found = []
    for path, why in DEPRECATED.items():
        section, key = path.split(".")
        model = getattr(config, section)
        if key in model.model_fields_set:
            found.append(f"{path} is deprecated and ignored: {why}")
    return found


class RemindersConfig(_Model):
    """Nothing stalls: a step request (or a blocked step) nobody answers is brought up again."""

    after: Duration = timedelta(minutes=10)  # the first reminder to the step's owner
    escalate_after: Duration = timedelta(minutes=30)  # from then on someone else is mentioned
    every: Duration = timedelta(minutes=10)  # at most one reminder per step in this interval

    @model_validator(mode="after")
    def _escalate_later(self) -> RemindersConfig:
        if self.escalate_after < self.after:
            raise PydanticCustomError(
                "reminders",
                "escalate_after ({escalate}) must not come before after ({after})",
                {
                    "escalate": format_duration(self.escalate_after),
                    "after": format_duration(self.after),
                },
            )
        return self


class VerificationPaths(_Model):
    """Paths of the product API's money endpoints (docs/product-api.md)."""

    leads: str = "/leads"
    lead: str = "/leads/{id}"
    billing_report: str = "/billing/report"
    invoices: str = "/billing/invoices"
    invoice_pdf: str = "/billing/invoices/{id}/pdf"
    invoice_csv: str = "/billing/invoices/{id}/csv"


class VerificationConfig(_Model):
    """Runbook §5: the product API and the tokens the money-path checks use."""

    base_url: Url
    finance_token_env: EnvName = "GOLIVE_FINANCE_TOKEN"
    limited_token_env: EnvName = "GOLIVE_LIMITED_TOKEN"
    paths: VerificationPaths = VerificationPaths()


class Config(_Model):
    """The whole golive.yml."""

    database: str = "golive.db"
    timezone: str = "UTC"
    slack: SlackConfig
    roles: RolesConfig = RolesConfig()
    users: dict[str, UserId] = Field(default_factory=dict)
    services: list[ServiceConfig] = Field(min_length=1)
    preconditions: PreconditionsConfig = PreconditionsConfig()
    preflight: PreflightConfig | None = None
    monitoring: MonitoringConfig = MonitoringConfig()
    verification: VerificationConfig | None = None
    reminders: RemindersConfig = RemindersConfig()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PydanticCustomError(
                "timezone", "unknown timezone: {value}", {"value": repr(value)}
            ) from exc
        return value

    @field_validator("services")
    @classmethod
    def _unique_services(cls, value: list[ServiceConfig]) -> list[ServiceConfig]:
        names = [s.name for s in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise PydanticCustomError(
                "services", "service names repeat: {names}", {"names": ", ".join(duplicates)}
            )
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The timezone in which times are shown to people."""
        return ZoneInfo(self.timezone)

    def service(self, name: str) -> ServiceConfig | None:
        """The configured service of that name, if any."""
        return next((s for s in self.services if s.name == name), None)

    def secret_names(self) -> list[tuple[str, str]]:
        """Every (environment variable, field path) whose secret the configured sections need."""
        names: list[tuple[str, str]] = []
        pre = self.preconditions
        if pre.ci:
            names.append((pre.ci.token_env, "preconditions.ci.token_env"))
        if pre.incidents:
            names.append((pre.incidents.token_env, "preconditions.incidents.token_env"))
        if pre.rollback and pre.rollback.token_env:
            names.append((pre.rollback.token_env, "preconditions.rollback.token_env"))
        if pre.rollback and pre.rollback.username_env and pre.rollback.password_env:
            names.append((pre.rollback.username_env, "preconditions.rollback.username_env"))
            names.append((pre.rollback.password_env, "preconditions.rollback.password_env"))
        mon = self.monitoring
        if mon.pagerduty_events_url and mon.pagerduty_routing_key_env:
            names.append((mon.pagerduty_routing_key_env, "monitoring.pagerduty_routing_key_env"))
        if self.verification:
            v = self.verification
            names.append((v.finance_token_env, "verification.finance_token_env"))
            names.append((v.limited_token_env, "verification.limited_token_env"))
        return names


class Secrets:
    """Secret values looked up by environment-variable name; never printed."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)

    def get(self, name: str | None) -> str | None:
        """The secret held by that variable, or None when unset or empty."""
        if not name:
            return None
        value = self._environ.get(name)
        return value if value else None

    def require(self, name: str) -> str:
        """The secret held by that variable; a MissingSecret naming it when unset."""
        value = self.get(name)
        if value is None:
            raise MissingSecret(f"the environment variable {name} is not set")
        return value

    def missing(self, config: Config) -> list[tuple[str, str]]:
        """The (variable, field path) pairs the config needs that the environment lacks."""
        return [(name, path) for name, path in config.secret_names() if self.get(name) is None]

    def __repr__(self) -> str:
        return f"Secrets({len(self._environ)} variables)"


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not path:
            path = part
        else:
            path += f".{part}"
    return path or "(top level)"


_CUSTOM = {
    "duration",
    "percent",
    "url",
    "env",
    "user",
    "channel",
    "group",
    "team",
    "reaction",
    "service",
    "repository",
    "timezone",
    "services",
    "wave",
    "interval",
    "credentials",
    "health",
    "placeholders",
}


def _describe(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    loc = tuple(error.get("loc", ()))
    # Errors raised by an "after" model validator carry no field of their own.
    path = _location(tuple(p for p in loc if not str(p).startswith("function-")))
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    if kind == "missing":
        return f"{path}: required"
    message = str(error.get("msg", "invalid"))
    if kind in _CUSTOM:
        return f"{path}: {message}"
    return f"{path}: {message} (got {error.get('input')!r})"


def validate_config(data: object) -> Config:
    """Validate parsed YAML; a ConfigError lists every problem with its field path."""
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping of keys, got {type(data).__name__}"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors()]) from None


def load_config(path: str | Path) -> Config:
    """Read and validate golive.yml; every problem is reported, never a traceback."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}: cannot read: {exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{file}: not valid YAML at {where}: {problem}"]) from None
    if data is None:
        raise ConfigError([f"{file}: the file is empty"])
    return validate_config(data)
