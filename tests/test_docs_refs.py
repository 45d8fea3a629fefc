"""Docs hygiene. No reference to a file that does not exist: paths such as ``docs/x.md``,
``benchmarks/x.py``, ``src/diffbench/...py`` or ``engine/...py`` written in the source's
docstrings and comments, the docs and the README must name files that exist, relative to the
repository root or to src/diffbench (where engine/, tui/, cli/ and profiles/ live). No
docstring or comment quoting a measured timing: those live in benchmarks/RESULTS.md."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from repo_paths import ROOT
PACKAGE = ROOT / "src" / "diffbench"

#: A path of ours: starts at one of our top-level folders (not inside another project's path,
#: e.g. onediff/benchmarks/...), ends with a file extension.
PATH = re.compile(r"(?<![\w./~$<-])((?:docs|benchmarks|src|engine|tui|cli|profiles|tests)/"
                  r"[\w./-]*\.(?:md|py|toml|tcss|json|txt|svg))\b")
#: Placeholders stand for any file: profiles/NAME.toml.
PLACEHOLDER = re.compile(r"(^|/)(NAME|PATH|FILE)\.\w+$")


def _texts() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "docs").rglob("*.md")) + \
        [ROOT / "README.md"]


def references() -> list[tuple[str, str]]:
    """(where, path) of every file path written in the scanned texts."""
    found = []
    for text in _texts():
        for number, line in enumerate(text.read_text().splitlines(), 1):
            for match in PATH.finditer(line):
                path = match.group(1).rstrip(".")
                if not PLACEHOLDER.search(path):
                    found.append((f"{text.relative_to(ROOT)}:{number}", path))
    return found


def test_every_file_path_in_the_docs_and_docstrings_exists():
    refs = references()
    assert len(refs) >= 10  # the scan sees the references (README, docs, docstrings)
    dead = [f"{where}: {path}" for where, path in refs
            if not ((ROOT / path).exists() or (PACKAGE / path).exists())]
    assert not dead, "\n".join(dead)


def test_the_scan_catches_a_dead_reference(tmp_path):
    line = "see docs/metrics.md and engine/result.py, not onediff/benchmarks/x.py"
    assert [m.group(1) for m in PATH.finditer(line)] == ["docs/metrics.md", "engine/result.py"]
    assert not (ROOT / "docs/metrics.md").exists()
    assert PLACEHOLDER.search("profiles/NAME.toml")
    assert not PLACEHOLDER.search("benchmarks/RESULTS.md")


# ------------------------------------------------------------------ measured timings
#: A duration: "0.35 s", "50-140 ms", "31 it/s", "8 minutes".
DURATION = re.compile(r"(?<![\w.])~?\d+(?:\.\d+)?(?:\s*[-\u2013]\s*\d+(?:\.\d+)?)?\s*"
                      r"(?:s|ms|\u00b5s|it/s|seconds?|minutes?)(?![\w/])")
#: Words that make a duration a measurement rather than a setting or a format example.
MEASURED = re.compile(r"H100|H200|A100|\d-core|core box|CPU machine|GPU time|\btook\b|"
                      r"\bmeasured\b|fell from|\bcaps?\b|\bstall", re.I)


def _doc_blocks(text: str) -> list[tuple[int, str]]:
    """(line, text) of each comment block (consecutive # lines) and string statement
    (docstrings, attribute docs) of a module's source."""
    blocks: list[tuple[int, str]] = []
    run: list[tuple[int, str]] = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type != tokenize.COMMENT:
            continue
        if run and token.start[0] != run[-1][0] + 1:
            blocks.append((run[0][0], " ".join(t for _, t in run)))
            run = []
        run.append((token.start[0], token.string))
    if run:
        blocks.append((run[0][0], " ".join(t for _, t in run)))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and \
                isinstance(node.value.value, str):
            blocks.append((node.lineno, node.value.value))
    return blocks


def measured_timings(text: str) -> list[tuple[int, str]]:
    """Sentences of docstrings/comments that pair a duration with a machine or a measuring
    word ("0.07 s of CPU on a 2-core box", "on the H200 ... fell from 37.6 to 33.3 ms")."""
    found = []
    for line, block in _doc_blocks(text):
        flat = " ".join(block.split())
        for sentence in re.split(r"(?<=[.;:])\s+(?=[A-Z(])", flat):
            if DURATION.search(sentence) and MEASURED.search(sentence):
                found.append((line, sentence))
    return found


def test_no_docstring_or_comment_quotes_a_measured_timing():
    quoted = [f"{path.relative_to(ROOT)}:{line}: {sentence[:120]}"
              for path in sorted(PACKAGE.rglob("*.py"))
              for line, sentence in measured_timings(path.read_text())]
    assert not quoted, "move these figures to benchmarks/RESULTS.md:\n" + "\n".join(quoted)


def test_the_timing_scan_tells_a_measurement_from_a_format_example():
    source = ('"""Drawing it costs about 0.07 s of CPU on a 2-core box."""\n'
              "# a step fell from 37.6 to 33.3 ms of GPU time\n"
              'def f():\n    """Format: ``format_metric("inference_s", 0.4) == "0.400 s"``."""\n')
    assert sorted(line for line, _ in measured_timings(source)) == [1, 2]
