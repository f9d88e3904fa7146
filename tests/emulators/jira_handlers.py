"""Data types, constants and issue handlers of the Jira emulator (tests/emulators/jira.py).

`IssueHandlers` (here) and `MetaHandlers` (jira_meta.py) are mixins: JiraEmulator supplies the
state (users, projects, issues, links) and the renderers (issue_json, comment_json, ...); the
handlers parse requests, validate them as Jira does and answer in Jira's shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from connectors.jira.adf import adf_to_text, is_adf
from retro.connector import parse_time
from tests.emulators.base import Request, Response

PREFIX = r"/rest/api/(?P<v>[23])"
NOT_AUTHENTICATED = {
    "errorMessages": [
        "You are not authenticated. Authentication required to perform this operation."
    ],
    "errors": {},
}
NO_ISSUE = "Issue does not exist or you do not have permission to see it."
STATUSES = [  # name, id, category key, category name, category id
    ("To Do", "10000", "new", "To Do", 2),
    ("In Progress", "3", "indeterminate", "In Progress", 4),
    ("Done", "10001", "done", "Done", 3),
    ("Deployed", "10002", "done", "Done", 3),
]
PRIORITIES = [("Highest", "1"), ("High", "2"), ("Medium", "3"), ("Low", "4"), ("Lowest", "5")]
ISSUE_TYPES = [
    ("Task", "10001"),
    ("Bug", "10002"),
    ("Incident", "10003"),
    ("Change", "10004"),
    ("Sub-task", "10005"),
]
LINK_TYPES = [  # name, id, inward, outward
    ("Relates", "10000", "relates to", "relates to"),
    ("Blocks", "10001", "is blocked by", "blocks"),
    ("Duplicate", "10002", "is duplicated by", "duplicates"),
    ("Cloners", "10003", "is cloned by", "clones"),
]
SYSTEM_FIELDS = [
    "summary",
    "issuetype",
    "project",
    "status",
    "priority",
    "labels",
    "components",
    "assignee",
    "reporter",
    "creator",
    "created",
    "updated",
    "description",
    "duedate",
    "resolution",
    "resolutiondate",
    "parent",
    "comment",
    "issuelinks",
]
SETTABLE = {
    "summary",
    "issuetype",
    "project",
    "priority",
    "labels",
    "components",
    "assignee",
    "reporter",
    "description",
    "duedate",
    "parent",
}


def err(status: int, *messages: str, errors: dict[str, str] | None = None) -> Response:
    """A Jira-shaped error response."""
    return status, {"errorMessages": list(messages), "errors": errors or {}}, {}


def jira_time(dt: datetime) -> str:
    """2024-05-01T14:03:00.000+0000, as Jira writes times."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def when(value: str | datetime | None) -> datetime:
    return parse_time(value) if value is not None else datetime.now(UTC)


@dataclass
class User:
    account_id: str
    display_name: str
    email: str
    name: str  # Server username
    app: bool = False


@dataclass
class Project:
    key: str
    id: str
    name: str
    issue_types: list[str]
    components: list[str]
    next_number: int = 1
    priorities: list[str] | None = None  # the project's priority scheme; None: all priorities


@dataclass
class Issue:
    id: str
    key: str
    project: str
    number: int
    created: datetime
    fields: dict[str, Any]
    updated: datetime | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    histories: list[dict[str, Any]] = field(default_factory=list)
    remote_links: list[dict[str, Any]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)


ADF_REQUIRED = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFAULT_PERMISSIONS = [
    "BROWSE_PROJECTS",
    "CREATE_ISSUES",
    "EDIT_ISSUES",
    "ADD_COMMENTS",
    "LINK_ISSUES",
    "TRANSITION_ISSUES",
]


def fields_param(req: Request, data: dict[str, Any] | None = None) -> list[str] | None:
    """`fields=a,b`, repeated `fields=a&fields=b`, or a JSON list; None when absent."""
    raw: Any = data.get("fields") if data is not None else req.query.get("fields")
    if not raw:
        return None
    values = raw if isinstance(raw, list) else [raw]
    return [f.strip() for v in values for f in str(v).split(",") if f.strip()]


def _ref(value: Any) -> str | None:
    """The id/key/name/accountId a Jira reference object names."""
    if isinstance(value, dict):
        for key in ("accountId", "id", "key", "name"):
            if value.get(key) not in (None, ""):
                return str(value[key])
        return None
    return str(value) if value not in (None, "") else None


class StateMixin:
    """What the handler mixins use of JiraEmulator; each handler takes (req, v, user)."""

    # Supplied by JiraEmulator.
    url: str
    deployment: str
    users: dict[str, User]
    projects: dict[str, Project]
    issues: dict[str, Issue]
    links: dict[str, dict[str, str]]
    hidden_projects: set[str]
    denied_permissions: set[str]
    custom_fields: dict[str, str]
    custom_fields_first: bool
    index_lag_s: float


class IssueHandlers(StateMixin):
    """Issues, comments, changelog, transitions, links, remote links and properties."""

    # -- issues ------------------------------------------------------------------------------
    def _issue_or_404(self, req: Request) -> Issue | None:
        return self.find(req.match.group("key"))

    def get_issue(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        return (
            200,
            self.issue_json(
                issue,
                v,
                fields=fields_param(req),
                changelog=self._expand_changelog(req.q("expand")),
            ),
            {},
        )

    def _validate(
        self, fields: dict[str, Any], v: str, project: Project | None, errors: dict[str, str]
    ) -> dict[str, Any]:
        """Check the settable fields present; return them in the emulator's internal form."""
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if name in ("project", "issuetype"):
                continue
            if name not in SETTABLE and name not in self.custom_fields:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                )
                continue
            problem, parsed = self._check_field(name, value, v, project)
            if problem:
                errors[name] = problem
            else:
                out[name] = parsed
        return out

    def _check_field(
        self, name: str, value: Any, v: str, project: Project | None
    ) -> tuple[str | None, Any]:
        if name == "summary":
            ok = isinstance(value, str) and value.strip() and "\n" not in value
            return (None, value) if ok else ("You must specify a summary of the issue.", None)
        if name == "priority":
            ref = _ref(value)
            match = next((n for n, pid in PRIORITIES if ref in (n, pid)), None)
            if project is not None and project.priorities is not None:
                match = match if match in project.priorities else None
            return (
                (None, match)
                if match
                else (f"Specify the Priority (id or name): '{ref}' is not valid", None)
            )
        if name == "labels":
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                return "Labels must be a list of strings", None
            bad = next((x for x in value if re.search(r"\s", x) or not x), None)
            return (
                (f"The label '{bad}' contains spaces which is invalid.", None)
                if bad is not None
                else (None, value)
            )
        if name == "components":
            names = [self._component(project, _ref(c)) for c in value or []]
            if None in names:
                return "Component name is not valid", None
            return None, names
        if name in ("assignee", "reporter"):
            if value is None or _ref(value) in ("-1", None):
                return None, None
            found = self.user(_ref(value))
            return (
                (None, found.account_id)
                if found
                else (f"User '{_ref(value)}' does not exist.", None)
            )
        if name == "description":
            if value is None:
                return None, None
            if v == "3" and not is_adf(value):
                return ADF_REQUIRED, None
            if v == "2" and not isinstance(value, str):
                return "Operation value must be a string", None
            return None, value
        if name == "duedate":
            return self._check_date(value)
        if name == "parent":
            parent = self.find(_ref(value) or "")
            return (None, parent.key) if parent else ("Could not find issue by id or key.", None)
        return None, value  # custom fields are stored as sent

    @staticmethod
    def _check_date(value: Any) -> tuple[str | None, Any]:
        if value is None:
            return None, None
        try:
            if not (isinstance(value, str) and DATE.match(value)):
                raise ValueError(value)
            date.fromisoformat(value)
        except ValueError:
            return f"Error parsing date string: {value}", None
        return None, value

    def _component(self, project: Project | None, ref: str | None) -> str | None:
        if project is None or ref is None:
            return None
        for i, name in enumerate(project.components):
            if ref in (name, str(10000 + i)):
                return name
        return None

    def create_issue(self, req: Request, v: str, user: User) -> Response:
        data = req.json() or {}
        fields = data.get("fields") if isinstance(data, dict) else None
        if not isinstance(fields, dict):
            return err(400, "Can not deserialize instance of fields: expected an object.")
        errors: dict[str, str] = {}
        project = self.find_project(fields.get("project"))
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        ref = _ref(fields.get("issuetype"))
        itype = next((n for n, tid in ISSUE_TYPES if ref in (n, tid)), None)
        if ref is None:
            errors["issuetype"] = "Specify an issue type"
        elif itype is None or (project is not None and itype not in project.issue_types):
            errors["issuetype"] = "Specify a valid issue type"
        if "summary" not in fields:
            errors["summary"] = "You must specify a summary of the issue."
        parsed = self._validate(fields, v, project, errors)
        if errors or project is None or itype is None:
            return 400, {"errorMessages": [], "errors": errors}, {}
        internal = {
            "summary": parsed["summary"],
            "issuetype": itype,
            "status": STATUSES[0][0],
            "priority": parsed.get("priority", "Medium"),
            "labels": parsed.get("labels", []),
            "components": parsed.get("components", []),
            "assignee": parsed.get("assignee"),
            "reporter": parsed.get("reporter") or user.account_id,
            "description": parsed.get("description"),
            "duedate": parsed.get("duedate"),
            "resolution": None,
            "resolutiondate": None,
            "parent": parsed.get("parent"),
        }
        internal |= {k: val for k, val in parsed.items() if k.startswith("customfield_")}
        issue = self._new_issue(project.key, internal, datetime.now(UTC))
        self._apply_update(issue, data.get("update") or {}, v, user)
        return (
            201,
            {"id": issue.id, "key": issue.key, "self": f"{self.url}/rest/api/{v}/issue/{issue.id}"},
            {},
        )

    def _apply_update(self, issue: Issue, update: dict[str, Any], v: str, user: User) -> None:
        """The `update` operations create and edit accept: labels, comment, issuelinks."""
        for op in update.get("labels") or []:
            labels = list(issue.fields["labels"])
            if "add" in op and op["add"] not in labels:
                labels.append(op["add"])
            if "remove" in op and op["remove"] in labels:
                labels.remove(op["remove"])
            if "set" in op:
                labels = list(op["set"])
            self._change(issue, {"labels": labels}, user)
        for op in update.get("comment") or []:
            if isinstance(op.get("add"), dict):
                self.add_comment(issue.key, op["add"].get("body"), author=user.account_id)
        for op in update.get("issuelinks") or []:
            add = op.get("add") or {}
            name = _ref(add.get("type"))
            ltype = next((t[0] for t in LINK_TYPES if name in (t[0], t[1])), "Relates")
            if _ref(add.get("outwardIssue")):
                self.link(issue.key, _ref(add["outwardIssue"]), ltype)
            elif _ref(add.get("inwardIssue")):
                self.link(_ref(add["inwardIssue"]), issue.key, ltype)

    def _change(self, issue: Issue, changes: dict[str, Any], user: User) -> None:
        """Apply field changes and record them in the changelog, as Jira does."""
        items = []
        for name, new in changes.items():
            old = issue.fields.get(name)
            if old == new:
                continue
            issue.fields[name] = new
            if isinstance(new, list) or isinstance(old, list):
                items.append((name, " ".join(old or []) or None, " ".join(new or []) or None))
            elif name == "description":
                items.append((name, adf_to_text(old) or None, adf_to_text(new) or None))
            else:
                items.append((name, old, new))
        if items:
            self.add_history(issue.key, None, user.account_id, items)

    def edit_issue(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        data = req.json() or {}
        errors: dict[str, str] = {}
        fields = data.get("fields") or {}
        for locked in ("project", "issuetype"):
            if locked in fields:
                errors[locked] = (
                    f"Field '{locked}' cannot be set. It is not on the appropriate screen, or unknown."
                )
        parsed = self._validate(
            {k: val for k, val in fields.items() if k not in ("project", "issuetype")},
            v,
            self.projects[issue.project],
            errors,
        )
        if errors:
            return 400, {"errorMessages": [], "errors": errors}, {}
        self._change(issue, parsed, user)
        self._apply_update(issue, data.get("update") or {}, v, user)
        return 204, None, {}

    # -- comments and changelog --------------------------------------------------------------
    def get_comments(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        comments = sorted(
            issue.comments, key=lambda c: c["created"], reverse=req.q("orderBy") == "-created"
        )
        start, size, page = self.page(req, comments, default=5000)
        return (
            200,
            {
                "comments": [self.comment_json(issue, c, v) for c in page],
                "maxResults": size,
                "total": len(comments),
                "startAt": start,
            },
            {},
        )

    def post_comment(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        body = (req.json() or {}).get("body")
        if v == "3" and not is_adf(body):
            return err(400, errors={"comment": ADF_REQUIRED})
        if not body or (v == "2" and not isinstance(body, str)):
            return err(400, errors={"comment": "Comment body can not be empty!"})
        cid = self.add_comment(issue.key, body, author=user.account_id)
        comment = next(c for c in issue.comments if c["id"] == cid)
        return 201, self.comment_json(issue, comment, v), {}

    def get_changelog(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        start, size, page = self.page(req, issue.histories, default=100)
        base = f"{self.url}/rest/api/{v}/issue/{issue.key}/changelog"
        body: dict[str, Any] = {
            "self": f"{base}?startAt={start}&maxResults={size}",
            "maxResults": size,
            "startAt": start,
            "total": len(issue.histories),
            "isLast": start + size >= len(issue.histories),
            "values": [self.history_json(h, v) for h in page],
        }
        if not body["isLast"]:
            body["nextPage"] = f"{base}?startAt={start + size}&maxResults={size}"
        return 200, body, {}

    # -- transitions -------------------------------------------------------------------------
    def get_transitions(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        out = [
            {
                "id": str(10 * (i + 1) + 1),
                "name": name,
                "to": self.status_json(name, v),
                "hasScreen": False,
                "isGlobal": True,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
            }
            for i, (name, *_rest) in enumerate(STATUSES)
            if name != issue.fields["status"]
        ]
        return 200, {"expand": "transitions", "transitions": out}, {}

    def post_transition(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        data = req.json() or {}
        tid = str(_ref(data.get("transition")))
        target = next((s for i, s in enumerate(STATUSES) if str(10 * (i + 1) + 1) == tid), None)
        if target is None or target[0] == issue.fields["status"]:
            return err(400, f"Transition id '{tid}' is not valid for this issue.")
        changes: dict[str, Any] = {"status": target[0]}
        if target[2] == "done":
            changes["resolution"] = _ref((data.get("fields") or {}).get("resolution")) or "Done"
            issue.fields["resolutiondate"] = jira_time(datetime.now(UTC))
        elif issue.fields["resolution"]:
            changes["resolution"] = None
            issue.fields["resolutiondate"] = None
        self._change(issue, changes, user)
        self._apply_update(issue, data.get("update") or {}, v, user)
        return 204, None, {}

    # -- links, remote links, properties -----------------------------------------------------
    def post_link(self, req: Request, v: str, user: User) -> Response:
        data = req.json() or {}
        name = _ref(data.get("type"))
        ltype = next((t[0] for t in LINK_TYPES if name in (t[0], t[1])), None)
        if ltype is None:
            return err(404, f"No issue link type with name '{name}' found.")
        inward = self.find(_ref(data.get("inwardIssue")) or "")
        outward = self.find(_ref(data.get("outwardIssue")) or "")
        if inward is None or outward is None:
            return err(404, "Issue Does Not Exist")
        self.link(inward.key, outward.key, ltype)
        return 201, None, {}

    def get_link(self, req: Request, v: str, user: User) -> Response:
        link_id = req.match.group("id")
        link = self.links.get(link_id)
        if link is None:
            return err(404, f"No issue link with id '{link_id}' exists.")
        inward = self.link_json(link_id, self.issues[link["outward"]], v)
        outward = self.link_json(link_id, self.issues[link["inward"]], v)
        return (
            200,
            {
                "id": link_id,
                "type": outward["type"],
                "inwardIssue": inward["inwardIssue"],
                "outwardIssue": outward["outwardIssue"],
            },
            {},
        )

    def get_remote_links(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        return 200, issue.remote_links, {}

    def post_remote_link(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        data = req.json() or {}
        obj = data.get("object")
        if not isinstance(obj, dict) or not obj.get("url") or not obj.get("title"):
            missing = "title" if isinstance(obj, dict) and obj.get("url") else "url"
            return err(400, errors={missing: f"'{missing}' is required."})
        existing = next(
            (
                r
                for r in issue.remote_links
                if data.get("globalId") and r.get("globalId") == data["globalId"]
            ),
            None,
        )
        if existing is not None:
            existing.update(
                {k: data[k] for k in ("object", "application", "relationship") if k in data}
            )
            return 200, {"id": existing["id"], "self": existing["self"]}, {}
        rid = int(self._next("remote"))
        link = {
            "id": rid,
            "self": f"{self.url}/rest/api/{v}/issue/{issue.key}/remotelink/{rid}",
            **data,
        }
        issue.remote_links.append(link)
        return 201, {"id": rid, "self": link["self"]}, {}

    def list_properties(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        base = f"{self.url}/rest/api/{v}/issue/{issue.id}/properties"
        return 200, {"keys": [{"self": f"{base}/{k}", "key": k} for k in issue.properties]}, {}

    def get_property(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        prop = req.match.group("prop")
        if issue is None:
            return err(404, NO_ISSUE)
        if prop not in issue.properties:
            return err(404, f"The property with key '{prop}' does not exist.")
        return 200, {"key": prop, "value": issue.properties[prop]}, {}

    def put_property(self, req: Request, v: str, user: User) -> Response:
        issue = self._issue_or_404(req)
        if issue is None:
            return err(404, NO_ISSUE)
        prop = req.match.group("prop")
        try:
            value = req.json()
        except ValueError:
            return err(400, "The property value must be valid JSON.")
        created = prop not in issue.properties
        issue.properties[prop] = value
        return (201 if created else 200), None, {}
