"""A self-contained ``report.html`` beside ``report.md``, and the report's ranking and series items.

:func:`write_html` turns the Markdown report (the subset xasmpi writes: headings, paragraphs,
lists, tables, block quotes, images, links, bold, inline code) into one HTML file with every
PNG figure embedded as a ``data:`` URI, so it can be opened in a browser or mailed as it is.
:func:`ranking_items` draws the ranking figure and table (``/ranking``) and, for the sample pairs
of the job's ``[rank] compare``, the two-sample comparison (:mod:`xasmpi.analysis.series`).
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_IMG = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#eee}img{max-width:100%;border:1px solid #ddd}blockquote{border-left:4px solid #c00;
margin:1em 0;padding:.2em 1em;background:#fee}code{background:#f4f4f4;padding:0 3px}"""


def _inline(text: str, base: Path) -> str:
    out, pos = [], 0
    for m in _IMG.finditer(text):
        out.append(_inline_text(text[pos:m.start()], base))
        out.append(_image(m.group(1), m.group(2), base))
        pos = m.end()
    out.append(_inline_text(text[pos:], base))
    return "".join(out)


def _inline_text(text: str, base: Path) -> str:
    parts, pos = [], 0
    for m in _LINK.finditer(text):
        parts.append(_fmt(text[pos:m.start()]))
        parts.append(f'<a href="{html.escape(m.group(2))}">{_fmt(m.group(1))}</a>')
        pos = m.end()
    parts.append(_fmt(text[pos:]))
    return "".join(parts)


def _fmt(text: str) -> str:
    t = html.escape(text)
    t = _BOLD.sub(r"<b>\1</b>", t)
    return _CODE.sub(r"<code>\1</code>", t)


def _image(alt: str, src: str, base: Path) -> str:
    p = (base / src) if not Path(src).is_absolute() else Path(src)
    if p.suffix.lower() == ".png" and p.is_file():
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
    return f'<span class="missing">[figure {html.escape(alt)}: {html.escape(src)} not found]</span>'


def markdown_to_html(md: str, *, base: Path, title: str = "xasmpi report") -> str:
    """HTML document of a Markdown text; PNG images (relative to ``base``) embedded."""
    lines = md.splitlines()
    body: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if not s:
            i += 1
            continue
        if s.startswith("#"):
            level = min(6, len(s) - len(s.lstrip("#")))
            body.append(f"<h{level}>{_inline(s[level:].strip(), base)}</h{level}>")
            i += 1
        elif s.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            head, rest = rows[0], [r for r in rows[1:] if not all(set(c) <= set("-: ") for c in r)]
            body.append("<table><tr>" + "".join(f"<th>{_inline(c, base)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{_inline(c, base)}</td>" for c in r) + "</tr>" for r in rest)
                        + "</table>")
        elif s.startswith(">"):
            quote = []
            while i < len(lines) and lines[i].strip().startswith(">"):
                quote.append(lines[i].strip()[1:].strip())
                i += 1
            body.append(f"<blockquote>{_inline(' '.join(quote), base)}</blockquote>")
        elif re.match(r"[-*] ", s):
            items = []
            while i < len(lines) and (re.match(r"\s*[-*] ", lines[i]) or
                                      (lines[i].startswith("  ") and lines[i].strip() and items)):
                t = lines[i].strip()
                if re.match(r"[-*] ", t):
                    items.append(t[2:])
                else:
                    items[-1] += " " + t
                i += 1
            body.append("<ul>" + "".join(f"<li>{_inline(t, base)}</li>" for t in items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"\s*([#|>]|[-*] )", lines[i]):
                para.append(lines[i].strip())
                i += 1
            body.append(f"<p>{_inline(' '.join(para), base)}</p>")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_html(md: str, out_dir: Path, *, title: str = "xasmpi report") -> Path:
    """Write ``out_dir/report.html`` from the report's Markdown (figures embedded)."""
    p = Path(out_dir) / "report.html"
    p.write_text(markdown_to_html(md, base=Path(out_dir), title=title), encoding="utf-8")
    return p


def ranking_items(f, ctx, *, recoverable=(Exception,)) -> dict:
    """Ranking figure + table (``/ranking``) and the two-sample comparisons of ``[rank] compare``.

    Returns ``{"written": [...], "figures": [(id, files)], "skipped": [(id, reason)], "markdown": str}``.
    """
    from xasmpi.commands import compare as C
    from xasmpi.commands import rank as R
    from xasmpi.store.layout import read_ranking

    out = {"written": [], "figures": [], "skipped": [], "markdown": ""}
    md = []
    try:
        ranking = read_ranking(f)
    except recoverable as exc:
        ranking = {}
        out["skipped"].append(("ranking", f"unreadable data ({type(exc).__name__}: {exc})"))
    if ranking:
        files = R.figure(ranking, ctx.out_dir, formats=ctx.formats, simulated=ctx.simulated)
        csvp = ctx.out_dir / "ranking.csv"
        csvp.write_text(R.csv_text(ranking))
        out["figures"].append(("ranking", tuple(files)))
        out["written"] += [*files, csvp]
        md += ["## Which structure is it? Candidate ranking", "",
               "Posterior probabilities from the Laplace evidence of each candidate's EXAFS fit (S0², σ² per "
               "shell group, ΔE0 free; FEFF paths per unique absorber) and its XANES comparison "
               "(docs/ranking.md). [ranking.csv](ranking.csv)", "", R.markdown(ranking)]
        png = [p for p in files if p.suffix == ".png"]
        if png:
            md += [f"![ranking]({png[0].name})", ""]
    else:
        out["skipped"].append(("ranking", "no /ranking group (stage rank not run)"))
    import json

    try:
        pairs = [tuple(p) for p in (json.loads(f.attrs.get("job_resolved", "{}")).get("rank") or {}).get("compare", [])]
    except (ValueError, AttributeError):
        pairs = []
    if not pairs:
        out["skipped"].append(("comparison", "no [rank] compare pairs in the job"))
    for a, b in pairs:
        try:
            md += _comparison(f.filename, a, b, ctx, out, C)
        except recoverable as exc:
            out["skipped"].append((f"compare {a} {b}", f"{type(exc).__name__}: {exc}"))
    try:  # [rank] joint: the samples fitted together (xasmpi.commands.compare.report_joint)
        jmd, jfiles = C.report_joint(f.filename, json.loads(f.attrs.get("job_resolved", "{}")), ctx.out_dir)
        md += jmd
        out["written"] += jfiles
    except recoverable as exc:
        out["skipped"].append(("joint fit", f"{type(exc).__name__}: {exc}"))
    out["markdown"] = "\n".join(md)
    return out


def _comparison(path, a: str, b: str, ctx, out: dict, C) -> list[str]:
    from xasmpi.analysis.series import compare_samples, wavelet_difference
    from xasmpi.errors import InputError

    data = C.read_pair(path, a, b)
    shifts = compare_samples(data[a]["reps"], data[b]["reps"], sys_a=data[a]["sys"], sys_b=data[b]["sys"],
                             sys_shift=data.get("sys_shift"))  # paired: the same variations of both samples
    wa, wb = data[a]["wavelet"], data[b]["wavelet"]
    wdiff = None
    if wa is not None and wb is not None:
        try:
            wdiff = wavelet_difference(wa[0], wa[1], wa[2], wb[2])
        except InputError:
            wdiff = None
    files = C.figure(data, a, b, shifts, wdiff, ctx.out_dir, ctx.formats)
    out["figures"].append((f"compare_{a}_{b}", tuple(files)))
    out["written"] += files
    md = [f"## Two samples compared: {a} vs {b}", "",
          "σ of each shift: replicate sds ⊕ " + ("the systematic term of the shift itself (both samples refitted "
                                                 "under the same variations; docs/ranking.md §7)"
                                                 if data.get("sys_shift") else "both samples' systematic terms"), "",
          "| parameter | shift (B − A) | σ | z | p | significant | OVL |", "|---|---|---|---|---|---|---|"]
    md += [f"| {s.name} | {s.shift:.4g} | {s.sigma:.3g} | {s.z:.2f} | {s.p:.2g} | {'yes' if s.significant else 'no'} "
           f"| {s.ovl:.3f} |" for s in shifts]
    png = [p for p in files if p.suffix == ".png"]
    if png:
        md += ["", f"![compare {a} {b}]({png[0].name})", ""]
    return md
