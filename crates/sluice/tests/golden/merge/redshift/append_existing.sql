CREATE SCHEMA IF NOT EXISTS "salesforce";

DROP TABLE IF EXISTS "_sluice_changes_account";

CREATE TEMP TABLE "_sluice_changes_account" AS
SELECT "s"."id", "s"."system_modstamp", "s"."_sluice_stage_seq",
  TRUE AS "_sluice_is_new", TRUE AS "_sluice_advanced", FALSE AS "_sluice_is_deleted"
FROM "salesforce_staging"."account" AS "s"
WHERE NOT EXISTS (
  SELECT 1 FROM "salesforce_staging"."account" AS "e"
  WHERE "e"."id" = "s"."id"
    AND ("e"."system_modstamp" = "s"."system_modstamp" OR ("e"."system_modstamp" IS NULL AND "s"."system_modstamp" IS NULL))
    AND ("e"."name" = "s"."name" OR ("e"."name" IS NULL AND "s"."name" IS NULL))
    AND ("e"."number_of_employees" = "s"."number_of_employees" OR ("e"."number_of_employees" IS NULL AND "s"."number_of_employees" IS NULL))
    AND ("e"."annual_revenue" = "s"."annual_revenue" OR ("e"."annual_revenue" IS NULL AND "s"."annual_revenue" IS NULL))
    AND ("e"."is_deleted" = "s"."is_deleted" OR ("e"."is_deleted" IS NULL AND "s"."is_deleted" IS NULL))
    AND "e"."_sluice_stage_seq" < "s"."_sluice_stage_seq"
)
AND NOT EXISTS (
  SELECT 1 FROM "salesforce"."account" AS "t"
  WHERE "t"."id" = "s"."id"
    AND ("t"."system_modstamp" = "s"."system_modstamp" OR ("t"."system_modstamp" IS NULL AND "s"."system_modstamp" IS NULL))
    AND ("t"."name" = "s"."name" OR ("t"."name" IS NULL AND "s"."name" IS NULL))
    AND ("t"."number_of_employees" = "s"."number_of_employees" OR ("t"."number_of_employees" IS NULL AND "s"."number_of_employees" IS NULL))
    AND ("t"."annual_revenue" = "s"."annual_revenue" OR ("t"."annual_revenue" IS NULL AND "s"."annual_revenue" IS NULL))
    AND ("t"."is_deleted" = "s"."is_deleted" OR ("t"."is_deleted" IS NULL AND "s"."is_deleted" IS NULL))
    AND "t"."system_modstamp" >= CAST('2026-11-23 20:50:00.000000+00' AS TIMESTAMPTZ)
);

INSERT INTO "salesforce"."account" ("id", "name", "number_of_employees", "annual_revenue", "is_deleted", "system_modstamp", "_sluice_synced_at", "_sluice_run_id")
SELECT "s"."id", "s"."name", "s"."number_of_employees", "s"."annual_revenue", "s"."is_deleted", "s"."system_modstamp", CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ), 'run-2026-11-23T22:00:00Z'
FROM (
  SELECT "_sluice_st"."id", "_sluice_st"."name", "_sluice_st"."number_of_employees", "_sluice_st"."annual_revenue", "_sluice_st"."is_deleted", "_sluice_st"."system_modstamp", "_sluice_c"."_sluice_is_new", "_sluice_c"."_sluice_advanced", "_sluice_c"."_sluice_is_deleted"
  FROM "_sluice_changes_account" AS "_sluice_c" JOIN "salesforce_staging"."account" AS "_sluice_st" ON "_sluice_st"."_sluice_stage_seq" = "_sluice_c"."_sluice_stage_seq"
) AS "s";

UPDATE "_sluice"."flows" SET "flow" = 'Account', "object" = 'Account', "window_end" = CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), "schema_fingerprint" = 'fp-1', "selection_fingerprint" = 'sel-1', "write_mode" = 'append', "rows_present" = "x"."present", "updated_at" = CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ)
FROM (SELECT COUNT(*) > 0 AS "present" FROM (SELECT 1 AS "one" FROM "salesforce"."account" LIMIT 1) AS "probe") AS "x"
WHERE "target_schema" = 'salesforce' AND "target_table" = 'account';

INSERT INTO "_sluice"."flows" ("target_schema", "target_table", "flow", "object", "window_end", "last_full_refresh", "last_formula_refresh", "schema_fingerprint", "selection_fingerprint", "write_mode", "rows_present", "updated_at")
SELECT 'salesforce', 'account', 'Account', 'Account', CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ), 'fp-1', 'sel-1', 'append', "x"."present", CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ)
FROM (SELECT COUNT(*) > 0 AS "present" FROM (SELECT 1 AS "one" FROM "salesforce"."account" LIMIT 1) AS "probe") AS "x"
WHERE NOT EXISTS (SELECT 1 FROM "_sluice"."flows" WHERE "target_schema" = 'salesforce' AND "target_table" = 'account');

DELETE FROM "_sluice"."flow_runs" WHERE "run_id" = 'run-2026-11-23T22:00:00Z' AND "target_schema" = 'salesforce' AND "target_table" = 'account';

INSERT INTO "_sluice"."flow_runs" ("run_id", "target_schema", "target_table", "flow", "phase", "attempts", "window_start", "window_end", "rows_extracted", "rows_inserted", "rows_updated", "rows_deleted", "api_calls", "bytes", "api_remaining", "error", "finished_at")
SELECT 'run-2026-11-23T22:00:00Z', 'salesforce', 'account', 'Account', 'consolidated', 1, CAST('2026-11-23 20:50:00.000000+00' AS TIMESTAMPTZ), CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ), 42, COALESCE(SUM(CASE WHEN "s"."_sluice_is_new" AND NOT "s"."_sluice_is_deleted" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN NOT "s"."_sluice_is_new" AND "s"."_sluice_advanced" AND NOT "s"."_sluice_is_deleted" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN NOT "s"."_sluice_is_new" AND "s"."_sluice_advanced" AND "s"."_sluice_is_deleted" THEN 1 ELSE 0 END), 0), 3, 4096, CAST(NULL AS BIGINT), CAST(NULL AS VARCHAR(65535)), CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ)
FROM "_sluice_changes_account" AS "s";

DROP TABLE IF EXISTS "_sluice_changes_account";


-- verify: Ids whose newest version before the window end is live
SELECT COUNT(*) FROM (
  SELECT COALESCE("is_deleted", FALSE) AS "deleted", ROW_NUMBER() OVER (PARTITION BY "id" ORDER BY "system_modstamp" DESC NULLS LAST, "_sluice_synced_at" DESC) AS "rn"
  FROM "salesforce"."account" WHERE "system_modstamp" < CAST('2026-11-23 21:59:30.000000+00' AS TIMESTAMPTZ)
) AS "v" WHERE "rn" = 1 AND NOT "deleted";
