"""Users, tokens, sessions, members, comments, notifications and the audit log, on every backend."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from loopline.auth.collab import CollabStore
from loopline.auth.roles import Role
from loopline.auth.store import AuthStore
from loopline.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
)
from loopline.events import emit
from loopline.store.metadata.schema_collab import api_tokens, users

if TYPE_CHECKING:
    from loopline.store.metadata import Database


@pytest.fixture
def store(db: Database) -> AuthStore:
    return AuthStore(db)


def test_passwords_are_stored_hashed_and_checked(store: AuthStore, db: Database) -> None:
    store.create_user("ana", "correct horse")
    with db.read() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert store.authenticate_password("ana", "correct horse") is not None
    assert store.authenticate_password("ana", "wrong horse") is None
    assert store.authenticate_password("nobody", "correct horse") is None
    with pytest.raises(AlreadyExistsError):
        store.create_user("ana", "another password")
    with pytest.raises(InvalidArgumentError, match="too short"):
        store.create_user("bo", "short")
    with pytest.raises(InvalidArgumentError, match="invalid user name"):
        store.create_user("../etc", "long enough pw")


def test_tokens_are_shown_once_stored_as_digests_and_stop_on_revocation(
    store: AuthStore, db: Database
) -> None:
    store.create_user("ana", None)
    token, info = store.create_token("ana", name="ci")
    with db.read() as conn:
        stored = conn.execute(sa.select(api_tokens.c.token_hash)).scalar_one()
    assert token not in stored
    assert len(stored) == 64
    assert store.authenticate_token(token).name == "ana"  # type: ignore[union-attr]
    assert "token" not in store.list_tokens("ana")[0]
    store.revoke_token("ana", info["id"])
    assert store.authenticate_token(token) is None
    assert store.list_tokens("ana")[0]["revoked_at"] is not None
    with pytest.raises(NotFoundError):
        store.revoke_token("ana", 999)


def test_expired_tokens_and_disabled_users_are_refused(store: AuthStore, db: Database) -> None:
    store.create_user("root", "long enough pw", is_admin=True)
    store.create_user("ana", "long enough pw")
    token, info = store.create_token("ana", expires_in_days=1)
    assert store.authenticate_token(token) is not None
    with db.write() as conn:
        conn.execute(
            sa.update(api_tokens).where(api_tokens.c.id == info["id"]).values(expires_at=1)
        )
    assert store.authenticate_token(token) is None
    fresh, _ = store.create_token("ana")
    session, _csrf = store.create_session(store.authenticate_token(fresh))  # type: ignore[arg-type]
    store.set_disabled("ana", True, actor="root")
    assert store.authenticate_token(fresh) is None
    assert store.authenticate_session(session) is None
    assert store.authenticate_password("ana", "long enough pw") is None
    with pytest.raises(InvalidStateError, match="last enabled administrator"):
        store.ensure_not_last_admin("root")


def test_roles_per_project_and_the_four_eyes_policy(store: AuthStore) -> None:
    store.create_user("ana", None)
    store.create_project("vision", actor="root")
    store.set_member("vision", "ana", Role.MAINTAINER, actor="root")
    store.set_member("default", "ana", Role.VIEWER, actor="root")
    token, _ = store.create_token("ana")
    who = store.authenticate_token(token)
    assert who is not None
    assert who.role_in("vision") == Role.MAINTAINER
    assert who.role_in("default") == Role.VIEWER
    assert store.members_with_role(store.list_projects()[1]["id"], Role.MAINTAINER) == ["ana"]
    store.remove_member("vision", "ana", actor="root")
    assert store.members("vision") == []
    assert not store.four_eyes("vision")
    store.set_four_eyes("vision", True, actor="root")
    assert store.four_eyes("vision")
    with pytest.raises(NotFoundError):
        store.set_member("nope", "ana", Role.VIEWER, actor="root")


def test_sessions_carry_a_csrf_token_and_end(store: AuthStore) -> None:
    store.create_user("ana", "long enough pw")
    who = store.authenticate_password("ana", "long enough pw")
    assert who is not None
    session, csrf = store.create_session(who)
    found = store.authenticate_session(session)
    assert found is not None
    assert found.csrf_token == csrf
    assert found.via == "session"
    store.end_session(session)
    assert store.authenticate_session(session) is None


def test_comments_mentions_notifications_and_audit(store: AuthStore, db: Database) -> None:
    collab = CollabStore(db)
    store.create_user("ana", None)
    store.create_user("bo", None)
    store.set_member("default", "bo", Role.MAINTAINER, actor="root")
    comment = collab.add_comment(
        "run", "r1", "**nice** @bo, see @ghost", author="ana", project="default"
    )
    assert comment["mentions"] == ["bo"]  # unknown names are not mentions
    assert [c["body"] for c in collab.comments("run", "r1")] == ["**nice** @bo, see @ghost"]
    with db.write() as conn:
        emit(conn, "model.review_requested", "model_version", "clf/1", "ana", {})
        emit(conn, "monitor.alert_raised", "monitor", "m", "system", {"severity": "high"})
    feed = collab.notifications("bo", roles={"default": Role.MAINTAINER})
    assert [n["type"] for n in feed] == ["alert", "approval_requested", "mention"]
    assert not any(n["read"] for n in feed)
    collab.mark_read("bo", feed[0]["id"])
    assert all(n["read"] for n in collab.notifications("bo", roles={"default": Role.MAINTAINER}))
    # A viewer is not asked to approve; nobody is notified of their own comment.
    assert [n["type"] for n in collab.notifications("ana", roles={"default": Role.VIEWER})] == [
        "alert"
    ]
    with pytest.raises(PermissionDeniedError):
        collab.delete_comment(comment["id"], actor="bo", moderator=False)
    collab.delete_comment(comment["id"], actor="ana", moderator=False)
    assert collab.comments("run", "r1") == []

    now = int(time.time() * 1000)
    for i in range(3):
        collab.record(
            {"actor": f"u{i % 2}", "method": "POST", "path": "/x", "status": 200, "origin": "::1"}
        )
    assert [e["actor"] for e in collab.audit(actor="u0")] == ["u0", "u0"]
    assert len(list(collab.iter_audit(since=now - 60_000))) == 3


def test_the_usage_limit_is_shared_by_every_process_on_the_store(db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from loopline.auth.ratelimit import SharedRateLimiter

    now = [1_000_000.0]
    # Four "workers", each with its own counts, over one store; limit 40 a minute.
    workers = [SharedRateLimiter(db, 40, clock=lambda: now[0]) for _ in range(4)]

    def burst(limiter: SharedRateLimiter) -> int:  # a worker's requests, one after another
        return sum(limiter.hit("user:1") for _ in range(30))

    with ThreadPoolExecutor(4) as pool:
        allowed = sum(pool.map(burst, workers))
        allowed += sum(pool.map(burst, workers))  # still refused, or nearly
    # Alone each would allow 60 (240 in all); shared, about the limit: a worker may
    # overshoot by the hits it has not synced yet (under a tenth of the limit).
    assert 40 <= allowed <= 40 + 4 * 4
    now[0] += 1.5  # every worker syncs again: all of them see the limit reached
    assert not any(w.hit("user:1") for w in workers)
    assert workers[0].hit("user:2")  # other users are not affected
    now[0] += 60.0  # the next window starts from zero
    assert all(w.hit("user:1") for w in workers)
