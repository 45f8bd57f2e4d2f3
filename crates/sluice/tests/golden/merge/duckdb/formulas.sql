CREATE SCHEMA IF NOT EXISTS "salesforce_staging";

CREATE TABLE "salesforce_staging"."account__formulas" ("id" VARCHAR(18), "parent_name__c" VARCHAR, "days_open__c" DECIMAL(18,0));

-- rows whose formula values change
SELECT COUNT(*) FROM "salesforce"."account" WHERE EXISTS (SELECT 1 FROM "salesforce_staging"."account__formulas" AS "f" WHERE "salesforce"."account"."id" = "f"."id" AND (NOT ("salesforce"."account"."parent_name__c" = "f"."parent_name__c" OR ("salesforce"."account"."parent_name__c" IS NULL AND "f"."parent_name__c" IS NULL)) OR NOT ("salesforce"."account"."days_open__c" = "f"."days_open__c" OR ("salesforce"."account"."days_open__c" IS NULL AND "f"."days_open__c" IS NULL))));

-- one transaction
UPDATE "salesforce"."account" SET "parent_name__c" = "f"."parent_name__c", "days_open__c" = "f"."days_open__c", "_sluice_synced_at" = CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ), "_sluice_run_id" = 'run-2026-11-23T22:00:00Z'
FROM "salesforce_staging"."account__formulas" AS "f"
WHERE "salesforce"."account"."id" = "f"."id" AND (NOT ("salesforce"."account"."parent_name__c" = "f"."parent_name__c" OR ("salesforce"."account"."parent_name__c" IS NULL AND "f"."parent_name__c" IS NULL)) OR NOT ("salesforce"."account"."days_open__c" = "f"."days_open__c" OR ("salesforce"."account"."days_open__c" IS NULL AND "f"."days_open__c" IS NULL)));

UPDATE "salesforce"."account_history" SET "parent_name__c" = "f"."parent_name__c", "days_open__c" = "f"."days_open__c", "_sluice_synced_at" = CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ), "_sluice_run_id" = 'run-2026-11-23T22:00:00Z'
FROM "salesforce_staging"."account__formulas" AS "f"
WHERE "salesforce"."account_history"."id" = "f"."id" AND (NOT ("salesforce"."account_history"."parent_name__c" = "f"."parent_name__c" OR ("salesforce"."account_history"."parent_name__c" IS NULL AND "f"."parent_name__c" IS NULL)) OR NOT ("salesforce"."account_history"."days_open__c" = "f"."days_open__c" OR ("salesforce"."account_history"."days_open__c" IS NULL AND "f"."days_open__c" IS NULL))) AND "salesforce"."account_history"."_sluice_current";

UPDATE "_sluice"."flows" SET "last_formula_refresh" = CAST('2026-11-23 22:00:00.000000+00' AS TIMESTAMPTZ) WHERE "target_schema" = 'salesforce' AND "target_table" = 'account';
