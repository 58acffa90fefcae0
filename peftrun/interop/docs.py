"""The key-map section of docs/import-<tool>.md, generated from each tool's table (the code is the source):
`python -m peftrun.interop.docs` rewrites the sections; tests/interop/test_docs.py checks they are current."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from peftrun.interop.keymap import UNSET, Table

TOOLS = ("axolotl", "llamafactory", "trl", "torchtune")
BEGIN = "<!-- key map: generated from peftrun/interop/{tool}.py by `python -m peftrun.interop.docs` -->"
END = "<!-- end of the generated key map -->"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def table_of(tool: str) -> Table:
    return import_module(f"peftrun.interop.{tool}").TABLE


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def key_map(table: Table) -> str:
    """The markdown of a tool's key map: every row, the keys dropped as no-ops, the open-ended rule, the sources."""
    lines = [f"| {table.title} key | {table.title} default | peftrun key | conversion |", "|---|---|---|---|"]
    for key in table.keys:
        default = "" if key.default is UNSET else f"`{key.default!r}`"
        target = f"`{key.target}`" if key.target and key.target != "-" else "not carried" if not key.target else "-"
        how = key.reason if not key.target else key.how
        lines.append(f"| `{_cell(key.source)}` | {_cell(default)} | {_cell(target)} | {_cell(how)} |")
    if table.ignored:
        lines += ["", "Dropped as no-ops (no effect on what trains):", ""]
        lines += [f"- `{key}`: {why}" for key, why in table.ignored.items()]
    if table.fallback_doc:
        lines += ["", f"Any other key: {table.fallback_doc}; anything else is listed as not carried."]
    else:
        lines += ["", "Any other key is listed as not carried."]
    lines += ["", "Read from:", ""] + [f"- {source}" for source in table.cited]
    return "\n".join(lines)


def page_section(text: str, tool: str) -> str:
    """The generated section of a page (between the markers)."""
    begin = BEGIN.format(tool=tool)
    start, end = text.index(begin) + len(begin), text.index(END)
    return text[start:end].strip("\n")


def regenerate(tool: str, docs: Path = DOCS) -> None:
    path = docs / f"import-{tool}.md"
    text = path.read_text()
    begin = BEGIN.format(tool=tool)
    start, end = text.index(begin) + len(begin), text.index(END)
    path.write_text(f"{text[:start]}\n{key_map(table_of(tool))}\n{text[end:]}")


if __name__ == "__main__":
    for name in TOOLS:
        regenerate(name)
