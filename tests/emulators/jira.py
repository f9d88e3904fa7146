"""A Jira REST emulator (v2 and v3, Cloud or Server flavour) for the connector and the filer.

State lives in memory: users, projects (issue types, components), priorities, statuses, issues
with comments, changelog, links, remote links and properties. Every route is served under both
/rest/api/2 and /rest/api/3; v3 renders descriptions and comment bodies as ADF, v2 as strings,
and v3 refuses string bodies on writes, as Jira Cloud does. Errors use Jira's shape
`{"errorMessages": [...], "errors": {...}}`.

`emu.projects["OPS"].priorities = ["High", "Medium"]` restricts a project's priority scheme
(createmeta and create validation follow it); `emu.index_lag_s = 60` hides issues younger than
that from search, like Jira Cloud's search index right after a create. Create-screen metadata
is paged at 50 fields whatever `maxResults` asks, as Jira does (`custom_fields_first = True`
puts the custom fields on the first pages).

Hooks for crash and race tests: `emu.before_create(request)` runs before a create is committed
(it may block, to hold a create while another client runs), `emu.after_create(key)` right after
it is committed and before the answer is sent (a test kills the client process there).

    emu = JiraEmulator(deployment="Cloud").start()
    key = emu.seed_issue("OPS", "Checkout 500s", issuetype="Incident", created="2024-05-01T14:03:00Z",
                         history=[("2024-05-01T14:10:00Z", "bob", [("status", "To Do", "In Progress")])],
                         comments=[("2024-05-01T14:05:00Z", "alice", "Rolling back")])
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any

from connectors.jira.adf import adf_to_text, is_adf, text_to_adf
from tests.emulators.base import Emulator, Request, Response
from tests.emulators.jira_handlers import (
    ISSUE_TYPES,
    LINK_TYPES,
    NOT_AUTHENTICATED,
    PREFIX,
    PRIORITIES,
    STATUSES,
    Issue,
    IssueHandlers,
    Project,
    User,
    jira_time,
    when,
)
from tests.emulators.jira_meta import MetaHandlers


class JiraEmulator(IssueHandlers, MetaHandlers, Emulator):
    """Jira Cloud (`deployment="Cloud"`) or Server/DC (`"Server"`) on 127.0.0.1."""

    def __init__(
        self,
        *,
        deployment: str = "Cloud",
        email: str = "alice@example.com",
        api_token: str = "cloud-token",
        pat: str = "server-pat",
    ) -> None:
        super().__init__()
        self.deployment = deployment
        self.users: dict[str, User] = {}
        self.projects: dict[str, Project] = {}
        self.issues: dict[str, Issue] = {}
        self.links: dict[str, dict[str, str]] = {}
        self.hidden_projects: set[str] = set()  # issues there answer 404, like a missing Browse
        self.denied_permissions: set[str] = set()
        self.custom_fields: dict[str, str] = {"customfield_10010": "Incident key"}
        self.comment_embed_limit = 5000  # fields.comment holds at most this many
        self.changelog_embed_limit = 100  # expand=changelog holds at most this many (Cloud)
        self.index_lag_s = 0.0  # search finds an issue only this long after its create
        self.custom_fields_first = False  # createmeta lists custom fields before system ones
        self.before_create: Callable[[Request], None] | None = None
        self.after_create: Callable[[str], None] | None = None
        self._ids = {
            "issue": 10000,
            "comment": 20000,
            "history": 30000,
            "link": 40000,
            "remote": 50000,
        }
        self.add_user("acc-alice", "Alice Admin", email, name="alice")
        self.add_user("acc-bob", "Bob Oncall", "bob@example.com", name="bob")
        self.add_user("acc-carol", "Carol SRE", "carol@example.com", name="carol")
        self.add_user("acc-automation", "Automation for Jira", "", name="automation", app=True)
        self.basic: dict[tuple[str, str], str] = {
            (email, api_token): "acc-alice",
            ("alice", "pw"): "acc-alice",
        }
        self.bearer: dict[str, str] = {pat: "acc-alice"}
        self.add_project(
            "OPS",
            "Operations",
            issue_types=["Task", "Bug", "Incident", "Change"],
            components=["api", "database", "web"],
        )
        self.add_project("CHG", "Change Management", issue_types=["Change", "Task"], components=[])
        self._register()

    def start(self) -> JiraEmulator:
        super().start()
        assert self._server is not None
        # Headers and body go out as two writes; with Nagle on, each keep-alive request then
        # waits ~40 ms for the client's delayed ACK.
        self._server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        return self

    # -- seeding -----------------------------------------------------------------------------
    def _next(self, kind: str) -> str:
        with self._lock:
            self._ids[kind] += 1
            return str(self._ids[kind])

    def add_user(
        self,
        account_id: str,
        display_name: str,
        email: str,
        *,
        name: str | None = None,
        app: bool = False,
    ) -> User:
        user = User(account_id, display_name, email, name or account_id, app)
        self.users[account_id] = user
        return user

    def add_project(
        self, key: str, name: str, *, issue_types: list[str], components: list[str]
    ) -> Project:
        project = Project(
            key, str(10000 + len(self.projects)), name, list(issue_types), list(components)
        )
        self.projects[key] = project
        return project

    def user(self, ref: str | None) -> User | None:
        """A user by account id, username, email or display name."""
        if ref is None:
            return None
        for user in self.users.values():
            if ref in (user.account_id, user.name, user.email, user.display_name):
                return user
        return None

    def seed_issue(
        self,
        project: str,
        summary: str,
        *,
        issuetype: str = "Task",
        status: str = "To Do",
        priority: str | None = "Medium",
        labels: list[str] | None = None,
        components: list[str] | None = None,
        reporter: str = "alice",
        assignee: str | None = None,
        description: str | dict[str, Any] | None = None,
        created: str | datetime | None = None,
        history: list[tuple[Any, str, list[tuple[str, Any, Any]]]] | None = None,
        comments: list[tuple[Any, str, Any]] | None = None,
    ) -> str:
        """Create an issue directly (no validation), with optional history and comments."""
        fields = {
            "summary": summary,
            "issuetype": issuetype,
            "status": status,
            "priority": priority,
            "labels": list(labels or []),
            "components": list(components or []),
            "reporter": self._account(reporter),
            "assignee": self._account(assignee),
            "description": description,
            "duedate": None,
            "resolution": None,
            "resolutiondate": None,
            "parent": None,
        }
        issue = self._new_issue(project, fields, when(created))
        for at, author, items in history or []:
            self.add_history(issue.key, at, author, items)
        for at, author, body in comments or []:
            self.add_comment(issue.key, body, author=author, at=at)
        return issue.key

    def _account(self, ref: str | None) -> str | None:
        user = self.user(ref)
        return user.account_id if user else None

    def _new_issue(self, project_key: str, fields: dict[str, Any], created: datetime) -> Issue:
        project = self.projects[project_key]
        with self._lock:
            number = project.next_number
            project.next_number += 1
        issue = Issue(
            self._next("issue"), f"{project_key}-{number}", project_key, number, created, fields
        )
        self.issues[issue.key] = issue
        return issue

    def add_history(
        self, key: str, at: Any, author: str | None, items: list[tuple[str, Any, Any]]
    ) -> str:
        """Record a changelog entry; status/priority/assignee values get their ids like Jira's."""
        issue = self.issues[key]
        entry = {
            "id": self._next("history"),
            "author": self._account(author),
            "created": when(at),
            "items": [self._item(f, a, b) for f, a, b in items],
        }
        issue.histories.append(entry)
        issue.updated = entry["created"]
        return entry["id"]

    def _item(self, name: str, before: Any, after: Any) -> dict[str, Any]:
        def ident(value: Any) -> str | None:
            if value is None:
                return None
            if name == "status":
                return next((s[1] for s in STATUSES if s[0] == value), None)
            if name == "priority":
                return next((p[1] for p in PRIORITIES if p[0] == value), None)
            if name == "assignee":
                return self._account(value)
            if name == "resolution":
                return "10000"
            return None

        def shown(value: Any) -> Any:
            user = self.user(value) if name == "assignee" else None
            return user.display_name if user else value

        return {
            "field": name,
            "fieldtype": "custom" if name.startswith("customfield_") else "jira",
            "fieldId": name,
            "from": ident(before),
            "fromString": shown(before),
            "to": ident(after),
            "toString": shown(after),
        }

    def add_comment(self, key: str, body: Any, *, author: str = "alice", at: Any = None) -> str:
        issue = self.issues[key]
        created = when(at)
        comment = {
            "id": self._next("comment"),
            "author": self._account(author),
            "body": body,
            "created": created,
            "updated": created,
        }
        issue.comments.append(comment)
        return comment["id"]

    def link(self, inward: str, outward: str, type_name: str = "Relates") -> str:
        """`inward` <outward phrase> `outward`, e.g. link("OPS-1", "CHG-1", "Blocks"): OPS-1 blocks CHG-1."""
        link_id = self._next("link")
        self.links[link_id] = {"type": type_name, "inward": inward, "outward": outward}
        return link_id

    # -- routing -----------------------------------------------------------------------------
    def _register(self) -> None:
        api: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", "/serverInfo", self.server_info),
            ("GET", "/myself", self.myself),
            ("GET", "/search", self.search),
            ("POST", "/search", self.search),
            ("GET", "/search/jql", self.search_jql),
            ("POST", "/search/jql", self.search_jql),
            ("POST", "/issue", self._hooked_create),
            ("GET", "/issue/createmeta", self.createmeta),
            ("GET", r"/issue/createmeta/(?P<project>[^/]+)/issuetypes", self.createmeta_types),
            (
                "GET",
                r"/issue/createmeta/(?P<project>[^/]+)/issuetypes/(?P<type>[^/]+)",
                self.createmeta_fields,
            ),
            ("GET", r"/issue/(?P<key>[^/]+)", self.get_issue),
            ("PUT", r"/issue/(?P<key>[^/]+)", self.edit_issue),
            ("GET", r"/issue/(?P<key>[^/]+)/comment", self.get_comments),
            ("POST", r"/issue/(?P<key>[^/]+)/comment", self.post_comment),
            ("GET", r"/issue/(?P<key>[^/]+)/changelog", self.get_changelog),
            ("GET", r"/issue/(?P<key>[^/]+)/transitions", self.get_transitions),
            ("POST", r"/issue/(?P<key>[^/]+)/transitions", self.post_transition),
            ("GET", r"/issue/(?P<key>[^/]+)/remotelink", self.get_remote_links),
            ("POST", r"/issue/(?P<key>[^/]+)/remotelink", self.post_remote_link),
            ("GET", r"/issue/(?P<key>[^/]+)/properties", self.list_properties),
            ("GET", r"/issue/(?P<key>[^/]+)/properties/(?P<prop>[^/]+)", self.get_property),
            ("PUT", r"/issue/(?P<key>[^/]+)/properties/(?P<prop>[^/]+)", self.put_property),
            ("POST", "/issueLink", self.post_link),
            ("GET", r"/issueLink/(?P<id>[^/]+)", self.get_link),
            ("GET", "/issueLinkType", self.link_types),
            ("GET", "/project", self.list_projects),
            ("GET", r"/project/(?P<project>[^/]+)", self.get_project),
            ("GET", "/priority", self.priorities),
            ("GET", "/issuetype", self.issue_types),
            ("GET", "/field", self.fields),
            ("GET", "/user/search", self.user_search),
            ("GET", "/user", self.get_user),
            ("GET", "/mypermissions", self.my_permissions),
        ]
        for method, pattern, handler in api:
            self.route(
                method, PREFIX + pattern, self._guard(handler, anonymous=pattern == "/serverInfo")
            )
        # jira's add_remote_link asks for application links first; none are configured here.
        self.route("GET", "/rest/applinks/latest/listApplicationlinks", lambda req: (200, [], {}))

    def _hooked_create(self, req: Request, v: str, user: User) -> Response:
        if self.before_create is not None:
            self.before_create(req)
        response = self.create_issue(req, v, user)
        body = response[1]
        if self.after_create is not None and response[0] == 201 and isinstance(body, dict):
            self.after_create(str(body["key"]))
        return response

    def _guard(
        self, handler: Callable[..., Response], *, anonymous: bool
    ) -> Callable[[Request], Response]:
        def serve(req: Request) -> Response:
            user = self._authenticate(req.headers.get("authorization"))
            if user is False or (user is None and not anonymous):
                return 401, NOT_AUTHENTICATED, {"WWW-Authenticate": 'Basic realm="protected-area"'}
            assert req.match is not None
            return handler(req, req.match.group("v"), user or None)

        return serve

    def _authenticate(self, header: str | None) -> User | None | bool:
        """The user, None when anonymous, False for bad credentials."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        account: str | None = None
        if scheme.lower() == "basic":
            try:
                login, _, secret = base64.b64decode(value).decode("utf-8").partition(":")
            except ValueError:
                return False
            account = self.basic.get((login, secret))
        elif scheme.lower() == "bearer":
            account = self.bearer.get(value)
        return self.users[account] if account else False

    # -- rendering ---------------------------------------------------------------------------
    def base(self, v: str) -> str:
        return f"{self.url}/rest/api/{v}"

    def user_json(self, account: str | None, v: str) -> dict[str, Any] | None:
        user = self.users.get(account or "")
        if user is None:
            return None
        if self.deployment == "Cloud":
            return {
                "self": f"{self.base(v)}/user?accountId={user.account_id}",
                "accountId": user.account_id,
                "emailAddress": user.email,
                "displayName": user.display_name,
                "active": True,
                "timeZone": "UTC",
                "accountType": "app" if user.app else "atlassian",
            }
        return {
            "self": f"{self.base(v)}/user?username={user.name}",
            "name": user.name,
            "key": user.name,
            "emailAddress": user.email,
            "displayName": user.display_name,
            "active": True,
            "timeZone": "UTC",
        }

    def status_json(self, name: str, v: str) -> dict[str, Any]:
        _, sid, ckey, cname, cid = next(s for s in STATUSES if s[0] == name)
        return {
            "self": f"{self.base(v)}/status/{sid}",
            "name": name,
            "id": sid,
            "statusCategory": {
                "self": f"{self.base(v)}/statuscategory/{cid}",
                "id": cid,
                "key": ckey,
                "name": cname,
            },
        }

    def priority_json(self, name: str | None, v: str) -> dict[str, Any] | None:
        pid = next((p[1] for p in PRIORITIES if p[0] == name), None)
        return {"self": f"{self.base(v)}/priority/{pid}", "name": name, "id": pid} if pid else None

    def type_json(self, name: str, v: str) -> dict[str, Any]:
        tid = next(t[1] for t in ISSUE_TYPES if t[0] == name)
        return {
            "self": f"{self.base(v)}/issuetype/{tid}",
            "id": tid,
            "name": name,
            "subtask": name == "Sub-task",
            "description": "",
        }

    def project_json(self, project: Project, v: str, *, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "self": f"{self.base(v)}/project/{project.id}",
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "projectTypeKey": "software",
        }
        if full:
            out["issueTypes"] = [self.type_json(t, v) for t in project.issue_types]
            out["components"] = [self.component_json(project, c, v) for c in project.components]
            out["lead"] = self.user_json("acc-alice", v)
        return out

    def component_json(self, project: Project, name: str, v: str) -> dict[str, Any]:
        cid = str(10000 + project.components.index(name))
        return {"self": f"{self.base(v)}/component/{cid}", "id": cid, "name": name}

    def body(self, value: Any, v: str) -> Any:
        """A rich-text value as v3 (ADF) or v2 (string) shows it."""
        if value is None:
            return None
        if v == "3":
            return value if is_adf(value) else text_to_adf(str(value))
        return adf_to_text(value)

    def comment_json(self, issue: Issue, c: dict[str, Any], v: str) -> dict[str, Any]:
        return {
            "self": f"{self.base(v)}/issue/{issue.id}/comment/{c['id']}",
            "id": c["id"],
            "author": self.user_json(c["author"], v),
            "body": self.body(c["body"], v),
            "updateAuthor": self.user_json(c["author"], v),
            "created": jira_time(c["created"]),
            "updated": jira_time(c["updated"]),
            "jsdPublic": True,
        }

    def history_json(self, h: dict[str, Any], v: str) -> dict[str, Any]:
        out = {"id": h["id"], "created": jira_time(h["created"]), "items": h["items"]}
        if h["author"]:
            out["author"] = self.user_json(h["author"], v)
        return out

    def link_json(self, link_id: str, issue: Issue, v: str) -> dict[str, Any] | None:
        link = self.links[link_id]
        name, tid, inward, outward = next(t for t in LINK_TYPES if t[0] == link["type"])
        out: dict[str, Any] = {
            "id": link_id,
            "self": f"{self.base(v)}/issueLink/{link_id}",
            "type": {
                "id": tid,
                "name": name,
                "inward": inward,
                "outward": outward,
                "self": f"{self.base(v)}/issueLinkType/{tid}",
            },
        }
        other_key, side = (
            (link["outward"], "outwardIssue")
            if link["inward"] == issue.key
            else (link["inward"], "inwardIssue")
        )
        other = self.issues.get(other_key)
        if other is None:
            return None
        f = other.fields
        out[side] = {
            "id": other.id,
            "key": other.key,
            "self": f"{self.base(v)}/issue/{other.id}",
            "fields": {
                "summary": f["summary"],
                "status": self.status_json(f["status"], v),
                "priority": self.priority_json(f["priority"], v),
                "issuetype": self.type_json(f["issuetype"], v),
            },
        }
        return out

    def issue_json(
        self, issue: Issue, v: str, *, fields: list[str] | None = None, changelog: bool = False
    ) -> dict[str, Any]:
        f = issue.fields
        project = self.projects[issue.project]
        shown = issue.comments[: self.comment_embed_limit]
        links = [
            self.link_json(i, issue, v)
            for i, link in self.links.items()
            if issue.key in (link["inward"], link["outward"])
        ]
        all_fields: dict[str, Any] = {
            "summary": f["summary"],
            "issuetype": self.type_json(f["issuetype"], v),
            "project": self.project_json(project, v),
            "status": self.status_json(f["status"], v),
            "priority": self.priority_json(f["priority"], v),
            "labels": f["labels"],
            "components": [self.component_json(project, c, v) for c in f["components"]],
            "assignee": self.user_json(f["assignee"], v),
            "reporter": self.user_json(f["reporter"], v),
            "creator": self.user_json(f["reporter"], v),
            "created": jira_time(issue.created),
            "updated": jira_time(issue.updated or issue.created),
            "description": self.body(f["description"], v),
            "duedate": f["duedate"],
            "resolutiondate": f["resolutiondate"],
            "resolution": {"id": "10000", "name": f["resolution"]} if f["resolution"] else None,
            "parent": {"key": f["parent"]} if f.get("parent") else None,
            "comment": {
                "self": f"{self.base(v)}/issue/{issue.id}/comment",
                "comments": [self.comment_json(issue, c, v) for c in shown],
                "maxResults": len(shown),
                "total": len(issue.comments),
                "startAt": 0,
            },
            "issuelinks": [link for link in links if link],
        }
        all_fields.update({k: val for k, val in f.items() if k.startswith("customfield_")})
        if fields and not {"*all", "*navigable"} & set(fields):
            all_fields = {k: val for k, val in all_fields.items() if k in fields}
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,changelog",
            "id": issue.id,
            "self": f"{self.base(v)}/issue/{issue.id}",
            "key": issue.key,
            "fields": all_fields,
        }
        if changelog:
            shown_h = issue.histories[: self.changelog_embed_limit]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(shown_h),
                "total": len(issue.histories),
                "histories": [self.history_json(h, v) for h in shown_h],
            }
        return out

    # -- lookups -----------------------------------------------------------------------------
    def find(self, ref: str) -> Issue | None:
        issue = self.issues.get(ref) or next((i for i in self.issues.values() if i.id == ref), None)
        if issue is None or issue.project in self.hidden_projects:
            return None
        return issue

    def find_project(self, ref: Any) -> Project | None:
        if isinstance(ref, dict):
            ref = ref.get("key") or ref.get("id")
        return next((p for p in self.projects.values() if str(ref) in (p.key, p.id)), None)

    @staticmethod
    def page(req: Request, items: list[Any], default: int = 50) -> tuple[int, int, list[Any]]:
        start = int(req.q("startAt", "0") or 0)
        size = int(req.q("maxResults", str(default)) or default)
        return start, size, items[start : start + size]
