"""MkDocs hook (mkdocs.yml ``hooks:``) and griffe extension (mkdocstrings' ``extensions:``) of the documentation site.

- Links from a page to a file of the repository outside docs/ (``../recipes/README.md``, ``../ser_hf/space_app.py``)
  work on GitHub but not in the site, which holds docs/ only. They become links to the file on the repository's web
  page, and ``BENCHMARKS.md`` and ``CHANGELOG.md``, which the site includes, links to their pages.
- The benchmarks page includes BENCHMARKS.md (generated from docs/results/ by docs/results/make_benchmarks.py) with
  its headline sections open and every later ``## `` section's body folded (a pymdownx.details block under its
  heading): the file stays one document on GitHub, the page starts with what a newcomer wants. The headings stay
  outside the folds, so the table of contents and the anchors other pages link to are unchanged; Material opens a
  fold when a link's anchor lies inside it. Its links into docs/ (the research log, the result files) become links
  within the site.
- :class:`TransformersDocstrings` makes the transformers-style docstrings read well in the API reference: types from
  the signature (or the docstring's type, its backticks removed) instead of ``\\`str\\`, *optional*, defaults to ...``
  shown raw, and Sphinx roles (``:func:\\`name\\```) shown as code instead of literally.
"""

from __future__ import annotations

import ast
import posixpath
import re
from pathlib import Path

import griffe

#: ``[text](target)`` and ``![alt](target)``, the target without a scheme.
LINK = re.compile(r"(\]\()(?!https?:|mailto:|#)([^)\s]+)(\))")

#: Files outside docs/ that the site shows as a page of its own.
INCLUDED_PAGES = {"BENCHMARKS.md": "benchmarks.md", "CHANGELOG.md": "changelog.md"}

#: The sections of BENCHMARKS.md shown open (those its first ``## `` headings start with); from the first other
#: ``## `` section on, each section's body is folded.
OPEN_SECTIONS = ("Headline", "Accuracy")


def on_page_markdown(markdown, page, config, files):
    page_folder = posixpath.dirname(page.file.src_uri)
    for source, page_uri in INCLUDED_PAGES.items():
        if page.file.src_uri == page_uri:
            markdown = include(markdown, source, config)
    return rewrite_links(markdown, page_folder, page_folder, config)


#: A table cell, and code in it.
TABLE_CELL = re.compile(r"<t([dh])\b([^>]*)>(.*?)</t\1>", re.S)
CODE = re.compile(r"<code>([^<]+)</code>")


def on_page_content(html, page, config, files):
    """Code in a table cell (a recipe name, a flag, a path) breaks only at a space or after an underscore or a slash:
    each word is cut into pieces after those, each piece kept whole by docs/stylesheets/extra.css, a ``<wbr>`` between
    pieces. A browser would otherwise break ``--test-size`` after a hyphen, or keep
    ``ravdess_whisper_base_fast_corpus`` whole and push the table wider than the page. The text copied or searched is
    unchanged."""

    def word(text: str) -> str:
        pieces = [piece for piece in re.split(r"(?<=[_/])", text) if piece]
        return "<wbr>".join(f"<span>{piece}</span>" for piece in pieces)

    def code(match: re.Match) -> str:
        words = re.split(r"(\s+)", match[1])
        return '<code class="name">' + "".join(part if part.isspace() else word(part) for part in words) + "</code>"

    def cell(match: re.Match) -> str:
        return f"<t{match[1]}{match[2]}>{CODE.sub(code, match[3])}</t{match[1]}>"

    return TABLE_CELL.sub(cell, html)


def rewrite_links(markdown: str, source_folder: str, page_folder: str, config) -> str:
    """Links of text written in ``source_folder`` (relative to docs/) made right for a page in ``page_folder``."""

    def rewrite(match: re.Match) -> str:
        target, _, anchor = match[2].partition("#")
        in_docs = posixpath.normpath(posixpath.join(source_folder, target))
        if in_docs.startswith("../docs/"):  # an included file (at the repository root) naming a file of docs/
            in_docs = in_docs[len("../docs/") :]
        if not in_docs.startswith("../"):
            if source_folder == page_folder:
                return match[0]
            url = posixpath.relpath(in_docs, page_folder or ".")
        elif in_docs[len("../") :] in INCLUDED_PAGES:
            url = posixpath.relpath(INCLUDED_PAGES[in_docs[len("../") :]], page_folder or ".")
        else:
            url = f"{config['repo_url'].rstrip('/')}/blob/main/{in_docs[len('../') :]}"
        return f"{match[1]}{url}{'#' + anchor if anchor else ''}{match[3]}"

    return LINK.sub(rewrite, markdown)


def include(markdown: str, source: str, config) -> str:
    """The page's ``--8<-- "source"`` line replaced by the file, BENCHMARKS.md's later sections folded (done here
    rather than by pymdownx.snippets, which would include it after this hook has run)."""
    text = (Path(config["config_file_path"]).parent / source).read_text(encoding="utf-8")
    text = rewrite_links(text, posixpath.relpath(posixpath.dirname(source) or ".", "docs"), "", config)
    return markdown.replace(
        f'--8<-- "{source}"', fold_sections(text, OPEN_SECTIONS) if source == "BENCHMARKS.md" else text
    )


FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def split_sections(markdown: str) -> list[list[str]]:
    """The lines of ``markdown`` cut before each ``## `` heading outside code blocks (the first part: what precedes
    the first one)."""
    sections: list[list[str]] = [[]]
    fence = None
    for line in markdown.split("\n"):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening[1]
        elif fence is not None and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            fence = None
        elif fence is None and line.startswith("## "):
            sections.append([])
        sections[-1].append(line)
    return sections


def fold_sections(markdown: str, open_titles: tuple[str, ...]) -> str:
    """``markdown`` with the body of each ``## `` section in a closed pymdownx.details block under its heading, except
    the leading sections whose titles start with one of ``open_titles``."""
    intro, *sections = split_sections(markdown)
    parts = ["\n".join(intro)]
    folding = False
    for heading, *body in sections:
        folding = folding or not heading[3:].strip().startswith(open_titles)
        text = "\n".join(body).strip("\n")
        if not folding or not text:
            parts.append("\n".join([heading, *body]))
            continue
        words = len(re.findall(r"[^\W\d_]{2,}", text))
        tables = len(re.findall(r"^\|[ :]*-{3,}", text, flags=re.M))
        summary = f"The section in full: about {round(words, -1):,} words" + (
            f", {tables} table{'s' * (tables > 1)}" if tables else ""
        )
        indented = "\n".join(f"    {line}" if line.strip() else "" for line in text.split("\n"))
        parts.append(f'{heading}\n\n??? abstract "{summary}"\n\n{indented}\n')
    return "\n".join(parts)


# --- The API reference ---------------------------------------------------------------------------------------------

#: A Sphinx cross-reference role: ``:func:`name```, ``:class:`~pkg.Name```, ``:meth:`title <target>```.
SPHINX_ROLE = re.compile(
    r":(?:py:)?(?:data|func|class|meth|attr|mod|obj|exc|const|type):`(?:([^`<]+?)\s*<[^`>]+>|([^`]+))`"
)
#: A docstring section whose items are ``name (type): description`` (or ``type: description``).
SECTION = re.compile(
    r"^(?P<indent> *)(?P<title>Args|Arguments|Parameters|Keyword Args|Keyword Arguments|Other Parameters|Attributes"
    r"|Returns|Yields|Raises):\s*$"
)
#: ``name (`type`, *optional*, defaults to X): description``, transformers' style.
NAMED_ITEM = re.compile(r"^(?P<indent> +)(?P<name>\*{0,2}\w+(?:, \w+)*) \((?P<spec>[^\n]*?)\):(?P<rest>\s.*|)$")
#: ``type: description`` (a Returns or Raises item): the type in backticks.
TYPE_ITEM = re.compile(r"^(?P<indent> +)`(?P<type>[^`]+)`:(?P<rest>\s.*|)$")
SPEC = re.compile(r"^(?P<type>.*?)(?:,?\s*\*optional\*)?(?:,?\s*defaults to (?P<default>.*))?$")


def role_as_code(match: re.Match) -> str:
    name = match[1] or match[2]
    return f"`{name.rsplit('.', 1)[-1] if name.startswith('~') else name}`"


def annotation_of(obj, section: str, name: str):
    """The annotation the code gives ``name`` (a parameter, an attribute, the returned value), else None."""
    try:
        if section in ("Returns", "Yields"):
            return obj.returns if obj.is_function else None
        if section == "Attributes":
            return obj.members[name].annotation
        return obj.parameters[name.lstrip("*")].annotation
    except (AttributeError, KeyError):
        return None


def default_of(obj, name: str):
    try:
        return obj.parameters[name.lstrip("*")].default
    except (AttributeError, KeyError):
        return None


def docstring_type(text: str) -> str:
    """A transformers-style type as Python reads it: the backticks removed, and alternatives (``a, b or c``) written
    ``a | b | c``."""
    text = text.replace("`", "").strip()
    return text if "[" in text else " | ".join(re.split(r",\s*|\s+or\s+", text))


def typed_name(obj, section: str, name: str, kind: str) -> str:
    """``name (kind)`` where the code gives ``name`` no annotation, else ``name``: griffe shows the annotation."""
    return name if annotation_of(obj, section, name) is not None or not kind else f"{name} ({kind})"


def google_docstring(text: str, obj) -> str:
    """A transformers-style docstring as griffe's Google parser reads it, for ``obj``: each item's type is the code's
    annotation where it has one (rendered, and linked), else the docstring's; a default the signature does not show
    ends the item's description; items naming several parameters (``window_seconds, hop_seconds (...)``) become one
    item each; Sphinx roles become code."""
    out: list[str] = []
    section = section_indent = item_indent = None
    item: list[str] = []  # the lines of the item being read
    after_item: list[str] = []  # the items that follow it (the other names of a several-name item)
    default = None  # the default its docstring gives, that the signature does not show

    def close_item():
        nonlocal item, after_item, default
        last = max((index for index, line in enumerate(item) if line.strip()), default=None)
        if default is not None and last is not None:
            item[last] = f"{item[last].rstrip()} Defaults to {default}."
        end = len(item) if last is None else last + 1  # the other names' items go before the blank lines
        out.extend([*item[:end], *after_item, *item[end:]])
        item, after_item, default = [], [], None

    for line in SPHINX_ROLE.sub(role_as_code, text).split("\n"):
        indent = len(line) - len(line.lstrip())
        if line.strip() and section is not None and indent <= section_indent:
            close_item()
            section = None
        heading = SECTION.match(line)
        if heading or section is None:
            out.append(line)
            if heading:
                section, section_indent, item_indent = heading["title"], len(heading["indent"]), None
            continue
        if line.strip() and item_indent is None:
            item_indent = indent
        if indent != item_indent or not line.strip():
            item.append(line)
            continue
        close_item()  # a new item
        named, typed = NAMED_ITEM.match(line), TYPE_ITEM.match(line)
        if named and section in ("Returns", "Yields"):
            line = f"{named['indent']}{named['name']} ({docstring_type(named['spec'])}):{named['rest']}"
        elif named and section != "Raises":
            spec = SPEC.match(named["spec"].strip())
            first, *others = named["name"].split(", ")
            kind = docstring_type(spec["type"])
            line = f"{named['indent']}{typed_name(obj, section, first, kind)}:{named['rest']}"
            after_item = [
                f"{named['indent']}{typed_name(obj, section, other, kind)}: as `{first}`." for other in others
            ]
            if spec["default"] and (section == "Attributes" or default_of(obj, first) is None):
                default = spec["default"].strip()
        elif typed and section in ("Returns", "Yields"):
            kind = "" if annotation_of(obj, section, "") is not None else f"({docstring_type(typed['type'])})"
            line = f"{typed['indent']}{kind}:{typed['rest']}"
        elif typed and section == "Raises":
            line = f"{typed['indent']}{typed['type']}:{typed['rest']}"
        item.append(line)
    close_item()
    return "\n".join(out)


class TransformersDocstrings(griffe.Extension):
    """Rewrites each docstring (before griffe parses it) with :func:`google_docstring`."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = google_docstring(obj.docstring.value, obj)

    def on_function_instance(self, *, func, **kwargs) -> None:
        """Annotations written as strings (``audio: "str | np.ndarray"``) shown as types, not as quoted strings."""
        for parameter in func.parameters:
            text = parameter.annotation
            if isinstance(text, str) and len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
                expression = ast.parse(text[1:-1], mode="eval").body
                parameter.annotation = griffe.safe_get_expression(expression, parent=func) or text[1:-1]
