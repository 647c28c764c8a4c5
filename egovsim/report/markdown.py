"""report.md files quote text from input files (an experiment's description, province and event names, sources):
written as it is, a '<' there would open an HTML element in any Markdown viewer that renders raw HTML."""

from __future__ import annotations

import re

# '<' before a letter, '/', '!' or '?' can open a tag, a closing tag, a comment or a declaration; '<' anywhere else
# ('p < 0.05', '<= 0.525') cannot, and stays readable in the raw file
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
# a link or image to an address with a scheme ('](https://...', '](javascript:...', '](//host...'): reports link
# only their own files, by relative paths, so such a target comes from a file's text, and an image there would be
# fetched from elsewhere when the report is opened; its '(' is escaped, so it reads as text
_REMOTE_TARGET = re.compile(r"\]\((?=\s*(?:[A-Za-z][A-Za-z0-9+.-]*:|//))")
# code: fenced blocks and inline spans, where Markdown shows every character as it is (an entity there would be
# shown as '&lt;', and no HTML opens)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def inert(markdown: str) -> str:
    """`markdown` with every '<' that could open HTML, outside code, written as the entity &lt; (shown as '<'), and
    every link or image to another site shown as text."""
    out, start = [], 0
    for code in _CODE.finditer(markdown):
        out += [_plain(markdown[start : code.start()]), code.group()]
        start = code.end()
    out.append(_plain(markdown[start:]))
    return "".join(out)


def _plain(text: str) -> str:
    return _REMOTE_TARGET.sub("]\\(", _TAG_OPEN.sub("&lt;", text))
