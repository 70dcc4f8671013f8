"""The dbt project, built once. Run ``make manifest`` (``dbt parse``) before loading definitions
outside ``dagster dev``; ``prepare_if_dev`` does it under ``dagster dev``."""

from dagster_dbt import DbtProject

from orchestration import settings

settings.apply_defaults()

dbt_project = DbtProject(
    project_dir=settings.DBT_PROJECT_DIR,
    target=settings.get("DBT_TARGET"),
)
dbt_project.prepare_if_dev()
