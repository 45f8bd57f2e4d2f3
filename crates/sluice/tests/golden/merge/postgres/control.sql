CREATE SCHEMA IF NOT EXISTS "_sluice";

CREATE TABLE IF NOT EXISTS "_sluice"."flows" (
  "flow" TEXT,
  "object" TEXT,
  "window_end" TIMESTAMPTZ,
  "last_full_refresh" TIMESTAMPTZ,
  "last_reconciliation" TIMESTAMPTZ,
  "schema_fingerprint" TEXT,
  "updated_at" TIMESTAMPTZ,
  PRIMARY KEY ("flow")
);

CREATE TABLE IF NOT EXISTS "_sluice"."runs" (
  "run_id" TEXT,
  "trigger" TEXT,
  "started_at" TIMESTAMPTZ,
  "finished_at" TIMESTAMPTZ,
  "status" TEXT,
  "config_fingerprint" TEXT,
  PRIMARY KEY ("run_id")
);

CREATE TABLE IF NOT EXISTS "_sluice"."flow_runs" (
  "run_id" TEXT,
  "flow" TEXT,
  "phase" TEXT,
  "attempts" INTEGER,
  "window_start" TIMESTAMPTZ,
  "window_end" TIMESTAMPTZ,
  "rows_extracted" BIGINT,
  "rows_inserted" BIGINT,
  "rows_updated" BIGINT,
  "rows_deleted" BIGINT,
  "api_calls" BIGINT,
  "bytes" BIGINT,
  "error" TEXT,
  "finished_at" TIMESTAMPTZ,
  PRIMARY KEY ("run_id", "flow")
);
