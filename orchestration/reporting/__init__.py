"""The weekly report: numbers from the marts, charts, HTML and Markdown, Slack and e-mail.

Nothing here imports Dagster: the assets, schedule and sensor only wire these functions together.
"""
