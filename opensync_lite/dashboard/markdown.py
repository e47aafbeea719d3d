"""Markdown as the reader shows it: CommonMark rendered on the server by markdown-it-py, safe
to put in a page (no raw HTML, no unsafe link, no image fetched)."""

import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markupsafe import Markup


def _markdown_parser():
    """CommonMark with tables and strikethrough; raw HTML is shown as text, unsafe link
    schemes (javascript:, data:, ...) are refused by the parser, links open apart and
    images become links (a page loads nothing from elsewhere)."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    default_link = md.renderer.rules.get("link_open")

    def link_open(tokens, idx, options, env):
        tokens[idx].attrSet("rel", "noopener noreferrer")
        if default_link:
            return default_link(tokens, idx, options, env)
        return md.renderer.renderToken(tokens, idx, options, env)

    def image(tokens, idx, options, env):
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        alt = md.renderer.renderInlineAsText(token.children or [], options, env) or src or "image"
        return f'<a href="{escapeHtml(src)}" rel="noopener noreferrer">{escapeHtml(alt)}</a>'

    md.renderer.rules["link_open"] = link_open
    md.renderer.rules["image"] = image
    return md


MARKDOWN = _markdown_parser()


# Text with none of Markdown's marks renders as escaped paragraphs: most prompts and many
# answers skip the parser. Anything that could be a mark (emphasis, code, links, entities,
# raw HTML, headings, lists, quotes, indented code, hard breaks) goes through it.
MAYBE_MARKUP = re.compile(r"[\\`*_\[\]<>#|~!&\x00-\x08\x0b-\x1f\x7f]|^[^\S\n]|[^\S\n]$|^(?:[-+=]|\d{1,9}[.)])", re.M)
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
CACHED_CHARS = 20_000  # longer texts are rendered each time rather than held


def _plain(text):
    paragraphs = [p for p in PARAGRAPH_BREAK.split(text.strip("\n")) if p]
    return "".join(f"<p>{escapeHtml(p)}</p>\n" for p in paragraphs)


@lru_cache(maxsize=4096)
def _rendered(text):
    return _plain(text) if not MAYBE_MARKUP.search(text) else MARKDOWN.render(text)


def markdown(text):
    """Markdown as safe HTML (see ``_markdown_parser``); a page rendered again after a sync
    reuses what its unchanged messages gave."""
    return Markup(_rendered(text) if len(text) <= CACHED_CHARS else _rendered.__wrapped__(text))
