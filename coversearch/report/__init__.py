"""``coversearch report``: the numbers (:mod:`.numbers`, :mod:`.build`) and
their drawing (:mod:`.render`) of one index, as a self-contained HTML page."""

from coversearch.report.build import report_numbers, write_report

__all__ = ["report_numbers", "write_report"]
