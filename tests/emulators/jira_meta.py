"""Server, user, metadata and search handlers of the Jira emulator (a mixin of JiraEmulator)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from connectors.jira.adf import adf_to_text
from tests.emulators import jira_jql
from tests.emulators.base import Request, Response
from tests.emulators.jira_handlers import (
    DEFAULT_PERMISSIONS,
    ISSUE_TYPES,
    LINK_TYPES,
    PRIORITIES,
    STATUSES,
    SYSTEM_FIELDS,
    Issue,
    Project,
    StateMixin,
    User,
    err,
    fields_param,
    jira_time,
)

CREATEMETA_PAGE = 50


class MetaHandlers(StateMixin):
    """serverInfo, myself, users, permissions, projects, types, fields, createmeta, search."""

    # -- server and user ---------------------------------------------------------------------
    def server_info(self, req: Request, v: str, user: User | None) -> Response:
        cloud = self.deployment == "Cloud"
        return (
            200,
            {
                "baseUrl": self.url,
                "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.2",
                "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 2],
                "deploymentType": self.deployment,
                "buildNumber": 100272 if cloud else 9120002,
                "buildDate": "2024-04-30T00:00:00.000+0000",
                "serverTime": jira_time(datetime.now(UTC)),
                "scmInfo": "0f1e2d3c4b5a",
                "serverTitle": "Jira",
            },
            {},
        )

    def myself(self, req: Request, v: str, user: User) -> Response:
        return 200, self.user_json(user.account_id, v), {}

    def user_search(self, req: Request, v: str, user: User) -> Response:
        query, username = req.q("query"), req.q("username")
        if self.deployment == "Cloud" and username and not query:
            return err(400, "The query parameter 'username' is not supported in GDPR strict mode.")
        term = (query or username or "").lower()
        if not term:
            return err(400, "The username query parameter was not provided")
        found = [
            u
            for u in self.users.values()
            if any(term in s.lower() for s in (u.email, u.display_name, u.name) if s)
        ]
        _, _, page = self.page(req, found)
        return 200, [self.user_json(u.account_id, v) for u in page], {}

    def get_user(self, req: Request, v: str, user: User) -> Response:
        ref = req.q("accountId") or req.q("username") or req.q("key")
        found = self.user(ref)
        if found is None:
            return err(404, f"The user with account ID '{ref}' does not exist")
        return 200, self.user_json(found.account_id, v), {}

    def my_permissions(self, req: Request, v: str, user: User) -> Response:
        wanted = req.q("permissions")
        if self.deployment == "Cloud" and not wanted:
            return err(400, "The 'permissions' query parameter is required.")
        key = req.q("projectKey")
        if key and self.find_project(key) is None:
            return err(404, f"No project could be found with key '{key}'.")
        names = wanted.split(",") if wanted else DEFAULT_PERMISSIONS
        perms = {
            p: {
                "id": str(i + 1),
                "key": p,
                "name": p.replace("_", " ").title(),
                "type": "PROJECT",
                "description": "",
                "havePermission": p not in self.denied_permissions,
            }
            for i, p in enumerate(n.strip() for n in names)
        }
        return 200, {"permissions": perms}, {}

    # -- metadata ----------------------------------------------------------------------------
    def list_projects(self, req: Request, v: str, user: User) -> Response:
        return 200, [self.project_json(p, v) for p in self.projects.values()], {}

    def get_project(self, req: Request, v: str, user: User) -> Response:
        ref = req.match.group("project")
        project = self.find_project(ref)
        if project is None:
            return err(404, f"No project could be found with key '{ref}'.")
        return 200, self.project_json(project, v, full=True), {}

    def priorities(self, req: Request, v: str, user: User) -> Response:
        return (
            200,
            [
                self.priority_json(name, v) | {"statusColor": "#ff0000", "description": name}
                for name, _ in PRIORITIES
            ],
            {},
        )

    def issue_types(self, req: Request, v: str, user: User) -> Response:
        return 200, [self.type_json(name, v) for name, _ in ISSUE_TYPES], {}

    def link_types(self, req: Request, v: str, user: User) -> Response:
        return (
            200,
            {
                "issueLinkTypes": [
                    {
                        "id": tid,
                        "name": name,
                        "inward": inward,
                        "outward": outward,
                        "self": f"{self.url}/rest/api/{v}/issueLinkType/{tid}",
                    }
                    for name, tid, inward, outward in LINK_TYPES
                ]
            },
            {},
        )

    def fields(self, req: Request, v: str, user: User) -> Response:
        out = [
            {
                "id": f,
                "key": f,
                "name": f.title(),
                "custom": False,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [f],
                "schema": {"type": "string", "system": f},
            }
            for f in SYSTEM_FIELDS
        ]
        out += [
            {
                "id": fid,
                "key": fid,
                "name": name,
                "custom": True,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [fid, f"cf[{fid.split('_')[1]}]", name],
                "schema": {
                    "type": "string",
                    "custom": "textfield",
                    "customId": int(fid.split("_")[1]),
                },
            }
            for fid, name in self.custom_fields.items()
        ]
        return 200, out, {}

    def _field_meta(self, project: Project, v: str) -> list[dict[str, Any]]:
        def meta(
            fid: str, name: str, required: bool, schema: dict[str, Any], allowed: Any = None
        ) -> dict[str, Any]:
            out = {
                "fieldId": fid,
                "key": fid,
                "name": name,
                "required": required,
                "schema": schema,
                "hasDefaultValue": False,
                "operations": ["set"],
            }
            if allowed is not None:
                out["allowedValues"] = allowed
            return out

        custom = [
            meta(fid, name, False, {"type": "string", "custom": "textfield"})
            for fid, name in self.custom_fields.items()
        ]
        system = [
            meta(
                "project",
                "Project",
                True,
                {"type": "project", "system": "project"},
                [self.project_json(project, v)],
            ),
            meta(
                "issuetype",
                "Issue Type",
                True,
                {"type": "issuetype", "system": "issuetype"},
                [self.type_json(t, v) for t in project.issue_types],
            ),
            meta("summary", "Summary", True, {"type": "string", "system": "summary"}),
            meta("description", "Description", False, {"type": "string", "system": "description"}),
            meta(
                "priority",
                "Priority",
                False,
                {"type": "priority", "system": "priority"},
                [
                    self.priority_json(n, v)
                    for n, _ in PRIORITIES
                    if project.priorities is None or n in project.priorities
                ],
            ),
            meta(
                "labels", "Labels", False, {"type": "array", "items": "string", "system": "labels"}
            ),
            meta(
                "components",
                "Components",
                False,
                {"type": "array", "items": "component", "system": "components"},
                [self.component_json(project, c, v) for c in project.components],
            ),
            meta("assignee", "Assignee", False, {"type": "user", "system": "assignee"}),
            meta("duedate", "Due date", False, {"type": "date", "system": "duedate"}),
        ]
        return custom + system if self.custom_fields_first else system + custom

    def createmeta(self, req: Request, v: str, user: User) -> Response:
        keys = [k for raw in req.query.get("projectKeys", []) for k in raw.split(",") if k]
        names = [n for raw in req.query.get("issuetypeNames", []) for n in raw.split(",") if n]
        with_fields = "projects.issuetypes.fields" in (req.q("expand") or "")
        projects = [p for p in self.projects.values() if not keys or p.key in keys]
        out = []
        for p in projects:
            types = []
            for t in p.issue_types:
                if names and t not in names:
                    continue
                entry = self.type_json(t, v)
                if with_fields:
                    entry["fields"] = {m["fieldId"]: m for m in self._field_meta(p, v)}
                types.append(entry)
            out.append(self.project_json(p, v) | {"issuetypes": types})
        return 200, {"expand": "projects", "projects": out}, {}

    def createmeta_types(self, req: Request, v: str, user: User) -> Response:
        project = self.find_project(req.match.group("project"))
        if project is None:
            return err(404, "No project could be found.")
        types = [self.type_json(t, v) for t in project.issue_types]
        start, size, page = self.page(req, types)
        return 200, {"maxResults": size, "startAt": start, "total": len(types), "values": page}, {}

    def createmeta_fields(self, req: Request, v: str, user: User) -> Response:
        project = self.find_project(req.match.group("project"))
        if project is None:
            return err(404, "No project could be found.")
        metas = self._field_meta(project, v)
        start, size, _ = self.page(req, metas)
        size = min(size, CREATEMETA_PAGE)  # Jira caps the page whatever maxResults asks
        page = metas[start : start + size]
        body: dict[str, Any] = {"maxResults": size, "startAt": start, "total": len(metas)}
        if self.deployment == "Cloud":
            body["fields"] = page  # PageOfCreateMetaIssueTypeWithField
        else:
            body |= {"isLast": start + size >= len(metas), "values": page}
        return 200, body, {}

    # -- search ------------------------------------------------------------------------------
    def _values_of(self, issue: Issue, name: str) -> list[str]:
        f = issue.fields
        project = self.projects[issue.project]
        status = next(s for s in STATUSES if s[0] == f["status"])
        people = {"assignee": f["assignee"], "reporter": f["reporter"]}
        if name in people:
            u = self.users.get(people[name] or "")
            values = [u.account_id, u.name, u.email, u.display_name] if u else ["empty", "null"]
        else:
            texts = [f["summary"], adf_to_text(f["description"])]
            values = {
                "project": [project.key, project.name, project.id],
                "key": [issue.key, issue.id],
                "issuekey": [issue.key, issue.id],
                "labels": f["labels"],
                "status": [f["status"]],
                "statuscategory": [status[3], status[2]],
                "issuetype": [f["issuetype"]],
                "type": [f["issuetype"]],
                "priority": [f["priority"] or ""],
                "component": f["components"],
                "summary": [f["summary"]],
                "description": texts[1:],
                "text": texts + [adf_to_text(c["body"]) for c in issue.comments],
            }[name]
        return [str(x).lower() for x in values if x is not None]

    def _run_jql(self, jql: str) -> list[Issue]:
        query = jira_jql.parse(jql or "")
        # Like Jira's search index, issues younger than index_lag_s are not found yet.
        now = datetime.now(UTC)
        found = [
            i
            for i in self.issues.values()
            if i.project not in self.hidden_projects
            and (now - i.created).total_seconds() >= self.index_lag_s
            and jira_jql.matches(query, lambda name, i=i: self._values_of(i, name))
        ]
        key = jira_jql.sort_key(query.order_by)
        if key is not None:
            found.sort(key=key, reverse=query.descending)
        return found

    def _search_input(self, req: Request) -> dict[str, Any]:
        if req.method == "POST":
            data = req.json() or {}
            return {
                "jql": data.get("jql", ""),
                "startAt": int(data.get("startAt", 0) or 0),
                "maxResults": int(data.get("maxResults", 50) or 50),
                "fields": fields_param(req, data),
                "expand": data.get("expand"),
                "nextPageToken": data.get("nextPageToken"),
            }
        return {
            "jql": req.q("jql", ""),
            "startAt": int(req.q("startAt", "0") or 0),
            "maxResults": int(req.q("maxResults", "50") or 50),
            "fields": fields_param(req),
            "expand": req.q("expand"),
            "nextPageToken": req.q("nextPageToken"),
        }

    def _expand_changelog(self, expand: Any) -> bool:
        return "changelog" in (",".join(expand) if isinstance(expand, list) else str(expand or ""))

    def search(self, req: Request, v: str, user: User) -> Response:
        args = self._search_input(req)
        try:
            found = self._run_jql(args["jql"])
        except jira_jql.JqlError as exc:
            return err(400, str(exc))
        start, size = args["startAt"], args["maxResults"]
        issues = [
            self.issue_json(
                i, v, fields=args["fields"], changelog=self._expand_changelog(args["expand"])
            )
            for i in found[start : start + size]
        ]
        return (
            200,
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(found),
                "issues": issues,
            },
            {},
        )

    def search_jql(self, req: Request, v: str, user: User) -> Response:
        args = self._search_input(req)
        try:
            found = self._run_jql(args["jql"])
            start = (
                int(base64.urlsafe_b64decode(args["nextPageToken"]).decode())
                if args["nextPageToken"]
                else 0
            )
        except jira_jql.JqlError as exc:
            return err(400, str(exc))
        except ValueError:
            return err(400, "The provided next page token is invalid or expired.")
        size = args["maxResults"]
        page = found[start : start + size]
        # The enhanced search returns only ids unless fields are asked for.
        issues = [
            self.issue_json(
                i, v, fields=args["fields"], changelog=self._expand_changelog(args["expand"])
            )
            if args["fields"]
            else {"id": i.id}
            for i in page
        ]
        body: dict[str, Any] = {"issues": issues, "isLast": start + size >= len(found)}
        if not body["isLast"]:
            body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return 200, body, {}
