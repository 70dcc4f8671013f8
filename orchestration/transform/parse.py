"""``make manifest``: ``dbt parse`` with the vars that runs pass to ``dbt build``.

dbt reuses its saved parse (``partial_parse.msgpack``, which dagster-dbt copies into each run's
target folder) only when the vars, the target and the rendered profile are the ones it was saved
with; otherwise every ``dbt build`` parses the whole project again (about 10 s at the start of each
run on these machines). Parsing here with the metrics configuration's vars, in the environment the
runs use, is what a deploy step (``dagster-dbt project prepare-and-package``) does in production.
Run it again after editing config/analytics.yml; a stale parse only costs time, never correctness.
"""

import subprocess
import sys
from pathlib import Path

from orchestration import metrics_config, settings


def parse_manifest() -> None:
    dbt = Path(sys.executable).parent / "dbt"
    dbt_vars = metrics_config.dbt_vars_json(metrics_config.load_config())
    subprocess.run(
        # The same --target as DbtCliResource passes: the target name is part of what dbt checks.
        [str(dbt), "parse", "--quiet", "--vars", dbt_vars, "--target", settings.get("DBT_TARGET")],
        cwd=settings.DBT_PROJECT_DIR,
        check=True,
    )


if __name__ == "__main__":
    settings.apply_defaults()
    parse_manifest()
