//! Destinations: where extracted batches land. For now the files destination
//! (Parquet, CSV or JSON lines, partitioned by run); the warehouse destinations with
//! staging and consolidation come with their own issues.

pub mod files;
