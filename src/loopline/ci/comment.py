"""Post a report on a pull request (GitHub) or merge request (GitLab), or update ours.

One comment per pull request: ours carries a hidden marker, so a second push updates
it instead of piling up comments. Tokens come from the environment and never appear
in messages or errors.

>>> body = with_marker("Model report", "loopline-report")
>>> body.startswith("<!-- loopline-report -->")
True
>>> find_marked([{"id": 1, "body": "hi"}, {"id": 2, "body": body}], "loopline-report")
2
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from loopline.errors import (
    InvalidArgumentError,
    LooplineError,
    TransportError,
    UnauthenticatedError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import httpx

__all__ = ["CommentResult", "Provider", "find_marked", "post_comment", "with_marker"]

Provider = Literal["github", "gitlab"]

_DEFAULT_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
# What the providers' own CI runners set, so self-hosted instances work without flags.
_API_ENV = {"github": "GITHUB_API_URL", "gitlab": "CI_API_V4_URL"}
_TOKEN_ENV = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN"}
_REPO = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
_MARKER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_PAGES = 50


@dataclass(frozen=True, slots=True)
class CommentResult:
    """What happened: ``created`` or ``updated``, the comment's id and its web URL."""

    action: Literal["created", "updated"]
    comment_id: int
    url: str


def with_marker(body: str, marker: str) -> str:
    """``body`` headed by the invisible marker that identifies our comment."""
    return f"<!-- {marker} -->\n{body}"


def find_marked(comments: list[dict[str, Any]], marker: str) -> int | None:
    """The id of the first comment that starts with ``marker``'s tag, if any."""
    tag = f"<!-- {marker} -->"
    for comment in comments:
        if str(comment.get("body") or "").lstrip().startswith(tag):
            return int(comment["id"])
    return None


def post_comment(
    provider: Provider,
    repo: str,
    number: int,
    body: str,
    *,
    marker: str = "loopline-report",
    api_url: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> CommentResult:
    """Create our comment on pull/merge request ``number`` of ``repo``, or update it.

    ``repo`` is ``OWNER/NAME`` (GitLab: the project's full path, groups included).
    The token defaults to ``GITHUB_TOKEN`` or ``GITLAB_TOKEN``; the API base URL to
    ``GITHUB_API_URL``/``CI_API_V4_URL`` when set, else the public instance.
    """
    import httpx

    env = os.environ if env is None else env
    if provider not in _DEFAULT_API:
        raise InvalidArgumentError(
            f"unknown provider {provider!r}", hint="use --provider github or --provider gitlab"
        )
    if not _REPO.match(repo) or any(part in (".", "..") for part in repo.split("/")):
        raise InvalidArgumentError(
            f"{repo!r} is not a repository path", hint="give it as OWNER/NAME (e.g. acme/churn)"
        )
    if number <= 0:
        raise InvalidArgumentError(f"{number} is not a pull request number")
    if not _MARKER.match(marker):
        raise InvalidArgumentError(
            f"{marker!r} cannot be a marker", hint="use letters, digits, '.', '_' or '-'"
        )
    token = token or env.get(_TOKEN_ENV[provider])
    if not token:
        raise UnauthenticatedError(
            f"no token to post on {provider}",
            hint=f"set {_TOKEN_ENV[provider]} (a token allowed to comment on {repo})",
        )
    base = (api_url or env.get(_API_ENV[provider]) or _DEFAULT_API[provider]).rstrip("/")
    api: _Api = _GitHub(base, repo, number) if provider == "github" else _GitLab(base, repo, number)
    headers = api.headers(token)
    with httpx.Client(headers=headers, timeout=timeout, follow_redirects=False) as http:
        marked = with_marker(body, marker)
        existing: int | None = None
        for page in api.pages(http, token):
            existing = find_marked(page, marker)
            if existing is not None:
                break
        if existing is None:
            data = _call(http, "POST", api.create_url(), {"body": marked}, token)
            return CommentResult("created", int(data["id"]), api.web_url(data))
        data = _call(http, api.update_method, api.update_url(existing), {"body": marked}, token)
        return CommentResult("updated", int(data["id"]), api.web_url(data))


class _Api:
    update_method = "PATCH"

    def __init__(self, base: str, repo: str, number: int) -> None:
        self.base, self.repo, self.number = base, repo, number

    def headers(self, token: str) -> dict[str, str]:
        raise NotImplementedError

    def list_url(self, page: int) -> str:
        raise NotImplementedError

    def create_url(self) -> str:
        raise NotImplementedError

    def update_url(self, comment_id: int) -> str:
        raise NotImplementedError

    def web_url(self, data: dict[str, Any]) -> str:
        return str(data.get("html_url") or data.get("web_url") or "")

    def pages(self, http: httpx.Client, token: str) -> Iterator[list[dict[str, Any]]]:
        for page in range(1, _MAX_PAGES + 1):
            # The token goes along only to be masked in error messages.
            items = _call(http, "GET", self.list_url(page), None, token)
            if not isinstance(items, list):
                raise TransportError("the API answered a comment list that is not a list")
            yield items
            if len(items) < 100:
                return


class _GitHub(_Api):
    def headers(self, token: str) -> dict[str, str]:
        return {
            "authorization": f"Bearer {token}",
            "accept": "application/vnd.github+json",
            "x-github-api-version": "2022-11-28",
            "user-agent": "loopline-ci",
        }

    def list_url(self, page: int) -> str:
        return (
            f"{self.base}/repos/{self.repo}/issues/{self.number}/comments?per_page=100&page={page}"
        )

    def create_url(self) -> str:
        return f"{self.base}/repos/{self.repo}/issues/{self.number}/comments"

    def update_url(self, comment_id: int) -> str:
        return f"{self.base}/repos/{self.repo}/issues/comments/{comment_id}"


class _GitLab(_Api):
    update_method = "PUT"

    def headers(self, token: str) -> dict[str, str]:
        return {"private-token": token, "user-agent": "loopline-ci"}

    def _notes(self) -> str:
        project = quote(self.repo, safe="")
        return f"{self.base}/projects/{project}/merge_requests/{self.number}/notes"

    def list_url(self, page: int) -> str:
        return f"{self._notes()}?per_page=100&page={page}&sort=asc"

    def create_url(self) -> str:
        return self._notes()

    def update_url(self, comment_id: int) -> str:
        return f"{self._notes()}/{comment_id}"


def _call(
    http: httpx.Client, method: str, url: str, payload: dict[str, Any] | None, token: str
) -> Any:
    import httpx

    try:
        response = http.request(method, url, json=payload)
    except httpx.HTTPError as exc:
        raise TransportError(
            f"{method} {_redact(url, token)} failed: {type(exc).__name__}",
            hint="check the API URL (--api-url) and the network",
        ) from None
    if response.status_code >= 400:
        detail = _redact(_error_detail(response), token)
        hint = {
            401: "the token was refused: check that it is valid and not expired",
            403: "the token lacks permission to comment on this repository",
            404: "check --repo and --pr (and that the token can see the repository)",
        }.get(response.status_code, "see the API's answer above")
        raise LooplineError(
            f"{method} {_redact(url, token)} answered {response.status_code}: {detail}", hint=hint
        )
    try:
        return response.json()
    except ValueError:
        raise TransportError(f"{method} {url} answered something that is not JSON") from None


def _error_detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)[:200]
    return str(data)[:200]


def _redact(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text
