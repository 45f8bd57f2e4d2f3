CREATE SCHEMA IF NOT EXISTS "salesforce_staging";

CREATE TABLE "salesforce_staging"."account" (
  "id" VARCHAR(18),
  "name" TEXT,
  "number_of_employees" INTEGER,
  "annual_revenue" DECIMAL(18,2),
  "is_deleted" BOOLEAN,
  "system_modstamp" TIMESTAMPTZ,
  "_sluice_stage_seq" BIGINT
);
