"""The leaderboards as one static HTML file: every page, sortable tables, the plots.

It renders the markdown that ``leaderboard`` generates with markdown-it-py
(CommonMark and GitHub's pipe tables), so the HTML can never say something the
pages do not.
No server and no network: the plots are the PNGs beside it, and a few lines of
inline JavaScript sort a table by the clicked column (numbers as numbers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from markdown_it import MarkdownIt

_SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(th => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], col = th.cellIndex;  // the column within its own table
  const key = r => { const t = r.cells[col].innerText.trim(); const n = parseFloat(t);
                     return isNaN(n) ? t : n; };
  const up = th.dataset.order !== "asc"; th.dataset.order = up ? "asc" : "desc";
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    const c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
    return up ? c : -c; }).forEach(r => body.appendChild(r));
}));
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 110em; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; cursor: pointer; } th:hover { background: #e0e0e0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; }
section { border-top: 2px solid #888; margin-top: 2em; }
"""


def anchor(dataset: str, protocol: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{dataset}-{protocol}").strip("-")


def _parser() -> MarkdownIt:
    # CommonMark plus GitHub's pipe tables: what the generated pages use, rendered as GitHub shows them.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_to_html(text: str, link: Callable[[str], str] = lambda t: t, image: Callable[[str], str] = lambda s: s,
                     heading_offset: int = 0) -> str:
    """A generated page's markdown -> HTML (markdown-it-py): links and image sources rewritten by
    ``link`` and ``image`` (a page's relative targets, seen from the single file), headings moved down
    by ``heading_offset`` levels, every table sortable."""
    md = _parser()
    tokens = md.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + heading_offset, 6)}"
        elif token.type == "table_open":
            token.attrSet("class", "sortable")
        for child in token.children or ():
            if child.type == "link_open":
                child.attrSet("href", link(str(child.attrGet("href"))))
            elif child.type == "image":
                child.attrSet("src", image(str(child.attrGet("src"))))
    return md.renderer.render(tokens, md.options, {})


CLAIMS_ANCHOR = "claims"


def leaderboard_html(index_md: str, pages: Sequence[tuple[str, str, str, str]], claims_md: str = "") -> str:
    """One document: the index, the claims page, then every page as a section.

    ``pages`` holds (dataset, protocol, path of the page without '.md' relative to the
    leaderboards folder, the page's markdown).
    """
    anchors = {f"{rel}.md": anchor(d, p) for d, p, rel, _ in pages}
    if claims_md:
        anchors["claims.md"] = CLAIMS_ANCHOR

    def index_link(target: str) -> str:  # 'digits/probe.md' -> '#digits-probe'; CSVs stay files
        return f"#{anchors[target]}" if target in anchors else target

    parts = [markdown_to_html(index_md, index_link)]
    if claims_md:
        parts.append(f'<section id="{CLAIMS_ANCHOR}">{markdown_to_html(claims_md, index_link, heading_offset=1)}</section>')
    for dataset, protocol, rel, md in pages:
        folder = rel.rsplit("/", 1)[0]

        def page_link(target: str, folder: str = folder) -> str:
            if target.startswith("../"):
                return target[3:]
            return target if "://" in target or target.startswith("#") else f"{folder}/{target}"

        body = markdown_to_html(md, page_link, lambda src, folder=folder: f"{folder}/{src}", heading_offset=1)
        parts.append(f'<section id="{anchor(dataset, protocol)}">{body}</section>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>DRL benchmark leaderboards</title>"
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(parts)
            + f"\n<script>{_SORT_SCRIPT}</script>\n</body></html>\n")
