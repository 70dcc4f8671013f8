"""The weekly report: numbers from the marts, charts, HTML and Markdown, Slack and e-mail.

Only ``assets.py``, ``schedules.py`` and ``sensors.py`` import Dagster; they wire the plain
functions of the other modules together (``marts`` reads the warehouse, ``content`` works out the
numbers, ``charts`` draws them, ``render`` writes HTML/Markdown, ``slack``/``email``/``ledger``
deliver once per week).
"""
