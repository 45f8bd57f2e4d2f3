CREATE SCHEMA IF NOT EXISTS "salesforce";

CREATE TABLE "salesforce"."account" (
  "id" VARCHAR(18),
  "name" VARCHAR,
  "number_of_employees" INTEGER,
  "annual_revenue" DECIMAL(18,2),
  "is_deleted" BOOLEAN,
  "system_modstamp" TIMESTAMPTZ,
  "_sluice_synced_at" TIMESTAMPTZ,
  "_sluice_run_id" VARCHAR,
  "_sluice_deleted" BOOLEAN
);

CREATE TABLE "salesforce"."account_history" (
  "id" VARCHAR(18),
  "name" VARCHAR,
  "number_of_employees" INTEGER,
  "annual_revenue" DECIMAL(18,2),
  "is_deleted" BOOLEAN,
  "system_modstamp" TIMESTAMPTZ,
  "_sluice_synced_at" TIMESTAMPTZ,
  "_sluice_run_id" VARCHAR,
  "_sluice_deleted" BOOLEAN,
  "_sluice_valid_from" TIMESTAMPTZ,
  "_sluice_valid_to" TIMESTAMPTZ,
  "_sluice_current" BOOLEAN
);

CREATE TEMP VIEW "_sluice_changes_account" AS
SELECT "s"."id", "s"."system_modstamp", "s"."_sluice_stage_seq",
  TRUE AS "_sluice_is_new", TRUE AS "_sluice_advanced", COALESCE("s"."is_deleted", FALSE) AS "_sluice_is_deleted"
FROM "salesforce_staging"."account" AS "s";

INSERT INTO "salesforce"."account" ("id", "name", "number_of_employees", "annual_revenue", "is_deleted", "system_modstamp", "_sluice_synced_at", "_sluice_run_id", "_sluice_deleted")
SELECT "s"."id", "s"."name", "s"."number_of_employees", "s"."annual_revenue", "s"."is_deleted", "s"."system_modstamp", CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ), 'run-2026-11-23T22:00:00Z', "s"."_sluice_is_deleted"
FROM (
SELECT "_sluice_st"."id", "_sluice_st"."name", "_sluice_st"."number_of_employees", "_sluice_st"."annual_revenue", "_sluice_st"."is_deleted", "_sluice_st"."system_modstamp",
  TRUE AS "_sluice_is_new", TRUE AS "_sluice_advanced", COALESCE("_sluice_st"."is_deleted", FALSE) AS "_sluice_is_deleted"
FROM "salesforce_staging"."account" AS "_sluice_st"
) AS "s";

UPDATE "salesforce"."account_history" SET "_sluice_valid_to" = "_sluice_changes_account"."system_modstamp", "_sluice_current" = FALSE
FROM "_sluice_changes_account"
WHERE "salesforce"."account_history"."id" = "_sluice_changes_account"."id" AND "salesforce"."account_history"."_sluice_current" AND "_sluice_changes_account"."_sluice_advanced";

INSERT INTO "salesforce"."account_history" ("id", "name", "number_of_employees", "annual_revenue", "is_deleted", "system_modstamp", "_sluice_synced_at", "_sluice_run_id", "_sluice_deleted", "_sluice_valid_from", "_sluice_valid_to", "_sluice_current")
SELECT "s"."id", "s"."name", "s"."number_of_employees", "s"."annual_revenue", "s"."is_deleted", "s"."system_modstamp", CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ), 'run-2026-11-23T22:00:00Z', "s"."_sluice_is_deleted", "s"."system_modstamp", CAST(NULL AS TIMESTAMPTZ), TRUE
FROM (
SELECT "_sluice_st"."id", "_sluice_st"."name", "_sluice_st"."number_of_employees", "_sluice_st"."annual_revenue", "_sluice_st"."is_deleted", "_sluice_st"."system_modstamp",
  TRUE AS "_sluice_is_new", TRUE AS "_sluice_advanced", COALESCE("_sluice_st"."is_deleted", FALSE) AS "_sluice_is_deleted"
FROM "salesforce_staging"."account" AS "_sluice_st"
) AS "s"
WHERE "s"."_sluice_advanced";

UPDATE "_sluice"."flows" SET "flow" = 'Account', "object" = 'Account', "window_end" = CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), "schema_fingerprint" = 'fp-1', "selection_fingerprint" = 'sel-1', "write_mode" = 'merge', "rows_present" = "x"."present", "updated_at" = CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ)
FROM (SELECT COUNT(*) > 0 AS "present" FROM (SELECT 1 AS "one" FROM "salesforce"."account" LIMIT 1) AS "probe") AS "x"
WHERE "target_schema" = 'salesforce' AND "target_table" = 'account';

INSERT INTO "_sluice"."flows" ("target_schema", "target_table", "flow", "object", "window_end", "last_full_refresh", "last_formula_refresh", "schema_fingerprint", "selection_fingerprint", "write_mode", "rows_present", "updated_at")
SELECT 'salesforce', 'account', 'Account', 'Account', CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ), 'fp-1', 'sel-1', 'merge', "x"."present", CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ)
FROM (SELECT COUNT(*) > 0 AS "present" FROM (SELECT 1 AS "one" FROM "salesforce"."account" LIMIT 1) AS "probe") AS "x"
WHERE NOT EXISTS (SELECT 1 FROM "_sluice"."flows" WHERE "target_schema" = 'salesforce' AND "target_table" = 'account');

DELETE FROM "_sluice"."flow_runs" WHERE "run_id" = 'run-2026-11-23T22:00:00Z' AND "target_schema" = 'salesforce' AND "target_table" = 'account';

INSERT INTO "_sluice"."flow_runs" ("run_id", "target_schema", "target_table", "flow", "phase", "attempts", "window_start", "window_end", "rows_extracted", "rows_inserted", "rows_updated", "rows_deleted", "api_calls", "bytes", "api_remaining", "error", "finished_at")
SELECT 'run-2026-11-23T22:00:00Z', 'salesforce', 'account', 'Account', 'consolidated', 1, CAST('2026-11-23 20:50:00.000000+00' AS TIMESTAMPTZ), CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), 42, COALESCE(SUM(CASE WHEN "s"."_sluice_is_new" AND NOT "s"."_sluice_is_deleted" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN NOT "s"."_sluice_is_new" AND "s"."_sluice_advanced" AND NOT "s"."_sluice_is_deleted" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN NOT "s"."_sluice_is_new" AND "s"."_sluice_advanced" AND "s"."_sluice_is_deleted" THEN 1 ELSE 0 END), 0), 3, 4096, CAST(NULL AS BIGINT), CAST(NULL AS VARCHAR), CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ)
FROM "_sluice_changes_account" AS "s";

DROP VIEW IF EXISTS "_sluice_changes_account";

