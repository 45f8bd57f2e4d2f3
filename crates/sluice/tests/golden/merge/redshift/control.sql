CREATE SCHEMA IF NOT EXISTS "_sluice";

CREATE TABLE IF NOT EXISTS "_sluice"."flows" (
  "flow" VARCHAR(65535),
  "object" VARCHAR(65535),
  "window_end" TIMESTAMPTZ,
  "last_full_refresh" TIMESTAMPTZ,
  "last_reconciliation" TIMESTAMPTZ,
  "schema_fingerprint" VARCHAR(65535),
  "updated_at" TIMESTAMPTZ,
  PRIMARY KEY ("flow")
);

CREATE TABLE IF NOT EXISTS "_sluice"."runs" (
  "run_id" VARCHAR(65535),
  "trigger" VARCHAR(65535),
  "started_at" TIMESTAMPTZ,
  "finished_at" TIMESTAMPTZ,
  "status" VARCHAR(65535),
  "config_fingerprint" VARCHAR(65535),
  PRIMARY KEY ("run_id")
);

CREATE TABLE IF NOT EXISTS "_sluice"."flow_runs" (
  "run_id" VARCHAR(65535),
  "flow" VARCHAR(65535),
  "phase" VARCHAR(65535),
  "attempts" INTEGER,
  "window_start" TIMESTAMPTZ,
  "window_end" TIMESTAMPTZ,
  "rows_extracted" BIGINT,
  "rows_inserted" BIGINT,
  "rows_updated" BIGINT,
  "rows_deleted" BIGINT,
  "api_calls" BIGINT,
  "bytes" BIGINT,
  "error" VARCHAR(65535),
  "finished_at" TIMESTAMPTZ,
  PRIMARY KEY ("run_id", "flow")
);
