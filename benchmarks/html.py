"""The leaderboards as one static HTML file: every page, sortable tables, the plots.

It renders the markdown that ``leaderboard`` generates (a known subset:
headings, paragraphs, bullet lists, code fences, pipe tables, images, links,
bold and code spans), so the HTML can never say something the pages do not.
No server and no network: the plots are the PNGs beside it, and a few lines of
inline JavaScript sort a table by the clicked column (numbers as numbers).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

_SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
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


def _inline(text: str, link: Callable[[str], str]) -> str:
    """Escape, then render `code`, **bold** and [text](target) (targets rewritten by ``link``)."""
    out, pos = [], 0
    for m in re.finditer(r"`([^`]*)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)]+)\)", text):
        out.append(html.escape(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append(f"<code>{html.escape(m.group(1))}</code>")
        elif m.group(2) is not None:
            out.append(f"<b>{html.escape(m.group(2))}</b>")
        else:
            out.append(f'<a href="{html.escape(link(m.group(4)))}">{_inline(m.group(3), link)}</a>')
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_html(text: str, link: Callable[[str], str] = lambda t: t, image: Callable[[str], str] = lambda s: s,
                     heading_offset: int = 0) -> str:
    """Our generated markdown subset -> HTML."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(block))}</code></pre>")
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + heading_offset, 6)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip(), link)}</h{level}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            i -= 1
            head = "".join(f"<th>{_inline(c, link)}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{_inline(c, link)}</td>" for c in r) + "</tr>" for r in rows[2:])
            out.append(f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
        elif m := re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line.strip()):
            out.append(f'<p><img src="{html.escape(image(m.group(2)))}" alt="{html.escape(m.group(1))}"></p>')
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:], link)}</li>")
                i += 1
            i -= 1
            out.append(f"<ul>{''.join(items)}</ul>")
        elif line.strip():
            para = [line]
            while i + 1 < len(lines) and lines[i + 1].strip() and not re.match(r"[#|`!]|- ", lines[i + 1]):
                i += 1
                para.append(lines[i])
            out.append(f"<p>{_inline(' '.join(para), link)}</p>")
        i += 1
    return "\n".join(out)


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
