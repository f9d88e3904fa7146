"""The Microsoft Graph client that Teams live mode (and the Teams transcripts API) uses.

Token: an app registration's client credentials (tenant id, client id, secret) are exchanged
at the Microsoft identity platform for an app-only token; or a token obtained elsewhere (for
example delegated, with `az account get-access-token --resource-type ms-graph`) is used as is.
Requests go through connectors._support.JsonClient, so 429 (honouring Retry-After), 5xx and
dropped connections are retried under retro.retry. Lists follow `@odata.nextLink` until it is
absent, however short or empty a page is: Graph may answer a page with fewer items than
`$top`, or none, and still have more.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr

from connectors._support import JsonClient
from retro.errors import ConnectorError, MissingCredential
from retro.retry import Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

PROTECTED_API_URL = "https://learn.microsoft.com/graph/teams-protected-apis"
_SECRET_HINT = (
    "set TEAMS_TENANT_ID, TEAMS_CLIENT_ID and TEAMS_CLIENT_SECRET (or TEAMS_TOKEN), "
    "or run `retro keys set {name}.client_secret`"
)


class GraphConfig(BaseModel):
    """Settings for Microsoft Graph (an Entra app registration, or a ready token)."""

    tenant_id: str | None = Field(
        default=None,
        description="Directory (tenant) id of the app registration",
        json_schema_extra={"env": "TEAMS_TENANT_ID"},
    )
    client_id: str | None = Field(
        default=None,
        description="Application (client) id of the app registration",
        json_schema_extra={"env": "TEAMS_CLIENT_ID"},
    )
    client_secret: SecretStr | None = Field(
        default=None,
        description="Client secret of the app registration (app-only access)",
        json_schema_extra={"env": "TEAMS_CLIENT_SECRET"},
    )
    token: SecretStr | None = Field(
        default=None,
        description="A Graph access token to use as is, instead of the client credentials",
        json_schema_extra={"env": "TEAMS_TOKEN"},
    )
    base_url: str = Field(
        default="https://graph.microsoft.com/v1.0",
        description="Graph base URL (national clouds differ; tests point it at an emulator)",
        json_schema_extra={"env": "TEAMS_GRAPH_URL"},
    )
    login_url: str = Field(
        default="https://login.microsoftonline.com",
        description="Identity platform URL that issues tokens",
        json_schema_extra={"env": "TEAMS_LOGIN_URL"},
    )
    page_size: int = Field(default=50, ge=1, le=50, description="$top per page (Graph's max: 50)")
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and network errors")
    backoff: float = Field(default=1.0, ge=0, description="First 5xx back-off in seconds; doubles")
    max_wait: float = Field(default=60.0, ge=0, description="Longest wait honoured for Retry-After")
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")


def as_config(config: BaseModel) -> GraphConfig:
    """config as a GraphConfig (any model with the same fields is accepted)."""
    if isinstance(config, GraphConfig):
        return config
    return GraphConfig.model_validate(config.model_dump(include=set(GraphConfig.model_fields)))


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def uses_client_credentials(cfg: GraphConfig) -> bool:
    return bool(cfg.tenant_id and cfg.client_id and _secret(cfg.client_secret))


# --- tokens ---------------------------------------------------------------------------------------


def acquire_token(cfg: GraphConfig, source: str, key_name: str) -> str:
    """An access token: the client-credentials grant when its three settings are set (they win
    over `token`, so a secret stored for the wrong field is never sent as a bearer token)."""
    if uses_client_credentials(cfg):
        return _client_credentials(cfg, source)
    token = _secret(cfg.token)
    if token:
        return token
    missing = MissingCredential("Microsoft Teams", "TEAMS_CLIENT_SECRET", key_name=key_name)
    missing.hint = _SECRET_HINT.format(name=key_name)
    raise missing


def _client_credentials(cfg: GraphConfig, source: str) -> str:
    import httpx

    url = f"{cfg.login_url.rstrip('/')}/{cfg.tenant_id}/oauth2/v2.0/token"
    parts = urlsplit(cfg.base_url)
    form = {
        "client_id": str(cfg.client_id),
        "client_secret": _secret(cfg.client_secret),
        "scope": f"{parts.scheme}://{parts.netloc}/.default",
        "grant_type": "client_credentials",
    }
    policy = RetryPolicy(retries=cfg.max_retries, backoff=cfg.backoff, max_wait=cfg.max_wait)

    def attempt() -> httpx.Response:
        try:
            resp = httpx.post(url, data=form, timeout=cfg.timeout)
        except httpx.TransportError as exc:
            raise Retryable(f"token request failed: {exc}") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            wait = retry_after(resp.headers)
            raise Retryable(f"HTTP {resp.status_code}", retry_after=wait, response=resp)
        return resp

    def give_up(exc: Retryable) -> NoReturn:
        hint = "check TEAMS_LOGIN_URL and the network; retry later"
        raise ConnectorError(source, f"cannot get a token ({exc.detail})", hint=hint) from None

    resp = policy.run(attempt, give_up=give_up)
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
        return str(body["access_token"])
    raise _token_error(resp.status_code, body if isinstance(body, dict) else {}, source)


def _token_error(status: int, body: dict[str, Any], source: str) -> ConnectorError:
    code = str(body.get("error") or f"HTTP {status}")
    description = str(body.get("error_description") or "").split("\n", 1)[0].strip()
    detail = f"{code}: {description}" if description else code
    if code in ("invalid_client", "unauthorized_client"):
        hint = "check TEAMS_CLIENT_ID and TEAMS_CLIENT_SECRET (a secret's Value, not its ID; secrets expire)"
    elif "AADSTS90002" in description or "AADSTS900023" in description:
        hint = "check TEAMS_TENANT_ID: the directory (tenant) id of the app registration"
    else:
        hint = "check the app registration in the Microsoft Entra admin center"
    return ConnectorError(source, f"the identity platform refused a token ({detail})", hint=hint)


def token_roles(token: str) -> tuple[list[str] | None, dict[str, Any]]:
    """The app roles (application permissions) an access token carries, and its claims.

    Roles are None when the token is not a readable JWT (then nothing can be said locally)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None, {}
    if not isinstance(claims, dict):
        return None, {}
    roles = claims.get("roles")
    return (sorted(str(r) for r in roles) if isinstance(roles, list) else None), claims


# --- requests -------------------------------------------------------------------------------------


def _needed(path: str) -> str:
    """The application permission a Graph path needs, for the 403 hint."""
    if "/onlineMeetings/" in path:
        return "OnlineMeetingTranscript.Read.All"
    if "/members" in path:
        return "ChatMember.Read.All" if "/chats/" in path else "ChannelMember.Read.All"
    if "/chats/" in path:
        return "Chat.Read.All"
    if "/messages" in path:
        return "ChannelMessage.Read.All"
    return "Channel.ReadBasic.All"


def error_factory(source: str, token_hint: str) -> Any:
    """The ConnectorError builder for Graph answers, as JsonClient's `on_error`."""

    def build(resp: httpx.Response, path: str) -> ConnectorError:
        status = resp.status_code
        try:
            err = resp.json().get("error") or {}
        except (ValueError, AttributeError):
            err = {}
        err = err if isinstance(err, dict) else {}
        code, message = str(err.get("code") or ""), str(err.get("message") or "")
        detail = f"{status} {code}: {message}".strip(": ") if code or message else str(status)
        shown = path.split("?", 1)[0]
        if status == 401:
            return ConnectorError(source, f"Graph rejected the token ({detail})", hint=token_hint)
        if status == 403:
            return ConnectorError(
                source,
                f"not allowed to read {shown} ({detail})",
                hint=_forbidden_hint(message, path),
            )
        if status == 402:
            hint = "set up billing for metered Teams APIs: https://learn.microsoft.com/graph/metered-api-setup"
            return ConnectorError(source, f"payment required for {shown} ({detail})", hint=hint)
        if status == 404:
            hint = "check the ids: a team id is its group's GUID, a channel id looks like 19:…@thread.tacv2"
            return ConnectorError(source, f"{shown} not found ({detail})", hint=hint)
        if status == 429:
            hint = "Graph is throttling this app; wait a few minutes and run the harvest again"
            return ConnectorError(
                source, f"still throttled on {shown} after retries (429)", hint=hint
            )
        hint = "retry later; see https://status.cloud.microsoft for Microsoft 365 service health"
        return ConnectorError(source, f"GET {shown} failed with HTTP {detail}", hint=hint)

    return build


def _forbidden_hint(message: str, path: str) -> str:
    low = message.lower()
    if "protected api" in low:
        return (
            "application access to Teams messages is a protected API: request it with Microsoft's "
            f"form ({PROTECTED_API_URL}), or install the app in the team with resource-specific "
            "consent (ChannelMessage.Read.Group)"
        )
    if "application access policy" in low:
        return (
            "a Teams admin must grant the app an application access policy for the meeting "
            "organizer (New-CsApplicationAccessPolicy, Grant-CsApplicationAccessPolicy)"
        )
    return f"grant the app the {_needed(path)} application permission, with admin consent"


class GraphClient:
    """GETs against Graph with a bearer token, paging by `@odata.nextLink`."""

    def __init__(self, cfg: GraphConfig, *, source: str, key_name: str) -> None:
        token = acquire_token(cfg, source, key_name)
        self.source = source
        self.origin = _origin(cfg.base_url)
        self.page_size = cfg.page_size
        hint = (
            "check TEAMS_TENANT_ID, TEAMS_CLIENT_ID and TEAMS_CLIENT_SECRET"
            if uses_client_credentials(cfg)
            else "TEAMS_TOKEN may have expired (tokens last about an hour); get a new one"
        )
        self.api = JsonClient(
            source=source,
            settings=cfg,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                # System events then say messageType "systemEventMessage", not "unknownFutureValue".
                "Prefer": "include-unknown-enum-members",
            },
            on_error=error_factory(source, hint),
        )

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.client.close()

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self.api.get(path, params)

    def fetch(self, path: str, allow: tuple[int, ...] = ()) -> tuple[int, dict[str, Any] | None]:
        """GET path: (status, body); statuses in `allow` come back with no body."""
        return self.api.fetch(path, None, allow)

    def text(self, path: str, params: dict[str, str] | None = None) -> str:
        """GET a text resource (a transcript's WebVTT) under the same retries and errors."""
        return get_text(self.api, path, params)

    def pages(self, path: str, params: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a list, first to last; each page's `value` is checked to be a list."""
        url: str | None = path
        seen: set[str] = set()
        while url is not None:
            body = self.api.get(url, params if url == path else None)
            if not isinstance(body.get("value"), list):
                hint = "check TEAMS_GRAPH_URL points at Microsoft Graph"
                raise ConnectorError(self.source, f"GET {path} returned no `value` list", hint=hint)
            yield body
            url = self._next(body, path, seen)

    def _next(self, body: dict[str, Any], path: str, seen: set[str]) -> str | None:
        link = body.get("@odata.nextLink")
        if not isinstance(link, str) or not link:
            return None
        if _origin(link) != self.origin:
            # The bearer token goes only where base_url points, never to another host.
            hint = "check TEAMS_GRAPH_URL: the next-page link points at another host"
            raise ConnectorError(
                self.source, f"GET {path}: next page at {_origin(link)}", hint=hint
            )
        if link in seen:
            hint = "Graph returned the same next-page link twice; retry the harvest later"
            raise ConnectorError(self.source, f"GET {path}: paging does not advance", hint=hint)
        seen.add(link)
        return link

    def items(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every item of every page, in the order Graph sent them."""
        out: list[dict[str, Any]] = []
        for page in self.pages(path, params):
            out += [item for item in page["value"] if isinstance(item, dict)]
        return out


def get_text(api: JsonClient, path: str, params: dict[str, str] | None = None) -> str:
    """GET a text body with JsonClient's client, retry policy and error builder."""
    import httpx

    def attempt() -> httpx.Response:
        try:
            resp = api.client.get(path, params=params)
        except httpx.TransportError as exc:  # refused, reset, timed out, cut mid-body
            raise Retryable(f"GET {path} failed: {type(exc).__name__} {exc}".strip()) from None
        if resp.status_code == 429 or resp.status_code >= 500:
            wait = retry_after(resp.headers, api.wait_headers)
            raise Retryable(f"HTTP {resp.status_code} on {path}", retry_after=wait, response=resp)
        if resp.status_code >= 400:
            raise api.on_error(resp, path)
        return resp

    def give_up(exc: Retryable) -> NoReturn:
        if exc.response is None:
            hint = "check network access and the API URL, then run the harvest again"
            raise ConnectorError(api.source, exc.detail, hint=hint) from None
        raise api.on_error(exc.response, path)  # type: ignore[arg-type]

    resp = api.policy.run(attempt, give_up=give_up)
    return resp.content.decode("utf-8-sig", errors="replace")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
