"""HTML to PDF/A-3 with WeasyPrint: the printable invoice and credit note.

The web app renders the document's HTML from its templates (the same language
catalogue as the pages); this module only turns that HTML into a PDF, so the billing
package holds no page layout and the web package no PDF machinery. PDF/A-3b is what
Factur-X requires (fonts embedded, an sRGB output intent, an attached XML allowed), and
it is produced for every document so members' and organisations' invoices archive alike.

WeasyPrint is part of the hub extra and imported on first use: it needs Pango from the
system (``libpango-1.0-0``, ``libpangoft2-1.0-0``; ``scripts/bootstrap.py`` installs
them on Debian).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PDF_VARIANT", "html_to_pdf"]

PDF_VARIANT = "pdf/a-3b"


def html_to_pdf(html: str, *, base: Path | None = None) -> bytes:
    """The PDF of ``html``; ``base`` is where relative URLs (a logo) are looked up."""
    import weasyprint

    doc = weasyprint.HTML(string=html, base_url=str(base) if base else None)
    pdf = doc.write_pdf(pdf_variant=PDF_VARIANT)
    assert isinstance(pdf, bytes)
    return pdf
