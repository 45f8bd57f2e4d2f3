SELECT COUNT(*) FROM (SELECT "id" FROM "salesforce_staging"."account" WHERE hash("id") % 2 = 0 GROUP BY "id" HAVING COUNT(*) > 1) AS "_sluice_twice";
SELECT COUNT(*) FROM (SELECT "id" FROM "salesforce_staging"."account" WHERE hash("id") % 2 = 1 GROUP BY "id" HAVING COUNT(*) > 1) AS "_sluice_twice";
