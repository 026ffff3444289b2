"""One-file reports of a search experiment or an evaluation run (``raynas report DIR``).

``write_report`` gathers the result tables (through :mod:`raynas.results`) and the pictures of
:mod:`raynas.plots` into one self-contained HTML page, or Markdown with a folder of PNGs. Importing this
package imports neither torch nor ray.
"""

from __future__ import annotations

from raynas.report.write import REPORT_FORMATS, write_report

__all__ = ["REPORT_FORMATS", "write_report"]
