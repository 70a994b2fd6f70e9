"""The script protocol is defined once (storage/protocol.py): the Lua side uses its names."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from conveyor.limits import MAX_PRIORITY
from conveyor.storage import commands
from conveyor.storage.protocol import (
    LEASE_SEPARATOR,
    PRIORITY_OFFSET,
    Code,
    FetchedJob,
    FetchReply,
    Lease,
    lua_constants,
)
from conveyor.storage.scripts import build_source

LUA = resources.files("conveyor.storage").joinpath("lua")
SCRIPTS = sorted(p.name.removesuffix(".lua") for p in LUA.iterdir() if p.name.endswith(".lua"))
FILES = [f"{name}.lua" for name in SCRIPTS] + sorted(
    f"includes/{p.name}" for p in LUA.joinpath("includes").iterdir() if p.name.endswith(".lua")
)
CODES = {int(code) for code in Code}


def _code(path: str) -> str:
    """A Lua file without its comments."""
    text = LUA.joinpath(path).read_text("utf-8")
    text = re.sub(r"--\[\[.*?\]\]", "", text, flags=re.S)
    return re.sub(r"--[^\n]*", "", text)


@pytest.mark.parametrize("path", FILES)
def test_no_script_returns_a_code_as_a_bare_number(path: str) -> None:
    # A code goes out in a return statement or into a reply table (out[i] = ...); a number in
    # brackets is an index, not a value.
    source = _code(path)
    outgoing = re.findall(r"\breturn\b([^\n]*)", source)
    outgoing += re.findall(r"\bout\[[^\]]*\]\s*=([^\n]*)", source)
    bare = [
        line
        for line in outgoing
        for number in re.findall(r"(?<![\w.\[])-?\d+(?![\w.\]])", line)
        if int(number) in CODES
    ]
    assert bare == []


def test_every_code_has_its_own_value() -> None:
    assert len(CODES) == len(Code)


def test_the_old_code_names_stay_importable() -> None:
    assert (commands.LEASE_LOST, commands.NOT_FOUND) == (Code.LEASE_LOST, Code.NOT_FOUND)
    assert (commands.IS_ACTIVE, commands.WRONG_STATE) == (Code.IS_ACTIVE, Code.WRONG_STATE)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_gets_the_protocol_constants(name: str) -> None:
    source = build_source(name, (("LEASE_MS", 1),))
    assert lua_constants() in source
    assert "\n-- @protocol\n" not in source


def test_priority_scores_stay_positive_for_every_allowed_priority() -> None:
    assert MAX_PRIORITY <= PRIORITY_OFFSET


def test_fetch_reads_the_job_fields_in_the_order_the_reply_names_them() -> None:
    source = _code("fetch.lua")
    hmget = re.search(r'"HMGET", key, ([^)]*)\)', source)
    assert hmget is not None
    fields = re.findall(r'"(\w+)"', hmget.group(1))
    assert tuple(fields[: len(FetchedJob._fields) - 2]) == FetchedJob._fields[2:]


def test_a_fetch_reply_is_a_header_then_the_jobs() -> None:
    job = ["7", "3@w", "send", "{}", None, None, None, None, None, "1000", None]
    reply = FetchReply.parse([["next_due_ms", 250], *job, *job])
    assert reply.next_due_ms == 250 and not reply.paused
    assert reply.jobs == [FetchedJob(*job), FetchedJob(*job)]
    assert reply.jobs[0].token == "3@w"
    assert FetchReply.parse([["paused", 1]]) == FetchReply([], paused=1)
    assert FetchReply.parse([[]]) == FetchReply([])


def test_a_lease_is_written_and_read_with_one_separator() -> None:
    sep = LEASE_SEPARATOR
    assert f'token .. "{sep}" .. now .. "{sep}" .. worker' in _code("fetch.lua")
    assert f'"^([^{sep}]*){sep}([^{sep}]*){sep}(.*)$"' in _code("includes/leases.lua")
    assert Lease.parse(f"3@w{sep}1000{sep}host:1:ab") == Lease("3@w", "1000", "host:1:ab")
