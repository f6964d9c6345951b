"""`tokens.html`: the scored text coloured by the per-token gap between two models.

One self-contained page (inline CSS, no script, nothing fetched): each document is shown with its
original whitespace; every token is a `<span class="tok">` whose background is blue when the second
model's loss is lower (gap = loss_a - loss_b > 0) and red when it is higher, saturating at the
95th percentile of |gap|. Hovering shows the token, its categories and both losses (the `title`).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from eval.compare import loss_column

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; }
.doc { font-family: monospace; white-space: pre-wrap; word-break: break-word; border: 1px solid #ccc;
       padding: 0.8em; margin-bottom: 1.5em; line-height: 1.5; }
.tok { border-radius: 2px; }
.legend span { padding: 0.1em 0.6em; margin-right: 0.5em; }
"""


def _colour(gap: float, scale: float) -> str:
    strength = min(abs(gap) / scale, 1.0) * 0.75 if scale > 0 and np.isfinite(gap) else 0.0
    rgb = "40,110,230" if gap > 0 else "220,50,40"
    return f"rgba({rgb},{strength:.2f})"


def tokens_html(table: pd.DataFrame, texts: list[str], a: str, b: str, max_tokens: int) -> str:
    """The page for models `a` and `b` over the first `max_tokens` rows of `table` (whole text around them)."""
    shown = table.iloc[:max_tokens]
    gap = (shown[loss_column(a)] - shown[loss_column(b)]).to_numpy(np.float64)
    finite = np.abs(gap[np.isfinite(gap)])
    scale = float(np.quantile(finite, 0.95)) if len(finite) else 1.0
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>tokens: "
        f"{html.escape(a)} vs {html.escape(b)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Per-token gap: loss({html.escape(a)}) − loss({html.escape(b)})</h1>",
        "<p class='legend'><span style='background:rgba(40,110,230,0.75)'>"
        f"{html.escape(b)} better</span><span style='background:rgba(220,50,40,0.75)'>{html.escape(a)} better"
        f"</span> full colour at |gap| ≥ {scale:.3f} nats; hover a token for details. Showing "
        f"{len(shown)} of {len(table)} tokens.</p>",
    ]
    columns = {c: shown[c].to_numpy() for c in ("doc_id", "char_start", "char_end", "token_id", "upos", "tag",
               "word_class", "repeat_n", "bracket", "domain")}  # fmt: skip
    loss_a, loss_b = shown[loss_column(a)].to_numpy(), shown[loss_column(b)].to_numpy()
    current, cursor = None, 0
    for i in range(len(shown)):
        doc = int(columns["doc_id"][i])
        if doc != current:
            if current is not None:
                parts.append(html.escape(texts[current][cursor:]) + "</div>")
            current, cursor = doc, 0
            parts.append(
                f"<h3>document {doc} ({html.escape(str(columns['domain'][i]))})</h3><div class='doc'>"
            )
        start, end = int(columns["char_start"][i]), int(columns["char_end"][i])
        start = max(start, cursor)
        parts.append(html.escape(texts[doc][cursor:start]))
        title = (
            f"token {texts[doc][int(columns['char_start'][i]) : end]!r} (id {columns['token_id'][i]})\n"
            f"{columns['upos'][i]} / {columns['tag'][i]} / {columns['word_class'][i]}; "
            f"repeat_n {columns['repeat_n'][i]}; bracket {columns['bracket'][i]}\n"
            f"loss {a}: {loss_a[i]:.3f}  loss {b}: {loss_b[i]:.3f}  gap: {gap[i]:+.3f}"
        )
        parts.append(
            f"<span class='tok' style='background:{_colour(gap[i], scale)}' title='{html.escape(title)}'>"
            f"{html.escape(texts[doc][start : max(end, start)])}</span>"
        )
        cursor = max(end, start)
    if current is not None:
        end_of_doc = len(texts[current]) if len(shown) == len(table) else cursor
        parts.append(html.escape(texts[current][cursor:end_of_doc]) + "</div>")
    parts.append("</body></html>")
    return "".join(parts)
