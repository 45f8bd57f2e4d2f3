CREATE SCHEMA IF NOT EXISTS "salesforce";

CREATE OR REPLACE PROCEDURE "salesforce"."sluice_consolidate_account"()
AS $sluice$
BEGIN
  IF NOT pg_try_advisory_xact_lock(332238, hashtext('"salesforce"."account"')) THEN
    RAISE EXCEPTION 'sluice: a sync (or another sluice procedure) holds table "salesforce"."account"; call this again when it ends';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM "_sluice"."flow_runs" WHERE "run_id" = 'run-2026-11-23T22:00:00Z' AND "target_schema" = 'salesforce' AND "target_table" = 'account' AND "phase" = 'handed_off') THEN
    RAISE INFO 'sluice: nothing to consolidate for Account: run run-2026-11-23T22:00:00Z is consolidated or a later sync replaced it';
    RETURN;
  END IF;
  PERFORM set_config('work_mem', '64MB', TRUE) WHERE pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('64MB');
  CREATE SCHEMA IF NOT EXISTS "salesforce";
  DROP TABLE IF EXISTS "_sluice_changes_account";
  CREATE TEMP TABLE "_sluice_changes_account" AS
SELECT "s"."id", "s"."system_modstamp", "s"."_sluice_stage_seq",
  "t"."id" IS NULL AS "_sluice_is_new",
  ("t"."id" IS NULL OR "t"."system_modstamp" IS NULL OR "s"."system_modstamp" > "t"."system_modstamp") AS "_sluice_advanced",
  COALESCE("s"."is_deleted", FALSE) AS "_sluice_is_deleted"
FROM (
  SELECT "id", "system_modstamp", "_sluice_stage_seq", "is_deleted", ROW_NUMBER() OVER (PARTITION BY "id" ORDER BY "system_modstamp" DESC NULLS LAST, "_sluice_stage_seq" DESC NULLS LAST) AS "_sluice_rn"
  FROM "salesforce_staging"."account"
) AS "s"
LEFT JOIN "salesforce"."account" AS "t" ON "t"."id" = "s"."id"
WHERE "s"."_sluice_rn" = 1 AND ("t"."id" IS NULL OR "t"."system_modstamp" IS NULL OR "s"."system_modstamp" >= "t"."system_modstamp");
  ANALYZE "_sluice_changes_account";
  MERGE INTO "salesforce"."account" AS "t" USING (
  SELECT "_sluice_st"."id", "_sluice_st"."name", "_sluice_st"."number_of_employees", "_sluice_st"."annual_revenue", "_sluice_st"."is_deleted", "_sluice_st"."system_modstamp", "_sluice_c"."_sluice_is_new", "_sluice_c"."_sluice_advanced", "_sluice_c"."_sluice_is_deleted"
  FROM "_sluice_changes_account" AS "_sluice_c" JOIN "salesforce_staging"."account" AS "_sluice_st" ON "_sluice_st"."_sluice_stage_seq" = "_sluice_c"."_sluice_stage_seq"
) AS "s" ON "t"."id" = "s"."id"
WHEN MATCHED THEN UPDATE SET
  "name" = "s"."name",
  "number_of_employees" = "s"."number_of_employees",
  "annual_revenue" = "s"."annual_revenue",
  "is_deleted" = "s"."is_deleted",
  "system_modstamp" = "s"."system_modstamp",
  "_sluice_synced_at" = CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ),
  "_sluice_run_id" = 'run-2026-11-23T22:00:00Z',
  "_sluice_deleted" = "s"."_sluice_is_deleted"
WHEN NOT MATCHED THEN INSERT ("id", "name", "number_of_employees", "annual_revenue", "is_deleted", "system_modstamp", "_sluice_synced_at", "_sluice_run_id", "_sluice_deleted")
  VALUES ("s"."id", "s"."name", "s"."number_of_employees", "s"."annual_revenue", "s"."is_deleted", "s"."system_modstamp", CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ), 'run-2026-11-23T22:00:00Z', "s"."_sluice_is_deleted");
  UPDATE "_sluice"."flows" SET "flow" = 'Account', "object" = 'Account', "window_end" = CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), "schema_fingerprint" = 'fp-1', "selection_fingerprint" = 'sel-1', "write_mode" = 'merge', "rows_present" = "x"."present", "updated_at" = CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ)
FROM (SELECT COUNT(*) > 0 AS "present" FROM (SELECT 1 AS "one" FROM "salesforce"."account" LIMIT 1) AS "probe") AS "x"
WHERE "target_schema" = 'salesforce' AND "target_table" = 'account';
  INSERT INTO "_sluice"."flows" ("target_schema", "target_table", "flow", "object", "window_end", "last_full_refresh", "last_formula_refresh", "schema_fingerprint", "selection_fingerprint", "write_mode", "rows_present", "updated_at")
SELECT 'salesforce', 'account', 'Account', 'Account', CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ), 'fp-1', 'sel-1', 'merge', "x"."present", CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ)
FROM (SELECT COUNT(*) > 0 AS "present" FROM (SELECT 1 AS "one" FROM "salesforce"."account" LIMIT 1) AS "probe") AS "x"
WHERE NOT EXISTS (SELECT 1 FROM "_sluice"."flows" WHERE "target_schema" = 'salesforce' AND "target_table" = 'account');
  DELETE FROM "_sluice"."flow_runs" WHERE "run_id" = 'run-2026-11-23T22:00:00Z' AND "target_schema" = 'salesforce' AND "target_table" = 'account';
  INSERT INTO "_sluice"."flow_runs" ("run_id", "target_schema", "target_table", "flow", "phase", "attempts", "window_start", "window_end", "rows_extracted", "rows_inserted", "rows_updated", "rows_deleted", "api_calls", "bytes", "api_remaining", "error", "finished_at")
SELECT 'run-2026-11-23T22:00:00Z', 'salesforce', 'account', 'Account', 'consolidated', 1, CAST('2026-11-23 20:50:00.000000+00' AS TIMESTAMPTZ), CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), 42, COALESCE(SUM(CASE WHEN "s"."_sluice_is_new" AND NOT "s"."_sluice_is_deleted" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN NOT "s"."_sluice_is_new" AND "s"."_sluice_advanced" AND NOT "s"."_sluice_is_deleted" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN NOT "s"."_sluice_is_new" AND "s"."_sluice_advanced" AND "s"."_sluice_is_deleted" THEN 1 ELSE 0 END), 0), 3, 4096, CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ)
FROM "_sluice_changes_account" AS "s";
  DROP TABLE IF EXISTS "_sluice_changes_account";
  DROP TABLE IF EXISTS "salesforce_staging"."account";
  RAISE INFO 'sluice: consolidated run run-2026-11-23T22:00:00Z of Account';
END;
$sluice$ LANGUAGE plpgsql;

DELETE FROM "_sluice"."flow_runs" WHERE "run_id" = 'run-2026-11-23T22:00:00Z' AND "target_schema" = 'salesforce' AND "target_table" = 'account';

INSERT INTO "_sluice"."flow_runs" ("run_id", "target_schema", "target_table", "flow", "phase", "attempts", "window_start", "window_end", "rows_extracted", "api_calls", "bytes", "finished_at") VALUES ('run-2026-11-23T22:00:00Z', 'salesforce', 'account', 'Account', 'handed_off', 1, CAST('2026-11-23 20:50:00.000000+00' AS TIMESTAMPTZ), CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), 42, 3, 4096, CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ));
