"""report.md files quote text from input files (an experiment's description, province and event names, sources):
written as it is, a '<' there would open an HTML element in any Markdown viewer that renders raw HTML."""

from __future__ import annotations

import re

# '<' before a letter, '/', '!' or '?' can open a tag, a closing tag, a comment or a declaration; '<' anywhere else
# ('p < 0.05', '<= 0.525') cannot, and stays readable in the raw file
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
# code: fenced blocks and inline spans, where Markdown shows every character as it is (an entity there would be
# shown as '&lt;', and no HTML opens)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def inert(markdown: str) -> str:
    """`markdown` with every '<' that could open HTML, outside code, written as the entity &lt; (shown as '<')."""
    out, start = [], 0
    for code in _CODE.finditer(markdown):
        out += [_TAG_OPEN.sub("&lt;", markdown[start : code.start()]), code.group()]
        start = code.end()
    out.append(_TAG_OPEN.sub("&lt;", markdown[start:]))
    return "".join(out)
