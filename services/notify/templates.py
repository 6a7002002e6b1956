"""Message templates: Jinja2 in its sandbox (templates come from configuration and the
admin API, so they may not reach Python internals), one set of parts per locale.

HTML parts are autoescaped; text, subject, chat and SMS parts are not (they are no HTML).
A name the context lacks fails the rendering, except in an `if` test, so that
`{% if links.accept %}` works while a misspelt `{{ data.lead_idd }}` is caught by preview.
"""
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from kit.errors import Invalid, NotFound

PARTS = ("subject", "text", "html", "chat", "sms")


class TestableUndefined(StrictUndefined):
    """StrictUndefined that is false in a test instead of failing."""

    def __bool__(self):
        return False


class TemplateFailure(Invalid):
    """A template that cannot render this event (a permanent failure of its notification)."""

    title = "Template error"


def _environment(autoescape):
    return SandboxedEnvironment(undefined=TestableUndefined, autoescape=autoescape,
                                keep_trailing_newline=False)


class Templates:
    def __init__(self, doc, default_locale):
        self.templates = dict((doc or {}).get("templates") or {})
        self.samples = dict((doc or {}).get("samples") or {})
        self.default_locale = default_locale
        self._text = _environment(False)
        self._html = _environment(True)
        self._compiled = {}

    def names(self):
        return sorted(self.templates)

    def locale_for(self, name, wanted):
        """The locale to render: the recipient's, its language, the default, any."""
        if name not in self.templates:
            raise NotFound(f"No template {name!r}.")
        have = self.templates[name]
        for locale in (wanted, (wanted or "").split("-")[0], self.default_locale):
            if locale and locale in have:
                return locale
        for locale in have:
            if locale.split("-")[0] == (wanted or "").split("-")[0]:
                return locale
        return sorted(have)[0]

    def render(self, name, locale, context, parts=PARTS):
        """{part: rendered} for the parts the template has; `sms` is {template_id, params}."""
        locale = self.locale_for(name, locale)
        spec = self.templates[name][locale]
        out = {"locale": locale}
        for part in parts:
            if part not in spec:
                continue
            try:
                if part == "sms":
                    out[part] = {"template_id": str(spec[part]["template_id"]),
                                 "params": [self._compile(name, locale, f"sms{i}", p, False)
                                            .render(context)
                                            for i, p in enumerate(spec[part].get("params", []))]}
                else:
                    value = self._compile(name, locale, part, spec[part], part == "html") \
                        .render(context)
                    # a subject is one header line: no line breaks may reach it
                    out[part] = " ".join(value.split()) if part == "subject" else value
            except TemplateError as exc:
                raise TemplateFailure(f"Template {name} ({locale}) {part}: {exc}",
                                      template=name, locale=locale, part=part) from None
        return out

    def _compile(self, name, locale, part, source, html):
        key = (name, locale, part)
        if key not in self._compiled:
            try:
                self._compiled[key] = (self._html if html else self._text).from_string(source)
            except TemplateError as exc:
                raise TemplateFailure(f"Template {name} ({locale}) {part}: {exc}",
                                      template=name, locale=locale, part=part) from None
        return self._compiled[key]
