"""Benchmark the draft pipeline.

Prints:
- the wall time of an offline draft of a 20k-event bundle (target: under 10 s on 2 cores);
- the wall time of an offline draft of a 2,000-message incident (target: under 10 s), where
  the sentence-understanding layer embeds up to 800 candidate sentences;
- for the openai engine on an incident of over 2,000 messages (against a local emulator), the
  share of the raw transcript's tokens that the prompts carry (target: at most 25%) and
  whether every key event reached a prompt.

    python bench/draft.py [--events 20000] [--messages 2500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
import synth  # noqa: E402


def offline(events: int, tmp: Path) -> None:
    from retro.draft.engines.offline import OfflineEngine
    from retro.draft.pipeline import generate

    bundle = synth.write(tmp / "offline", events)
    start = time.perf_counter()
    result = generate(bundle=bundle, engine=OfflineEngine(), out=tmp / "offline.md")
    elapsed = time.perf_counter() - start
    print(f"offline draft, {len(result.timeline.events):,} events: {elapsed:.2f} s (target < 10 s)")


def offline_chat(messages: int, tmp: Path) -> None:
    """A chat-heavy incident: the sentence-understanding layer reads every message."""
    from retro.draft.engines.offline import OfflineEngine
    from retro.draft.pipeline import generate

    bundle = synth.write(tmp / "chat", int(messages / 0.6))
    start = time.perf_counter()
    result = generate(bundle=bundle, engine=OfflineEngine(), out=tmp / "chat.md")
    elapsed = time.perf_counter() - start
    chat = sum(1 for e in result.timeline.events if e.kind == "message")
    print(f"offline draft, {chat:,} messages: {elapsed:.2f} s (target < 10 s)")


def llm(messages: int, tmp: Path) -> None:
    from retro.draft.engines.llm import OpenAIEngine
    from retro.draft.engines.llm_cache import ResponseCache
    from retro.draft.pipeline import build_postmortem
    from retro.timeline.read import read_timeline
    from tests.emulators.openai import OpenAIEmulator

    bundle = synth.write(tmp / "llm", int(messages / 0.6))
    timeline = read_timeline(bundle)
    with OpenAIEmulator(api_key="k") as emu:
        emu.responder = lambda body: {}
        engine = OpenAIEngine(
            model="gpt-4o-mini",
            base_url=emu.url + "/v1",
            api_key="k",
            cache=ResponseCache(enabled=False),
        )
        build_postmortem(timeline, engine)
        fig = engine.figures()
    chat = sum(1 for e in timeline.events if e.kind == "message")
    print(
        f"openai engine, {chat:,} messages: prompts carry {fig['prompt_tokens']:,} of "
        f"{fig['raw_transcript_tokens']:,} raw tokens = {fig['prompt_share']:.1%} (target <= 25%); "
        f"key events kept {fig['key_events_kept']}/{fig['key_events']}; "
        f"{fig.get('map_calls', 0)} map calls; token counter: {fig.get('token_counter', '?')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=2_500)
    parser.add_argument(
        "--chat", type=int, default=2_000, help="messages of the offline chat draft"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        offline(args.events, Path(tmp))
        offline_chat(args.chat, Path(tmp))
        llm(args.messages, Path(tmp))


if __name__ == "__main__":
    main()
