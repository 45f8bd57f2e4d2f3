CREATE SCHEMA IF NOT EXISTS "_sluice";

CREATE TABLE IF NOT EXISTS "_sluice"."layout" (
  "version" BIGINT,
  "migrated_at" TIMESTAMPTZ,
  PRIMARY KEY ("version")
);

CREATE TABLE IF NOT EXISTS "_sluice"."flows" (
  "target_schema" VARCHAR,
  "target_table" VARCHAR,
  "flow" VARCHAR,
  "object" VARCHAR,
  "window_end" TIMESTAMPTZ,
  "last_full_refresh" TIMESTAMPTZ,
  "last_reconciliation" TIMESTAMPTZ,
  "last_formula_refresh" TIMESTAMPTZ,
  "schema_fingerprint" VARCHAR,
  "selection_fingerprint" VARCHAR,
  "write_mode" VARCHAR,
  "rows_present" BOOLEAN,
  "updated_at" TIMESTAMPTZ,
  PRIMARY KEY ("target_schema", "target_table")
);

CREATE TABLE IF NOT EXISTS "_sluice"."runs" (
  "run_id" VARCHAR,
  "target_schema" VARCHAR,
  "trigger" VARCHAR,
  "started_at" TIMESTAMPTZ,
  "finished_at" TIMESTAMPTZ,
  "status" VARCHAR,
  "config_fingerprint" VARCHAR,
  PRIMARY KEY ("run_id")
);

CREATE TABLE IF NOT EXISTS "_sluice"."flow_runs" (
  "run_id" VARCHAR,
  "target_schema" VARCHAR,
  "target_table" VARCHAR,
  "flow" VARCHAR,
  "phase" VARCHAR,
  "attempts" INTEGER,
  "window_start" TIMESTAMPTZ,
  "window_end" TIMESTAMPTZ,
  "rows_extracted" BIGINT,
  "rows_inserted" BIGINT,
  "rows_updated" BIGINT,
  "rows_deleted" BIGINT,
  "api_calls" BIGINT,
  "bytes" BIGINT,
  "api_remaining" BIGINT,
  "error" VARCHAR,
  "finished_at" TIMESTAMPTZ,
  PRIMARY KEY ("run_id", "target_schema", "target_table")
);

CREATE TABLE IF NOT EXISTS "_sluice"."schedule" (
  "target_schema" VARCHAR,
  "target_table" VARCHAR,
  "flow" VARCHAR,
  "next_due" TIMESTAMPTZ,
  "paused" BOOLEAN,
  "failures" INTEGER,
  "last_error" VARCHAR,
  "last_started" TIMESTAMPTZ,
  "last_finished" TIMESTAMPTZ,
  "updated_at" TIMESTAMPTZ,
  PRIMARY KEY ("target_schema", "target_table")
);

INSERT INTO "_sluice"."layout" ("version", "migrated_at") SELECT 6, CAST('1970-01-01 00:00:00.000000+00' AS TIMESTAMPTZ) WHERE NOT EXISTS (SELECT 1 FROM "_sluice"."layout");
