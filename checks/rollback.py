"""Rollback targets: the previous stable image of every changed service exists in the registry."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from checks.base import CheckResult, Status
from checks.http import ProviderError
from checks.registry import RegistryClient

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")

Version = tuple[int, int, int]


def parse_version(text: str) -> tuple[Version, bool] | None:
    """(major, minor, patch) and whether it is a pre-release; None when not semver."""
    match = _SEMVER.match(text.strip())
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    return (int(major), int(minor), int(patch)), pre is not None


def previous_stable(tags: list[str], release: str) -> str | None:
    """The highest non-pre-release semver tag below the release version."""
    target = parse_version(release)
    if target is None:
        return None
    candidates = []
    for tag in tags:
        parsed = parse_version(tag)
        if parsed is not None and not parsed[1] and parsed[0] < target[0]:
            candidates.append((parsed[0], tag))
    return max(candidates)[1] if candidates else None


async def check_rollback_target(
    registry: RegistryClient,
    *,
    service: str,
    image: str | None,
    release: str,
    last_completed: str | None,
) -> CheckResult:
    """One service: choose its rollback target and make sure the registry holds it."""
    name = f"rollback:{service}"
    started = time.monotonic()
    if not image:
        return CheckResult(
            name,
            Status.INCONCLUSIVE,
            f"{service} has no `image` configured, so golive cannot look for its rollback "
            f"image; confirm it by hand and waive `{name}`",
            {"service": service},
            0.0,
        )
    try:
        tags = await registry.list_tags(image)
    except ProviderError as exc:
        return exc.result(name, time.monotonic() - started)
    elapsed = time.monotonic() - started
    evidence: dict[str, Any] = {"service": service, "image": image, "tags_seen": len(tags)}
    if last_completed is not None:
        evidence["rule"] = "the version of the last release golive completed"
        target: str | None = last_completed
    else:
        evidence["rule"] = f"the highest stable version tag below {release}"
        target = previous_stable(tags, release)
    if target is None:
        shown = ", ".join(sorted(tags)[-8:]) or "none"
        return CheckResult(
            name,
            Status.FAIL,
            f"no stable tag below {release} in {image} (tags: {shown}): nothing to roll back to",
            evidence,
            elapsed,
        )
    if target not in tags:  # a release called v2.3.1 may be tagged 2.3.1, and the other way round
        other = target[1:] if target.startswith("v") else f"v{target}"
        target = other if other in tags else target
    evidence["target"] = target
    if target not in tags:
        return CheckResult(
            name,
            Status.FAIL,
            f"rollback target {image}:{target} ({evidence['rule']}) is not in the registry",
            evidence,
            elapsed,
        )
    return CheckResult(
        name, Status.PASS, f"{service} can roll back to {image}:{target}", evidence, elapsed
    )


def targets_from(evidences: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """service → rollback target from the evidence of stored rollback results (the newest
    wins)."""
    found: dict[str, str] = {}
    for evidence in evidences:
        if isinstance(evidence, Mapping) and evidence.get("service") and evidence.get("target"):
            found[str(evidence["service"])] = str(evidence["target"])
    return found
