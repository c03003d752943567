"""golive.yml: pydantic models for every key, durations and percentages, secrets by env-var name."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
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
from pydantic_core import InitErrorDetails, PydanticCustomError

from bot.domain.errors import ConfigError, MissingSecret
from bot.domain.model import Role
from bot.domain.serial import Seconds

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
    # The workspace's address (https://acme.slack.com): with it, what golive writes outside Slack
    # (the GitHub release notes) links straight to the release thread.
    workspace_url: Url | None = None

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
    # The merge gate: GitHub's webhook deliveries are signed with the secret this variable holds
    # (POST /github/webhook); the sweep catches whatever a webhook missed.
    webhook_secret_env: EnvName | None = None
    gate_sweep: Duration = timedelta(minutes=2)

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
    """Where the release notes live: a page (`{version}` is replaced by the release version), or
    the GitHub release tagged with the version in `preconditions.ci`'s repository."""

    url: Url | None = None
    github_release: bool = False

    @model_validator(mode="after")
    def _one_home(self) -> ReleaseNotesConfig:
        if self.github_release and self.url is not None:
            raise PydanticCustomError(
                "notes",
                "set url or github_release: true, not both (the notes live in one place)",
                {},
            )
        if not self.github_release and self.url is None:
            raise PydanticCustomError(
                "notes", "say where the notes live: url, or github_release: true", {}
            )
        return self


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

    @model_validator(mode="after")
    def _github_release_needs_ci(self) -> PreconditionsConfig:
        if self.release_notes and self.release_notes.github_release and self.ci is None:
            raise _at(
                ("release_notes", "github_release"),
                "notes",
                "the GitHub release is found with preconditions.ci's github_url, repository and "
                "token; configure preconditions.ci",
                True,
            )
        return self


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


# The runbook's minimums, part of the runbook rather than defaults: §4.6 "monitor ... for at
# least 15 minutes before widening traffic" and §7 "keep heightened monitoring for at least one
# hour". A config below them must say why (`monitoring.shortened_reason`).
SOAK_FLOOR = timedelta(minutes=15)
HEIGHTENED_FLOOR = timedelta(hours=1)


@dataclass(frozen=True)
class Shortened:
    """Which of the runbook's minimum periods a config shortens, to what, and why."""

    soak: Seconds | None
    heightened: Seconds | None
    reason: str


def _at(loc: tuple[str, ...], kind: str, message: str, value: object) -> ValidationError:
    """A validation error placed on a field below the model raising it (its path is shown)."""
    return ValidationError.from_exception_data(
        "golive.yml",
        [InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)],
    )


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
    # Why this config runs the soak or heightened monitoring below the runbook's minimum; shown
    # in every status, the completion announcement and the record.
    shortened_reason: str | None = Field(default=None, min_length=1, max_length=500)

    @field_validator("shortened_reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise PydanticCustomError("reason", "an empty reason says nothing; write why", {})
        return " ".join(value.split()) if value is not None else None

    @model_validator(mode="after")
    def _floors(self) -> MonitoringConfig:
        if self.shortened_reason:
            return self
        below = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "floor",
                    "{value} is shorter than the runbook's {floor} ({section}: at least {words});"
                    " lengthen it, or say why in monitoring.shortened_reason",
                    {
                        "value": format_duration(value),
                        "floor": format_duration(floor),
                        "section": section,
                        "words": words,
                    },
                ),
                loc=(name, "duration"),
                input=format_duration(value),
            )
            for name, value, floor, section, words in (
                ("soak", self.soak.duration, SOAK_FLOOR, "§4.6", "15 minutes"),
                ("heightened", self.heightened.duration, HEIGHTENED_FLOOR, "§7", "one hour"),
            )
            if value < floor
        ]
        if below:
            raise ValidationError.from_exception_data("golive.yml", below)
        return self

    def shortened(self) -> Shortened | None:
        """What this config shortens below the runbook's minimums (None when nothing)."""
        soak = self.soak.duration if self.soak.duration < SOAK_FLOOR else None
        heightened = (
            self.heightened.duration if self.heightened.duration < HEIGHTENED_FLOOR else None
        )
        if soak is None and heightened is None:
            return None
        return Shortened(soak, heightened, self.shortened_reason or "")

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


# -- step actions ------------------------------------------------------------------------------
# What golive runs itself when a step's owner approves: a GitHub Actions workflow, an Argo CD
# sync or a webhook. Strings in them are templates: `{version}` and the other PLACEHOLDERS are
# filled in per release (and per service, for the steps that deploy services).

PLACEHOLDERS = ("version", "service", "wave", "image", "rollback_tag", "release_id")
# The steps that may carry an action, besides `wave-N`; `rollback` runs on a confirmed rollback.
ACTION_STEPS = ("backup", "migrations", "portal", "rollback")
_WAVE_KEY = re.compile(r"^wave-([1-9][0-9]*)$")
# Per step, the placeholders that have a value there: `backup` runs once for the release, the
# deploy steps once per service, `rollback` once per service with its rollback image.
_PER_SERVICE = ("version", "service", "wave", "image", "release_id")
STEP_PLACEHOLDERS: Mapping[str, tuple[str, ...]] = {
    "backup": ("version", "release_id"),
    "migrations": _PER_SERVICE,
    "wave": _PER_SERVICE,
    "portal": _PER_SERVICE,
    "rollback": PLACEHOLDERS,
}
RUN_INPUT = "golive_run"  # the input that tells golive's run apart where GitHub cannot say


def template_names(text: str) -> list[str]:
    """The placeholder names a template uses, in order; ValueError for a stray brace."""
    names: list[str] = []
    rest = text
    while rest:
        opening, closing = rest.find("{"), rest.find("}")
        if opening == -1 and closing == -1:
            break
        if opening == -1 or (closing != -1 and closing < opening):
            raise ValueError("a '}' without its '{'")
        end = rest.find("}", opening)
        if end == -1 or "{" in rest[opening + 1 : end]:
            raise ValueError("a '{' without its '}'")
        names.append(rest[opening + 1 : end])
        rest = rest[end + 1 :]
    return names


def fill_template(text: str, values: Mapping[str, str]) -> str:
    """A template with each `{name}` replaced by its value (names checked by check-config)."""
    for name in template_names(text):
        text = text.replace("{" + name + "}", values.get(name, ""), 1)
    return text


def fill_templates(value: Any, values: Mapping[str, str]) -> Any:
    """Every string inside a JSON-like value filled in (keys stay as written)."""
    if isinstance(value, str):
        return fill_template(value, values)
    if isinstance(value, dict):
        return {k: fill_templates(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_templates(v, values) for v in value]
    return value


InputValue = str | int | float | bool


class GitHubWorkflowAction(_Model):
    """Dispatch a GitHub Actions workflow and follow its run to the end."""

    workflow: str = Field(min_length=1)
    ref: str = "main"
    inputs: dict[str, InputValue] = Field(default_factory=dict)
    repository: str | None = None
    github_url: Url | None = None
    token_env: EnvName | None = None
    timeout: Duration = timedelta(minutes=30)
    poll_interval: Duration = timedelta(seconds=15)

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
            raise PydanticCustomError(
                "repository", "not an owner/name repository: {value}", {"value": repr(value)}
            )
        return value

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, value: dict[str, InputValue]) -> dict[str, InputValue]:
        if RUN_INPUT in value:
            raise PydanticCustomError(
                "inputs", "{name} is golive's own input; leave it out", {"name": RUN_INPUT}
            )
        return value


class ArgoCDSyncAction(_Model):
    """Sync an Argo CD application and wait until it is Synced and Healthy."""

    server: Url
    app: str = Field(min_length=1)
    token_env: EnvName = "ARGOCD_TOKEN"
    revision: str | None = None
    prune: bool = False
    timeout: Duration = timedelta(minutes=15)
    poll_interval: Duration = timedelta(seconds=5)


class WebhookAction(_Model):
    """POST a JSON body to a URL; a 2xx passes, or `poll_url` is polled for the outcome."""

    url: str
    token_env: EnvName | None = None
    body: dict[str, Any] = Field(default_factory=dict)
    poll_url: str | None = None
    timeout: Duration = timedelta(minutes=30)
    poll_interval: Duration = timedelta(seconds=10)

    @field_validator("url", "poll_url")
    @classmethod
    def _templated_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/{}]+", value):
            raise PydanticCustomError(
                "url", "not an http(s) URL with a fixed host: {value}", {"value": repr(value)}
            )
        return value


ActionSpec = GitHubWorkflowAction | ArgoCDSyncAction | WebhookAction


class StepAction(_Model):
    """One step's action: exactly one of github_workflow, argocd_sync and webhook."""

    github_workflow: GitHubWorkflowAction | None = None
    argocd_sync: ArgoCDSyncAction | None = None
    webhook: WebhookAction | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StepAction:
        given = [k for k in ("github_workflow", "argocd_sync", "webhook") if getattr(self, k)]
        if len(given) != 1:
            raise PydanticCustomError(
                "action",
                "name exactly one of github_workflow, argocd_sync and webhook (got {given})",
                {"given": ", ".join(given) or "none"},
            )
        return self

    @property
    def kind(self) -> str:
        """github_workflow, argocd_sync or webhook."""
        return next(k for k in ("github_workflow", "argocd_sync", "webhook") if getattr(self, k))

    @property
    def spec(self) -> ActionSpec:
        """The configured action itself."""
        found: ActionSpec = getattr(self, self.kind)
        return found


def step_family(key: str) -> str | None:
    """`wave` for `wave-N`, the key itself for the other action steps, None for anything else."""
    if _WAVE_KEY.match(key):
        return "wave"
    return key if key in ACTION_STEPS else None


def _templates(spec: ActionSpec) -> list[tuple[str, str]]:
    """(field path, template) of every templated string of an action."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            found.append((path, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    if isinstance(spec, GitHubWorkflowAction):
        walk(spec.ref, "ref")
        walk(spec.inputs, "inputs")
    elif isinstance(spec, ArgoCDSyncAction):
        if spec.revision is not None:
            walk(spec.revision, "revision")
    else:
        walk(spec.url, "url")
        walk(spec.body, "body")
        if spec.poll_url is not None:
            walk(spec.poll_url, "poll_url")
    return found


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
    # POST here voids the invoice verification generated; without it the test invoice remains.
    invoice_void: str | None = None


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
    actions: dict[str, StepAction] = Field(default_factory=dict)
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

    def action(self, step_key: str) -> StepAction | None:
        """The action configured for a step (`wave-2`, `portal`, `rollback`...), if any."""
        return self.actions.get(step_key)

    def github_for(self, action: GitHubWorkflowAction) -> tuple[str, str, str]:
        """(API base, repository, token variable) of a workflow action: its own where it names
        a repository, else those of `preconditions.ci`."""
        ci = self.preconditions.ci
        if action.repository is not None or ci is None:
            return (
                action.github_url or "https://api.github.com",
                action.repository or "",
                action.token_env or "GITHUB_TOKEN",
            )
        return (action.github_url or ci.github_url, ci.repository, action.token_env or ci.token_env)

    def secret_names(self) -> list[tuple[str, str]]:
        """Every (environment variable, field path) whose secret the configured sections need."""
        names: list[tuple[str, str]] = []
        pre = self.preconditions
        if pre.ci:
            names.append((pre.ci.token_env, "preconditions.ci.token_env"))
            if pre.ci.webhook_secret_env:
                names.append((pre.ci.webhook_secret_env, "preconditions.ci.webhook_secret_env"))
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
        for key, action in self.actions.items():
            spec = action.spec
            path = f"actions.{key}.{action.kind}.token_env"
            if isinstance(spec, GitHubWorkflowAction):
                names.append((self.github_for(spec)[2], path))
            elif spec.token_env:
                names.append((spec.token_env, path))
        return list(dict.fromkeys(names))


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
    "notes",
    "reason",
    "floor",
    "action",
    "inputs",
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
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors()]) from None
    problems = action_problems(config)
    if problems:
        raise ConfigError(problems)
    return config


def _step_scope(config: Config, key: str) -> tuple[list[ServiceConfig], str | None]:
    """The services an action step runs for, or why the step does not exist."""
    backend = [s for s in config.services if s.tier == "backend"]
    wave = _WAVE_KEY.match(key)
    if wave:
        members = [s for s in backend if s.deploy_wave == int(wave.group(1))]
        waves = sorted({s.deploy_wave for s in backend})
        known = ", ".join(f"wave-{w}" for w in waves) or "none"
        return members, None if members else f"no backend service deploys in {key} ({known})"
    if key == "portal":
        members = [s for s in config.services if s.tier == "frontend"]
        return members, None if members else "there is no frontend service, so no portal step"
    if key == "migrations":
        members = [s for s in config.services if s.migrations]
        return members, None if members else "no service declares migrations"
    if key == "rollback":
        return list(config.services), None
    if key == "backup":
        return [], None
    steps = ", ".join([*ACTION_STEPS[:2], "wave-N", *ACTION_STEPS[2:]])
    return [], f"no step takes an action by that name (actions run for {steps})"


def action_problems(config: Config) -> list[str]:
    """What is wrong with the configured actions beyond their shape: unknown step keys,
    templates with unknown placeholders or stray braces, a workflow without a repository."""
    problems: list[str] = []
    for key, action in config.actions.items():
        members, missing = _step_scope(config, key)
        if missing:
            problems.append(f"actions.{key}: {missing}")
            continue
        family = step_family(key) or key
        allowed = STEP_PLACEHOLDERS[family]
        spec = action.spec
        where = f"actions.{key}.{action.kind}"
        if isinstance(spec, GitHubWorkflowAction) and not config.github_for(spec)[1]:
            problems.append(f"{where}: name a repository, or configure preconditions.ci")
        for path, text in _templates(spec):
            try:
                names = template_names(text)
            except ValueError as exc:
                problems.append(f"{where}.{path}: bad template {text!r}: {exc}")
                continue
            for name in names:
                if name not in PLACEHOLDERS:
                    known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                    problems.append(
                        f"{where}.{path}: unknown placeholder {{{name}}} (known: {known})"
                    )
                elif name not in allowed:
                    problems.append(
                        f"{where}.{path}: {{{name}}} has no value in the {key} step "
                        f"(there: {', '.join('{' + a + '}' for a in allowed)})"
                    )
                elif name == "image":
                    bare = [s.name for s in members if not s.image]
                    if bare:
                        problems.append(
                            f"{where}.{path}: {{image}} is empty for {', '.join(bare)} "
                            f"(set services[].image)"
                        )
    return problems


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
