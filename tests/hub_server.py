"""A Hub-compatible HTTP server on 127.0.0.1 for tests: the real ``huggingface_hub`` client (``HF_ENDPOINT``) creates
repositories, uploads folders and downloads files from it, so pushing and loading by repository id run end to end
with no network and no monkey-patching.

It implements what ``create_repo``, ``upload_folder``/``create_commit``, ``repo_info``/``model_info``,
``list_repo_files``/``list_repo_tree``, ``get_paths_info``, ``whoami`` and ``hf_hub_download`` (and so
``from_pretrained``, ``pipeline`` and ``ModelCard.load``) call, with the headers the client reads:

    POST /api/repos/create                                   create a repository (409 when it exists)
    POST /api/validate-yaml                                  check a README's metadata block
    GET  /api/whoami-v2                                      the user the token belongs to
    GET  /api/{models,datasets}/{repo_id}[/revision/{rev}]   repository info (sha, siblings, cardData)
    GET  /api/{models,datasets}/{repo_id}/tree/{rev}[/{path}] tree listing
    POST /api/{models,datasets}/{repo_id}/paths-info/{rev}   info on some paths
    POST /api/{models,datasets}/{repo_id}/preupload/{rev}    upload mode of each file ("regular": content goes in
                                                             the commit, so no LFS or Xet storage is needed)
    POST /api/{models,datasets}/{repo_id}/commit/{rev}       an ndjson commit (header, file, deletedFile, ...)
    POST /api/{models,datasets}/{repo_id}/branch/{branch}    a branch (from ``startingPoint``, main by default)
    HEAD/GET /{repo_id}/resolve/{rev}/{path}                 a file, with ETag (git blob sha1), X-Repo-Commit and
    HEAD/GET /datasets/{repo_id}/resolve/{rev}/{path}        Content-Length, as hf_hub_download expects

Errors carry the ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) that
``huggingface_hub`` turns into its typed exceptions. Writes need ``Authorization: Bearer <token>`` with the server's
token; private repositories are invisible (401, as on the Hub) without it. The server keeps every request's method
and path (never its headers) in :attr:`LocalHub.requests` and every byte it received in
:attr:`LocalHub.received`, so tests can check where a token went. :meth:`LocalHub.fail` makes it answer chosen
requests with a server error, as a Hub having trouble does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

#: What the Hub writes into every new repository.
GITATTRIBUTES = b"""*.bin filter=lfs diff=lfs merge=lfs -text
*.png filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
"""
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob: what the Hub returns as a regular file's ETag and ``oid``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, bytes]
    parent: Optional[str] = None


@dataclass
class Repository:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Optional[Commit]:
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)

    def commit(self, branch: str, message: str, files: dict[str, bytes]) -> Commit:
        parent = self.branches.get(branch)
        digest = hashlib.sha1(f"{self.repo_id}\0{parent}\0{message}\0{time.time_ns()}".encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + git_blob_sha1(files[path]).encode())
        commit = Commit(oid=digest.hexdigest(), message=message, files=files, parent=parent)
        self.commits[commit.oid] = commit
        self.branches[branch] = commit.oid
        return commit


class HubError(Exception):
    def __init__(self, status: int, message: str, error_code: Optional[str] = None, body: Optional[dict] = None):
        super().__init__(message)
        self.status, self.message, self.error_code, self.body = status, message, error_code, body or {}


class LocalHub:
    """The server's state and its HTTP front: start it, point ``HF_ENDPOINT`` at :attr:`url`, stop it.

    Args:
        token (`str`): the one token that may write (and read private repositories); its user is ``user``.
        user (`str`, defaults to ``"ser-hf-tester"``): the namespace of repositories created without one.
    """

    def __init__(self, token: str, user: str = "ser-hf-tester"):
        self.token, self.user = token, user
        self.repos: dict[tuple[str, str], Repository] = {}
        self.requests: list[tuple[str, str]] = []
        self.received: list[bytes] = []
        self.failures: list[dict] = []
        self.lock = threading.RLock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # --- lifecycle ---

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LocalHub":
        hub = self

        class Handler(_Handler):
            state = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- state, for tests ---

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int = 500,
        times: Optional[int] = 1,
        echo_authorization: bool = False,
    ) -> None:
        """Answer the next ``times`` requests (all of them while ``times`` is `None`, until :attr:`failures` is
        cleared) whose method is ``method`` and whose path matches the regular expression ``path_pattern`` with
        ``status`` and no effect; with ``echo_authorization``, the error (body and ``X-Error-Message``) quotes the
        request's ``Authorization`` header, as a careless proxy does."""
        with self.lock:
            self.failures.append(
                {
                    "method": method,
                    "path": re.compile(path_pattern),
                    "status": status,
                    "times": times,
                    "echo_authorization": echo_authorization,
                }
            )

    def _injected_failure(self, method: str, path: str, authorization: str = "") -> Optional[HubError]:
        with self.lock:
            for failure in self.failures:
                if failure["method"] == method and failure["path"].fullmatch(path) and failure["times"] != 0:
                    if failure["times"] is not None:
                        failure["times"] -= 1
                    message = "Internal Error - We're working hard to fix this as soon as possible!"
                    if failure["echo_authorization"]:
                        message = f"Request rejected; it carried Authorization: {authorization}"
                    return HubError(failure["status"], message)
        return None

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """The files of a repository at ``revision``."""
        with self.lock:
            commit = self.repos[(repo_type, repo_id)].resolve(revision)
            return dict(commit.files)

    # --- operations ---

    def _repo(self, repo_type: str, repo_id: str, authorized: bool) -> Repository:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not authorized):
            # The Hub answers 401 for a private repository it does not show, and 404 for a missing one.
            raise HubError(401 if repo is not None else 404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _commit_at(self, repo: Repository, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def create_repo(self, payload: dict) -> dict:
        repo_type = payload.get("type") or "model"
        name, namespace = payload.get("name"), payload.get("organization") or self.user
        if not name or not re.fullmatch(r"[\w.-]+", name) or not re.fullmatch(r"[\w.-]+", namespace):
            raise HubError(400, f"Invalid repository name {namespace}/{name}")
        repo_id = f"{namespace}/{name}"
        if (repo_type, repo_id) in self.repos:
            # As the Hub: the existing repository's URL comes along (create_repo(exist_ok=True) returns it).
            raise HubError(
                409, "You already created this model repo", body={"url": self._repo_url(repo_type, repo_id)}
            )
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = Repository(repo_type=repo_type, repo_id=repo_id, private=private)
        repo.commit("main", "initial commit", {".gitattributes": GITATTRIBUTES})
        self.repos[(repo_type, repo_id)] = repo
        return {"url": self._repo_url(repo_type, repo_id), "name": repo_id, "id": repo_id}

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        return f"{self.url}/{prefix}{repo_id}"

    def repo_info(self, repo: Repository, revision: str) -> dict:
        commit = self._commit_at(repo, revision)
        info = {
            "id": repo.repo_id,
            "_id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": "2026-01-01T00:00:00.000Z",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "siblings": [
                {"rfilename": path, "size": len(content), "blobId": git_blob_sha1(content)}
                for path, content in sorted(commit.files.items())
            ],
        }
        card = _front_matter(commit.files.get("README.md", b"").decode("utf-8", "replace"))
        if card:
            info["cardData"] = card
            info["tags"] = list(card.get("tags") or [])
            for key in ("pipeline_tag", "library_name"):
                if key in card:
                    info[key] = card[key]
            if "model-index" in card:
                info["model-index"] = card["model-index"]
        if "config.json" in commit.files:
            try:
                config = json.loads(commit.files["config.json"])
                info["config"] = {
                    key: config[key] for key in ("architectures", "model_type", "auto_map") if key in config
                }
            except ValueError:
                pass
        return info

    def tree(self, repo: Repository, revision: str, folder: str, recursive: bool) -> list[dict]:
        commit = self._commit_at(repo, revision)
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        entries, folders = [], set()
        for path, content in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            if recursive:
                parts = rest.split("/")[:-1]
                folders.update(prefix + "/".join(parts[: i + 1]) for i in range(len(parts)))
            entries.append(_file_entry(path, content))
        if prefix and not entries and not folders:
            raise HubError(404, f"{folder} does not exist at {revision}", "EntryNotFound")
        return [
            {"type": "directory", "oid": hashlib.sha1(p.encode()).hexdigest(), "size": 0, "path": p}
            for p in sorted(folders)
        ] + entries

    def preupload(self, repo: Repository, revision: str, payload: dict) -> dict:
        commit = repo.resolve(revision)
        existing = commit.files if commit is not None else {}
        files = []
        for item in payload.get("files", []):
            path = item["path"]
            remote = existing.get(path)
            files.append(
                {
                    "path": path,
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_sha1(remote) if remote is not None else None,
                }
            )
        return {"files": files, "commitOid": commit.oid if commit is not None else None}

    def apply_commit(self, repo: Repository, revision: str, body: bytes) -> dict:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit payload must start with a header line")
        header = lines[0]["value"]
        parent = repo.branches.get(revision)
        if parent is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        if header.get("parentCommit") and not parent.startswith(header["parentCommit"]):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.commits[parent].files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, f"Unsupported encoding {value.get('encoding')!r} for {value['path']}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {path: content for path, content in files.items() if not path.startswith(folder)}
            else:  # lfsFile, copies: this server answers "regular" to every preupload, so they never come
                raise HubError(400, f"Unsupported commit operation {key!r}")
        if "README.md" in files:
            _check_metadata(files["README.md"].decode("utf-8", "replace"))
        commit = repo.commit(revision, header.get("summary") or "", files)
        return {
            "success": True,
            "commitOid": commit.oid,
            "commitUrl": f"{self._repo_url(repo.repo_type, repo.repo_id)}/commit/{commit.oid}",
            "hookOutput": "",
        }


def _file_entry(path: str, content: bytes) -> dict:
    return {"type": "file", "oid": git_blob_sha1(content), "size": len(content), "path": path}


def _front_matter(text: str) -> dict:
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, flags=re.DOTALL)
    if match is None:
        return {}
    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) else {}


def _check_metadata(text: str) -> list[str]:
    """Validate a README's metadata block as the Hub does for the fields ser-hf writes; raise HubError(400)."""
    try:
        data = _front_matter(text)
    except yaml.YAMLError as error:
        raise HubError(400, f"Invalid YAML in README.md metadata: {error}") from None
    errors = []
    if "model-index" in data:
        from huggingface_hub.repocard_data import model_index_to_eval_results

        try:
            model_index_to_eval_results(data["model-index"])
        except (KeyError, TypeError, ValueError) as error:
            errors.append(f'"model-index" is invalid: {error!r}')
    for key in ("tags", "datasets"):
        if key in data and not (isinstance(data[key], list) and all(isinstance(v, str) for v in data[key])):
            errors.append(f'"{key}" must be a list of strings')
    if errors:
        raise HubError(400, "; ".join(errors))
    return errors


class _Handler(BaseHTTPRequestHandler):
    state: LocalHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output clean; requests are recorded in state.requests
        pass

    # --- plumbing ---

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        return header == f"Bearer {self.state.token}"

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.state.received.append(body)
        return body

    def _send(self, status: int, body: bytes = b"", headers: Optional[dict] = None, head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, value, status: int = 200, headers: Optional[dict] = None) -> None:
        self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, error: HubError, head: bool = False) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": error.message}
        if error.error_code:
            headers["X-Error-Code"] = error.error_code
        self._send(error.status, json.dumps({"error": error.message, **error.body}).encode(), headers, head=head)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.state.requests.append((method, parts.path))
        body = self._body() if method == "POST" else b""
        try:
            failure = self.state._injected_failure(method, parts.path, self.headers.get("Authorization", ""))
            if failure is not None:
                raise failure
            with self.state.lock:
                self._route(method, parts.path, parse_qs(parts.query), body)
        except HubError as error:
            self._error(error, head=method == "HEAD")

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    # --- routes ---

    def _route(self, method: str, path: str, query: dict, body: bytes) -> None:
        state, authorized = self.state, self._authorized()
        if path == "/api/whoami-v2" and method == "GET":
            if not authorized:
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._json(
                {
                    "type": "user",
                    "name": state.user,
                    "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"role": "write"}},
                }
            )
        if path == "/api/repos/create" and method == "POST":
            if not authorized:
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._json(state.create_repo(json.loads(body or b"{}")))
        if path == "/api/validate-yaml" and method == "POST":
            try:
                _check_metadata(json.loads(body).get("content", ""))
            except HubError as error:
                return self._json({"errors": [{"message": error.message}], "warnings": []}, status=400)
            return self._json({"errors": [], "warnings": []})

        api = re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/(.*))?", path)
        if api is not None:
            repo_type, repo_id, rest = REPO_TYPES[api.group(1)], unquote(api.group(2)), api.group(3) or ""
            repo = state._repo(repo_type, repo_id, authorized)
            return self._api(method, repo, rest, query, body, authorized)

        resolve = re.fullmatch(r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if resolve is not None and method in ("GET", "HEAD"):
            repo_type = REPO_TYPES[resolve.group(1)] if resolve.group(1) else "model"
            repo = state._repo(repo_type, unquote(resolve.group(2)), authorized)
            return self._resolve(repo, unquote(resolve.group(3)), unquote(resolve.group(4)), head=method == "HEAD")
        raise HubError(404, f"{method} {path} is not served by the local hub")

    def _api(self, method: str, repo: Repository, rest: str, query: dict, body: bytes, authorized: bool) -> None:
        state = self.state
        if method == "GET" and (rest == "" or rest.startswith("revision/")):
            revision = unquote(rest.split("/", 1)[1]) if rest else "main"
            return self._json(state.repo_info(repo, revision))
        tree = re.fullmatch(r"tree/([^/]+)(?:/(.*))?", rest)
        if tree is not None and method == "GET":
            recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
            return self._json(state.tree(repo, unquote(tree.group(1)), unquote(tree.group(2) or ""), recursive))
        paths_info = re.fullmatch(r"paths-info/([^/]+)", rest)
        if paths_info is not None and method == "POST":
            commit = state._commit_at(repo, unquote(paths_info.group(1)))
            fields = parse_qs(body.decode())
            wanted = fields.get("paths", [])
            return self._json([_file_entry(p, commit.files[p]) for p in wanted if p in commit.files])
        branch = re.fullmatch(r"branch/([^/]+)", rest)
        if branch is not None and method == "POST":
            if not authorized:
                raise HubError(401, "Invalid credentials in Authorization header")
            name = unquote(branch.group(1))
            if name in repo.branches:
                raise HubError(409, f"Reference refs/heads/{name} already exists")
            start = json.loads(body or b"{}").get("startingPoint") or "main"
            repo.branches[name] = state._commit_at(repo, start).oid
            return self._json({})
        for action in ("preupload", "commit"):
            match = re.fullmatch(action + r"/([^/]+)", rest)
            if match is not None and method == "POST":
                if not authorized:
                    raise HubError(401, "Invalid credentials in Authorization header")
                revision = unquote(match.group(1))
                if action == "preupload":
                    return self._json(state.preupload(repo, revision, json.loads(body)))
                return self._json(state.apply_commit(repo, revision, body))
        raise HubError(404, f"{method} /api/.../{rest} is not served by the local hub")

    def _resolve(self, repo: Repository, revision: str, path: str, head: bool) -> None:
        commit = self.state._commit_at(repo, revision)
        headers = {"X-Repo-Commit": commit.oid}
        if path not in commit.files:
            error = HubError(404, "Entry not found", "EntryNotFound")
            self._send(
                404,
                b"" if head else json.dumps({"error": error.message}).encode(),
                {"X-Error-Code": "EntryNotFound", "X-Error-Message": error.message, **headers},
                head=head,
            )
            return
        content = commit.files[path]
        headers.update(
            {
                "ETag": f'"{git_blob_sha1(content)}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
        )
        byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if byte_range is not None and not head:
            start = int(byte_range.group(1))
            end = int(byte_range.group(2)) if byte_range.group(2) else len(content) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            return self._send(206, content[start : end + 1], headers)
        self._send(200, content, headers, head=head)


__all__ = ["LocalHub", "git_blob_sha1"]
