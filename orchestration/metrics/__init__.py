"""Headline numbers and charts of the product-metrics marts: plain functions over the marts'
DataFrames (no Dagster), attached as metadata by the dbt asset."""
