"""A strict little reader of the Prometheus text format, for asserting on exposition."""

from __future__ import annotations

import re

_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')

Key = tuple[str, tuple[tuple[str, str], ...]]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse(text: str) -> dict[Key, float]:
    """``{(name, sorted label pairs): value}``; fails on any line that is not valid."""
    assert text.endswith("\n"), "exposition must end with a newline"
    samples: dict[Key, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = _LINE.match(line)
        assert m is not None, f"not a sample line: {line!r}"
        labels: list[tuple[str, str]] = []
        raw = m.group("labels") or ""
        pos = 0
        while pos < len(raw):
            lm = _LABEL.match(raw, pos)
            assert lm is not None, f"bad labels in {line!r}"
            labels.append((lm.group(1), _unescape(lm.group(2))))
            pos = lm.end()
        key = (m.group("name"), tuple(sorted(labels)))
        assert key not in samples, f"duplicate series {key}"
        samples[key] = float(m.group("value"))
    return samples


def value(samples: dict[Key, float], name: str, **labels: str) -> float:
    """The value of one series; KeyError names the series when it is absent."""
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        raise KeyError(f"no series {name}{labels}")
    return samples[key]


def series(samples: dict[Key, float], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every series of one metric name, keyed by its labels."""
    return {labels: v for (n, labels), v in samples.items() if n == name}
