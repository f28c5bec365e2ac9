"""A local XSLT 2/3 transform service, for factur-x's own schematron check.

The ``factur-x`` library runs the EN 16931 schematron (an XSLT 2 stylesheet) by posting
the XML and the stylesheet to a Saxon server (``files={"xml": ..., "xsl": ...}``) and
reading back the SVRL report. This serves that protocol on 127.0.0.1 with saxonche (the
Saxon-HE Python package), so a test validates an invoice with the library's real
schematron check and nothing leaves the machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def _app(environ: dict[str, Any], start_response: Any) -> Any:
    from saxonche import PySaxonProcessor

    req = Request(environ)
    xml = req.files["xml"].read().decode("utf-8")
    xsl = req.files["xsl"].read().decode("utf-8")
    with PySaxonProcessor(license=False) as proc:
        xslt = proc.new_xslt30_processor()
        # The stylesheet names its code list by an absolute path (the library replaces
        # it with saxon_server_codedb_dir): any file: base resolves it.
        exe = xslt.compile_stylesheet(stylesheet_text=xsl, base_uri="file:///")
        doc = proc.parse_xml(xml_text=xml)
        out = exe.transform_to_string(xdm_node=doc)
    return Response(out or "", mimetype="application/xml")(environ, start_response)


@contextmanager
def saxon_server() -> Iterator[str]:
    """The URL to pass as ``saxon_server_url``."""
    httpd = make_server("127.0.0.1", 0, _app, threaded=False)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/transform"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
