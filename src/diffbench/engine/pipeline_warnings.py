"""Warnings the pipeline itself emits, kept with the run: diffusers / transformers logging
(e.g. "The following part of your input was truncated because CLIP can only handle sequences
up to 77 tokens") and Python warnings raised from their code.

:class:`PipelineWarnings` is used around loading and around the timed calls in
diffbench.engine.runner, so it works the same in a child process and in this one: each
distinct message becomes one notice ("pipeline warning: ...") and one LogMessage warning.
diffbench quiets the libraries' import-time chatter (DIFFUSERS_VERBOSITY /
TRANSFORMERS_VERBOSITY default to "error", diffbench.engine.preflight); inside the block their
loggers pass warnings again, to this collector only: the libraries' own handlers still print
just what their verbosity lets through, so a warning shows once, as diffbench's.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from typing import Any, Optional

from diffbench.engine import events as ev
from diffbench.engine.events import EventCallback

#: The logger hierarchies whose warnings are the pipeline's.
LOGGERS = ("diffusers", "transformers")
#: Distinct messages kept per block (a warning per step would flood the record).
MAX_NOTICES = 20
#: Longest notice kept (characters); longer messages are cut with "...".
MAX_CHARS = 300
PREFIX = "pipeline warning: "


class _Handler(logging.Handler):
    def __init__(self, owner: "PipelineWarnings") -> None:
        super().__init__(level=logging.WARNING)
        self.owner = owner

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.owner.add(record.getMessage())
        except Exception:  # noqa: BLE001 - a logging handler must never raise
            pass


class PipelineWarnings:
    """Context manager collecting the pipeline's warnings while it is open.

    Attributes:
        notices: the distinct messages seen, each "pipeline warning: <one line>", at most
            :data:`MAX_NOTICES`, in order of first appearance.

    Args:
        emit: the run's event callback; each new message is sent as LogMessage("warning").
    """

    def __init__(self, emit: Optional[EventCallback] = None) -> None:
        self.emit = emit or ev.null_callback
        self.notices: list[str] = []
        self._lock = threading.Lock()
        self._handler = _Handler(self)
        self._catch: Any = None
        self._levels: dict[str, tuple[int, int]] = {}

    def add(self, message: str) -> None:
        """Keep ``message`` (made one line, cut to MAX_CHARS) unless seen already."""
        text = " ".join(str(message).split())
        if not text:
            return
        if len(text) > MAX_CHARS:
            text = text[:MAX_CHARS - 3] + "..."
        notice = PREFIX + text
        with self._lock:
            if notice in self.notices or len(self.notices) >= MAX_NOTICES:
                return
            self.notices.append(notice)
        self.emit(ev.LogMessage("warning", notice))

    def __enter__(self) -> "PipelineWarnings":
        self._levels = {}
        for name in LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(self._handler)
            shown = logger.getEffectiveLevel()
            if shown > logging.WARNING:
                self._levels[name] = (logger.level, shown)
                logger.setLevel(logging.WARNING)
                for handler in logger.handlers:
                    if handler is not self._handler:
                        handler.addFilter(_below(shown))
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()  # restores showwarning and the filters on exit
        shown = warnings.showwarning

        def showwarning(message: Any, category: Any, filename: str, lineno: int,
                        file: Any = None, line: Any = None) -> None:
            if _from_pipeline(filename):
                self.add(f"{category.__name__}: {message}")
            shown(message, category, filename, lineno, file, line)

        warnings.showwarning = showwarning
        return self

    def __exit__(self, *exc: Any) -> None:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            logger.removeHandler(self._handler)
            if name in self._levels:
                level, shown = self._levels.pop(name)
                logger.setLevel(level)
                for handler in logger.handlers:
                    for kept in [f for f in handler.filters if isinstance(f, _below)]:
                        handler.removeFilter(kept)
        if self._catch is not None:
            self._catch.__exit__(*exc)
            self._catch = None


class _below(logging.Filter):
    """Drops records under ``level``: a library handler prints what it printed before."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


def _from_pipeline(filename: str) -> bool:
    """True for a warning raised in diffusers or transformers code (custom pipelines load as
    ``diffusers_modules``)."""
    parts = set(os.path.normpath(str(filename)).split(os.sep))
    return bool(parts & {"diffusers", "transformers", "diffusers_modules"})
