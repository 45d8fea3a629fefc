"""Warnings the pipeline itself emits, kept with the run: diffusers / transformers logging
(e.g. "The following part of your input was truncated because CLIP can only handle sequences
up to 77 tokens") and Python warnings raised from their code.

:class:`PipelineWarnings` is used around loading and around the timed calls in
diffbench.engine.runner, so it works the same in a child process and in this one: each
distinct message becomes one notice ("pipeline warning: ...") and one LogMessage warning.
The libraries' own output is left as it was (their stderr lines still print), and their
verbosity still applies (DIFFUSERS_VERBOSITY / TRANSFORMERS_VERBOSITY=error keeps them out).
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
        self._show: Any = None

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
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self._handler)
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
            logging.getLogger(name).removeHandler(self._handler)
        if self._catch is not None:
            self._catch.__exit__(*exc)
            self._catch = None


def _from_pipeline(filename: str) -> bool:
    """True for a warning raised in diffusers or transformers code (custom pipelines load as
    ``diffusers_modules``)."""
    parts = set(os.path.normpath(str(filename)).split(os.sep))
    return bool(parts & {"diffusers", "transformers", "diffusers_modules"})
