CREATE SCHEMA IF NOT EXISTS "_sluice";

CREATE TABLE IF NOT EXISTS "_sluice"."flows" (
  "flow" VARCHAR,
  "object" VARCHAR,
  "window_end" TIMESTAMPTZ,
  "last_full_refresh" TIMESTAMPTZ,
  "last_reconciliation" TIMESTAMPTZ,
  "schema_fingerprint" VARCHAR,
  "updated_at" TIMESTAMPTZ,
  PRIMARY KEY ("flow")
);

CREATE TABLE IF NOT EXISTS "_sluice"."runs" (
  "run_id" VARCHAR,
  "trigger" VARCHAR,
  "started_at" TIMESTAMPTZ,
  "finished_at" TIMESTAMPTZ,
  "status" VARCHAR,
  "config_fingerprint" VARCHAR,
  PRIMARY KEY ("run_id")
);

CREATE TABLE IF NOT EXISTS "_sluice"."flow_runs" (
  "run_id" VARCHAR,
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
  "error" VARCHAR,
  "finished_at" TIMESTAMPTZ,
  PRIMARY KEY ("run_id", "flow")
);
