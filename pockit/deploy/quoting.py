"""Escaping of user text (config name, model and media file names, source ids) for every file the
deployment bundle generates: shell scripts, Dockerfile, systemd unit, docker-compose YAML, README.

Every template is rendered by :func:`render`, whose Jinja environment registers these filters once:

``sh``       one bash word (``shlex.quote``, ``$'...'`` for control characters): ``m$(touch P).onnx`` -> ``'m$(touch P).onnx'``
``comment``  text safe inside a ``#`` comment or a Markdown line: one line, no control characters
``unit``     a systemd unit value (``Description=``): one line, ``%`` doubled (specifiers)
``unit_arg`` one argument of a systemd ``Exec*=`` line: C-quoted when needed, ``%`` and ``$`` doubled
``yaml``     a YAML scalar (``yaml.safe_dump``, double-quoted: every character escaped as YAML needs)
``code``     a Markdown inline code span that the text cannot close
``md``       Markdown text: one line, Markdown and HTML punctuation backslash-escaped

Rendering is strict: an undefined variable is an error, never an empty string.
"""
from __future__ import annotations

import shlex
from typing import Any

import yaml

__all__ = ["FILTERS", "md_code", "md_text", "one_line", "render", "sh", "unit_arg", "unit_value", "yaml_scalar"]


def sh(value: Any) -> str:
    """One bash word whose value is exactly ``str(value)`` (no expansion of ``$``, backticks, globs):
    ``shlex.quote``, or bash's ``$'...'`` with ``\\xHH`` escapes (the UTF-8 bytes) when the text holds a
    non-printable character, so a newline in a file name never starts a new line in the script."""
    s = str(value)
    if s.isprintable():
        return shlex.quote(s)
    out = []
    for ch in s:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape"))
    return "$'" + "".join(out) + "'"


def one_line(value: Any) -> str:
    """``str(value)`` with every non-printable character (newline, CR, tab, other C0/C1 controls,
    Unicode line/paragraph separators) written as a visible ``\\xNN`` / ``\\uNNNN`` escape: text that
    stays on the line it is written on (comments, Markdown, messages)."""
    out = []
    for ch in str(value):
        if ch.isprintable() and ch not in "\x85\u2028\u2029":
            out.append(ch)
        else:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return "".join(out)


def unit_value(value: Any) -> str:
    """A systemd unit setting value: one line (:func:`one_line`), ``%`` doubled so no specifier
    expands. Place it where the line does not end with it (a trailing backslash continues a line)."""
    return one_line(value).replace("%", "%%")


_UNIT_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,:/@")


def unit_arg(value: Any) -> str:
    """One argument of a systemd ``ExecStart=``-style command line: plain when made of safe
    characters, else double-quoted with C escapes (systemd unescapes them); ``%`` -> ``%%`` and
    ``$`` -> ``$$`` so neither specifiers nor environment variables expand."""
    s = str(value)
    if s and set(s) <= _UNIT_PLAIN:
        return s.replace("%", "%%")
    esc = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = []
    for ch in s:
        if ch in esc:
            out.append(esc[ch])
        elif not ch.isprintable():
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out).replace("%", "%%").replace("$", "$$") + '"'


def yaml_scalar(value: Any) -> str:
    """A YAML scalar that loads back as ``value`` (strings double-quoted, with YAML's escapes)."""
    if isinstance(value, (bool, int, float)) or value is None:
        return yaml.safe_dump(value, default_flow_style=True).split("\n", 1)[0]
    text = yaml.safe_dump(str(value), default_style='"', allow_unicode=True, width=float("inf"))
    return text.rstrip("\n")


def md_code(value: Any) -> str:
    """A Markdown inline code span holding ``value`` on one line; the fence is longer than any run
    of backticks in the text, so the text cannot close it."""
    s = one_line(value)
    run = longest = 0
    for ch in s:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


_MD_SPECIAL = set("\\`*_{}[]()<>#+-.!|~&")


def md_text(value: Any) -> str:
    """Markdown text shown literally: one line, every Markdown/HTML punctuation character escaped."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in one_line(value))


FILTERS = {"sh": sh, "comment": one_line, "unit": unit_value, "unit_arg": unit_arg, "yaml": yaml_scalar,
           "code": md_code, "md": md_text}


def _environment():
    from jinja2 import Environment, StrictUndefined

    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                      autoescape=False)
    env.filters.update(FILTERS)
    return env


_ENV = None


def render(template: str, **context: Any) -> str:
    """Render a bundle template with the quoting filters registered (one shared environment)."""
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV.from_string(template).render(**context)
