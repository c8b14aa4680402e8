"""The HTML the web sites are made of: one page shell, form fields, messages.

Plain strings and :func:`html.escape`, no template engine: every value that comes from a
visitor or the catalog goes through :func:`esc`. Every page has exactly one
``<main data-page=…>``, the contract's anchor (docs/sandbox-web.md).
"""

import html
from collections.abc import Iterable, Mapping

from fastapi.responses import HTMLResponse

from errand.sandbox.web.sites import Input, Site

_CSS = """
body { font-family: %(font)s; margin: 0; color: #1d1d1f; background: #fafafa; }
.site-header { background: %(accent)s; color: #fff; padding: .8rem 1.5rem; }
.site-header a { color: #fff; text-decoration: none; font-weight: bold; font-size: 1.3rem; }
.site-header small { display: block; opacity: .85; }
main { max-width: 46rem; margin: 1.5rem auto; padding: 0 1rem; }
label { display: block; margin: .7rem 0 .2rem; font-weight: 600; }
input { font: inherit; padding: .45rem; width: 100%%; box-sizing: border-box; border: 1px solid #bbb; }
input[aria-invalid=true] { border-color: #b00020; }
button { font: inherit; padding: .5rem 1.1rem; background: %(accent)s; color: #fff; border: 0;
         border-radius: .3rem; cursor: pointer; margin-top: .8rem; }
.field-error, #form-errors, #payment-error { color: #b00020; }
#notice { background: #eef5ff; padding: .6rem .8rem; border-radius: .3rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
dt { color: #666; }
ul#slots { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .5rem; }
ul#slots form { margin: 0; }
table#rooms { width: 100%%; border-collapse: collapse; }
table#rooms td, table#rooms th { border-bottom: 1px solid #ddd; padding: .5rem; text-align: left; }
ol#fares li { background: #fff; margin: .5rem 0; padding: .6rem; border: 1px solid #ddd; }
div#seat-types { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: .8rem; }
article.seat-type { background: #fff; border: 1px solid #ddd; padding: .8rem; border-radius: .4rem; }
.steps { color: #777; font-size: .9rem; }
#captcha-challenge svg { background: #f1efe6; border: 1px solid #ccc; }
"""

_STEPS = ("Search", "Choose", "Details", "Payment")


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def attrs(values: Mapping[str, object]) -> str:
    """`` name="value"`` pairs, escaped; None values are left out."""
    return "".join(f' {name}="{esc(value)}"' for name, value in values.items() if value is not None)


def page(
    site: Site | None, data_page: str, title: str, body: str, *, status: int = 200,
    main: Mapping[str, object] | None = None, step: int | None = None, home: str = "",
) -> HTMLResponse:
    """A whole page: ``body`` inside ``<main data-page=…>`` with the site's header and style."""
    brand = site.brand if site else "Errand sandbox"
    css = _CSS % {"font": site.font if site else "system-ui, sans-serif", "accent": site.accent if site else "#444"}
    header = (
        f'<header class="site-header"><a href="{esc(home)}">{esc(brand)}</a>'
        f"<small>{esc(site.tagline if site else 'Test mode')}</small></header>"
    )
    steps = ""
    if step is not None:
        steps = '<p class="steps">' + " › ".join(
            f"<strong>{name}</strong>" if n == step else name for n, name in enumerate(_STEPS)
        ) + "</p>"
    main_attrs = attrs({
        "data-page": data_page, "data-site": site.provider_id if site else None,
        "data-scenario": site.scenario if site else None, **(main or {}),
    })
    document = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{esc(title)} · {esc(brand)}</title>
<style>{css}</style>
</head>
<body class="site-{esc(site.provider_id if site else 'sandbox')}">
{header}
<main{main_attrs}>
{steps}<h1>{esc(title)}</h1>
{body}
</main>
</body>
</html>
"""
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(document, status_code=status, headers=headers)


def notice(text: str | None) -> str:
    return f'<p id="notice" role="status">{esc(text)}</p>' if text else ""


def form_errors(problems: Mapping[str, str]) -> str:
    if not problems:
        return ""
    items = "".join(f'<li data-field="{esc(name)}">{esc(message)}</li>' for name, message in problems.items())
    return f'<div id="form-errors" role="alert"><p>Please correct the following:</p><ul>{items}</ul></div>'


def field(inp: Input, value: str = "", problem: str | None = None) -> str:
    """A labelled input; with ``problem`` it is marked invalid and followed by its message."""
    input_attrs = attrs({
        "id": inp.id, "name": inp.name, "type": inp.type, "value": value or None,
        "required": "required" if inp.required else None, "autocomplete": inp.autocomplete or None,
        "aria-invalid": "true" if problem else None,
        "aria-describedby": f"{inp.id}-error" if problem else None,
        "min": "1" if inp.type == "number" else None,
    })
    error = f'<p class="field-error" id="{esc(inp.id)}-error">{esc(problem)}</p>' if problem else ""
    return f'<label for="{esc(inp.id)}">{esc(inp.label)}</label><input{input_attrs}>{error}'


def fields(inputs: Iterable[Input], values: Mapping[str, str], problems: Mapping[str, str]) -> str:
    """Inputs filled from ``values`` (by canonical key), with ``problems`` by form field name."""
    return "\n".join(field(i, values.get(i.key, ""), problems.get(i.name)) for i in inputs)


def summary(rows: Iterable[tuple[str, object]]) -> str:
    return "<dl>" + "".join(
        f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in rows if value not in (None, "")
    ) + "</dl>"


def link(href: str, text: str, id_: str | None = None) -> str:
    return f'<a{attrs({"id": id_})} href="{esc(href)}">{esc(text)}</a>'
