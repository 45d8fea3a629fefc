"""PipelineWarnings: diffusers / transformers log warnings and Python warnings raised from
their code become the run's notices once each, under diffbench's quiet default verbosity,
without the library printing them too; everything is put back after."""

from __future__ import annotations

import io
import logging
import warnings

from diffbench.engine import events as ev
from diffbench.engine.pipeline_warnings import PipelineWarnings


def test_library_warnings_become_notices_once_and_print_only_as_diffbench_warnings():
    library = logging.getLogger("diffusers")
    stream = io.StringIO()
    printed = logging.StreamHandler(stream)
    library.addHandler(printed)
    before = library.level
    library.setLevel(logging.ERROR)  # diffbench's default verbosity
    sent: list = []
    try:
        with PipelineWarnings(sent.append) as caught:
            for _ in range(3):  # once per call: kept once
                logging.getLogger("diffusers.pipelines.x").warning("prompt  was\ntruncated")
            logging.getLogger("transformers.tokenization").info("chatter")  # below warning
            logging.getLogger("diffusers").error("a real error")
            warnings.warn_explicit("old argument", FutureWarning, "site-packages/diffusers/"
                                   "pipelines/p.py", 10)
            warnings.warn_explicit("elsewhere", UserWarning, "site-packages/other/m.py", 5)
        assert caught.notices == ["pipeline warning: prompt was truncated",
                                  "pipeline warning: a real error",
                                  "pipeline warning: FutureWarning: old argument"]
        assert [e.text for e in sent if isinstance(e, ev.LogMessage)] == caught.notices
        assert stream.getvalue() == "a real error\n"  # the library printed only what it would
        assert library.level == logging.ERROR and not printed.filters
        assert all(not isinstance(h, type(caught._handler)) for h in library.handlers)
    finally:
        library.removeHandler(printed)
        library.setLevel(before)
