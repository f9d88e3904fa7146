"""Reading GitHub REST bodies (deployments and their statuses, pull requests, releases,
workflow runs) into `change_deployed` events: the changes that went out before an incident.

Every change event has `attrs["change"]` ("deployment", "pull_request", "release" or
"workflow_run") with `ref`, `sha`, `url`, `environment` (where known) and `repo`. A change is a
candidate trigger, never a cause: the draft lists it, other evidence must connect it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from connectors._support import Collector
from retro.connector import Doc, ReadContext, shape_error
from retro.errors import BundleError
from retro.models import Actor, EventKind, Provenance, TimelineEvent

SOURCE: Final = "github"
_HINT = "export the GitHub REST API response body unchanged (see docs/connectors/github.md)"
# A workflow whose name or file says it ships something; other runs (CI, lint) are not changes.
DEPLOY_WORKFLOW = re.compile(
    r"\b(deploy\w*|release\w*|rollout|roll out|ship|publish\w*|promot\w*|cd|production|prod)\b"
)
_REPO = re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/")
_SHA = re.compile(r"^[0-9a-f]{40}$")


# --- recognizing documents -----------------------------------------------------------------------


def _is_deployment(o: Any) -> bool:
    return isinstance(o, dict) and {"sha", "ref", "environment", "statuses_url"} <= o.keys()


def _is_status(o: Any) -> bool:
    return isinstance(o, dict) and {"state", "deployment_url", "created_at"} <= o.keys()


def _is_pull(o: Any) -> bool:
    return isinstance(o, dict) and {"number", "merged_at", "base", "head"} <= o.keys()


def _is_release(o: Any) -> bool:
    return isinstance(o, dict) and {"tag_name", "published_at", "draft"} <= o.keys()


def _is_run(o: Any) -> bool:
    return isinstance(o, dict) and {"run_number", "head_sha", "workflow_id"} <= o.keys()


def _is_repo(o: Any) -> bool:
    return isinstance(o, dict) and {"full_name", "default_branch", "html_url"} <= o.keys()


TESTS = {
    "deployment": _is_deployment,
    "status": _is_status,
    "pull": _is_pull,
    "release": _is_release,
    "run": _is_run,
}


def classify(data: Any) -> str | None:
    """ "deployment", "status", "pull", "release" or "run" (a list or one), "repository", None."""
    if isinstance(data, list):
        for name, test in TESTS.items():
            if data and all(test(o) for o in data[:50]):
                return name
        return None
    if not isinstance(data, dict):
        return None
    runs = data.get("workflow_runs")
    if isinstance(runs, list) and "total_count" in data and all(_is_run(r) for r in runs[:50]):
        return "run"
    for name, test in TESTS.items():
        if test(data):
            return name
    return "repository" if _is_repo(data) else None


def records_of(data: Any, name: str) -> list[tuple[Any, str]]:
    if isinstance(data, list):
        return [(rec, f"[{i}]") for i, rec in enumerate(data)]
    if name == "run" and "workflow_runs" in data:
        return [(rec, f"workflow_runs[{i}]") for i, rec in enumerate(data["workflow_runs"])]
    return [(data, name)]


# --- reading ---------------------------------------------------------------------------------------


def _repo_of(*urls: Any) -> str:
    for url in urls:
        match = _REPO.search(str(url or "") + "/")
        if match:
            return match["repo"]
    return ""


def _what(repo: str, ref: str) -> str:
    """What was deployed or released, with its repository's name: two repositories' deploys
    of "v5.31.0" must not read the same ("learner-web v5.31.0")."""
    name = repo.rsplit("/", 1)[-1]
    return f"{name} {ref}" if name and name not in ref else ref


def _actor(user: Any) -> Actor | None:
    if not isinstance(user, dict) or not user.get("login"):
        return None
    login = str(user["login"])
    is_bot = user.get("type") == "Bot" or login.endswith("[bot]")
    return Actor(
        source=SOURCE,
        id=str(user.get("id") or login),
        name=login,
        handle=login,
        is_bot=is_bot,
        is_human=not is_bot and user.get("type") == "User",
    )


def _deployment_id(url: Any) -> str:
    return str(url or "").rstrip("/").rsplit("/", 1)[-1]


def is_deploy_workflow(run: dict[str, Any]) -> bool:
    text = f"{run.get('name') or ''} {run.get('path') or ''}".lower()
    return bool(DEPLOY_WORKFLOW.search(re.sub(r"[^a-z0-9]+", " ", text)))


class Reader:
    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.out = Collector(ctx)
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.default_branch: dict[str, str] = {}

    def time(self, value: Any, doc: Doc, record: str, name: str) -> datetime:
        return self.ctx.time(value, doc=doc, record=record, field_name=name)

    def index(self, name: str, records: list[tuple[Any, str]]) -> None:
        for rec, _ in records:
            if name == "status" and isinstance(rec, dict):
                self.statuses.setdefault(_deployment_id(rec.get("deployment_url")), []).append(rec)
            elif name == "repository" and isinstance(rec, dict):
                self.default_branch[str(rec["full_name"])] = str(rec["default_branch"])

    def emit(self, doc: Doc, record: str, kind: EventKind, **kw: Any) -> None:
        attrs = {k: v for k, v in kw.pop("attrs", {}).items() if v not in (None, "", [], {})}
        event = TimelineEvent.of(
            source=SOURCE, provenance=Provenance.of(doc.rel, record), kind=kind, attrs=attrs, **kw
        )
        self.out.add(event, 1)

    def deployment(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        repo = _repo_of(rec.get("repository_url"), rec.get("url"))
        dep_id = str(rec.get("id"))
        env = rec.get("environment")
        created = self.time(rec.get("created_at"), doc, record, "created_at")
        statuses = sorted(self.statuses.get(dep_id, []), key=lambda s: str(s.get("created_at")))
        success = next((s for s in statuses if s.get("state") == "success"), None)
        last = statuses[-1] if statuses else None
        outcome = "success" if success else (str(last.get("state")) if last else "unknown")
        at = (
            self.time(success["created_at"], doc, record, "status created_at")
            if success
            else created
        )
        ref = str(rec.get("ref") or "")
        attrs = {
            "change": "deployment",
            "repo": repo,
            "ref": ref,
            "sha": rec.get("sha"),
            "environment": env,
            "deployment_id": dep_id,
            "outcome": outcome,
            "production": rec.get("production_environment"),
            "task": rec.get("task"),
            "url": (success or {}).get("environment_url")
            or (success or {}).get("target_url")
            or rec.get("url"),
            "statuses": [f"{s.get('state')} {s.get('created_at')}" for s in statuses],
            "description": rec.get("description"),
        }
        short = _what(repo, ref[:12] if _SHA.match(ref) else ref)
        if outcome in ("success", "unknown"):
            text = f"Deployed {short} to {env}" + (
                "" if success else " (outcome not in the bundle)"
            )
            kind: EventKind = "change_deployed"
        else:
            text, kind = f"Deployment of {short} to {env}: {outcome}", "other"
            at = (
                self.time(last["created_at"], doc, record, "status created_at") if last else created
            )
        self.emit(
            doc,
            record,
            kind,
            key=f"github:deployment:{dep_id}",
            at=at,
            text=text,
            actor=_actor(rec.get("creator")),
            url=attrs["url"],
            attrs=attrs,
        )

    def pull(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        base: dict[str, Any] = rec["base"] if isinstance(rec.get("base"), dict) else {}
        repo_obj: dict[str, Any] = base["repo"] if isinstance(base.get("repo"), dict) else {}
        repo = str(repo_obj.get("full_name") or _repo_of(rec.get("url")))
        if not rec.get("merged_at"):
            self.ctx.report.skip("pull request closed without merging")
            return
        default = self.default_branch.get(repo) or repo_obj.get("default_branch")
        if default and base.get("ref") != default:
            self.ctx.report.skip("pull request merged into another branch than the default")
            return
        at = self.time(rec["merged_at"], doc, record, "merged_at")
        attrs = {
            "change": "pull_request",
            "repo": repo,
            "ref": base.get("ref"),
            "sha": rec.get("merge_commit_sha"),
            "url": rec.get("html_url"),
            "number": rec.get("number"),
            "title": rec.get("title"),
            "author": (rec.get("user") or {}).get("login"),
            "default_branch": default,
        }
        merged_by = rec.get("merged_by") or rec.get("user")
        self.emit(
            doc,
            record,
            "change_deployed",
            key=f"github:{repo}:pull:{rec['number']}",
            at=at,
            text=f"Merged PR #{rec['number']} into {base.get('ref')}: {rec.get('title')}",
            actor=_actor(merged_by),
            url=rec.get("html_url"),
            attrs=attrs,
        )

    def release(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        if rec.get("draft") or not rec.get("published_at"):
            self.ctx.report.skip("draft release (not published)")
            return
        repo = _repo_of(rec.get("url"), rec.get("html_url"))
        target = str(rec.get("target_commitish") or "")
        attrs = {
            "change": "release",
            "repo": repo,
            "ref": rec.get("tag_name"),
            "sha": target if _SHA.match(target) else None,
            "target": target,
            "url": rec.get("html_url"),
            "name": rec.get("name"),
            "prerelease": rec.get("prerelease"),
        }
        name = f": {rec['name']}" if rec.get("name") and rec["name"] != rec["tag_name"] else ""
        self.emit(
            doc,
            record,
            "change_deployed",
            key=f"github:release:{rec.get('id')}",
            at=self.time(rec["published_at"], doc, record, "published_at"),
            text=f"Released {_what(repo, str(rec['tag_name']))}{name}",
            actor=_actor(rec.get("author")),
            url=rec.get("html_url"),
            attrs=attrs,
        )

    def run(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        if not is_deploy_workflow(rec):
            self.ctx.report.skip("workflow run of a workflow that does not deploy")
            return
        repo = str((rec.get("repository") or {}).get("full_name") or _repo_of(rec.get("url")))
        done = rec.get("status") == "completed"
        at = self.time(
            rec.get("updated_at") if done else rec.get("created_at"), doc, record, "updated_at"
        )
        attrs = {
            "change": "workflow_run",
            "repo": repo,
            "ref": rec.get("head_branch"),
            "sha": rec.get("head_sha"),
            "url": rec.get("html_url"),
            "workflow": rec.get("name"),
            "path": rec.get("path"),
            "run_number": rec.get("run_number"),
            "event": rec.get("event"),
            "conclusion": rec.get("conclusion"),
            "status": rec.get("status"),
            "title": rec.get("display_title"),
        }
        ok = done and rec.get("conclusion") == "success"
        state = rec.get("conclusion") or rec.get("status")
        text = f"Workflow {rec.get('name')} #{rec.get('run_number')} on {rec.get('head_branch')}"
        self.emit(
            doc,
            record,
            "change_deployed" if ok else "other",
            key=f"github:run:{rec.get('id')}",
            at=at,
            text=f"{text} succeeded" if ok else f"{text}: {state}",
            actor=_actor(rec.get("triggering_actor") or rec.get("actor")),
            url=rec.get("html_url"),
            attrs=attrs,
        )

    def read(self, doc: Doc, name: str, rec: Any, record: str) -> None:
        if not isinstance(rec, dict) or not TESTS.get(name, _is_repo)(rec):
            raise shape_error(doc, record, f"not a GitHub {name} object", _HINT)
        if name == "deployment":
            self.deployment(doc, rec, record)
        elif name == "pull":
            self.pull(doc, rec, record)
        elif name == "release":
            self.release(doc, rec, record)
        elif name == "run":
            self.run(doc, rec, record)
        # statuses and the repository were read in the index pass


def claims(doc: Doc) -> bool:
    """True when this connector recognizes the document by its content."""
    if doc.fmt != "json":
        return False
    try:
        return classify(doc.data) is not None
    except Exception:  # claims must never raise, whatever the file holds
        return False


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """Turn the claimed documents into events; count what is skipped in ctx.report."""
    reader = Reader(ctx)
    parsed = [(doc, name) for doc in docs if (name := classify(doc.data))]
    for doc, name in parsed:
        reader.index(name, records_of(doc.data, name))
    for doc, name in parsed:
        for rec, record in records_of(doc.data, name):
            ctx.report.records += 1
            try:
                reader.read(doc, name, rec, record)
            except BundleError as err:
                ctx.reject(err, reason="invalid GitHub record")
    yield from reader.out.sorted()
