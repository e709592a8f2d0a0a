"""The worker's side of an event: envelope, content, processors, serialized line.

Stages, in order: the envelope from the queued spec; its content restored; the processors
(the built-in privacy and size stages, then the user's); serialization, the last stage. One
shortcut, under one rule: while the processors are exactly the built-in ones and nothing is
masked, an event whose serialized line holds no secret hint and is under both caps is already
what the built-in stages would make of it, so its line is taken as it is (`fast_line`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracewire.config import Config
from tracewire.model import codec
from tracewire.model.event import Event
from tracewire.pipeline.envelope import Queued, envelope, restore_content
from tracewire.pipeline.processors import DecodeRaw, Processor, default_processors, utf8_len, withhold
from tracewire.pipeline.redact import Redactor
from tracewire.pipeline.sanitize import Sanitizer

ReportError = Callable[[str, BaseException], None]
# The fast path's envelope holds no `RawJSON`, only `codec.fragment`s: with orjson those are its own
# Fragments, which it splices itself, so the envelope needs none of `dumps_event`'s look for RawJSON.
_dump_spliced: Callable[[Event], str] = codec.dumps_strict if codec.HAS_ORJSON else codec.dumps_event
# The envelope's text fields a caller or framework names (`kind` and `phase` are parts of `type`);
# how many of them, found clean, the fast path remembers.
_ENVELOPE_TEXT = ("type", "name", "framework", "session_id", "user_id")
_CLEAN_MAX = 4096


def _set_content(ev: Event, item: Queued, wrap: Callable[[str], Any]) -> None:
    """The queued content's JSON text into the event, as `wrap(text)`: orjson's Fragment to splice
    into the line, then `RawJSON` for the sinks, which can read it."""
    if item.input_json is not None:
        ev["input"] = wrap(item.input_json)
    if item.output_json is not None:
        ev["output"] = wrap(item.output_json)
    if item.metadata_json is not None:
        ev["metadata"] = wrap(item.metadata_json)


class Pipeline:
    def __init__(self, config: Config, report_error: ReportError) -> None:
        self.redactor = Redactor(config.redact_keys, config.allow_keys)
        self.sanitizer = Sanitizer(self.redactor, config.max_string_length, config.mask)
        # public through `Client.processors`: a processor appended there turns `fast_line` off
        self.processors: list[Processor] = default_processors(
            self.redactor, self.sanitizer, config.max_string_length, config.max_event_bytes,
            masking=config.mask is not None,
        )
        self._defaults = list(self.processors)
        self._fast_ok = config.mask is None
        self._fast_limit = min(config.max_string_length, config.max_event_bytes)
        self._max_event_bytes = config.max_event_bytes
        self._max_string = config.max_string_length
        if config.processors:
            self.processors += [DecodeRaw(), *config.processors]
        self._report = report_error
        self._clean: set[str] = set()  # envelope strings `may_need_scrubbing` passed (see `fast_line`)
        self.withheld = 0  # events whose content a failed privacy stage kept home

    def fast_allowed(self) -> bool:
        return self._fast_ok and self.processors == self._defaults

    def line(self, item: Queued, fast: bool) -> tuple[Event, str] | None:
        """The event and its line (None: a processor filtered it out). `fast`: `fast_allowed()`,
        asked once per batch by the caller."""
        done = self.fast_line(item) if fast else None
        if done is None:
            ev = self.prepare(item)
            if ev is None:
                return None
            done = self.serialize(ev)
        return done

    def prepare(self, item: Queued) -> Event | None:
        spec = item.event
        ev: Event = envelope(spec) if type(spec) is tuple else spec
        item.event = ev
        failed = restore_content(item, ev)
        if failed is not None:
            self._report("snapshot_restore", failed)
        for proc in self.processors:
            try:
                out = proc(ev)
            except Exception as exc:  # noqa: BLE001 - privacy fails closed: the content stays home
                where = f"processor:{getattr(proc, '__name__', type(proc).__name__)}"
                self._report(where, exc)
                self.withheld += 1
                ev = withhold(ev, self.redactor, self._max_string, f"{where} failed")
                continue
            if out is None:
                return None
            ev = out
        return ev

    def fast_line(self, item: Queued) -> tuple[Event, str] | None:
        """The common event in one step (see the module's docstring). None: the event takes the
        processors' walk, which decides."""
        spec = item.event
        if type(spec) is not tuple or item.blob is not None:
            return None
        ev = item.event = envelope(spec)
        _set_content(ev, item, codec.fragment)
        try:
            line = _dump_spliced(ev)  # refuses attributes or errors that are not plain JSON
        except Exception:  # noqa: BLE001
            return None
        if len(line) > self._fast_limit or (not line.isascii() and utf8_len(line) > self._max_event_bytes):
            return None
        # Every string a caller or framework wrote is checked, as the processors would check it:
        # the envelope's text fields one by one (as `scrub_envelope` does), and the rest of the line
        # from the attributes on (attributes, error, tags and content; each field's JSON is the very
        # text the processors check, and checking them joined can only find more). The generated ids
        # and the time are left out: long runs of letters and digits, never secrets. An envelope
        # string found clean once is remembered: span names, kinds and frameworks repeat.
        clean, may_need_scrubbing = self._clean, self.redactor.may_need_scrubbing
        for field in _ENVELOPE_TEXT:
            text = ev[field]
            if text is not None and (type(text) is not str or text not in clean):
                if type(text) is not str or may_need_scrubbing(text):
                    return None
                if len(clean) < _CLEAN_MAX:
                    clean.add(text)
        # the first `,"attributes":` after the event id is the envelope's own: a quote inside a
        # string is escaped
        at = line.find(',"attributes":', len(ev["id"]))
        if at < 0 or may_need_scrubbing(line[at + 14:]):
            return None
        if codec.HAS_ORJSON:  # sinks that read the event get the content's text, not orjson's sealed Fragment
            _set_content(ev, item, codec.RawJSON)
        return ev, line

    def serialize(self, ev: Event) -> tuple[Event, str]:
        try:
            return ev, codec.dumps_event(ev)
        except Exception:  # noqa: BLE001 - a user processor left something unsafe: make it safe
            return self._serialize_safely(ev)

    def _serialize_safely(self, ev: Event) -> tuple[Event, str]:
        try:
            safe = self.sanitizer.value(DecodeRaw()(ev), mask=False)
            return safe, codec.dumps_event(safe)
        except Exception as exc:  # noqa: BLE001 - keep the envelope, say what was lost
            self._report("serialize", exc)
            env: dict[str, Any] = {
                k: v for k, v in ev.items() if k not in ("input", "output", "metadata", "attributes", "error")
            }
            env = self.sanitizer.value(env, mask=False)
            env["attributes"] = {"tracewire.serialize_error": f"{type(exc).__name__}: content could not be serialized"}
            return env, codec.dumps_event(env)
