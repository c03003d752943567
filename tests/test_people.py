"""Who may hold a role: the domain's rules over what a directory says, and Slack's answers read."""

from __future__ import annotations

import asyncio

import pytest

from bot.adapters.console import ConsoleTransport
from bot.adapters.slack.workspace import _person
from bot.domain.clock import FakeClock
from bot.domain.config import Secrets, validate_config
from bot.domain.errors import ConfigError, IllegalMove, Why
from bot.domain.model import Role
from bot.domain.people import Facts, KnownPeople, Person, Unfit, from_workspace, unfit
from bot.engine.runtime import Runtime
from bot.engine.service import StartRequest
from tests.conftest import BACKEND, CHANNEL, COMMANDER, config_dict, make_config

HERE = frozenset({"T0HERE"})


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        (Person("U1", frozenset({"T0HERE"})), None),
        (None, Unfit.UNKNOWN),
        (Person("U1", frozenset({"T0HERE"}), deleted=True), Unfit.DEACTIVATED),
        (Person("U1", frozenset({"T0HERE"}), bot=True), Unfit.BOT),
        (Person("USLACKBOT", frozenset({"T0HERE"})), Unfit.BOT),
        (Person("U1", frozenset({"T0THERE"})), Unfit.OTHER_WORKSPACE),
        (Person("U1", frozenset({"T0THERE", "T0HERE"})), None),
    ],
)
def test_someone_named_must_be_an_active_person_here(
    person: Person | None, expected: Unfit | None
) -> None:
    """A named holder must exist, be active, be human and belong to one of golive's teams."""
    assert unfit("U1", Facts(looked_up=True, person=person, workspace=HERE)) is expected


def test_the_group_binds_everyone_named_or_not() -> None:
    """With a user group, only members may hold the role, whether named or a default."""
    member = Facts(group="S1", members=frozenset({"U1"}))
    assert unfit("U1", member) is None
    assert unfit("U2", member) is Unfit.NOT_IN_GROUP
    assert unfit("U2", Facts()) is None  # not named and no group: the config's default stands
    named = Facts(looked_up=True, person=Person("U2"), group="S1", members=frozenset({"U1"}))
    assert unfit("U2", named) is Unfit.NOT_IN_GROUP


def test_only_known_teams_may_talk() -> None:
    """A request from a team golive does not serve, or without a team, is not let through."""
    assert from_workspace("T0HERE", HERE)
    assert not from_workspace("T0THERE", HERE)
    assert not from_workspace(None, HERE)
    assert not from_workspace("T0HERE", frozenset())


def test_slack_user_objects_become_people() -> None:
    """users.info's flags and an Enterprise Grid user's teams are read as Slack documents them."""
    grid = _person(
        "W1",
        {
            "id": "W1",
            "team_id": "T0HOME",
            "enterprise_user": {"enterprise_id": "E1", "teams": ["T0HOME", "T0HERE"]},
        },
    )
    assert grid == Person("W1", frozenset({"T0HOME", "T0HERE"}))
    assert _person("U1", {"id": "U1", "is_app_user": True}).bot
    assert _person("U1", {"id": "U1", "is_workflow_bot": True}).bot
    assert _person("U1", {"id": "U1", "deleted": True}).deleted


async def test_known_people_are_the_configs() -> None:
    """The console's directory knows `users:` and the default owners, and nobody else."""
    people = KnownPeople({"alice": "U0ALICE"}, ("U0CAROL", None))
    assert await people.person("U0ALICE") == Person("U0ALICE")
    assert await people.person("U0CAROL") == Person("U0CAROL")
    assert await people.person("U0MALLORY") is None
    assert await people.members("S0ANY") == {"U0ALICE", "U0CAROL"}
    assert await people.workspace() is None


def test_group_and_team_ids_are_validated() -> None:
    """`roles.<role>_group` takes a user group id and `slack.allowed_team_ids` team ids."""
    data = config_dict(roles={"on_call_group": "oncall"})
    with pytest.raises(ConfigError, match=r"roles\.on_call_group: not a Slack user group id"):
        validate_config(data)
    data = config_dict(slack={"release_channels": ["C0RELEASE1"], "allowed_team_ids": ["x"]})
    with pytest.raises(ConfigError, match=r"slack\.allowed_team_ids\[0\]: not a Slack team id"):
        validate_config(data)
    config = validate_config(config_dict(roles={"commander_group": "S0LEADS"}))
    assert config.roles.group(Role.COMMANDER) == "S0LEADS"
    assert config.roles.group(Role.ON_CALL) is None


class _SlowDirectory(KnownPeople):
    """A directory that answers only when the test lets it."""

    def __init__(self) -> None:
        super().__init__({"alice": COMMANDER, "bob": BACKEND})
        self.asked = 0
        self.answer = asyncio.Event()

    async def person(self, user_id: str) -> Person | None:
        self.asked += 1
        await self.answer.wait()
        return await super().person(user_id)


async def test_two_starts_racing_through_the_directory_open_one_release(clock: FakeClock) -> None:
    """Two starts that both wait for the directory cannot both open a release in a channel:
    the second is refused once the first exists."""
    directory = _SlowDirectory()
    runtime = Runtime(
        make_config(),
        Secrets({}),
        ConsoleTransport(lambda _: None),
        clock=clock,
        database=":memory:",
        people=directory,
    )
    service = runtime.service
    first = asyncio.create_task(
        service.start(CHANNEL, COMMANDER, StartRequest("v2.4.0", roles={"backend": BACKEND}))
    )
    second = asyncio.create_task(
        service.start(CHANNEL, COMMANDER, StartRequest("v2.5.0", roles={"backend": BACKEND}))
    )
    while directory.asked < 4:  # each start asks about its commander and its backend owner
        await asyncio.sleep(0)
    directory.answer.set()
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(outcomes[0], str) and outcomes[0].startswith("Release v2.4.0 started")
    assert isinstance(outcomes[1], IllegalMove) and outcomes[1].why is Why.RELEASE_ALREADY_OPEN
    assert runtime.store.db["releases"].count == 1
    await service.close()
