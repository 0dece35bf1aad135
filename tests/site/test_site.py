"""Checks of the built website (``_build/html``): rendering, offline assets, links.

Run after ``make book``:  ``.venv/bin/pytest tests/site``  (``make test`` does both).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

SITE = Path(__file__).resolve().parents[2] / "_build" / "html"

CHAPTER_2 = "notebooks/02_core_concepts.html"

# Hosts of public CDNs and other third parties that a page must never load anything from.
CDN_PATTERN = re.compile(
    r"(?:https?:)?//(?:[\w-]+\.)*(?:jsdelivr\.net|unpkg\.com|cdnjs\.cloudflare\.com|cloudflare\.com|"
    r"googleapis\.com|gstatic\.com|googletagmanager\.com|google-analytics\.com|mathjax\.org|"
    r"plausible\.io|bootstrapcdn\.com|fontawesome\.com|mybinder\.org/static)",
    re.I,
)
# sphinx-thebe writes this constant into every page; it is only a string unless Thebe is
# activated (NOTES-book.md). The browser test proves nothing is fetched from it.
THEBE_CONSTANT = re.compile(r'const THEBE_JS_URL = "https://unpkg\.com/thebe@[\d.]+/lib/index\.js";')
# Tags whose URL attributes make the browser fetch something when the page loads.
LOADING_ATTRS = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
}
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)


class PageParser(HTMLParser):
    """Collects ids, URL-valued attributes and inline script/style text of one page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.inline: list[str] = []
        self.mathjax_scripts = 0
        self._in_inline = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a and a["id"]:
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for attr in ("href", "src", "srcset", "poster", "data", "action"):
            if a.get(attr) is not None:
                self.urls.append((tag, attr, a[attr]))
        if tag == "script" and (a.get("src") or "").split("?")[0].endswith("tex-mml-chtml.js"):
            self.mathjax_scripts += 1
        self._in_inline = tag in ("script", "style") and not a.get("src")

    def handle_endtag(self, tag):
        self._in_inline = False

    def handle_data(self, data):
        if self._in_inline:
            self.inline.append(data)


_parsed: dict[Path, PageParser] = {}


def parse(path: Path) -> PageParser:
    if path not in _parsed:
        parser = PageParser()
        parser.feed(path.read_text(encoding="utf-8"))
        _parsed[path] = parser
    return _parsed[path]


def html_pages() -> list[Path]:
    return sorted(p for p in SITE.rglob("*.html") if p.relative_to(SITE).parts[0] not in {"_static", "_sources"})


def rel(path: Path) -> str:
    return path.relative_to(SITE).as_posix()


# ----------------------------------------------------------------------------- static checks


def test_expected_pages_exist():
    pages = {rel(p) for p in html_pages()}
    for page in ("index.html", "book/preface.html", "notebooks/01_background.html", CHAPTER_2,
                 "notebooks/03_core_algorithms.html", "notebooks/04_mathematics.html",
                 "notebooks/05_1_project_data_models.html", "notebooks/05_2_project_training.html",
                 "notebooks/05_3_project_serving_evaluation.html", "notebooks/06_large_models.html",
                 "book/glossary.html", "book/errata.html", "book/references.html"):
        assert page in pages, f"{page} was not built"


def test_no_third_party_resources_in_html():
    """No page loads a script, stylesheet, font, image or frame from another host."""
    problems = []
    for page in html_pages():
        parser = parse(page)
        for tag, attr, value in parser.urls:
            if attr in LOADING_ATTRS.get(tag, ()) and EXTERNAL.match(value.strip()):
                if not value.startswith("data:"):
                    problems.append(f"{rel(page)}: <{tag} {attr}={value!r}>")
        inline = THEBE_CONSTANT.sub("", "\n".join(parser.inline))
        for match in CDN_PATTERN.finditer(inline):
            start = max(match.start() - 60, 0)
            problems.append(f"{rel(page)}: inline script/style mentions {inline[start:match.end() + 40]!r}")
    assert not problems, "third-party resources referenced:\n" + "\n".join(problems)


def test_no_third_party_resources_in_css_and_theme_js():
    """Stylesheets import nothing remote; theme/extension scripts name no CDN.

    The vendored MathJax bundle contains CDN URLs for optional accessibility features that are
    never enabled; the browser test checks what is actually requested.
    """
    problems = []
    static = SITE / "_static"
    for path in static.rglob("*"):
        if not path.is_file() or path.suffix not in {".css", ".js", ".mjs"}:
            continue
        if path.relative_to(static).parts[0] in {"mathjax", "mermaid"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".css":
            for match in re.finditer(r"(?:url\(\s*['\"]?|@import\s+['\"]?)((?:https?:)?//[^'\")\s]+)", text):
                problems.append(f"{rel(path)}: {match.group(1)}")
        else:
            for match in CDN_PATTERN.finditer(text):
                problems.append(f"{rel(path)}: {text[max(match.start() - 60, 0):match.end() + 40]!r}")
    assert not problems, "remote resources referenced by static files:\n" + "\n".join(problems)


def test_thebe_is_not_activated():
    for page in html_pages():
        text = page.read_text(encoding="utf-8")
        assert "launch-thebe" not in text and "thebe-launch-button" not in text, rel(page)


def test_mathjax_loaded_at_most_once_per_page():
    for page in html_pages():
        assert parse(page).mathjax_scripts <= 1, f"{rel(page)} loads tex-mml-chtml.js more than once"
    assert parse(SITE / CHAPTER_2).mathjax_scripts == 1, "chapter 2 does not load the local MathJax"


def test_launch_and_download_buttons():
    text = (SITE / CHAPTER_2).read_text(encoding="utf-8")
    assert "https://colab.research.google.com/github/" in text, "no Colab launch button"
    assert "https://mybinder.org/v2/gh/" in text, "no Binder launch button"
    assert "_sources/notebooks/02_core_concepts.ipynb" in text, "no .ipynb download button"
    assert (SITE / "_sources/notebooks/02_core_concepts.ipynb").is_file()


def test_internal_links_resolve():
    """Every relative href/src points at an existing file, and every #fragment at an existing id."""
    broken = []
    for page in html_pages():
        for tag, attr, value in parse(page).urls:
            value = value.strip()
            if attr == "srcset" or not value or value == "#" or EXTERNAL.match(value):
                continue
            parts = urlsplit(value)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if parts.path.endswith("/") or target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{rel(page)}: <{tag} {attr}={value!r}> -> missing file")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in parse(target).ids:
                broken.append(f"{rel(page)}: <{tag} {attr}={value!r}> -> no id {fragment!r}")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken)


# ----------------------------------------------------------------------------- browser checks


def test_no_request_leaves_loopback(crawl, server):
    offenders = []
    for page, report in crawl.items():
        for url in report.requests:
            if url.startswith(("data:", "blob:", "about:")):
                continue
            if not (url == server or url.startswith(server + "/")):
                offenders.append(f"{page}: {url}")
    assert not offenders, "requests to other hosts:\n" + "\n".join(offenders)


def test_local_requests_succeed(crawl):
    failed = [f"{page}: {f}" for page, report in crawl.items() for f in report.failed]
    assert not failed, "local requests that failed (missing vendored file?):\n" + "\n".join(failed)


def test_no_javascript_errors(crawl):
    errors = [f"{page}: {e}" for page, report in crawl.items() for e in report.js_errors]
    assert not errors, "JavaScript errors:\n" + "\n".join(errors)


def test_every_mermaid_diagram_rendered(crawl):
    problems = []
    for page, report in crawl.items():
        dom = report.dom
        ids = dom.get("mermaid_svg_ids", [])
        if (
            dom.get("mermaid_blocks", 0) != dom.get("mermaid_svgs", 0)
            or dom.get("mermaid_errors")
            or dom.get("mermaid_boxes_not_one_svg")
            or len(set(ids)) != len(ids)
        ):
            problems.append(f"{page}: {dom}")
    assert not problems, "Mermaid diagrams not rendered to SVG:\n" + "\n".join(problems)


def test_chapter_2_diagrams_are_svg(crawl):
    dom = crawl[CHAPTER_2].dom
    assert dom["mermaid_blocks"] > 0, f"no Mermaid diagram found on {CHAPTER_2}"
    assert dom["mermaid_svgs"] == dom["mermaid_blocks"], dom


def test_maths_typeset(crawl):
    problems = []
    for page, report in crawl.items():
        dom = report.dom
        if dom.get("mjx_errors") or dom.get("raw_tex"):
            problems.append(f"{page}: {dom.get('mjx_errors')} MathJax errors, raw TeX {dom.get('raw_tex')}")
    assert not problems, "\n".join(problems)
    dom = crawl[CHAPTER_2].dom
    assert dom["mathjax_loaded"] and dom["mjx_containers"] > 0, f"maths not typeset on {CHAPTER_2}: {dom}"


@pytest.mark.parametrize("page", ["book/glossary.html", "book/errata.html", "notebooks/03_core_algorithms.html",
                                  "notebooks/04_mathematics.html", "notebooks/06_large_models.html"])
def test_prose_maths_typeset(crawl, page):
    dom = crawl[page].dom
    assert dom["mjx_containers"] > 0, f"maths not typeset on {page}: {dom}"
