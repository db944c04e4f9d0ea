"""Mail templates (Jinja2): each kind of mail is ``templates/<kind>.txt`` (its first line
``Subject: ...``, a blank line, then the text part) and ``templates/<kind>.html`` (the
HTML part, extending ``base.html``; autoescaped, so a partner's name cannot add markup).

Undefined data is an error (``StrictUndefined``), never an empty hole in a mail: a
template's data is checked against the catalogue before a mail is queued, and a mail
whose template still cannot be rendered fails at once (it never would be).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from afflux_notifications.application.sending import Rendered, RenderError

TEMPLATES = Path(__file__).parent / "templates"


class JinjaRenderer:
    """Renders a kind's subject, text and HTML with its data and the service's globals
    (``program_name``, ``portal_url``)."""

    def __init__(self, **globals_: Any) -> None:
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                               autoescape=select_autoescape(enabled_extensions=("html",), default=False),
                               keep_trailing_newline=True)
        self.env.globals.update(globals_)

    def render(self, kind: str, data: Mapping[str, Any]) -> Rendered:
        try:
            text = self.env.get_template(f"{kind}.txt").render(**data)
            html = self.env.get_template(f"{kind}.html").render(**data)
        except TemplateError as error:
            raise RenderError(str(error)) from error
        head, _, body = text.partition("\n\n")
        if not head.startswith("Subject: "):
            raise RenderError(f"{kind}.txt must start with a 'Subject: ' line")
        subject = " ".join(head.removeprefix("Subject: ").split())
        return Rendered(subject, body.strip() + "\n", html)
