SELECT COUNT(*) FROM (SELECT "id" FROM "salesforce_staging"."account" GROUP BY "id" HAVING COUNT(*) > 1) AS "_sluice_twice";
