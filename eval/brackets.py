"""Opening and closing delimiters per token: brackets, HTML/XML tags and LaTeX environments.

Every character of a text gets a delimiter event (open/close) and a type; a token's `bracket` is
"open" when its characters hold more opening than closing events, "close" for the reverse, else
"none" (a token such as `()` that opens and closes is balanced, so "none").

- `round` `()`, `square` `[]`, `curly` `{}`: the character itself.
- `html`: the head of a tag, `<name` (open) or `</name` (close), so the tag name's tokens carry the
  event too: predicting `div` after `</` is the closing-memory test. Tags follow the markup grammar:
  `<`, a name right after it, attributes (`name`, `name=value`, `name="..."`, `name='...'`),
  optional `/`, `>`; a closing tag is `</name>`. Self-closing tags (`<br/>`), void elements
  (`<br>`, `<img ...>`), comments `<!-- -->`, `<!DOCTYPE>`, `<?...?>` and `<![CDATA[...]]>` open
  nothing, and nothing inside a comment, CDATA section or `<script>`/`<style>` body is a tag.
  Because code has `<` too, an opening tag also needs a markup name: an HTML element written in one
  case (`div`, `DIV`, not `Object`) or a name closed somewhere in the text (`</book>`, XML and
  custom elements); an attribute without a value must be an HTML boolean attribute (`disabled`)
  or framework syntax with a non-letter in it (`v-else`, `@click`); and `#include <...>` /
  `import <...>` are header names. So `template <typename T>`, `std::vector<int>`, `List<String>`,
  `if (a<b && c>d)`, `a<b and c>d`, `a < b > c`, `x<y`, `<<`, `<=`, `->` give no tag events.
- `latex`: `\\begin{name}` (open) and `\\end{name}` (close), the whole command; its braces count
  once, as the environment.

The rules are the same in every domain: `(` opens in prose, Python and LaTeX alike.
"""

from __future__ import annotations

import re

import numpy as np

BRACKET_TYPES = ("none", "round", "square", "curly", "html", "latex")
_CHAR_EVENTS = {"(": (1, 1), ")": (-1, 1), "[": (1, 2), "]": (-1, 2), "{": (1, 3), "}": (-1, 3)}
# fmt: off
# HTML elements (the living standard and obsolete ones old pages still use), void elements and the
# boolean attributes an HTML tag may carry without a value
_HTML_ELEMENTS = frozenset((
    "a", "abbr", "acronym", "address", "area", "article", "aside", "audio", "b", "base", "basefont",
    "bdi", "bdo", "big", "blockquote", "body", "br", "button", "canvas", "caption", "center",
    "cite", "code", "col", "colgroup", "data", "datalist", "dd", "del", "details", "dfn", "dialog",
    "dir", "div", "dl", "dt", "em", "embed", "fieldset", "figcaption", "figure", "font", "footer",
    "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup",
    "hr", "html", "i", "iframe", "img", "input", "ins", "kbd", "label", "legend", "li", "link",
    "main", "map", "mark", "marquee", "math", "menu", "meta", "meter", "nav", "nobr", "noframes",
    "noscript", "object", "ol", "optgroup", "option", "output", "p", "param", "picture", "pre",
    "progress", "q", "rp", "rt", "ruby", "s", "samp", "script", "search", "section", "select",
    "slot", "small", "source", "span", "strike", "strong", "style", "sub", "summary", "sup", "svg",
    "table", "tbody", "td", "template", "textarea", "tfoot", "th", "thead", "time", "title", "tr",
    "track", "tt", "u", "ul", "var", "video", "wbr",
))
_VOID = frozenset((
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
))
_BOOLEAN_ATTRIBUTES = frozenset((
    "allowfullscreen", "async", "autofocus", "autoplay", "checked", "compact", "controls",
    "declare", "default", "defer", "disabled", "formnovalidate", "hidden", "inert", "ismap",
    "itemscope", "loop", "multiple", "muted", "nohref", "noresize", "noshade", "novalidate",
    "nowrap", "open", "playsinline", "readonly", "required", "reversed", "selected", "truespeed",
))
# fmt: on
_NAME = r"[A-Za-z][\w:.-]*"
_ATTRIBUTE = (
    r"""(?P<attr>[A-Za-z_:@#*\[(][\w:.@#*\[\]()-]*)(?P<value>\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
)
_ATTRIBUTES = re.compile(r"\s+" + _ATTRIBUTE)
_OPEN = re.compile(rf"<(?P<name>{_NAME})(?P<attrs>(?:\s+{_ATTRIBUTE})*)\s*(?P<slash>/?)>")
_CLOSE = re.compile(rf"</(?P<name>{_NAME})\s*>")
# bodies that hold no tags: comments, CDATA, and the raw text of script and style elements
_OPAQUE = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<(?P<raw>script|style)\b[^>]*>(?P<body>.*?)</(?P=raw)\s*>",
    re.DOTALL | re.IGNORECASE,
)
_HEADER = re.compile(r"(?:#\s*include|#\s*import|\bimport)\s*$")  # before `<`: a header name
_LATEX = re.compile(r"\\(begin|end)\s*\{[^{}\n]*\}")


def char_events(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Per character of `text`: event (+1 open, -1 close, 0) [C] int8 and type index [C] int8."""
    codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    event = np.zeros(len(codes), dtype=np.int8)
    kind = np.zeros(len(codes), dtype=np.int8)
    for char, (ev, ty) in _CHAR_EVENTS.items():
        hit = codes == ord(char)
        event[hit], kind[hit] = ev, ty
    html = BRACKET_TYPES.index("html")
    for start, end, ev in _tag_heads(text):
        event[start:end], kind[start:end] = ev, html
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


def _tag_heads(text: str) -> list[tuple[int, int, int]]:
    """(start, end, event) of every tag head `<name` (+1) / `</name` (-1) in `text`, in order."""
    if "<" not in text:
        return []
    opaque = [m.span("body") if m.group("raw") else m.span() for m in _OPAQUE.finditer(text)]
    starts = np.array([a for a, _ in opaque], dtype=np.int64)
    ends = np.array([b for _, b in opaque], dtype=np.int64)

    def visible(pos: int) -> bool:
        i = np.searchsorted(starts, pos, side="right") - 1
        return i < 0 or pos >= ends[i]

    closes = [m for m in _CLOSE.finditer(text) if visible(m.start())]
    closed_names = {m.group("name") for m in closes}
    heads = [(m.start(), m.end("name"), -1) for m in closes if m.group("name").lower() not in _VOID]
    for m in _OPEN.finditer(text):
        name = m.group("name")
        if m.group("slash") or name.lower() in _VOID or not visible(m.start()):
            continue
        header = _HEADER.search(text[max(0, m.start() - 16) : m.start()])
        if _is_markup_name(name, closed_names) and _attributes_ok(m.group("attrs")) and not header:
            heads.append((m.start(), m.end("name"), 1))
    return sorted(heads)


def _is_markup_name(name: str, closed_names: set[str]) -> bool:
    """An HTML element in one case (`div`, `DIV`) or a name some closing tag of the text uses."""
    return name in closed_names or (name.lower() in _HTML_ELEMENTS and (name.islower() or name.isupper()))


def _attributes_ok(attrs: str) -> bool:
    """Whether every attribute without a value is an HTML boolean one or framework syntax (`v-if`)."""
    for m in _ATTRIBUTES.finditer(attrs):
        attr = m.group("attr")
        if not m.group("value") and attr.isalpha() and attr.lower() not in _BOOLEAN_ATTRIBUTES:
            return False
    return True
