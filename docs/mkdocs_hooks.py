"""MkDocs hook (mkdocs.yml ``hooks:``): links from a page to a file of the repository outside docs/
(``../recipes/README.md``, ``../ser_hf/space_app.py``) work on GitHub but not in the site, which holds docs/ only. They
become links to the file on the repository's web page, and ``BENCHMARKS.md``, which the site includes, a link to its
page."""

from __future__ import annotations

import posixpath
import re

#: ``[text](target)`` and ``![alt](target)``, the target without a scheme.
LINK = re.compile(r"(\]\()(?!https?:|mailto:|#)([^)\s]+)(\))")

#: Files outside docs/ that the site shows as a page of its own.
INCLUDED_PAGES = {"BENCHMARKS.md": "benchmarks.md"}


def on_page_markdown(markdown, page, config, files):
    source_folder = posixpath.dirname(page.file.src_uri)

    def rewrite(match: re.Match) -> str:
        target, _, anchor = match[2].partition("#")
        in_docs = posixpath.normpath(posixpath.join(source_folder, target))
        if not in_docs.startswith("../"):
            return match[0]
        in_repository = in_docs[len("../") :]
        if in_repository in INCLUDED_PAGES:
            url = posixpath.relpath(INCLUDED_PAGES[in_repository], source_folder or ".")
        else:
            url = f"{config['repo_url'].rstrip('/')}/blob/main/{in_repository}"
        return f"{match[1]}{url}{'#' + anchor if anchor else ''}{match[3]}"

    return LINK.sub(rewrite, markdown)
