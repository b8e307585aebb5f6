"""mail.templates (the sandboxed renderer) and mail.signatures, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.mail import signatures
from mailroom.mail.templates import Parts, TemplateError, check, render


def one(source: str, **variables: object) -> str:
    return render(Parts(source, None, None), variables).subject


def refused(source: str, **variables: object) -> str:
    with pytest.raises(TemplateError) as caught:
        one(source, **variables)
    return caught.value.code


def test_variables_loops_and_simple_filters_render() -> None:
    parts = Parts(
        "Order {{ order.id }}",
        "{% for line in order.lines %}{{ line.qty }} x {{ line.name|title }}\n{% endfor %}"
        "{{ note|default('-') }}",
        "<p>{{ who }}</p>",
    )
    assert check(parts) == ["note", "order", "who"]
    out = render(
        parts, {"order": {"id": 7, "lines": [{"qty": 2, "name": "tea"}]}, "note": None, "who": "<b>"}
    )
    assert out.subject == "Order 7"
    assert out.text == "2 x Tea\nNone"
    assert out.html == "<p>&lt;b&gt;</p>"  # HTML autoescaped; text is not


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(TemplateError) as caught:
        render(Parts("Hi {{ first }} {{ last }}", None, None), {"first": "A"})
    assert caught.value.code == "template_variable_missing" and "last" in caught.value.message
    assert refused("{{ user.name }}", user={}) == "template_variable_missing"


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("{{ ''.__class__ }}", "template_refused"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "template_refused"),
        ("{{ x.__init__.__globals__ }}", "template_refused"),
        ("{{ 'a'.upper() }}", "template_refused"),  # no method calls at all
        ("{{ '{0.__class__}'.format(1) }}", "template_refused"),
        ("{{ '%s' % 1 }}", "template_refused"),
        ("{{ 'x' * 10000000 }}", "template_refused"),
        ("{{ 9 ** 99999 }}", "template_refused"),
        ("{% set a = 'x' * 100000 %}{{ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a }}", "template_refused"),
        ("{{ range(100000)|join('x' * 100000) }}", "template_refused"),
        (
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "template_timeout",
        ),
        ("{% for a in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "template_output_too_large"),
    ],
)
def test_what_a_template_cannot_do(source: str, code: str) -> None:
    assert refused(source, x=1) == code


@pytest.mark.parametrize("source", ["{% for x in %}", "{{ x|attr('__class__') }}", "{{ x|center(9) }}", "{{"])
def test_syntax_errors_and_unavailable_filters_are_refused_when_saved(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        check(Parts("", source, None))
    assert caught.value.code == "template_syntax_error" and caught.value.part == "text"


def test_the_signature_goes_once_above_the_quote() -> None:
    reply = "Sounds good.\n\nOn Mon, Carol wrote:\n> see you\n> -- \n> Carol"
    signed = signatures.with_text_signature(reply, "Alice")
    assert signed == "Sounds good.\n\n-- \nAlice\n\nOn Mon, Carol wrote:\n> see you\n> -- \n> Carol"
    assert signatures.with_text_signature(signed, "Alice") == signed
    html = (
        '<p>Yes</p><br><br><div>On Mon, Carol wrote:</div><blockquote type="cite">'
        '<div class="mailroom-signature">Carol</div></blockquote>'
    )
    once = signatures.with_html_signature(html, "<i>Alice</i>")
    assert once.startswith('<p>Yes</p><div class="mailroom-signature"><i>Alice</i></div><br><br><div>On Mon')
    assert signatures.with_html_signature(once, "<i>Alice</i>") == once
    assert signatures.with_html_signature("<html><body><p>x</p></body></html>", "S") == (
        '<html><body><p>x</p><div class="mailroom-signature">S</div></body></html>'
    )


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.text(max_size=200), st.text(min_size=1, max_size=40).filter(lambda s: s.strip("\n")))
def test_signing_is_idempotent(body: str, signature: str) -> None:
    once = signatures.with_text_signature(body, signature)
    assert signatures.with_text_signature(once, signature) == once
