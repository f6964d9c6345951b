"""Opening and closing delimiters per token: brackets, HTML/XML tags and LaTeX environments.

Every character of a text gets a delimiter event (open/close) and a type; a token's `bracket` is
"open" when its characters hold more opening than closing events, "close" for the reverse, else
"none" (a token such as `()` that opens and closes is balanced, so "none").

- `round` `()`, `square` `[]`, `curly` `{}`: the character itself.
- `html`: the head of a tag, `<name` (open) or `</name` (close), so the tag name's tokens carry the
  event too: predicting `div` after `</` is the closing-memory test. Self-closing tags (`<br/>`)
  and HTML void elements (`<br>`, `<img ...>`) open nothing and are skipped; a tag must end with
  `>` (so `a < b` in code is no tag).
- `latex`: `\\begin{name}` (open) and `\\end{name}` (close), the whole command; its braces count
  once, as the environment.

The rules are the same in every domain: `(` opens in prose, Python and LaTeX alike.
"""

from __future__ import annotations

import re

import numpy as np

BRACKET_TYPES = ("none", "round", "square", "curly", "html", "latex")
_CHAR_EVENTS = {"(": (1, 1), ")": (-1, 1), "[": (1, 2), "]": (-1, 2), "{": (1, 3), "}": (-1, 3)}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}  # fmt: skip
_TAG = re.compile(r"<(/?)([A-Za-z][\w:.-]*)(?:\s[^<>]*?)?(/?)>")
_LATEX = re.compile(r"\\(begin|end)\s*\{[^{}\n]*\}")


def char_events(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Per character of `text`: event (+1 open, -1 close, 0) [C] int8 and type index [C] int8."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    event = np.zeros(len(codes), dtype=np.int8)
    kind = np.zeros(len(codes), dtype=np.int8)
    for char, (ev, ty) in _CHAR_EVENTS.items():
        hit = codes == ord(char)
        event[hit], kind[hit] = ev, ty
    for m in _TAG.finditer(text):
        closing, name, self_closing = m.group(1), m.group(2), m.group(3)
        if not closing and (self_closing or name.lower() in _VOID):
            continue
        head = slice(m.start(), m.end(2))
        event[head], kind[head] = (-1 if closing else 1), BRACKET_TYPES.index("html")
    for m in _LATEX.finditer(text):
        span = slice(m.start(), m.end())
        event[span], kind[span] = (1 if m.group(1) == "begin" else -1), BRACKET_TYPES.index("latex")
    return event, kind


def token_brackets(text: str, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per token span [starts, ends) of `text`: bracket direction (+1/-1/0) and type index, int8 [N]."""
    event, kind = char_events(text)
    opens = np.r_[0, np.cumsum(event == 1)]
    closes = np.r_[0, np.cumsum(event == -1)]
    net = (opens[ends] - opens[starts]) - (closes[ends] - closes[starts])
    direction = np.sign(net).astype(np.int8)
    types = np.zeros(len(starts), dtype=np.int8)
    delim_pos = np.flatnonzero(event != 0)
    if len(delim_pos):
        # the type of the first delimiter character inside each span
        first = np.minimum(np.searchsorted(delim_pos, starts), len(delim_pos) - 1)
        inside = (delim_pos[first] >= starts) & (delim_pos[first] < ends) & (direction != 0)
        types[inside] = kind[delim_pos[first[inside]]]
    return direction, types
